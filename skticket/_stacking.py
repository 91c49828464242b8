"""Many trainings as one: k members of one net shape trained as one stacked module.

Independent trainings of the same net (the folds of a cross-validated path,
the repeats and baselines of a ticket curve, several seeds) differ only in
their rows, start weights, masks, data order and seed. A small net's step is
mostly per-operation overhead, not arithmetic, so :func:`train_members` runs
them as *members* of one stack: every parameter gets a leading member
dimension, one forward (``torch.baddbmm`` for the default nets'
:class:`~skticket.MLP`, ``torch.func.vmap`` over ``functional_call`` for
another module), one backward and one optimizer call per step pay that
overhead once for all of them.

Each member trains exactly as it would alone, by construction rather than by
tuning:

- its batches are its own rows in its own order, drawn from a generator that
  holds the state the global one would hold in its training alone (the net
  initialised under its seed, then skorch's loader draws,
  :func:`~skticket._compat.dataloader_order`); a member with fewer rows in a
  step is padded with copies of one of its rows at weight zero, and each
  member's loss is its own (weighted) mean over its real rows, so no member's
  gradient reaches another's parameters;
- the optimizer step is torch's own functional ``adam``/``sgd`` (the
  kernel the solo training runs: fused, foreach or single-tensor, as the
  net's optimizer was built), called on each member's slice of the stacked
  tensors with that member's own step count and momentum buffers. torch's
  optimizers keep one step count per parameter tensor, so a stacked tensor
  could not skip a step for one member: here a member without a batch in a
  step, or one that has stopped, is simply left out of the call, and its
  parameters and optimizer state stay exactly as they were;
- its masks are multiplied in after every step, its convergence rule
  (skorch's ``EarlyStopping`` or the default nets' ``"converged"``) is its
  own: a member that stops keeps its weights from then (or its best epoch's),
  however long the others train; a member whose values are not finite is
  reported as its solo training would report it, and the others go on.

What cannot be stacked trains alone, through skorch's loop
(:func:`~skticket._training.train_alone`; :func:`why_not_stacked` says why):
training hooks and callbacks beyond the loss records and the convergence
rule (they need a net of their own), optimizers whose step is not
elementwise, a net that changes skorch's step or loss, a module with buffers
or random draws, or data outside the net's own pipeline.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import joblib
import numpy as np
import scipy.sparse as sp
import torch
from skorch import NeuralNet, NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import EarlyStopping, EpochTimer, PassthroughScoring
from skorch.history import History
from torch import nn
from torch.optim import adam as torch_adam
from torch.optim import adamw as torch_adamw
from torch.optim import sgd as torch_sgd

from ._compat import dataloader_order
from ._mlp import MLP
from ._nets import Converged
from ._rng import seeded
from ._training import (
    MASK_CALLBACK,
    ApplyMasks,
    Batches,
    TrainingResult,
    TrainingSpec,
    batch_fetching_loader,
    epoch_train_loss,
    fetches_batches,
    handed_back,
    load_state,
    non_finite_values,
    train_alone,
    training_net,
    watching_sigint,
)
from .exceptions import TrainingDivergedError, TrainingInterrupted

__all__ = ["train_members", "why_not_stacked"]

logger = logging.getLogger("skticket")

#: The callbacks a stacked member can do without a net of its own: skorch's
#: epoch timer and loss records, and a convergence rule (re-implemented per
#: member below). Anything else sees one net per training.
_STACKABLE_CALLBACKS = (EpochTimer, PassthroughScoring, EarlyStopping, Converged)
#: The losses that give one loss per sample (and per output) with
#: ``reduction="none"``, and whose mean is the plain mean of those: each
#: member's loss is then its own mean, however the stack is padded.
_PER_SAMPLE_LOSSES = (nn.NLLLoss, nn.CrossEntropyLoss, nn.MSELoss, nn.L1Loss,
                      nn.SmoothL1Loss, nn.HuberLoss, nn.BCELoss, nn.BCEWithLogitsLoss)
#: The net classes whose step, loss and data handling are skorch's own (a
#: subclass that overrides one of these methods trains alone).
_OWN_METHODS = ("get_loss", "infer", "train_step", "train_step_single", "validation_step",
                "get_split_datasets", "get_dataset", "fit_loop", "run_single_epoch",
                "on_batch_begin", "on_batch_end", "on_epoch_begin", "on_epoch_end")
_SKORCH_NETS = (NeuralNet, NeuralNetClassifier, NeuralNetRegressor)
#: The optimizers whose step is elementwise, by the functional torch runs them on.
_ELEMENTWISE_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)
#: torch's dropout layers (their base class is private): their draws come from the global
#: generator, so a member's would not be its solo training's.
_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
             nn.FeatureAlphaDropout)


def why_not_stacked(net: NeuralNet, spec: TrainingSpec) -> str | None:
    """Why the training of ``spec`` cannot be a member of a stack (``None``: it can).

    ``net`` is its training net, initialised (:func:`training_net`).
    """
    if spec.hooks:
        return "its training hooks need a net of their own"
    if spec.optimizer_state is not None:
        # partial_fit's calls carry the optimizer's state from one call to the next:
        # skorch's optimizer loads it whole, a stack's per-member state would not.
        return "it goes on from an optimizer state of its own (partial_fit)"
    if net.verbose:
        return "a verbose net prints its own epochs"
    for name in _OWN_METHODS:
        owner = next(klass for klass in type(net).__mro__ if name in vars(klass))
        if owner not in _SKORCH_NETS and owner.__module__.partition(".")[0] != "skticket":
            return f"{type(net).__name__} changes skorch's {name}"
    rules = 0
    for name, callback in net.callbacks_:
        if name == MASK_CALLBACK:
            continue
        # skorch's loss records under their own names: any other score needs the net.
        if type(callback) not in _STACKABLE_CALLBACKS or (
                isinstance(callback, PassthroughScoring)
                and name not in ("train_loss", "valid_loss")):
            return f"its callback {name!r} ({type(callback).__name__}) needs a net of its own"
        rules += isinstance(callback, EarlyStopping)
        if rules > 1:
            return "it has more than one stopping rule"
        if isinstance(callback, EarlyStopping) and (
                callback.sink is not print or callback.threshold_mode not in ("abs", "rel")
                or callback.monitor not in ("auto", "train_loss", "valid_loss")):
            return f"its callback {name!r} is configured beyond a stack's convergence rule"
    optimizer = net.optimizer_
    if type(optimizer) not in _ELEMENTWISE_OPTIMIZERS:
        return (f"its optimizer {type(optimizer).__name__} is not one whose step is "
                "elementwise (Adam, AdamW, SGD)")
    if len(optimizer.param_groups) != 1:
        return "its optimizer has several parameter groups"
    group = optimizer.param_groups[0]
    if group.get("differentiable") or group.get("capturable"):
        return "its optimizer is differentiable or capturable"
    criterion = net.criterion_
    if type(criterion) not in _PER_SAMPLE_LOSSES or any(
            getattr(criterion, attr, None) is not None for attr in ("weight", "pos_weight")):
        return (f"its criterion {type(criterion).__name__} does not give a plain loss per "
                "sample")
    if getattr(criterion, "reduction", None) != "mean":
        return "its criterion does not average over the batch"
    ignored = getattr(criterion, "ignore_index", None)
    if ignored is not None and isinstance(spec.y, np.ndarray) and bool((spec.y == ignored).any()):
        # Its mean leaves out the rows it ignores; a member's mean of the losses per row
        # would count them (at 0).
        return f"its criterion ignores the rows labelled {ignored} (ignore_index)"
    prefixes = ("iterator_train",) + (("iterator_valid",) if net.train_split else ())
    if not all(fetches_batches(net, prefix) for prefix in prefixes):
        return "its data goes through its own dataset or loader"
    if not ((isinstance(spec.X, np.ndarray) or sp.issparse(spec.X))
            and isinstance(spec.y, np.ndarray)):
        return "its data are not numpy arrays"
    module = net.module_
    if next(module.buffers(), None) is not None:
        return f"its module {type(module).__name__} has buffers (running statistics)"
    if any(isinstance(sub, _DROPOUTS) for sub in module.modules()):
        return f"its module {type(module).__name__} draws random numbers (dropout)"
    return None


def _stack_key(spec: TrainingSpec) -> str:
    """What members of one stack share: the net's class and settings, and the shapes.

    Read from the template: a training net holds the member's own masks in its
    masks callback.
    """
    net = spec.template
    params = {name: value for name, value in net.get_params(deep=False).items()
              if name != "verbose" and not name.startswith("_")}
    shapes = {name: (tuple(value.shape), str(value.dtype)) for name, value in spec.start.items()}
    data = (str(spec.X.dtype), spec.X.shape[1:], str(spec.y.dtype), spec.y.shape[1:],
            sp.issparse(spec.X), spec.sample_weight is None)
    try:
        return joblib.hash((type(net), params, shapes, data, str(torch.get_default_dtype())))
    except Exception:  # a setting that cannot be hashed (pickled): a stack of its own
        return f"unhashable {id(spec)}"


# --- the stacked module -----------------------------------------------------------------


def _mlp_forward(module: MLP, names: list[str]) -> Callable | None:
    """The stacked forward of an :class:`~skticket.MLP`: ``baddbmm`` per linear layer,
    the other layers (parameter-free activations) applied as they are."""
    if type(module) is not MLP:
        return None
    plan = []
    for prefix, layer in module.named_children():
        if isinstance(layer, nn.Linear):
            weight = names.index(f"{prefix}.weight")
            bias = names.index(f"{prefix}.bias") if layer.bias is not None else None
            plan.append((weight, bias, None))
        elif next(layer.parameters(), None) is None:
            plan.append((None, None, layer))
        else:
            return None
    dtype = module.output.weight.dtype

    def forward(params: list[torch.Tensor], X: torch.Tensor) -> torch.Tensor:
        if len(X) == 1:
            # A stack of one: the solo training's own matrix products (addmm), on views
            # (squeeze's backward is a view too: no copy of a gradient). On a CPU
            # torch's batched product is slower than one product of the same shapes
            # (LeNet-300-100: 1.2x its epoch).
            return solo_forward([param.squeeze(0) for param in params],
                                X.squeeze(0)).unsqueeze(0)
        hidden = X.to(dtype)
        for weight, bias, layer in plan:
            if layer is not None:
                hidden = layer(hidden)
            elif bias is None:
                hidden = torch.bmm(hidden, params[weight].transpose(1, 2))
            else:
                hidden = torch.baddbmm(params[bias].unsqueeze(1), hidden,
                                       params[weight].transpose(1, 2))
        return hidden

    def solo_forward(params: list[torch.Tensor], X: torch.Tensor) -> torch.Tensor:
        hidden = X.to(dtype)
        for weight, bias, layer in plan:
            if layer is not None:
                hidden = layer(hidden)
            else:
                hidden = nn.functional.linear(hidden, params[weight],
                                              None if bias is None else params[bias])
        return hidden

    return forward


def _vmapped_forward(module: nn.Module, names: list[str]) -> Callable:
    """Any other module: ``functional_call`` under ``vmap`` over the member dimension
    (random draws are refused: they could not be the solo training's)."""

    def member(params: tuple[torch.Tensor, ...], X: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(module, dict(zip(names, params, strict=True)), (X,))

    stacked = torch.func.vmap(member, in_dims=(0, 0), randomness="error")
    return lambda params, X: stacked(tuple(params), X)


# --- the stacked optimizer --------------------------------------------------------------


class _MemberOptimizer:
    """torch's own step for the optimizer of the members' nets, member by member.

    Holds each member's optimizer state as slices of stacked tensors (or, for
    SGD's momentum, the buffers torch creates at a member's first step) and a
    step count per member and parameter, as torch keeps one per parameter.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, params: list[torch.Tensor],
                 k: int) -> None:
        group = dict(optimizer.param_groups[0])
        group.pop("params")
        self._views(params)
        self.sgd = isinstance(optimizer, torch.optim.SGD)
        if self.sgd:
            self.functional = torch_sgd.sgd
            self.buffers: list[list[torch.Tensor | None]] = [[None] * len(params)
                                                             for _ in range(k)]
            self.started = [False] * k
        else:
            uses_adamw = (isinstance(optimizer, torch.optim.AdamW)
                          and "decoupled_weight_decay" not in group)
            self.functional = torch_adamw.adamw if uses_adamw else torch_adam.adam
            group["beta1"], group["beta2"] = group.pop("betas")
            on_device = bool(group.get("fused") or group.get("capturable"))
            # The dtype and device torch's Adam gives a parameter's step count.
            step_dtype = torch.float32 if group.get("fused") else torch.get_default_dtype()
            # exp_avg, exp_avg_sq and (amsgrad) max_exp_avg_sq, stacked as the parameters.
            self.moments = [[torch.zeros_like(param) for param in params]
                            for _ in range(3 if group["amsgrad"] else 2)]
            self.steps = [[torch.zeros((), dtype=step_dtype,
                                       device=param.device if on_device else "cpu")
                           for param in params] for _ in range(k)]
            self._state_views()
        takes = inspect.signature(self.functional).parameters
        self.settings = {name: value for name, value in group.items() if name in takes}
        if "has_complex" in takes:
            self.settings["has_complex"] = False

    def _views(self, params: list[torch.Tensor]) -> None:
        self.stacked = params
        k = len(params[0])
        self.params = [[param[m] for param in params] for m in range(k)]
        self.grads = [[param.grad[m] for param in params] for m in range(k)]

    def _state_views(self) -> None:
        k = len(self.steps)
        moments = [[[moment[m] for moment in kind] for kind in self.moments] for m in range(k)]
        self.state = [(moments[m][0], moments[m][1],
                       moments[m][2] if len(self.moments) == 3 else [], self.steps[m])
                      for m in range(k)]

    def keep(self, kept: list[int], params: list[torch.Tensor]) -> None:
        """Go on with the members ``kept`` (positions in the stack), whose parameters are now
        ``params``: their optimizer state moves with them, unchanged."""
        self._views(params)
        if self.sgd:
            self.buffers = [self.buffers[m] for m in kept]
            self.started = [self.started[m] for m in kept]
            return
        index = torch.as_tensor(kept, device=params[0].device)
        self.moments = [[moment.index_select(0, index) for moment in kind]
                        for kind in self.moments]
        self.steps = [self.steps[m] for m in kept]
        self._state_views()

    def state_of(self, m: int) -> list[dict[str, torch.Tensor]]:
        """Member ``m``'s optimizer state per parameter, as torch's optimizer keeps it
        (copies): what its net's optimizer holds after its training alone."""
        if self.sgd:
            return [{} if buffer is None else {"momentum_buffer": buffer.clone()}
                    for buffer in self.buffers[m]]
        names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")[:len(self.moments)]
        return [{"step": step.clone(),
                 **{name: kind[i][m].clone()
                    for name, kind in zip(names, self.moments, strict=True)}}
                for i, step in enumerate(self.steps[m])]

    def step(self, members: Sequence[int]) -> None:
        """One step of ``members``; every other member is left exactly as it is."""
        if self.sgd:
            # torch's fused SGD creates every momentum buffer at a first step, or none:
            # members at their first step go in a call of their own.
            firsts = [m for m in members if not self.started[m]]
            for chosen in (firsts, [m for m in members if self.started[m]]):
                if not chosen:
                    continue
                buffers = [buffer for m in chosen for buffer in self.buffers[m]]
                self.functional([p for m in chosen for p in self.params[m]],
                                [g for m in chosen for g in self.grads[m]], buffers,
                                grad_scale=None, found_inf=None, **self.settings)
                per = len(self.params[0])
                for position, m in enumerate(chosen):
                    self.buffers[m] = buffers[position * per:(position + 1) * per]
                    self.started[m] = True
            return
        self.functional(
            [p for m in members for p in self.params[m]],
            [g for m in members for g in self.grads[m]],
            *([t for m in members for t in self.state[m][part]] for part in range(4)),
            grad_scale=None, found_inf=None, **self.settings)


# --- one member --------------------------------------------------------------------------


@dataclass(eq=False)
class _Member:
    """One training of the stack: its net, batches, generator, records and rule."""

    position: int
    spec: TrainingSpec
    net: NeuralNet
    train: Batches
    valid: Batches | None
    generator: torch.Generator
    history: list = field(default_factory=list)
    stopped: bool = False
    # The convergence rule (skorch's EarlyStopping), None: every epoch trains.
    rule: EarlyStopping | None = None
    monitor: str = "train_loss"
    load_best: bool = False
    misses: int = 0
    threshold: float = np.inf
    best_epoch: int = 0
    best: list[torch.Tensor] | None = None
    best_scores: dict = field(default_factory=dict)
    data_offset: int = 0
    weight_offset: int = 0

    def improved(self, score: float) -> bool:
        rule = self.rule
        better = (score < self.threshold) if rule.lower_is_better else (score > self.threshold)
        if better:
            change = rule.threshold * score if rule.threshold_mode == "rel" else rule.threshold
            self.threshold = score - change if rule.lower_is_better else score + change
        return better


def _prepared(spec: TrainingSpec) -> tuple[NeuralNet, Batches | None, Batches | None,
                                           torch.Generator]:
    """A member's net, initialised as its solo training initialises it, and its batches.

    The net is built and initialised under the member's seed, its data split
    by its own ``train_split``, and the generator left where the global one
    would be when its solo training draws its first batch order.
    """
    net = training_net(spec)
    weighted = spec.sample_weight is not None
    prefixes = ("iterator_train",) + (("iterator_valid",) if net.train_split else ())
    with seeded(spec.seed, net.device):
        net.initialize()
        load_state(net.module_, spec.start)
        train, valid = None, None
        if all(fetches_batches(net, prefix) for prefix in prefixes):
            dataset_train, dataset_valid = net.get_split_datasets(spec.X, spec.y)
            try:
                for prefix in prefixes:
                    setattr(net, prefix, (lambda dataset, **kw: batch_fetching_loader(
                        dataset, sample_weight=spec.sample_weight, **kw)) if weighted
                        else batch_fetching_loader)
                train = net.get_iterator(dataset_train, training=True)
                if dataset_valid is not None:
                    valid = net.get_iterator(dataset_valid, training=False)
            finally:
                for prefix in prefixes:
                    setattr(net, prefix, torch.utils.data.DataLoader)
        generator = torch.Generator()
        generator.set_state(torch.get_rng_state())
    return net, train, valid, generator


# --- the loop ------------------------------------------------------------------------------


@dataclass
class _Step:
    """One optimizer step: the data rows ``(j, width)`` of the members it computes (the
    first j), the rows' weights (zero for padding; None for a solo training without
    weights), the members with a batch in it, their batch sizes, and whether each of
    the j has ``width`` real rows."""

    data: torch.Tensor
    weight_rows: torch.Tensor | None
    active: list[int]
    sizes: dict[int, int]
    full: bool


class _Stack:
    """k members' parameters, data and optimizer state, stacked on a leading dimension."""

    def __init__(self, members: list[_Member]) -> None:
        self.members = members
        lead = members[0].net
        self.device = torch.device(lead.device or "cpu")
        module = lead.module_
        self.names = [name for name, _ in module.named_parameters()]
        modules = [dict(member.net.module_.named_parameters()) for member in members]
        self._hold([torch.stack([params[name].detach() for params in modules])
                    for name in self.names])
        forward = _mlp_forward(module, self.names)
        self.native = forward is not None
        self.forward = forward or _vmapped_forward(module, self.names)
        self.module = module
        self.optimizer = _MemberOptimizer(lead.optimizer_, self.params, len(members))
        self.masks = self._masks()
        self.criterion = lead.criterion_
        self.get_loss = lead.get_loss
        self._plans: dict = {}
        self._data()
        # A stack of one without weights takes the criterion's own mean, as its solo
        # training does (the same loss and gradient to the last bit); members of a
        # larger stack, or weighted, each take their own mean of the losses per row.
        self.per_row = len(members) > 1 or self.weighted

    def _hold(self, values: list[torch.Tensor]) -> None:
        self.params = [value.requires_grad_(True) for value in values]
        for param in self.params:
            # Kept, and zeroed in place: the optimizer holds each member's slice of it.
            param.grad = torch.zeros_like(param)

    def keep(self, kept: list[int]) -> None:
        """Go on with the members at ``kept`` alone: a member that stopped costs the
        stack nothing more (its state stays where :meth:`member_state` read it)."""
        index = torch.as_tensor(kept, device=self.params[0].device)
        positions = {id(param): i for i, param in enumerate(self.params)}
        masked = [(positions[id(param)], mask.index_select(0, index))
                  for param, mask in self.mask_of]
        self._hold([param.detach().index_select(0, index) for param in self.params])
        self.optimizer.keep(kept, self.params)
        self.mask_of = [(self.params[i], mask) for i, mask in masked]
        self.masks = [(param.detach(), mask) for param, mask in self.mask_of]
        self.members = [self.members[m] for m in kept]

    def _masks(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        masked = {name for member in self.members for name in (member.spec.masks or {})}
        pairs = []
        for index, name in enumerate(self.names):
            if name not in masked:
                continue
            param = self.params[index]
            mask = torch.ones_like(param)
            for m, member in enumerate(self.members):
                if name in (member.spec.masks or {}):
                    mask[m] = torch.as_tensor(member.spec.masks[name], dtype=param.dtype)
            if not bool((mask == 1).all()):
                pairs.append((param, mask))
        self.mask_of = pairs
        return [(param.detach(), mask) for param, mask in pairs]

    def _data(self) -> None:
        """Every member's rows in one tensor, and every member's weights in another, a
        zero at its end for the padding rows."""
        sources, offsets = [], {}
        for member in self.members:
            rows = member.train.rows
            # A data set shared by members (the same X and y) is held once.
            key = (id(member.spec.X), id(member.spec.y))
            if key not in offsets:
                offsets[key] = sum(len(source[1]) for source in sources)
                sources.append((rows.sparse_X if rows.sparse_X is not None else rows.X,
                                rows.y))
            member.data_offset = offsets[key]
        first = sources[0][0]
        if sp.issparse(first):
            self.X = sp.vstack([source[0] for source in sources], format="csr")
        else:
            self.X = torch.cat([source[0] for source in sources]).to(self.device)
        self.y = torch.cat([source[1] for source in sources]).to(self.device)
        weights, offset = [], 0
        for member in self.members:
            n = len(member.spec.y)
            weight = member.train.rows.weight
            weights.append(torch.ones(n) if weight is None else weight.to(torch.float64))
            member.weight_offset = offset
            offset += n
        weights.append(torch.zeros(1))
        self.padding_weight = offset
        self.weights = torch.cat(weights).to(dtype=self.params[0].dtype, device=self.device)
        self.weighted = any(member.spec.sample_weight is not None for member in self.members)

    def plan(self, batches: Sequence[Batches | None], live: list[int]) -> list[_Step]:
        """One pass's steps over ``batches`` (one per member, None: no rows), drawn from
        each member's generator as its loader would draw them.

        The members are ordered by batch count, most first (:func:`_train_stack`): a
        step computes the members up to the last with a batch in it, so a member with
        fewer batches than the others (a fold beside the full-data path) costs
        nothing in the steps that it and those after it sit out.

        Built with numpy for the whole pass at once (a small net's epoch is a few
        steps: torch's per-call cost on small index tensors would be a fifth of
        it); an unshuffled pass (the held-out rows) is the same every epoch, and
        is built once, its loader's draws still drawn.
        """
        k = len(self.members)
        playing = [m for m in live if batches[m] is not None]
        if not playing:
            return []
        if k == 1:
            return self._solo_plan(batches[0])
        unshuffled = not any(batches[m].shuffle for m in playing)
        key = (id(batches[playing[0]]), tuple(playing), k)
        if unshuffled and key in self._plans:
            for m in playing:  # each member's loader draws its base seed all the same
                dataloader_order(0, False, self.members[m].generator)
            return self._plans[key]
        size = max(batches[m].batch_size for m in playing)
        counts = {m: len(batches[m]) for m in playing}
        n_steps = max(counts.values())
        data = np.empty((n_steps, k, size), dtype=np.int64)
        weight = np.full((n_steps, k, size), self.padding_weight, dtype=np.int64)
        widths = np.zeros((n_steps, k), dtype=np.int64)
        for m, member in enumerate(self.members):
            if m not in counts:
                # No batch for this member: one of its rows at weight zero.
                data[:, m, :] = member.data_offset
                continue
            loader = batches[m]
            order = dataloader_order(len(loader.rows), loader.shuffle,
                                     member.generator).numpy()
            rows = order if loader.rows.rows is None else loader.rows.rows.numpy()[order]
            used = rows[:counts[m] * size]  # drop_last leaves the rest out
            grid = np.full(n_steps * size, -1, dtype=np.int64)
            grid[:len(used)] = used
            grid = grid.reshape(n_steps, size)
            real = grid >= 0
            widths[:, m] = real.sum(axis=1)
            data[:, m, :] = np.where(real, grid, rows[0]) + member.data_offset
            weight[:, m, :] = np.where(real, grid + member.weight_offset, self.padding_weight)
        steps = []
        for t in range(n_steps):
            active = [m for m in playing if t < counts[m]]
            j = active[-1] + 1
            width = int(widths[t, :j].max())
            full = len(active) == j and bool((widths[t, :j] == width).all())
            steps.append(_Step(
                torch.from_numpy(np.ascontiguousarray(data[t, :j, :width])).to(self.device),
                torch.from_numpy(np.ascontiguousarray(weight[t, :j, :width])).to(self.device),
                active, {m: int(widths[t, m]) for m in active}, full))
        if unshuffled:
            self._plans[key] = steps
        return steps

    def _solo_plan(self, loader: Batches) -> list[_Step]:
        """:meth:`plan` of a stack of one: slices of its loader's order, as the loader
        cuts them (no padding, no weights unless it has some)."""
        member = self.members[0]
        order = dataloader_order(len(loader.rows), loader.shuffle, member.generator)
        rows = order if loader.rows.rows is None else loader.rows.rows.index_select(0, order)
        rows = (rows + member.data_offset).to(self.device)
        size, steps = loader.batch_size, []
        for start in range(0, len(loader) * size, size):
            chunk = rows[start:start + size].view(1, -1)
            weight = chunk + (member.weight_offset - member.data_offset) if self.weighted else None
            steps.append(_Step(chunk, weight, [0], {0: chunk.shape[1]}, True))
        return steps

    def batch(self, data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = data.reshape(-1)
        if sp.issparse(self.X):
            X = torch.from_numpy(self.X[flat.cpu().numpy()].toarray()).to(self.device)
        else:
            X = self.X.index_select(0, flat)
        return X.view(*data.shape, *X.shape[1:]), self.y.index_select(0, flat)

    def losses(self, step: _Step, training: bool) -> torch.Tensor:
        """The loss of each member the step computes on its batch: its own weighted
        mean over its real rows."""
        X, y = self.batch(step.data)
        k, width = X.shape[:2]
        params = self.params if k == len(self.members) else [p[:k] for p in self.params]
        y_pred = self.forward(params, X)
        if not self.per_row:
            return self.get_loss(y_pred.reshape(width, *y_pred.shape[2:]), y,
                                 training=training).reshape(1)
        per_row = self.get_loss(y_pred.reshape(k * width, *y_pred.shape[2:]), y,
                                training=training)
        # Several outputs per row (a regressor's targets, multilabel) are averaged first,
        # as weighted_loss averages them.
        per_row = (per_row.view(k, width) if per_row.dim() == 1
                   else per_row.reshape(k, width, -1).mean(dim=2))
        if step.full and not self.weighted:
            return per_row.mean(dim=1)
        weight = self.weights.index_select(0, step.weight_rows.reshape(-1)).view(k, width)
        return ((per_row * weight).sum(dim=1)
                / weight.sum(dim=1).clamp_min(torch.finfo(per_row.dtype).tiny))

    def train_pass(self, live: list[int]) -> dict[int, list[tuple[float, int]]]:
        records: dict[int, list] = {m: [] for m in live}
        steps = self.plan([member.train for member in self.members], live)
        if not self.native:
            self.module.train()
        losses = []
        for step in steps:
            loss = self.losses(step, training=True)
            for param in self.params:
                param.grad.zero_()
            loss.sum().backward()
            with torch.no_grad():
                self.optimizer.step(step.active)
                for param, mask in self.masks:
                    param.mul_(mask)
            losses.append((loss.detach(), step))
        _record(records, losses)
        return records

    @torch.no_grad()
    def valid_pass(self, live: list[int]) -> dict[int, list[tuple[float, int]]]:
        with_valid = [m for m in live if self.members[m].valid is not None]
        records: dict[int, list] = {m: [] for m in with_valid}
        steps = self.plan([member.valid for member in self.members], with_valid)
        if not self.native:
            self.module.eval()
        _record(records, [(self.losses(step, training=False), step) for step in steps])
        return records

    def member_state(self, m: int) -> dict[str, np.ndarray]:
        member = self.members[m]
        params = member.best if member.best is not None else [p[m] for p in self.params]
        return {name: value.detach().cpu().numpy().copy()
                for name, value in zip(self.names, params, strict=True)}


def _record(records: dict[int, list], losses: list[tuple[torch.Tensor, _Step]]) -> None:
    """Each active member's (loss, batch size) of every step, read in one transfer per
    pass rather than one per step (a step's losses are its first members', in order)."""
    if not losses:
        return
    values = torch.cat([loss for loss, _ in losses]).tolist()
    offset = 0
    for loss, step in losses:
        for m in step.active:
            records[m].append((values[offset + m], step.sizes[m]))
        offset += len(loss)


def _epoch_end(stack: _Stack, m: int, epoch: int, seconds: float,
               train: list[tuple[float, int]], valid: list[tuple[float, int]] | None) -> None:
    """Record member ``m``'s epoch as skorch's history records it, and apply its rule."""
    member = stack.members[m]
    batches = [{"train_loss": loss, "train_batch_size": size} for loss, size in train]
    entry = {"batches": batches, "epoch": epoch, "train_batch_count": len(train)}
    if valid is not None:
        batches += [{"valid_loss": loss, "valid_batch_size": size} for loss, size in valid]
        entry["valid_batch_count"] = len(valid)
    entry["dur"] = seconds
    for name, records in (("train_loss", train), ("valid_loss", valid)):
        if not records:
            continue
        # skorch's PassthroughScoring: the batch losses averaged by batch size (numpy's
        # average, for the same float64 rounding, once the epoch has several batches).
        score = (np.float64(records[0][0]) if len(records) == 1 else
                 np.average([loss for loss, _ in records],
                            weights=[size for _, size in records]))
        entry[name] = score
        best = member.best_scores.get(name, np.inf)
        entry[f"{name}_best"] = bool(score < best)
        if score < best:
            member.best_scores[name] = score
    member.history.append(entry)
    if member.rule is None:
        return
    if member.improved(entry[member.monitor]):
        member.misses = 0
        member.best_epoch = epoch
        if member.load_best:
            params = [p[m].detach() for p in stack.params]
            if member.best is None:
                member.best = [value.clone() for value in params]
            else:
                for kept, value in zip(member.best, params, strict=True):
                    kept.copy_(value)
    else:
        member.misses += 1
    if member.misses == member.rule.patience:
        member.stopped = True


def _with_rule(member: _Member) -> None:
    """The member's convergence rule, resolved as skorch's callback resolves it."""
    for _, callback in member.net.callbacks_:
        if isinstance(callback, EarlyStopping):
            member.rule = callback
            held_out = member.net.train_split is not None
            if isinstance(callback, Converged):
                member.monitor = (("valid_loss" if held_out else "train_loss")
                                  if callback.monitor == "auto" else callback.monitor)
                member.load_best = (held_out if callback.load_best == "auto"
                                    else bool(callback.load_best))
            else:
                member.monitor, member.load_best = callback.monitor, bool(callback.load_best)
            member.threshold = np.inf if callback.lower_is_better else -np.inf
            return


def _train_stack(members: list[_Member]) -> list[TrainingResult | TrainingDivergedError]:
    # The members with most batches first: a step computes the members up to the last
    # with a batch in it (see _Stack.plan).
    order = sorted(range(len(members)),
                   key=lambda m: (-len(members[m].train), -len(members[m].train.rows)))
    results = _trained_in(_Stack([members[m] for m in order]))
    back = [None] * len(members)
    for position, result in zip(order, results, strict=True):
        back[position] = result
    return back


def _trained_in(stack: _Stack) -> list[TrainingResult | TrainingDivergedError]:
    if not stack.per_row:
        return _trained(stack)
    # One loss per row for the whole training (the members' means are taken here),
    # set back before the nets are handed back.
    reduction = stack.criterion.reduction
    stack.criterion.reduction = "none"
    try:
        return _trained(stack)
    finally:
        stack.criterion.reduction = reduction


def _trained(stack: _Stack) -> list[TrainingResult | TrainingDivergedError]:
    everyone = list(stack.members)
    with torch.no_grad():
        for param, mask in stack.masks:
            param.mul_(mask)
    final: dict[int, dict[str, np.ndarray]] = {}
    # Each member's optimizer state where it stopped, handed back in its net's optimizer
    # as skorch's loop leaves it (partial_fit goes on from it).
    optimizer_final: dict[int, dict[str, dict[str, torch.Tensor]]] = {}
    tic = time.perf_counter()
    for epoch in range(1, everyone[0].net.max_epochs + 1):
        live = list(range(len(stack.members)))
        started = time.perf_counter()
        train = stack.train_pass(live)
        valid = stack.valid_pass(live)
        seconds = time.perf_counter() - started
        for m in live:
            _epoch_end(stack, m, epoch, seconds, train[m], valid.get(m))
        stopped = [m for m in live if stack.members[m].stopped]
        if stopped or epoch == everyone[0].net.max_epochs:
            for m in stopped if epoch < everyone[0].net.max_epochs else live:
                final[id(stack.members[m])] = _settled(stack, m)
                optimizer_final[id(stack.members[m])] = dict(
                    zip(stack.names, stack.optimizer.state_of(m), strict=True))
            if len(stopped) == len(live):
                break
            # The members that stopped leave the stack: the others' steps cost what
            # they cost without them.
            stack.keep([m for m in live if not stack.members[m].stopped])
    share = (time.perf_counter() - tic) / len(everyone)
    results = []
    for member in everyone:
        net = member.net
        load_state(net.module_, final[id(member)])
        parameters = dict(net.module_.named_parameters())
        for name, state in optimizer_final.get(id(member), {}).items():
            if state:
                net.optimizer_.state[parameters[name]] = state
        net.history = History(member.history)
        _callbacks_after_training(member)
        train_loss = epoch_train_loss(net.history)
        problem = non_finite_values(net.module_, train_loss)
        if problem is not None:
            results.append(TrainingDivergedError(problem))
            continue
        results.append(TrainingResult(net=handed_back(net, member.spec, None), seconds=share,
                                      train_loss=train_loss))
    return results


def _callbacks_after_training(member: _Member) -> None:
    """The member's net's callbacks as skorch's loop leaves them: the masks held, the
    stopping rule's resolved settings and where it stood, the loss records' bests."""
    net = member.net
    for name, callback in net.callbacks_:
        if isinstance(callback, ApplyMasks):
            callback.on_train_begin(net)  # holds the masks (the weights already are)
        elif isinstance(callback, EarlyStopping):
            callback.on_train_begin(net)  # resolves "auto" as the training did
            callback.misses_ = member.misses
            callback.dynamic_threshold_ = member.threshold
            callback.best_epoch_ = member.best_epoch
        elif isinstance(callback, PassthroughScoring):
            callback.best_score_ = member.best_scores.get(name, np.inf)


def _settled(stack: _Stack, m: int) -> dict[str, np.ndarray]:
    """Member ``m``'s trained state: its best epoch's where its rule keeps that (skorch's
    ``EarlyStopping.on_train_end``), else its last."""
    member = stack.members[m]
    last = member.history[-1]["epoch"] if member.history else 0
    if not (member.load_best and member.best is not None and member.best_epoch != last):
        member.best = None
    return stack.member_state(m)


def train_members(specs: Sequence[TrainingSpec], *, verbose: int = 0
                  ) -> list[TrainingResult | TrainingDivergedError]:
    """Train every spec, those that share a net's shape and settings as one stack.

    Each result is what :func:`~skticket._training.run_training` of that spec
    alone gives, to float32 rounding: the same batches, masks, optimizer
    mathematics (torch's own kernel, per member), convergence and divergence
    check. A member whose training is not finite is given back as its
    :class:`~skticket.exceptions.TrainingDivergedError` (not raised: the
    others are unaffected); a Ctrl-C raises
    :class:`~skticket.exceptions.TrainingInterrupted` for all of them.

    Parameters
    ----------
    specs : sequence of TrainingSpec
        The trainings, independent of each other.
    verbose : int, default=0
        1 or more: print which trainings train alone, and why (always logged
        at DEBUG on the ``skticket`` logger).

    Returns
    -------
    list of TrainingResult or TrainingDivergedError
        One per spec, in order.
    """
    results: list = [None] * len(specs)
    stacks: dict[str, list[_Member]] = {}
    alone = []
    for position, spec in enumerate(specs):
        if spec.hooks:  # known without building the net
            alone.append(position)
            # Not printed: a search's hooked rounds train alone by design.
            _say_alone(position, len(specs), "its training hooks need a net of their own", 0)
            continue
        net, train, valid, generator = _prepared(spec)
        reason = why_not_stacked(net, spec)
        if reason is None and not (isinstance(train, Batches) and (
                valid is None or isinstance(valid, Batches))):
            reason = "its data goes through its own loader"
        if reason is None and type(net.module_) is not MLP:
            reason = _vmap_problem(net, spec, train)
        if reason is not None:
            _say_alone(position, len(specs), reason, verbose)
            alone.append(position)
            continue
        member = _Member(position, spec, net, train, valid, generator)
        _with_rule(member)
        stacks.setdefault(_stack_key(spec), []).append(member)
    with watching_sigint() as sigint:
        try:
            for members in stacks.values():
                for member, result in zip(members, _train_stack(members), strict=True):
                    results[member.position] = result
        except KeyboardInterrupt:
            if sigint.interrupted:
                raise TrainingInterrupted("Ctrl-C during a stacked training") from None
            raise
    for position in alone:
        try:
            results[position] = train_alone(specs[position])
        except TrainingDivergedError as error:
            results[position] = error
    return results


def _say_alone(position: int, n_specs: int, reason: str, verbose: int) -> None:
    """Why a training trains alone: on the ``skticket`` logger at DEBUG, and printed at
    ``verbose``."""
    message = f"training {position + 1} of {n_specs} trains alone: {reason}."
    logger.debug(message)
    if verbose:
        print(f"[skticket] {message}", flush=True)


def _vmap_problem(net: NeuralNet, spec: TrainingSpec, train: Batches) -> str | None:
    """Why ``torch.func.vmap`` cannot run the module of ``net`` (None: it can): tried on
    two copies of one row."""
    module = net.module_
    names = [name for name, _ in module.named_parameters()]
    params = [torch.stack([param.detach()] * 2) for _, param in module.named_parameters()]
    X, _ = train.rows[torch.zeros(1, dtype=torch.int64)]
    X = X.to(net.device)
    try:
        with torch.no_grad():
            out = _vmapped_forward(module, names)(params, torch.stack([X, X]))
            alone = module(X)
    except Exception as error:  # any failure means: train it alone
        return (f"its module {type(module).__name__} cannot be stacked by torch.func.vmap "
                f"({type(error).__name__}: {error})")
    if not isinstance(out, torch.Tensor) or tuple(out.shape[1:]) != tuple(alone.shape):
        return f"its module {type(module).__name__} does not give one output per member"
    return None
