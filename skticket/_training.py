"""One training: one skorch net, masks enforced by a callback.

Every search (the dense round, each ticket, the random baselines, an explicit
``prune``) trains through :func:`run_training`; nothing else runs a training
loop. The net is a fresh clone of the sized template, built through skorch's
own ``initialize()`` (so optimizer state and LR schedules start fresh every
round), then loaded with the start weights by value.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.base import clone
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochScoring
from skorch.dataset import Dataset
from torch import nn
from torch.utils.data import DataLoader, Subset

from ._mask_updates import MaskUpdates
from ._pruning import MagnitudeRule, mask_distance, n_active
from ._rng import seeded
from .exceptions import TrainingDivergedError, TrainingInterrupted

#: A module's parameters and buffers by name, as numpy arrays: theta_0, a rewind
#: point, a ticket's start weights.
ModuleState = dict[str, np.ndarray]

#: The name of the masks callback in a trained net's ``callbacks_``.
MASK_CALLBACK = "skticket_masks"
_CAPTURE_CALLBACK = "skticket_rewind_point"
_EARLY_BIRD_CALLBACK = "skticket_early_bird"


def module_state(module: nn.Module) -> ModuleState:
    """A copy of a module's parameters and buffers as numpy arrays (by name)."""
    return {
        name: tensor.detach().cpu().numpy().copy()
        for name, tensor in module.state_dict().items()
    }


@torch.no_grad()
def load_state(module: nn.Module, state: Mapping[str, np.ndarray]) -> None:
    """Copy ``state`` into ``module`` by value (never by reference).

    ``param.data = tensor`` would alias the stored snapshot, and training would
    then overwrite the weights every later round rewinds to.
    """
    module.load_state_dict({name: torch.as_tensor(value) for name, value in state.items()})


class ApplyMasks(Callback):
    """Keep pruned weights at exactly zero while the net trains.

    Multiplies each pruned parameter by its mask before training and after every
    optimizer step. Masking only the gradient is not enough: momentum, weight
    decay and Adam's running averages move a zero-gradient weight anyway.

    Parameters
    ----------
    masks : dict of str to bool ndarray
        Per parameter name in the net's module, ``True`` where the weight survives.
    """

    def __init__(self, masks: Mapping[str, np.ndarray]) -> None:
        self.masks = masks

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        params = dict(net.module_.named_parameters())
        # Each step costs one in-place multiply per pruned layer, nothing else:
        # the masks live beside their parameters in their dtype (a bool mask
        # would make every multiply cast it: over 4x slower), and the
        # parameters are held as detached views of the same storage, so no
        # autograd context is entered per step. A mask that prunes nothing (the
        # dense round, a layer kept whole) is left out: a multiply and a
        # weight-sized tensor for nothing.
        self.pairs_ = [
            (params[name].detach(),
             torch.as_tensor(mask, dtype=params[name].dtype, device=params[name].device))
            for name, mask in self.masks.items()
            if not np.all(mask)
        ]
        self.apply()

    def on_batch_end(self, net, batch=None, training=None, **kwargs) -> None:
        if training:
            self.apply()

    def apply(self) -> None:
        for param, mask in self.pairs_:
            param.mul_(mask)


class UpdateMasks(ApplyMasks):
    """Hold the masks at zero as :class:`ApplyMasks` does, and move them on a schedule.

    After each optimizer step the schedule (a
    :class:`~skticket._mask_updates.MaskUpdates`) says whether the masks
    change; if so they are updated from the current weights and what the
    schedule ranks by (the dense gradient of that step's batch, or the
    optimizer's momentum). A weight that becomes active starts at zero (it
    was held there), and the optimizer's state of it (momentum, Adam's
    moments) is reset to zero, so that no stale average moves it. The
    schedule is laid out on the training's planned steps: ``max_epochs``
    times the batches of the first epoch.

    Parameters
    ----------
    masks : dict of str to bool ndarray
        The masks the training starts with.
    schedule : MaskUpdates
        When and how they change.

    Attributes
    ----------
    masks_ : dict of str to bool ndarray
        The current masks (after training: the final ones).
    updates_ : list of dict
        One record per update: ``step``, ``n_active``, ``regrown`` (the
        share of the surviving weights that were not active before the
        update) and ``densities`` (per layer, the share of its weights
        active).
    """

    def __init__(self, masks: Mapping[str, np.ndarray], schedule: MaskUpdates) -> None:
        super().__init__(masks)
        self.schedule = schedule

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        params = dict(net.module_.named_parameters())
        self.params_ = {name: params[name] for name in self.masks}
        self.masks_ = {name: np.array(mask, dtype=bool) for name, mask in self.masks.items()}
        self.updates_: list[dict] = []
        self.step_ = 0
        self.total_steps_: int | None = None
        self.steps_per_epoch_: int | None = None
        self.gradients_: dict[str, np.ndarray] | None = None
        self._hold()

    def _hold(self) -> None:
        # Every masked parameter, a mask of ones included: it may lose weights later.
        self.pairs_ = [
            (param.detach(), torch.as_tensor(self.masks_[name], dtype=param.dtype,
                                             device=param.device))
            for name, param in self.params_.items()
        ]
        self.apply()

    def on_epoch_begin(self, net, dataset_train=None, **kwargs) -> None:
        if self.total_steps_ is None:
            self.steps_per_epoch_ = max(len(net.get_iterator(dataset_train, training=True)), 1)
            self.total_steps_ = self.steps_per_epoch_ * net.max_epochs

    def _due(self, step: int) -> bool:
        return self.schedule.due(step, self.total_steps_, self.steps_per_epoch_)

    @property
    def holds_training(self) -> bool:
        """Whether updates the schedule needs are still to come: a stopping rule that
        asks (the default nets' ``"converged"``) lets the training run on until then."""
        return self.total_steps_ is None or self.step_ < self.schedule.last_step(
            self.total_steps_, self.steps_per_epoch_)

    def on_train_end(self, net, X=None, y=None, **kwargs) -> None:
        if self.total_steps_ is None or not self.schedule.must_finish:
            return
        last = self.schedule.last_step(self.total_steps_, self.steps_per_epoch_)
        if self.step_ < last:
            warnings.warn(
                f"The training ended after {self.step_} optimizer steps, before its mask "
                f"schedule's last update at step {last}: the masks were brought to the "
                "schedule's end at once, with no steps left to recover. Train for the "
                "net's max_epochs (a stopping rule ended it), or lower them.",
                UserWarning, stacklevel=2)
            self._update(net, at_step=last)

    def on_grad_computed(self, net, named_parameters, X=None, y=None, training=None,
                         **kwargs) -> None:
        if training and self.schedule.uses == "gradient" and self._due(self.step_ + 1):
            # The dense gradient of this batch, taken before the step that follows.
            self.gradients_ = {
                name: (np.zeros(tuple(param.shape)) if param.grad is None
                       else param.grad.detach().cpu().numpy().copy())
                for name, param in self.params_.items()}

    def on_batch_end(self, net, batch=None, training=None, **kwargs) -> None:
        if not training:
            return
        self.apply()
        self.step_ += 1
        if self._due(self.step_):
            self._update(net)

    def _scores(self, net) -> dict[str, np.ndarray] | None:
        if self.schedule.uses == "gradient":
            return self.gradients_
        if self.schedule.uses != "momentum":
            return None
        scores = {}
        for name, param in self.params_.items():
            state = net.optimizer_.state.get(param, {})
            momentum = state.get("exp_avg", state.get("momentum_buffer"))
            if not isinstance(momentum, torch.Tensor):
                optimizer = type(net.optimizer_).__name__
                raise ValueError(
                    f"Sparse momentum regrows weights where the optimizer's momentum is "
                    f"largest, and {optimizer} keeps none for {name!r}: use an optimizer "
                    "with momentum (Adam, AdamW, or SGD with momentum > 0).")
            scores[name] = momentum.detach().cpu().numpy().copy()
        return scores

    @torch.no_grad()
    def _update(self, net, at_step: int | None = None) -> None:
        weights = {name: param.detach().cpu().numpy() for name, param in self.params_.items()}
        new = self.schedule.updated(self.masks_, weights, self._scores(net),
                                    self.step_ if at_step is None else at_step,
                                    self.total_steps_)
        grown = {name: new[name] & ~self.masks_[name] for name in new}
        n_grown = sum(int(np.count_nonzero(g)) for g in grown.values())
        if n_grown:
            self._reset_optimizer_state(net, grown)
        kept = n_active(new)
        self.updates_.append({
            "step": self.step_,
            "n_active": kept,
            "regrown": n_grown / kept if kept else 0.0,
            "densities": {name: float(np.count_nonzero(mask) / mask.size)
                          for name, mask in new.items()},
        })
        self.masks_ = new
        self.gradients_ = None
        self._hold()

    def _reset_optimizer_state(self, net, grown: Mapping[str, np.ndarray]) -> None:
        for name, positions in grown.items():
            param = self.params_[name]
            at = torch.as_tensor(positions, device=param.device)
            for value in net.optimizer_.state.get(param, {}).values():
                if isinstance(value, torch.Tensor) and value.shape == param.shape:
                    value[at] = 0


def hold_masks(net: NeuralNet, masks: Mapping[str, np.ndarray]) -> None:
    """Make ``net``'s masks callback hold ``masks`` fixed from now on.

    What a sparse training hands back: its net trains on (``partial_fit``,
    a clone's ``fit``) with the masks it ended with, not from its schedule's
    start again.
    """
    held = ApplyMasks({name: np.array(mask, dtype=bool) for name, mask in masks.items()})

    def replaced(callbacks):
        return [(MASK_CALLBACK, held) if isinstance(entry, tuple) and entry[0] == MASK_CALLBACK
                else entry for entry in callbacks]

    net.callbacks = replaced(net.callbacks)
    if hasattr(net, "callbacks_"):
        net.callbacks_ = replaced(net.callbacks_)


class CaptureRewindPoint(Callback):
    """Record the module's weights after ``step`` optimizer steps (late resetting).

    Used in the dense round only: the rewind point is taken once and every
    later round rewinds to the same snapshot.

    Parameters
    ----------
    step : int
        Optimizer steps after which to take the snapshot (>= 1).
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def initialize(self):
        self.steps_taken_ = 0
        self.state_ = None
        return self

    def on_batch_end(self, net, batch=None, training=None, **kwargs) -> None:
        if training:
            self.steps_taken_ += 1
            if self.steps_taken_ == self.step:
                self.state_ = module_state(net.module_)


@dataclass(frozen=True, eq=False)
class EarlyBirdRule:
    """When an early-bird search stops its dense training (You et al., ICLR 2020).

    After every epoch the mask IMP would reach at ``target_n_active`` is drawn
    from the current weights in one step (``magnitude.prune_to``: IMP's rate,
    scope, per-layer rates and floor). The training stops once the newest mask
    is within ``tolerance`` of each of the ``window`` masks before it, by
    :func:`~skticket._pruning.mask_distance` (the share of surviving weights
    that changed).
    """

    target_n_active: int
    magnitude: MagnitudeRule
    window: int
    tolerance: float


class EarlyBirdStop(Callback):
    """Draw the ticket's mask after every epoch, and end the training once it settles.

    Ends the training as skorch's ``EarlyStopping`` does, by raising
    ``KeyboardInterrupt`` at the end of an epoch.

    Parameters
    ----------
    rule : EarlyBirdRule
    names : list of str
        The pruned parameters.
    """

    def __init__(self, rule: EarlyBirdRule, names: Iterable[str]) -> None:
        self.rule = rule
        self.names = names

    def initialize(self):
        self.kept_: list[dict[str, np.ndarray]] = []
        self.distances_: list[float | None] = []
        self.masks_: dict[str, np.ndarray] | None = None
        self.settled_ = False
        return self

    def on_epoch_end(self, net, **kwargs) -> None:
        rule = self.rule
        params = dict(net.module_.named_parameters())
        weights = {name: params[name].detach().cpu().numpy() for name in self.names}
        dense = {name: np.ones(value.shape, dtype=bool) for name, value in weights.items()}
        masks = rule.magnitude.prune_to(weights, dense, rule.target_n_active)
        distance = max((mask_distance(masks, kept) for kept in self.kept_), default=None)
        self.distances_.append(distance)
        self.masks_ = masks
        if len(self.kept_) == rule.window and distance <= rule.tolerance:
            self.settled_ = True
            raise KeyboardInterrupt  # how a skorch callback ends a training
        self.kept_ = [*self.kept_[-(rule.window - 1):], masks] if rule.window > 1 else [masks]

    def summary(self, epochs: int) -> dict:
        """What the search needs of it, as plain data: the mask drawn at the last
        epoch, that epoch, the distances seen, and whether the masks settled."""
        return {"masks": self.masks_, "epoch": epochs, "distances": list(self.distances_),
                "settled": self.settled_}


def with_callbacks(net: NeuralNet, named: Iterable[tuple[str, Callback]],
                   **settings) -> NeuralNet:
    """An unfitted copy of ``net`` with the named callbacks added to its own.

    ``callbacks="disable"`` makes skorch run no callback at all, ours included,
    so the masks would not hold. It becomes the equivalent explicit setting:
    skorch's default callbacks switched off one by one (``callbacks__<name>=None``),
    ours alone in the list. ``settings`` are further net parameters to set.
    """
    named = list(named)
    params = net.get_params(deep=False)
    if not named and not settings:
        return clone(net)
    if net.callbacks == "disable":
        params.update(callbacks=named, **{
            f"callbacks__{name}": None for name, _ in net.get_default_callbacks()})
    else:
        params.update(callbacks=[*(net.callbacks or []), *named])
    params.update(settings)
    # What clone does, with the callbacks changed (skorch's set_params can
    # switch a default callback off only once the callbacks are initialized).
    return clone(type(net)(**params))


#: torch's optimizers with fused kernels, and the devices they have them on since
#: the torch floor (2.4): Adagrad's CUDA kernel came later (torch 2.8).
_FUSED_DEVICE_TYPES = {
    torch.optim.Adam: frozenset({"cpu", "cuda"}),
    torch.optim.AdamW: frozenset({"cpu", "cuda"}),
    torch.optim.SGD: frozenset({"cpu", "cuda"}),
    torch.optim.Adagrad: frozenset({"cpu"}),
}
#: The optimizer arguments by which a user chooses an implementation (or rules
#: fused kernels out: torch has none for a differentiable step).
_IMPLEMENTATION_ARGS = ("fused", "foreach", "differentiable")


def optimizer_implementation(net: NeuralNet) -> dict[str, bool]:
    """The ``optimizer__*`` setting that runs ``net``'s optimizer on torch's fastest kernels.

    On the CPU torch's optimizers default to their single-tensor
    implementation, a Python loop of a dozen small kernels per parameter:
    about two thirds of a small MLP's training step. The same update runs in
    one kernel per step with ``fused=True`` (Adam, AdamW and SGD on the CPU
    and CUDA, Adagrad on the CPU) or in one kernel per operation over all
    parameters with ``foreach=True`` (torch's other optimizers that take it). Both compute
    the same update as the loop, up to float rounding in the last bits, with
    the same hyperparameters; a training stays reproducible for a given seed.

    Nothing is chosen (``{}``) when the user chose the implementation
    (``optimizer__fused``, ``optimizer__foreach`` or
    ``optimizer__differentiable`` set, also through a ``functools.partial``),
    or the optimizer is not one of torch's.
    """
    optimizer, chosen = net.optimizer, set()
    while isinstance(optimizer, functools.partial):
        chosen.update(optimizer.keywords)
        optimizer = optimizer.func
    chosen.update(name[len("optimizer__"):] for name in net.get_params(deep=False)
                  if name.startswith("optimizer__"))
    if (not isinstance(optimizer, type) or not issubclass(optimizer, torch.optim.Optimizer)
            or chosen.intersection(_IMPLEMENTATION_ARGS)):
        return {}
    # A subclass that narrows the constructor's arguments is taken at its word.
    takes = inspect.signature(optimizer).parameters
    device = torch.device(net.device or "cpu").type
    fused_on = next((devices for base, devices in _FUSED_DEVICE_TYPES.items()
                     if issubclass(optimizer, base)), frozenset())
    if "fused" in takes and device in fused_on:
        return {"optimizer__fused": True}
    if "foreach" in takes:
        return {"optimizer__foreach": True}
    return {}


def _idle_callbacks(net: NeuralNet, weighted: bool = False) -> dict[str, None]:
    """``callbacks__<name>=None`` for each of skorch's default callbacks that
    would do nothing in a training of ``net`` (``weighted``: with sample weights).

    They still cost a training their calls, after every batch and epoch:
    ``PrintLog`` formats its table after every epoch even at ``verbose=0``,
    where it prints nothing (a fifth of a small net's epoch), and the
    validation scores look for a validation split that ``train_split=None``
    never makes. With sample weights, a score skorch computes on the held-out
    rows (``valid_acc``) would ignore them, and cannot read the weighted
    targets the batches carry; the weighted ``valid_loss`` stays. A default
    callback the user configured (any ``callbacks__<name>*`` setting, such as
    a sink of their own) stays.
    """
    if net.callbacks == "disable":
        return {}
    configured = {name.split("__")[1] for name in net.get_params(deep=False)
                  if name.startswith("callbacks__")}
    idle = {name for name, callback in net.get_default_callbacks()
            if (name == "print_log" and not net.verbose)
            or (name.startswith("valid_") and net.train_split is None)
            or (weighted and isinstance(callback, EpochScoring) and not callback.on_train)}
    return {f"callbacks__{name}": None for name in sorted(idle - configured)}


# The DataLoader arguments under which one fetch per batch yields exactly the
# batches skorch's default loader builds row by row.
_BATCH_FETCH_ARGS = frozenset({"batch_size", "shuffle", "drop_last"})


class _BatchDataset:
    """Rows of ``X`` and ``y`` fetched by a tensor of positions at once.

    What a skorch ``Dataset`` over numpy arrays returns row by row, as
    tensors that share the arrays' memory: one indexing per batch, without
    skorch's per-call index normalisation (scikit-learn's ``_safe_indexing``
    inspects every index of a list) or the DataLoader's conversions.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, rows: np.ndarray | None = None,
                 sample_weight: np.ndarray | None = None) -> None:
        # A read-only array (a memory map, a pandas view) is copied once:
        # torch cannot share memory it may not write. A sparse X stays sparse
        # (CSR): each batch's rows are densified as the batch is drawn.
        self.sparse_X = X.tocsr() if issparse(X) else None
        self.X = None if issparse(X) else torch.from_numpy(np.require(X, requirements="W"))
        self.y = torch.from_numpy(np.require(y, requirements="W"))
        self.rows = None if rows is None else torch.as_tensor(rows, dtype=torch.int64)
        self.weight = (None if sample_weight is None
                       else torch.from_numpy(np.require(sample_weight, requirements="W")))

    def __len__(self) -> int:
        return len(self.y) if self.rows is None else len(self.rows)

    def __getitem__(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # index_select: the rows of advanced indexing at a third of its cost.
        if self.rows is not None:
            positions = torch.index_select(self.rows, 0, positions)
        if self.sparse_X is not None:
            X = torch.from_numpy(self.sparse_X[positions.numpy()].toarray())
        else:
            X = torch.index_select(self.X, 0, positions)
        y = torch.index_select(self.y, 0, positions)
        if self.weight is None:
            return X, y
        # The weights ride with the targets to the loss (_WeightedLoss.get_loss).
        return X, WeightedTargets(y, torch.index_select(self.weight, 0, positions))


class _Batches:
    """The batches of a DataLoader over ``rows``, drawn as it draws them.

    Per pass, a DataLoader's iterator draws a base seed from torch's global
    generator, then a ``RandomSampler`` draws the seed of its permutation;
    the same two draws, in that order, give the same permutation, and each
    batch is one slice of it.
    """

    def __init__(self, rows: _BatchDataset, batch_size: int, shuffle: bool,
                 drop_last: bool) -> None:
        self.rows, self.batch_size = rows, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last

    def __len__(self) -> int:
        n, size = len(self.rows), self.batch_size
        return n // size if self.drop_last else -(-n // size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.rows)
        torch.empty((), dtype=torch.int64).random_()  # the DataLoader iterator's base seed
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield self.rows[order[start:start + self.batch_size]]


class WeightedTargets(tuple):
    """A batch's targets with their sample weights: ``(y, weight)``.

    What the training batches carry when a fit has sample weights; skorch
    hands it to ``get_loss`` as the batch's targets.
    """

    def __new__(cls, y: torch.Tensor, weight: torch.Tensor) -> WeightedTargets:
        return super().__new__(cls, (y, weight))


def weighted_loss(net: NeuralNet, y_pred, y_true, weight: torch.Tensor, *, X=None,
                  training: bool = False, get_loss=None) -> torch.Tensor:
    """``sum(w_i * loss_i) / sum(w_i)`` over a batch, with the net's own loss per sample.

    scikit-learn's MLP rule since 1.7. The per-sample losses are the net's
    ``get_loss`` (its criterion, and what skorch does around it, such as the
    log a ``NLLLoss`` classifier takes) with the criterion's ``reduction``
    set to ``"none"`` for the call; several outputs per sample (a regressor's
    targets) are averaged first. A batch whose weights are all zero gives a
    loss of zero. ``get_loss`` defaults to ``net.get_loss``.

    Raises
    ------
    TypeError
        The criterion has no ``reduction`` (it cannot give per-sample losses).
    """
    criterion = net.criterion_
    if not hasattr(criterion, "reduction"):
        raise TypeError(
            "sample_weight needs a loss per sample, and the criterion "
            f"{type(criterion).__name__} has no 'reduction' to set to 'none'.")
    reduction = criterion.reduction
    criterion.reduction = "none"
    try:
        losses = (get_loss or net.get_loss)(y_pred, y_true, X=X, training=training)
    finally:
        criterion.reduction = reduction
    weight = weight.to(device=losses.device, dtype=losses.dtype)
    losses = losses.reshape(len(weight), -1).mean(dim=1)
    return (losses * weight).sum() / weight.sum().clamp_min(torch.finfo(losses.dtype).tiny)


class _WeightedLoss:
    """Mixed into a training net's class for the training only: ``get_loss`` that
    takes a batch's :class:`WeightedTargets` (:func:`weighted_loss`); any other
    targets (a validation pass) get the net's own loss."""

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if isinstance(y_true, WeightedTargets):
            y, weight = y_true
            return weighted_loss(self, y_pred, y, weight, X=X, training=training,
                                 get_loss=super().get_loss)
        return super().get_loss(y_pred, y_true, X=X, training=training)


@functools.cache
def _with_weighted_loss(net_class: type) -> type:
    return type(net_class.__name__, (_WeightedLoss, net_class),
                {"__module__": net_class.__module__, "__qualname__": net_class.__qualname__})


@contextlib.contextmanager
def _weighted_training(net: NeuralNet, weighted: bool) -> Iterator[None]:
    """While a weighted training runs, ``net`` is of its class with :class:`_WeightedLoss`
    mixed in; it is handed back as the user's class (it pickles, clones and trains on
    as theirs)."""
    if not weighted:
        yield
        return
    original = type(net)
    net.__class__ = _with_weighted_loss(original)
    try:
        yield
    finally:
        net.__class__ = original


def _batch_fetching_loader(dataset, batch_size: int = 1, shuffle: bool = False,
                           drop_last: bool = False,
                           sample_weight: np.ndarray | None = None) -> DataLoader | _Batches:
    """skorch's training DataLoader, fetching each batch with one indexing.

    The default DataLoader reads a skorch ``Dataset`` one row at a time and
    stacks the rows: a quarter of the training time of a 30-256-256-2 MLP at
    batch 128, an eighth of LeNet-300-100's at batch 60, on a 2-core CPU
    (benchmarks/bench_training.py); even fed whole batches, its iterator and
    conversions cost a sixth of a small net's step (benchmarks/bench_step.py).
    :class:`_Batches` gives the same batches, in the same order, from the
    same random draws, so training is bit-for-bit what it would be. Anything
    but a skorch ``Dataset`` over numeric numpy arrays (or the ``Subset`` of one that
    skorch's internal validation split makes) gets the ordinary DataLoader.
    """
    rows = None
    source = dataset
    if type(dataset) is Subset:
        source, rows = dataset.dataset, np.asarray(dataset.indices, dtype=np.intp)
    if not (type(source) is Dataset and all(
            (isinstance(a, np.ndarray) or (a is source.X and issparse(a)))
            and a.dtype.kind in "biuf" for a in (source.X, source.y))):
        if sample_weight is not None or issparse(getattr(source, "X", None)):
            raise TypeError(
                "sample_weight and a sparse X need the net's own data pipeline (a skorch "
                f"Dataset over numeric arrays); this training's data is a "
                f"{type(source).__name__}.")
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    return _Batches(_BatchDataset(source.X, source.y, rows, sample_weight), batch_size, shuffle,
                    drop_last)


def _fetches_batches(net: NeuralNet, prefix: str = "iterator_train") -> bool:
    """Whether ``net`` trains (``prefix="iterator_valid"``: scores its held-out rows)
    through skorch's default data pipeline, unchanged."""
    return (getattr(net, prefix) is DataLoader and net.dataset is Dataset
            and set(net.get_params_for(prefix)) <= _BATCH_FETCH_ARGS)


def _reset_parameters(module: nn.Module) -> None:
    for submodule in module.modules():
        reset = getattr(submodule, "reset_parameters", None)
        if callable(reset):
            reset()


def initialized_net(template: NeuralNet, seed: int, fresh: bool = False) -> NeuralNet:
    """A clone of ``template`` initialised by skorch under ``seed``.

    With ``fresh=True`` every layer is re-drawn even when the net wraps a module
    instance (skorch reuses an instance as it is): the re-initialised baseline.
    """
    net = clone(template)
    with seeded(seed, net.device):
        net.initialize()
        if fresh and isinstance(template.module, nn.Module):
            _reset_parameters(net.module_)
    return net


def initial_state(template: NeuralNet, seed: int, fresh: bool = False) -> ModuleState:
    """The module's initial weights, drawn under ``seed`` (see :func:`initialized_net`)."""
    return module_state(initialized_net(template, seed, fresh).module_)


#: The layers whose ``weight`` is pruned by default: linear layers and every
#: convolution (named one by one: their common base class is private to torch).
_PRUNED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
                  nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def prunable_parameters(
    module: nn.Module,
    prunable: Iterable[str] | Callable[[str, nn.Parameter], bool] | None = None,
) -> list[str]:
    """Names of the parameters to prune, in module order.

    ``None``: the ``weight`` of every ``nn.Linear`` and convolution, chosen by
    module type, never by a name containing "weight" (that would prune norm
    layers). A list names parameters; a callable decides per ``(name, param)``.
    """
    params = dict(module.named_parameters())
    if prunable is None:
        names = [
            f"{prefix}.weight" if prefix else "weight"
            for prefix, sub in module.named_modules()
            if isinstance(sub, _PRUNED_LAYERS)
            and isinstance(getattr(sub, "weight", None), nn.Parameter)
        ]
        # A weight shared by two layers is pruned once.
        names = list(dict.fromkeys(names))
    elif callable(prunable):
        names = [name for name, param in params.items() if prunable(name, param)]
    else:
        names = list(prunable)
        unknown = [name for name in names if name not in params]
        if unknown:
            raise ValueError(
                f"prunable names {unknown}, which are not parameters of the module; "
                f"its parameters are {list(params)}."
            )
    if not names:
        raise ValueError(
            "No parameter to prune: the module has no nn.Linear or convolution layer "
            "and prunable selected nothing."
        )
    return names


def epoch_train_loss(history) -> float | None:
    """The training loss of the last epoch that recorded one, from a skorch history.

    skorch's default ``train_loss`` callback averages the batch losses at the
    end of each epoch. Without it (``callbacks="disable"``), or for an epoch a
    callback ended part-way, the same average is taken over the batches the
    epoch recorded. ``None`` if no batch trained.
    """
    for epoch in reversed(history):
        if "train_loss" in epoch:
            return float(epoch["train_loss"])
        batches = [batch for batch in epoch.get("batches", ()) if "train_loss" in batch]
        if batches:
            sizes = [batch.get("train_batch_size", 1) for batch in batches]
            losses = [batch["train_loss"] for batch in batches]
            return float(np.average(losses, weights=sizes))
    return None


def non_finite_values(module: nn.Module, train_loss: float | None) -> str | None:
    """What is not finite after a training, or ``None`` if everything is.

    The loss alone is not enough: a net can end with NaN weights and a loss
    recorded before they broke, and the pruning that follows ranks weights.
    """
    if train_loss is not None and not math.isfinite(train_loss):
        return f"the training loss is {train_loss}"
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return f"{name} holds non-finite values"
    return None


class _InterruptWatch:
    interrupted = False


@contextlib.contextmanager
def _watching_sigint() -> Iterator[_InterruptWatch]:
    """Note whether a Ctrl-C (SIGINT) arrives, while it still interrupts as before.

    skorch swallows every ``KeyboardInterrupt`` raised during training, since
    that is how ``EarlyStopping`` ends one; the note tells a Ctrl-C apart. The
    handler installed here defers to the one it replaces (Python's, which
    raises ``KeyboardInterrupt``, or the user's) and is removed afterwards.
    Signal handlers can only be set from the main thread, and a process that
    ignores SIGINT or leaves it to the operating system is left alone.
    """
    watch = _InterruptWatch()
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield watch
        return

    def on_sigint(signum, frame):
        try:
            previous(signum, frame)
        except KeyboardInterrupt:
            watch.interrupted = True
            raise

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield watch
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class TrainingResult:
    """What one completed training leaves.

    Attributes
    ----------
    net : skorch NeuralNet
        The trained net, its masks still attached.
    rewind_point : dict or None
        The module state after ``capture_step`` optimizer steps, if asked for.
    seconds : float
        Wall time of the training.
    train_loss : float or None
        The last epoch's training loss (:func:`epoch_train_loss`).
    early_bird : dict or None
        With an early-bird rule, :meth:`EarlyBirdStop.summary`.
    masks : dict of str to bool ndarray or None
        With a mask schedule, the masks the training ended with.
    mask_updates : list of dict or None
        With a mask schedule, one record per update (:class:`UpdateMasks`).
    """

    net: NeuralNet
    rewind_point: ModuleState | None
    seconds: float
    train_loss: float | None
    early_bird: dict | None = None
    masks: dict[str, np.ndarray] | None = None
    mask_updates: list[dict] | None = None


@dataclass(frozen=True, eq=False)
class TrainingSpec:
    """Everything that decides one training: what :func:`run_training` takes and the cache hashes.

    A new kind of training is a new field here (with a default that keeps
    every other training as it is), never a second training loop.

    Attributes
    ----------
    template : skorch NeuralNet
        Unfitted, already sized for the data.
    X, y : ndarray
        Training data, as the net takes it.
    start : dict of str to ndarray
        The module state to train from (all parameters and buffers).
    masks : dict of str to bool ndarray or None
        Pruned parameters and their masks; ``None`` trains dense.
    seed : int
        Seeds the net's random draws (data order, dropout) for this training;
        the global random state is restored afterwards.
    capture_step : int, default=0
        If positive, also return the weights after that many optimizer steps.
    early_bird : EarlyBirdRule or None, default=None
        If set, draw the ticket's mask after every epoch and stop once it
        settles (the pruned parameters are the keys of ``masks``).
    mask_updates : MaskUpdates or None, default=None
        If set, the masks move during the training on this schedule
        (``masks`` are where they start).
    sample_weight : ndarray or None, default=None
        Per training row, its weight in the loss (:func:`weighted_loss`);
        None: every row alike (uniform weights are given as None, so that
        they train exactly as no weights do).
    """

    template: NeuralNet
    X: np.ndarray
    y: np.ndarray
    start: Mapping[str, np.ndarray]
    masks: Mapping[str, np.ndarray] | None
    seed: int
    capture_step: int = 0
    early_bird: EarlyBirdRule | None = None
    mask_updates: MaskUpdates | None = None
    sample_weight: np.ndarray | None = None


def training_net(spec: TrainingSpec) -> NeuralNet:
    """The unfitted net that trains ``spec``: its template with skticket's callbacks.

    The masks, rewind-point and early-bird callbacks are added to the net's
    own; the optimizer runs on torch's fastest kernels for it
    (:func:`optimizer_implementation`), and skorch's default callbacks that
    would do nothing are left out (:func:`_idle_callbacks`). A restored
    round (the ``memory`` cache) is rebuilt through here too, so it is
    configured exactly as a trained one.
    """
    extra = []
    if spec.masks is not None:
        extra.append((MASK_CALLBACK, ApplyMasks(spec.masks) if spec.mask_updates is None
                      else UpdateMasks(spec.masks, spec.mask_updates)))
    if spec.capture_step > 0:
        extra.append((_CAPTURE_CALLBACK, CaptureRewindPoint(spec.capture_step)))
    if spec.early_bird is not None:
        extra.append((_EARLY_BIRD_CALLBACK, EarlyBirdStop(spec.early_bird, list(spec.masks))))
    template = spec.template
    return with_callbacks(template, extra, **optimizer_implementation(template),
                          **_idle_callbacks(template, spec.sample_weight is not None))


def run_training(spec: TrainingSpec) -> TrainingResult:
    """Train a fresh clone of ``spec.template`` from ``spec.start`` with ``spec.masks`` held.

    A training either completes or raises: what it returns is always a
    finished, finite training, safe to keep and to store.

    Raises
    ------
    TrainingInterrupted
        A Ctrl-C arrived during the training (a ``KeyboardInterrupt`` raised by
        a callback to end the training early is an ordinary end).
    TrainingDivergedError
        The training loss or the trained weights are not finite.
    """
    net = training_net(spec)
    weighted = spec.sample_weight is not None
    # The held-out rows of a net's train_split are read as the training rows are.
    prefixes = ("iterator_train",) + (("iterator_valid",) if net.train_split else ())
    fetch_batches = all(_fetches_batches(net, prefix) for prefix in prefixes)
    if (weighted or issparse(spec.X)) and not fetch_batches:
        raise TypeError(
            f"{'sample_weight' if weighted else 'A sparse X'} needs the net's own data "
            "pipeline (skorch's Dataset and DataLoader, with no iterator_train__* or "
            "iterator_valid__* but batch_size, shuffle and drop_last); this net uses "
            f"dataset={net.dataset!r}, iterator_train={net.iterator_train!r}, "
            f"iterator_valid={net.iterator_valid!r}.")
    tic = time.perf_counter()
    with (seeded(spec.seed, net.device), _watching_sigint() as sigint,
          _weighted_training(net, weighted)):
        net.initialize()
        load_state(net.module_, spec.start)
        loader = (functools.partial(_batch_fetching_loader, sample_weight=spec.sample_weight)
                  if weighted else _batch_fetching_loader)
        if fetch_batches:
            for prefix in prefixes:
                setattr(net, prefix, loader)
        try:
            net.partial_fit(spec.X, spec.y)
        finally:
            if fetch_batches:
                # Only this training uses it: the net handed back is configured
                # as the user configured it.
                for prefix in prefixes:
                    setattr(net, prefix, DataLoader)
    seconds = time.perf_counter() - tic
    if sigint.interrupted:
        raise TrainingInterrupted(f"Ctrl-C during the training, after {len(net.history)} "
                                  "epoch(s)")
    train_loss = epoch_train_loss(net.history)
    problem = non_finite_values(net.module_, train_loss)
    if problem is not None:
        raise TrainingDivergedError(problem)
    callbacks = dict(net.callbacks_)
    rewind_point = callbacks[_CAPTURE_CALLBACK].state_ if spec.capture_step > 0 else None
    early_bird = (callbacks[_EARLY_BIRD_CALLBACK].summary(len(net.history))
                  if spec.early_bird is not None else None)
    masks = mask_updates = None
    if spec.mask_updates is not None:
        moving = callbacks[MASK_CALLBACK]
        masks, mask_updates = moving.masks_, moving.updates_
        hold_masks(net, masks)
    return TrainingResult(net=net, rewind_point=rewind_point, seconds=seconds,
                          train_loss=train_loss, early_bird=early_bird, masks=masks,
                          mask_updates=mask_updates)


def connection_sensitivity(template: NeuralNet, start: Mapping[str, np.ndarray],
                           X: np.ndarray, y: np.ndarray, *, names: Iterable[str],
                           n_batches: int, seed: int,
                           sample_weight: np.ndarray | None = None) -> ModuleState:
    """SNIP's scores: ``|w * dL/dw|`` at ``start``, summed over ``n_batches`` mini-batches.

    Lee et al. (ICLR 2019). The loss is the net's own (its criterion, through
    skorch's ``get_loss``; with ``sample_weight``, the weighted mean of
    :func:`weighted_loss`); the batches are the net's batch size of rows drawn
    without replacement under ``seed`` (the whole data for ``batch_size=-1``).
    No optimizer step is taken: the module stays at ``start``.
    """
    names = list(names)
    net = clone(template)
    with seeded(seed, net.device):
        net.initialize()
        load_state(net.module_, start)
        net.module_.train()
        params = dict(net.module_.named_parameters())
        scores = {name: np.zeros(tuple(params[name].shape), dtype=np.float64) for name in names}
        n_rows = X.shape[0]
        batch_size = net.batch_size if 0 < net.batch_size < n_rows else n_rows
        rng = np.random.default_rng(seed)
        for _ in range(n_batches):
            rows = rng.choice(n_rows, size=batch_size, replace=False)
            net.module_.zero_grad()
            X_rows = X[rows].toarray() if issparse(X) else X[rows]
            X_batch = torch.as_tensor(X_rows, device=net.device)
            if sample_weight is None:
                loss = net.get_loss(net.infer(X_batch), y[rows], X=X_batch, training=True)
            else:
                loss = weighted_loss(net, net.infer(X_batch), y[rows],
                                     torch.as_tensor(sample_weight[rows]), X=X_batch,
                                     training=True)
            loss.backward()
            for name in names:
                saliency = (params[name].detach() * params[name].grad).abs()
                scores[name] += saliency.cpu().numpy()
    return scores


def prunable_weights(net: NeuralNet, names: Iterable[str]) -> ModuleState:
    """Current values of the named parameters of a net's module, as numpy copies."""
    params = dict(net.module_.named_parameters())
    return {name: params[name].detach().cpu().numpy().copy() for name in names}
