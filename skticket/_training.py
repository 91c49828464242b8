"""One training: one skorch net, masks enforced by a callback.

Every search (the dense round, each ticket, the random baselines, an explicit
``prune``) trains through :func:`run_training`; nothing else runs a training
loop. What a search needs from inside a training comes as its training
hooks (:class:`~skticket.TrainingHook`): each adds a callback and returns a
summary, and nothing here knows which hook it runs. The net is a fresh
clone of the sized template, built through skorch's own ``initialize()`` (so
optimizer state and LR schedules start fresh every round), then loaded with
the start weights by value.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.base import clone
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochScoring
from skorch.dataset import Dataset
from torch import nn
from torch.utils.data import DataLoader, Subset

from ._compat import dataloader_order
from ._pruning import kaiming_uniform_std
from ._rng import seeded
from .exceptions import TrainingDivergedError, TrainingInterrupted

if TYPE_CHECKING:  # _hooks builds on this module: hooks are only called here
    from ._hooks import TrainingHook

#: A module's parameters and buffers by name, as numpy arrays: theta_0, a rewind
#: point, a ticket's start weights.
ModuleState = dict[str, np.ndarray]

#: The name of the masks callback in a trained net's ``callbacks_``.
MASK_CALLBACK = "skticket_masks"


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
    decay and Adam's running averages move a zero-gradient weight anyway. A
    training hook may make it hold other masks from then on (:meth:`hold`).

    Parameters
    ----------
    masks : dict of str to bool ndarray
        Per parameter name in the net's module, ``True`` where the weight survives.

    Attributes
    ----------
    held_ : dict of str to bool ndarray
        The masks held now (after training: those it ended with).
    moved_ : bool
        Whether :meth:`hold` replaced ``masks`` during the training.
    """

    def __init__(self, masks: Mapping[str, np.ndarray]) -> None:
        self.masks = masks

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        self.moved_ = False
        self._hold(net, self.masks)

    def hold(self, net, masks: Mapping[str, np.ndarray]) -> None:
        """Hold ``masks`` from now on, applied at once: how a training hook moves the
        masks during a training (the training's result then has these masks)."""
        self.moved_ = True
        self._hold(net, masks)

    def _hold(self, net, masks: Mapping[str, np.ndarray]) -> None:
        params = dict(net.module_.named_parameters())
        # Each step costs one in-place multiply per pruned layer, nothing else:
        # the masks live beside their parameters in their dtype (a bool mask
        # would make every multiply cast it: over 4x slower), and the
        # parameters are held as detached views of the same storage, so no
        # autograd context is entered per step. A mask that prunes nothing (the
        # dense round, a layer kept whole) is left out: a multiply and a
        # weight-sized tensor for nothing.
        self.held_ = masks
        self.pairs_ = [
            (params[name].detach(),
             torch.as_tensor(mask, dtype=params[name].dtype, device=params[name].device))
            for name, mask in masks.items()
            if not np.all(mask)
        ]
        self.apply()

    def on_batch_end(self, net, batch=None, training=None, **kwargs) -> None:
        if training:
            self.apply()

    def apply(self) -> None:
        for param, mask in self.pairs_:
            param.mul_(mask)


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


class BatchDataset:
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


class Batches:
    """The batches of a DataLoader over ``rows``, drawn as it draws them: the same
    permutation from the same draws (:func:`~skticket._compat.dataloader_order`),
    each batch one slice of it."""

    def __init__(self, rows: BatchDataset, batch_size: int, shuffle: bool,
                 drop_last: bool) -> None:
        self.rows, self.batch_size = rows, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last

    def __len__(self) -> int:
        n, size = len(self.rows), self.batch_size
        return n // size if self.drop_last else -(-n // size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = dataloader_order(len(self.rows), self.shuffle)
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


def batch_fetching_loader(dataset, batch_size: int = 1, shuffle: bool = False,
                           drop_last: bool = False,
                           sample_weight: np.ndarray | None = None) -> DataLoader | Batches:
    """skorch's training DataLoader, fetching each batch with one indexing.

    The default DataLoader reads a skorch ``Dataset`` one row at a time and
    stacks the rows: a quarter of the training time of a 30-256-256-2 MLP at
    batch 128, an eighth of LeNet-300-100's at batch 60, on a 2-core CPU
    (benchmarks/bench_training.py); even fed whole batches, its iterator and
    conversions cost a sixth of a small net's step (benchmarks/bench_step.py).
    :class:`Batches` gives the same batches, in the same order, from the
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
    return Batches(BatchDataset(source.X, source.y, rows, sample_weight), batch_size, shuffle,
                    drop_last)


def fetches_batches(net: NeuralNet, prefix: str = "iterator_train") -> bool:
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


def initializer_stds(module: nn.Module, names: Iterable[str], state: Mapping[str, np.ndarray],
                     *, default_init: bool) -> dict[str, float]:
    """Per pruned parameter, the standard deviation of the initializer that drew it.

    With ``default_init`` (the module's layers keep torch's own
    initialization, as :class:`~skticket.MLP`'s do), the weight of an
    ``nn.Linear`` or a convolution was drawn by ``kaiming_uniform_(a=sqrt(5))``:
    U(-b, b) with ``b = 1 / sqrt(fan_in)``, whose standard deviation is ``b /
    sqrt(3)`` (:func:`~skticket._pruning.kaiming_uniform_std`). Any other
    parameter, and every parameter of a module of one's own (whose
    initialization the package cannot know), gets the standard deviation of
    its values in ``state`` (theta_0).
    """
    layers = dict(module.named_modules())
    stds = {}
    for name in names:
        owner, _, attribute = name.rpartition(".")
        if (default_init and attribute == "weight"
                and isinstance(layers.get(owner), _PRUNED_LAYERS)):
            stds[name] = kaiming_uniform_std(tuple(np.shape(state[name])))
        else:
            stds[name] = float(np.std(state[name], dtype=np.float64))
    return stds


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
def watching_sigint() -> Iterator[_InterruptWatch]:
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
        The trained net, its masks callback still attached (holding the masks
        the training ended with); the hooks' callbacks are not kept.
    seconds : float
        Wall time of the training.
    train_loss : float or None
        The last epoch's training loss (:func:`epoch_train_loss`).
    hook_summaries : tuple
        One per hook of the spec, in order: :meth:`TrainingHook.summary
        <skticket.TrainingHook.summary>` of its callback after the training.
    masks : dict of str to bool ndarray or None
        The masks the training ended with, if a hook moved them; None: the
        spec's masks, held throughout.
    """

    net: NeuralNet
    seconds: float
    train_loss: float | None
    hook_summaries: tuple = ()
    masks: dict[str, np.ndarray] | None = None


@dataclass(frozen=True, eq=False)
class TrainingSpec:
    """Everything that decides one training: what :func:`run_training` takes and the cache hashes.

    What a search needs from inside a training is a hook, never a field
    here: a new field is something every training has (with a default that
    keeps every other training as it is). There is no second training loop.

    Attributes
    ----------
    template : skorch NeuralNet
        Unfitted, already sized for the data.
    X, y : ndarray
        Training data, as the net takes it.
    start : dict of str to ndarray
        The module state to train from (all parameters and buffers).
    masks : dict of str to bool ndarray or None
        Pruned parameters and their masks (where they start, if a hook moves
        them); ``None`` trains dense.
    seed : int
        Seeds the net's random draws (data order, dropout) for this training;
        the global random state is restored afterwards.
    hooks : tuple of TrainingHook, default=()
        Each adds its callback to the training, and its summary to the
        result (:class:`~skticket.TrainingHook`); keyed by value.
    sample_weight : ndarray or None, default=None
        Per training row, its weight in the loss (:func:`weighted_loss`);
        None: every row alike (uniform weights are given as None, so that
        they train exactly as no weights do).
    optimizer_state : dict or None, default=None
        The optimizer's state (``optimizer.state_dict()``) to go on from, as
        ``partial_fit`` carries it from one call to the next; loaded by value.
        None: a fresh optimizer, as every round of a search has (a round must
        not inherit another's momentum).
    """

    template: NeuralNet
    X: np.ndarray
    y: np.ndarray
    start: Mapping[str, np.ndarray]
    masks: Mapping[str, np.ndarray] | None
    seed: int
    hooks: tuple[TrainingHook, ...] = ()
    sample_weight: np.ndarray | None = None
    optimizer_state: Mapping | None = None


def _hook_callback_names(spec: TrainingSpec) -> list[str]:
    """The names of the hooks' callbacks in a training's net, in the hooks' order."""
    return [f"skticket_hook_{position}" for position in range(len(spec.hooks))]


def training_net(spec: TrainingSpec) -> NeuralNet:
    """The unfitted net that trains ``spec``: its template with skticket's callbacks.

    The masks callback and each hook's callback, in the hooks' order, are
    added to the net's own; the optimizer runs on torch's fastest kernels for it
    (:func:`optimizer_implementation`), and skorch's default callbacks that
    would do nothing are left out (:func:`_idle_callbacks`). A restored
    round (the ``memory`` cache) is rebuilt through here too, so it is
    configured exactly as a trained one.
    """
    extra = []
    if spec.masks is not None:
        extra.append((MASK_CALLBACK, ApplyMasks(spec.masks)))
    extra += [(name, hook.callback())
              for name, hook in zip(_hook_callback_names(spec), spec.hooks, strict=True)]
    template = spec.template
    return with_callbacks(template, extra, **optimizer_implementation(template),
                          **_idle_callbacks(template, spec.sample_weight is not None))


def handed_back(net: NeuralNet, spec: TrainingSpec,
                masks: Mapping[str, np.ndarray] | None) -> NeuralNet:
    """``net``, trained for ``spec``, as a training hands it back: without the hooks'
    callbacks (they belong to the one training), and holding ``masks`` fixed from
    now on if a hook moved them (so the net trains on, by ``partial_fit`` or a
    clone's ``fit``, with the masks it ended with)."""
    dropped = set(_hook_callback_names(spec))
    if not dropped and masks is None:
        return net
    held = None if masks is None else ApplyMasks(
        {name: np.array(mask, dtype=bool) for name, mask in masks.items()})

    def handed(callbacks):
        kept = [entry for entry in callbacks
                if not (isinstance(entry, tuple) and entry[0] in dropped)]
        if held is None:
            return kept
        return [(MASK_CALLBACK, held) if isinstance(entry, tuple) and entry[0] == MASK_CALLBACK
                else entry for entry in kept]

    net.callbacks = handed(net.callbacks)
    if hasattr(net, "callbacks_"):
        net.callbacks_ = handed(net.callbacks_)
    return net


def run_training(spec: TrainingSpec) -> TrainingResult:
    """Train a fresh clone of ``spec.template`` from ``spec.start`` with ``spec.masks`` held.

    A stack of one (:func:`~skticket._stacking.train_members`): a solo
    training runs the loop every stacked member runs, or, where that loop
    cannot run it (training hooks, callbacks of the user's, an optimizer whose
    step is not elementwise, ...), skorch's own loop (:func:`train_alone`).
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
    from ._stacking import train_members  # it builds on this module

    result, = train_members([spec])
    if isinstance(result, TrainingDivergedError):
        raise result
    return result


def train_alone(spec: TrainingSpec) -> TrainingResult:
    """:func:`run_training` of ``spec`` through skorch's own fit loop (its ``partial_fit``,
    every callback of the net and of the spec's hooks called as skorch calls them).

    Raises as :func:`run_training` raises.
    """
    net = training_net(spec)
    weighted = spec.sample_weight is not None
    # The held-out rows of a net's train_split are read as the training rows are.
    prefixes = ("iterator_train",) + (("iterator_valid",) if net.train_split else ())
    fetch_batches = all(fetches_batches(net, prefix) for prefix in prefixes)
    if (weighted or issparse(spec.X)) and not fetch_batches:
        raise TypeError(
            f"{'sample_weight' if weighted else 'A sparse X'} needs the net's own data "
            "pipeline (skorch's Dataset and DataLoader, with no iterator_train__* or "
            "iterator_valid__* but batch_size, shuffle and drop_last); this net uses "
            f"dataset={net.dataset!r}, iterator_train={net.iterator_train!r}, "
            f"iterator_valid={net.iterator_valid!r}.")
    tic = time.perf_counter()
    with (seeded(spec.seed, net.device), watching_sigint() as sigint,
          _weighted_training(net, weighted)):
        net.initialize()
        load_state(net.module_, spec.start)
        if spec.optimizer_state is not None:
            # A copy: torch's load_state_dict keeps the given tensors, and the training
            # would update the caller's state in place.
            net.optimizer_.load_state_dict(copy.deepcopy(spec.optimizer_state))
        loader = (functools.partial(batch_fetching_loader, sample_weight=spec.sample_weight)
                  if weighted else batch_fetching_loader)
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
    hook_summaries = tuple(hook.summary(callbacks[name])
                           for name, hook in zip(_hook_callback_names(spec), spec.hooks,
                                                 strict=True))
    holder = callbacks.get(MASK_CALLBACK)
    masks = holder.held_ if holder is not None and holder.moved_ else None
    return TrainingResult(net=handed_back(net, spec, masks), seconds=seconds,
                          train_loss=train_loss, hook_summaries=hook_summaries, masks=masks)


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
