"""Searches: strategies that decide which rounds to train, one trained round at a time.

A search is a generator ``search(session, rule, state)`` over a
:class:`~skticket._session.Session` (what every search shares, and the only
way to train), a :class:`PruningRule` (what the estimator's pruning
parameters say) and a :class:`SearchState` (where the search stands, updated
as rounds are accepted). It yields each :class:`~skticket._session.Round` as
it is trained; the consumer (``fit``, ``ticket_curve``) records, reports and
stops as it likes, and after any round ``state`` describes the winning ticket
so far. What a round is:

- ``"imp"`` (:func:`imp`): round 0 trains the dense net, round k the ticket
  left by k rounds of magnitude pruning, each rewound and trained in full.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from ._pruning import magnitude_prune, n_active, rewound_weights, target_active_count
from ._session import Round, Session
from ._training import State, prunable_weights

__all__ = ["SEARCHES", "PruningRule", "SearchState", "imp", "prune_once"]


@dataclass(frozen=True)
class PruningRule:
    """What the estimator's pruning parameters say, read when a search (or ``prune()``) starts.

    Attributes mirror the estimators' parameters: ``prune_fraction``,
    ``scope``, ``layer_fractions`` (``layer_prune_fractions``, checked),
    ``min_weights`` (``min_weights_per_layer``), ``target_sparsity``,
    ``max_rounds``, ``score_tolerance`` and ``rewind_step``.
    """

    prune_fraction: float
    scope: str
    layer_fractions: Mapping[str, float]
    min_weights: int
    target_sparsity: float | None = None
    max_rounds: int | None = None
    score_tolerance: float | None = None
    rewind_step: int = 0


@dataclass(eq=False)
class SearchState:
    """Where a search stands: the winning ticket so far and what the next round needs.

    Kept after ``fit`` (it holds no data) so that ``prune()`` can go on.

    Attributes
    ----------
    rewind_state : dict of str to ndarray
        What survivors are rewound to: theta_0, or the late-reset snapshot.
    masks : dict of str to bool ndarray
        The winning ticket's masks.
    trained_weights : dict of str to ndarray
        The winning ticket's pruned parameters after training (what the next
        round ranks).
    round : int
        The winning ticket's round.
    next_round : int
        The index the next trained round gets (rounds a search gave up on, an
        interrupted or diverged one, are trained again under the same index).
    """

    rewind_state: State
    masks: dict[str, np.ndarray]
    trained_weights: State
    round: int = 0
    next_round: int = 0

    @classmethod
    def start(cls, session: Session) -> SearchState:
        """Before round 0: the dense masks, rewinding to theta_0."""
        return cls(rewind_state=session.theta_0, masks=session.dense_masks(), trained_weights={})

    def accept(self, trained: Round, prunable: list[str]) -> None:
        """Make ``trained`` the winning ticket."""
        self.masks = trained.masks
        self.trained_weights = prunable_weights(trained.result.net, prunable)
        self.round = trained.index


def _next_masks(state: SearchState, rule: PruningRule,
                target_n_active: int | None = None) -> dict[str, np.ndarray] | None:
    """The masks one round of magnitude pruning leaves, or None if nothing can go."""
    masks = magnitude_prune(
        state.trained_weights, state.masks, fraction=rule.prune_fraction, scope=rule.scope,
        layer_fractions=rule.layer_fractions, min_weights=rule.min_weights,
        target_n_active=target_n_active,
    )
    return None if n_active(masks) == n_active(state.masks) else masks


def _train_next(session: Session, state: SearchState, masks) -> Round:
    trained = session.run_round(state.next_round, masks,
                                rewound_weights(state.rewind_state, masks))
    state.next_round += 1
    return trained


def _dense_round(session: Session, rule: PruningRule, state: SearchState) -> Round:
    """Round 0: the dense net, with the late-reset snapshot taken if asked for."""
    dense = session.run_round(0, state.masks, rewound_weights(state.rewind_state, state.masks),
                              capture_step=rule.rewind_step)
    if rule.rewind_step > 0:
        if dense.result.rewind_point is None:
            steps = sum(dense.result.net.history[:, "train_batch_count"])
            raise ValueError(
                f"rewind_step={rule.rewind_step} is beyond the {steps} optimizer steps "
                "of the dense training; lower rewind_step or train for more epochs."
            )
        # Late resetting: one snapshot, taken once, for every later round.
        state.rewind_state = dense.result.rewind_point
    state.accept(dense, session.prunable)
    state.next_round = 1
    return dense


def imp(session: Session, rule: PruningRule, state: SearchState) -> Iterator[Round]:
    """Iterative magnitude pruning, one trained round at a time.

    Yields the dense round, then each ticket as it is trained. Stops after the
    round that meets ``target_sparsity`` or ``max_rounds``, when every layer is
    at its floor, or after the first round out of ``score_tolerance`` (which is
    yielded with ``accepted=False``).
    """
    dense = _dense_round(session, rule, state)
    yield dense
    n_prunable = sum(mask.size for mask in state.masks.values())
    target = (None if rule.target_sparsity is None
              else target_active_count(n_prunable, rule.target_sparsity))
    dense_score = dense.record["valid_score"]
    while not (
        (rule.max_rounds is not None and state.round >= rule.max_rounds)
        or (target is not None and n_active(state.masks) <= target)
    ):
        masks = _next_masks(state, rule, target)
        if masks is None:
            return  # every layer is at its floor
        trained = _train_next(session, state, masks)
        score = trained.record["valid_score"]
        trained.accepted = (rule.score_tolerance is None
                            or score >= dense_score - rule.score_tolerance)
        if trained.accepted:
            state.accept(trained, session.prunable)
        yield trained
        if not trained.accepted:
            return  # the previous ticket was the sparsest within tolerance


def prune_once(session: Session, rule: PruningRule, state: SearchState) -> Round | None:
    """One more round of magnitude pruning from ``state``'s ticket, accepted; None if
    every layer is at its floor. ``target_sparsity``, ``max_rounds`` and
    ``score_tolerance`` do not apply."""
    masks = _next_masks(state, rule)
    if masks is None:
        return None
    trained = _train_next(session, state, masks)
    state.accept(trained, session.prunable)
    return trained


#: The searches by the name the estimators' ``search`` parameter gives them.
SEARCHES: dict[str, Callable[[Session, PruningRule, SearchState], Iterator[Round]]] = {
    "imp": imp,
}
