"""Training hooks: what a search needs from inside one training.

A :class:`TrainingHook` is a frozen value (a frozen dataclass of plain
values) that a search hands to :meth:`~skticket.SearchRun.train`. For each
training its :meth:`~TrainingHook.callback` builds a fresh skorch callback,
which runs in the training beside the masks; afterwards its
:meth:`~TrainingHook.summary` reads what the training recorded. The summary
is part of the round: its record lists it under ``"hook_summaries"``, and
``memory`` stores it with the round, under a key that hashes the hook by
value. The training loop, the session and the cache know no hook by kind.

The built-in hooks are those of the built-in searches: :class:`LateResetCapture`
(the rewind point of late resetting), :class:`EarlyBirdStop` (early-bird's
draw and stop) and :class:`MaskSchedule` (the moving masks of the
one-training searches).
"""

from __future__ import annotations

import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from skorch.callbacks import Callback

from ._mask_schedules import MaskUpdateSchedule
from ._pruning import MagnitudeRule, mask_distance, n_active
from ._training import MASK_CALLBACK, module_state

__all__ = ["EarlyBirdStop", "LateResetCapture", "MaskSchedule", "TrainingHook"]


class TrainingHook(metaclass=ABCMeta):
    """Base class of training hooks: what a search needs from inside one training.

    Subclass it as a frozen dataclass (``@dataclass(frozen=True)``) of plain
    values, so that a hook is hashable, picklable and equal to another hook
    of the same values: ``memory`` keys a training by its hooks' values
    (their class by its source, a numpy array by its content), and a hook of
    other values is another training. Implement :meth:`callback`,
    which builds the skorch callback that runs in one training, and
    :meth:`summary`, which reads from that callback, once the training has
    ended, what the round keeps.

    A search passes its hooks to :meth:`~skticket.SearchRun.train`; the
    round's record (``rounds_``) lists their summaries, in order, under
    ``"hook_summaries"``, and a round restored from ``memory`` holds the
    summaries that were stored with it. The callback may move the
    training's masks: the masks callback (named ``"skticket_masks"`` in the
    net's ``callbacks_``) holds the masks, and its ``hold(net, masks)``
    makes it hold others from then on; the round then has the masks the
    training ended with.

    See Also
    --------
    skticket.SearchRun.train : Trains a round with hooks.
    skticket.Search : A search, which decides what each training needs.

    Examples
    --------
    A hook that counts the training's optimizer steps:

    >>> from dataclasses import dataclass
    >>> from skorch.callbacks import Callback
    >>> from skticket import TrainingHook
    >>> class StepCounter(Callback):
    ...     def initialize(self):
    ...         self.steps_ = 0
    ...         return self
    ...     def on_batch_end(self, net, batch=None, training=None, **kwargs):
    ...         self.steps_ += bool(training)
    >>> @dataclass(frozen=True)
    ... class CountSteps(TrainingHook):
    ...     def callback(self):
    ...         return StepCounter()
    ...     def summary(self, callback):
    ...         return callback.steps_
    >>> CountSteps() == CountSteps(), hash(CountSteps()) == hash(CountSteps())
    (True, True)

    A search trains with it as ``run.train(masks, hooks=(CountSteps(),))``,
    and the round's ``record["hook_summaries"]`` is ``[steps]``.
    """

    @abstractmethod
    def callback(self) -> Callback:
        """A fresh skorch callback for one training.

        Returns
        -------
        skorch.callbacks.Callback
            Added to the training's net after its masks callback; it is not
            kept on the net the training hands back.
        """

    @abstractmethod
    def summary(self, callback: Callback) -> Any:
        """What the round keeps of the training, read from its callback once it has ended.

        Parameters
        ----------
        callback : skorch.callbacks.Callback
            The callback :meth:`callback` built, after the training.

        Returns
        -------
        object
            Picklable plain data (``memory`` stores it; numpy arrays are
            copied when it is restored).
        """


class CaptureRewindPoint(Callback):
    """Record the module's weights after ``step`` optimizer steps (late resetting).

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


@dataclass(frozen=True)
class LateResetCapture(TrainingHook):
    """Late resetting's rewind point: the module state after ``step`` optimizer steps.

    Used in the dense round only: the rewind point is taken once and every
    later round rewinds to the same snapshot. The summary is that module
    state, or None when the training took fewer steps.

    Attributes
    ----------
    step : int
        Optimizer steps after which to take the snapshot (>= 1).
    """

    step: int

    def callback(self) -> CaptureRewindPoint:
        return CaptureRewindPoint(self.step)

    def summary(self, callback: CaptureRewindPoint) -> dict[str, np.ndarray] | None:
        return callback.state_


@dataclass(frozen=True)
class EarlyBirdStop(TrainingHook):
    """Early-bird tickets (You et al., ICLR 2020): draw the ticket after every epoch, stop
    the training once it settles.

    After every epoch the mask IMP would reach at ``target_n_active`` is
    drawn from the current weights of the ``names`` parameters in one step
    (``magnitude.prune_to``: IMP's rate, scope, per-layer rates, floor and
    criterion). A criterion that compares the weights with where they
    started compares them with the ticket's rewind point: the training's
    start, or its weights after ``rewind_step`` optimizer steps; no mask is
    drawn at an epoch that ends before that step (its distance is None).
    The training stops once the newest mask is within ``tolerance`` of each of
    the ``window`` masks before it, by :func:`~skticket._pruning.mask_distance`
    (the share of surviving weights that changed). The summary is a dict:
    ``masks`` (the mask drawn at the last epoch), ``epoch`` (the epochs
    trained), ``distances`` (per epoch, the largest distance to the kept
    masks; None until one is kept) and ``settled``.

    Attributes
    ----------
    target_n_active : int
        Weights the drawn mask keeps.
    magnitude : MagnitudeRule
        How the mask is drawn.
    window : int
        Masks kept to compare the newest with.
    tolerance : float
        Largest distance at which the masks count as settled.
    names : tuple of str
        The pruned parameters.
    rewind_step : int, default=0
        Optimizer steps after which the rewind point is taken (0: the start).
    """

    target_n_active: int
    magnitude: MagnitudeRule
    window: int
    tolerance: float
    names: tuple[str, ...]
    rewind_step: int = 0

    def callback(self) -> WatchEarlyBird:
        return WatchEarlyBird(self)

    def summary(self, callback: WatchEarlyBird) -> dict:
        return {"masks": callback.masks_, "epoch": callback.epochs_,
                "distances": list(callback.distances_), "settled": callback.settled_}


class WatchEarlyBird(Callback):
    """Draw the ticket's mask after every epoch, and end the training once it settles.

    Ends the training as skorch's ``EarlyStopping`` does, by raising
    ``KeyboardInterrupt`` at the end of an epoch.

    Parameters
    ----------
    rule : EarlyBirdStop
    """

    def __init__(self, rule: EarlyBirdStop) -> None:
        self.rule = rule

    def initialize(self):
        self.kept_: list[dict[str, np.ndarray]] = []
        self.distances_: list[float | None] = []
        self.masks_: dict[str, np.ndarray] | None = None
        self.settled_ = False
        self.epochs_ = 0
        self.steps_ = 0
        self.initial_: dict[str, np.ndarray] | None = None
        return self

    @property
    def _compares_with_start(self) -> bool:
        return self.rule.magnitude.criterion != "large_final"

    def _weights(self, net, copy: bool = False) -> dict[str, np.ndarray]:
        params = dict(net.module_.named_parameters())
        weights = {name: params[name].detach().cpu().numpy() for name in self.rule.names}
        # A snapshot must not follow the parameters' storage as training moves on.
        return {name: value.copy() for name, value in weights.items()} if copy else weights

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        if self._compares_with_start and self.rule.rewind_step == 0:
            self.initial_ = self._weights(net, copy=True)

    def on_batch_end(self, net, batch=None, training=None, **kwargs) -> None:
        if training and self._compares_with_start and self.initial_ is None:
            self.steps_ += 1
            if self.steps_ == self.rule.rewind_step:
                self.initial_ = self._weights(net, copy=True)

    def on_epoch_end(self, net, **kwargs) -> None:
        rule = self.rule
        if self._compares_with_start and self.initial_ is None:
            self.distances_.append(None)  # the rewind point is still to come
            return
        weights = self._weights(net)
        dense = {name: np.ones(value.shape, dtype=bool) for name, value in weights.items()}
        masks = rule.magnitude.prune_to(weights, dense, rule.target_n_active, self.initial_)
        distance = max((mask_distance(masks, kept) for kept in self.kept_), default=None)
        self.distances_.append(distance)
        self.masks_ = masks
        if len(self.kept_) == rule.window and distance <= rule.tolerance:
            self.settled_ = True
            raise KeyboardInterrupt  # how a skorch callback ends a training
        self.kept_ = [*self.kept_[-(rule.window - 1):], masks] if rule.window > 1 else [masks]

    def on_train_end(self, net, X=None, y=None, **kwargs) -> None:
        # Any callback may have ended the training: the epoch is the history's.
        self.epochs_ = len(net.history)


@dataclass(frozen=True)
class MaskSchedule(TrainingHook):
    """Masks that move during the training, on ``schedule`` (the one-training searches).

    The round holds the masks the training ended with; the summary is the
    list of update records of :class:`UpdateMasks` (``step``, ``n_active``,
    ``regrown``, ``densities``).

    Attributes
    ----------
    schedule : MaskUpdateSchedule
        When and how the masks move.
    """

    schedule: MaskUpdateSchedule

    def callback(self) -> UpdateMasks:
        return UpdateMasks(self.schedule)

    def summary(self, callback: UpdateMasks) -> list[dict]:
        return callback.updates_


class UpdateMasks(Callback):
    """Move the training's masks on a schedule; its masks callback holds them.

    Starts from the masks the training's masks callback holds. After each
    optimizer step the schedule (a :class:`~skticket._mask_schedules.MaskUpdateSchedule`)
    says whether the masks change; if so they are updated from the current
    weights and what the schedule ranks by (the dense gradient of that
    step's batch, or the optimizer's momentum), and the masks callback holds
    the new ones. A weight that becomes active starts at zero (it was held
    there), and the optimizer's state of it (momentum, Adam's moments) is
    reset to zero, so that no stale average moves it. The schedule is laid
    out on the training's planned steps: ``max_epochs`` times the batches of
    the first epoch.

    Parameters
    ----------
    schedule : MaskUpdateSchedule
        When and how the masks change.

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

    def __init__(self, schedule: MaskUpdateSchedule) -> None:
        self.schedule = schedule

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        held = dict(net.callbacks_).get(MASK_CALLBACK)
        if held is None:
            raise ValueError("A mask schedule moves the training's masks, and the training "
                             "has none: give it masks (all True to start dense).")
        params = dict(net.module_.named_parameters())
        self.held_ = held
        self.params_ = {name: params[name] for name in held.masks}
        self.masks_ = {name: np.array(mask, dtype=bool) for name, mask in held.masks.items()}
        self.updates_: list[dict] = []
        self.step_ = 0
        self.total_steps_: int | None = None
        self.steps_per_epoch_: int | None = None
        self.gradients_: dict[str, np.ndarray] | None = None
        held.hold(net, self.masks_)

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
        # The masks callback, before this one, has already applied the masks.
        if not training:
            return
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
        self.held_.hold(net, new)

    def _reset_optimizer_state(self, net, grown: Mapping[str, np.ndarray]) -> None:
        for name, positions in grown.items():
            param = self.params_[name]
            at = torch.as_tensor(positions, device=param.device)
            for value in net.optimizer_.state.get(param, {}).values():
                if isinstance(value, torch.Tensor) and value.shape == param.shape:
                    value[at] = 0
