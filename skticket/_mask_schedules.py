"""Masks that move during one training: the schedules of the one-training searches.

A :class:`MaskUpdateSchedule` describes, as plain frozen data, when a training's
masks change and how: gradual magnitude pruning (:class:`GradualSchedule`),
sparse momentum (:class:`MomentumRegrowth`) and RigL
(:class:`GradientRegrowth`). A search trains with it as the training hook
:class:`~skticket._hooks.MaskSchedule` (so ``memory`` keys it like any other
input), whose callback :class:`~skticket._hooks.UpdateMasks` runs it; the
mathematics of each update is in :mod:`skticket._pruning`. Steps are
optimizer steps, counted from 1; a schedule is laid out on the training's
planned length (``max_epochs`` times the batches of an epoch), so a training
that a callback ends early simply stops with the masks it has.
"""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._pruning import (
    MagnitudeRule,
    allocate_growth,
    cosine_decay,
    count_to_remove,
    cubic_sparsity,
    drop_and_grow,
    n_active,
    target_active_count,
)

__all__ = ["GradientRegrowth", "GradualSchedule", "MaskUpdateSchedule", "MomentumRegrowth"]

Masks = dict[str, np.ndarray]


@dataclass(frozen=True)
class MaskUpdateSchedule(metaclass=ABCMeta):
    """When and how a training's masks change; subclasses are the schedules.

    ``uses`` names what an update ranks besides the weights: ``None``, the
    ``"gradient"`` of the batch of the update's step (the dense gradient,
    pruned positions included), or the optimizer's ``"momentum"``.
    """

    uses: ClassVar[str | None] = None
    #: Whether the masks must reach the schedule's last update even when the training
    #: ends before it (a pruning schedule's target sparsity); if so, a training cut
    #: short gets that update at its end.
    must_finish: ClassVar[bool] = False

    def last_step(self, total_steps: int, steps_per_epoch: int) -> int:
        """The step of the last update that matters; until then the training should not
        be ended by a stopping rule (0: any time)."""
        return 0

    @abstractmethod
    def due(self, step: int, total_steps: int, steps_per_epoch: int) -> bool:
        """Whether the masks change after optimizer step ``step`` (1-based)."""

    @abstractmethod
    def updated(self, masks: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray],
                scores: Mapping[str, np.ndarray] | None, step: int,
                total_steps: int) -> Masks:
        """The masks after the update at ``step``; ``scores`` are what ``uses`` names."""


def _interval(every: int | None, steps_per_epoch: int) -> int:
    """Steps between updates: ``every``, or one epoch's when it is None."""
    return steps_per_epoch if every is None else int(every)


@dataclass(frozen=True)
class GradualSchedule(MaskUpdateSchedule):
    """Gradual magnitude pruning (Zhu & Gupta, 2017) from the dense start.

    Every ``frequency`` steps (None: every epoch) from ``start`` to ``end``
    (shares of the training), the sparsity is raised on the cubic schedule
    (:func:`~skticket._pruning.cubic_sparsity`) to reach ``target_n_active``
    at ``end``; each update prunes the lowest-magnitude surviving weights by
    the rule IMP uses (``magnitude``: the same per-layer rates, scope and
    floors). Pruned weights stay pruned.
    """

    must_finish: ClassVar[bool] = True

    target_n_active: int
    n_prunable: int
    magnitude: MagnitudeRule
    start: float = 0.25
    end: float = 0.75
    frequency: int | None = None

    def last_step(self, total_steps: int, steps_per_epoch: int) -> int:
        return self._span(total_steps)[1]

    def _span(self, total_steps: int) -> tuple[int, int]:
        # Step 0 is before any training: the first update comes after step 1.
        begin = max(1, math.floor(self.start * total_steps))
        return begin, max(begin, math.floor(self.end * total_steps))

    def due(self, step: int, total_steps: int, steps_per_epoch: int) -> bool:
        begin, finish = self._span(total_steps)
        every = _interval(self.frequency, steps_per_epoch)
        # The last update lands at ``finish`` exactly, so the target is reached.
        return begin <= step <= finish and ((step - begin) % every == 0 or step == finish)

    def sparsity_at(self, step: int, total_steps: int) -> float:
        """The schedule's sparsity after the update at ``step``."""
        begin, finish = self._span(total_steps)
        final = 1.0 - self.target_n_active / self.n_prunable
        progress = 1.0 if finish == begin else (step - begin) / (finish - begin)
        return cubic_sparsity(progress, final)

    def updated(self, masks, weights, scores, step, total_steps) -> Masks:
        target = max(target_active_count(self.n_prunable, self.sparsity_at(step, total_steps)),
                     self.target_n_active)
        if n_active(masks) <= target:
            return {name: mask.copy() for name, mask in masks.items()}
        return self.magnitude.prune_to(weights, masks, target)


@dataclass(frozen=True)
class MomentumRegrowth(MaskUpdateSchedule):
    """Sparse momentum (Dettmers & Zettlemoyer, 2019): a fixed number of weights moving.

    At the end of every epoch but the last, each layer drops ``drop_fraction``
    (cosine-decayed to 0 over the training) of its surviving weights, those of
    lowest magnitude (never below ``min_weights``); the dropped total is
    redistributed over the layers in proportion to the mean momentum
    magnitude of their surviving weights
    (:func:`~skticket._pruning.allocate_growth`) and regrown in each layer
    where the momentum is largest. The number of surviving weights is the
    same after every update.
    """

    uses: ClassVar[str] = "momentum"

    drop_fraction: float = 0.5
    min_weights: int = 1

    def due(self, step: int, total_steps: int, steps_per_epoch: int) -> bool:
        return step % steps_per_epoch == 0 and step < total_steps

    def updated(self, masks, weights, scores, step, total_steps) -> Masks:
        fraction = cosine_decay(self.drop_fraction, step / total_steps)
        drop = {name: count_to_remove(int(np.count_nonzero(mask)), fraction,
                                      floor=min(self.min_weights, mask.size))
                for name, mask in masks.items()}
        if fraction == 0 or not any(drop.values()):
            return {name: mask.copy() for name, mask in masks.items()}
        mean_momentum = {name: float(np.abs(scores[name][mask]).mean()) if mask.any() else 0.0
                         for name, mask in masks.items()}
        # Room in each layer once its weights are dropped.
        capacity = {name: mask.size - int(np.count_nonzero(mask)) + drop[name]
                    for name, mask in masks.items()}
        grow = allocate_growth(sum(drop.values()), mean_momentum, capacity)
        return drop_and_grow(weights, masks, {name: np.abs(s) for name, s in scores.items()},
                             drop, grow)


@dataclass(frozen=True)
class GradientRegrowth(MaskUpdateSchedule):
    """RigL (Evci et al., 2020): drop by magnitude, regrow where the gradient is largest.

    Every ``update_every`` steps (None: every epoch) until ``end`` (a share of
    the training), each
    layer drops ``drop_fraction`` (cosine-decayed to 0 at ``end``) of its
    surviving weights, those of lowest magnitude, and grows as many where the
    magnitude of the dense gradient of that step's batch is largest. Every
    layer keeps its number of weights.
    """

    uses: ClassVar[str] = "gradient"

    drop_fraction: float = 0.3
    update_every: int | None = None
    end: float = 0.75

    def last_step(self, total_steps: int, steps_per_epoch: int) -> int:
        return math.floor(self.end * total_steps)

    def due(self, step: int, total_steps: int, steps_per_epoch: int) -> bool:
        every = _interval(self.update_every, steps_per_epoch)
        return step % every == 0 and step <= self.end * total_steps

    def updated(self, masks, weights, scores, step, total_steps) -> Masks:
        fraction = cosine_decay(self.drop_fraction, step / (self.end * total_steps))
        # RigL's count: the share of the layer's surviving weights, rounded down.
        drop = {name: int(fraction * int(np.count_nonzero(mask))) for name, mask in masks.items()}
        return drop_and_grow(weights, masks, {name: np.abs(s) for name, s in scores.items()},
                             drop)

