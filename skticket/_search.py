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
- ``"early_bird"`` (:func:`early_bird`): round 0 trains the dense net until
  the ticket's mask, drawn after every epoch, settles; round 1 trains that
  ticket, rewound.
- ``"snip"`` (:func:`snip`): no round 0 (nothing dense is trained); round 1
  trains the ticket pruned at initialization by connection sensitivity.
- a given ticket (:func:`given_ticket`): one round, numbered as the ticket's
  own, trains the ticket on this data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from ._pruning import (
    magnitude_prune,
    n_active,
    prune_to_target,
    rewound_weights,
    target_active_count,
)
from ._session import Round, Session
from ._ticket import Ticket
from ._training import EarlyBirdRule, State, prunable_weights

__all__ = ["SEARCHES", "PruningRule", "SearchState", "early_bird", "given_ticket", "imp",
           "planned_rounds", "prune_once", "snip"]


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
    early_bird_window: int = 5
    early_bird_tolerance: float = 0.02
    snip_batches: int = 1


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


def _target(state: SearchState, rule: PruningRule, search: str) -> int:
    if rule.target_sparsity is None:
        raise ValueError(f"search={search!r} prunes to target_sparsity in one step; set "
                         "target_sparsity (it is None).")
    return target_active_count(sum(mask.size for mask in state.masks.values()),
                               rule.target_sparsity)


def _dense_round(session: Session, rule: PruningRule, state: SearchState,
                 early_bird: EarlyBirdRule | None = None) -> Round:
    """Round 0: the dense net, with the late-reset snapshot taken if asked for."""
    dense = session.run_round(0, state.masks, rewound_weights(state.rewind_state, state.masks),
                              capture_step=rule.rewind_step, early_bird=early_bird)
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


def early_bird(session: Session, rule: PruningRule, state: SearchState) -> Iterator[Round]:
    """Early-bird tickets (You et al., ICLR 2020): draw the ticket during the dense training.

    After every epoch of the dense training (round 0) the mask that IMP would
    reach at ``target_sparsity`` is drawn from the current weights in one step
    (same scope, per-layer rates and floors). Once the newest mask is within
    ``early_bird_tolerance`` of each of the ``early_bird_window`` masks before
    it (the share of surviving weights that changed), the dense training
    stops; the survivors are rewound and the ticket is trained once (round 1).
    If the masks never settle, the whole dense training runs and the mask of
    its last epoch is the ticket. Round 0's record adds ``ticket_epoch``,
    ``mask_distances`` (per epoch, the largest distance to the kept masks;
    None until one is kept) and ``masks_settled``.
    """
    rule_at_epochs = EarlyBirdRule(
        target_n_active=_target(state, rule, "early_bird"), fraction=rule.prune_fraction,
        scope=rule.scope, layer_fractions=rule.layer_fractions, min_weights=rule.min_weights,
        window=rule.early_bird_window, tolerance=rule.early_bird_tolerance,
    )
    dense = _dense_round(session, rule, state, early_bird=rule_at_epochs)
    drawn = dense.result.early_bird
    dense.record.update(ticket_epoch=drawn["epoch"], mask_distances=drawn["distances"],
                        masks_settled=drawn["settled"])
    yield dense
    trained = _train_next(session, state, drawn["masks"])
    state.accept(trained, session.prunable)
    yield trained


def snip(session: Session, rule: PruningRule, state: SearchState) -> Iterator[Round]:
    """SNIP (Lee et al., ICLR 2019): prune at initialization, train the ticket once.

    Each pruned weight is scored by its connection sensitivity ``|w * dL/dw|``
    at theta_0, summed over ``snip_batches`` mini-batches of the training data
    and the net's own loss; the lowest-scored weights are removed to exactly
    ``target_sparsity``, with the per-layer sparsities IMP would reach (same
    scope, per-layer rates and floors). No dense net is trained: the one
    round, round 1, trains the ticket from theta_0.
    """
    target = _target(state, rule, "snip")
    if rule.rewind_step > 0:
        raise ValueError("search='snip' trains no dense net to rewind to a step of: "
                         "rewind_step must be 0.")
    masks = prune_to_target(session.sensitivity(rule.snip_batches), state.masks,
                            fraction=rule.prune_fraction, target_n_active=target,
                            scope=rule.scope, layer_fractions=rule.layer_fractions,
                            min_weights=rule.min_weights)
    state.next_round = 1
    trained = _train_next(session, state, masks)
    state.accept(trained, session.prunable)
    yield trained


def check_ticket(ticket: Ticket, session: Session, init: str) -> None:
    """Refuse a ticket that does not fit the session's sized net, naming the first mismatch."""
    state = session.theta_0
    for name, mask in ticket.masks.items():
        if name not in session.prunable:
            raise ValueError(f"The ticket masks {name!r}, which is not a parameter of this "
                             "net's module.")
        if mask.shape != state[name].shape:
            raise ValueError(
                f"The ticket's mask of {name!r} has shape {mask.shape}, the net's parameter "
                f"{tuple(state[name].shape)}.")
    if init != "rewind":
        return
    for name, value in state.items():
        if name not in ticket.weights:
            raise ValueError(
                f"The ticket holds no start value of {name!r}, which the net's module has; "
                "ticket_init='rewind' needs the ticket's whole start state.")
        if np.shape(ticket.weights[name]) != tuple(value.shape):
            raise ValueError(
                f"The ticket's start value of {name!r} has shape "
                f"{np.shape(ticket.weights[name])}, the net's {tuple(value.shape)}.")
    extra = [name for name in ticket.weights if name not in state]
    if extra:
        raise ValueError(f"The ticket holds a start value of {extra[0]!r}, which the net's "
                         "module does not have.")


def given_ticket(ticket: Ticket, init: str
                 ) -> Callable[[Session, PruningRule, SearchState], Iterator[Round]]:
    """The search that trains ``ticket`` once on the session's data (transfer).

    With ``init="rewind"`` the ticket trains from its own start weights (they
    must cover the net's whole state); ``"reinit"`` and ``"permute"`` draw
    fresh ones (the baselines). The round is numbered as the ticket's round.
    """

    def search(session: Session, rule: PruningRule, state: SearchState) -> Iterator[Round]:
        check_ticket(ticket, session, init)
        masks = {name: np.array(mask, dtype=bool) for name, mask in ticket.masks.items()}
        state.next_round = ticket.round
        if init == "rewind":
            start = {name: np.array(ticket.weights[name], dtype=value.dtype)
                     for name, value in session.theta_0.items()}
            trained = session.run_round(ticket.round, masks, rewound_weights(start, masks))
        else:
            trained = session.baseline(masks, ticket.round, init)
        state.next_round += 1
        # prune() goes on from this ticket, rewinding to what it trained from.
        state.rewind_state = trained.start
        state.accept(trained, session.prunable)
        yield trained

    return search


def planned_rounds(search: str, state: SearchState, rule: PruningRule) -> int | None:
    """How many rounds ``search`` will train from ``state`` (a progress bar's total).

    Exact for the one-shot searches. For IMP, the rounds until
    ``target_sparsity`` or ``max_rounds``, counted by pruning stand-in
    weights (under local scope the counts do not depend on the values; under
    global scope, floors that bind can change them); ``score_tolerance`` may
    end the search sooner. ``None`` when nothing fixes the count.
    """
    if search == "snip":
        return 1
    if search == "early_bird":
        return 2
    if rule.target_sparsity is None and rule.max_rounds is None:
        return None
    n_prunable = sum(mask.size for mask in state.masks.values())
    target = (None if rule.target_sparsity is None
              else target_active_count(n_prunable, rule.target_sparsity))
    rng = np.random.default_rng(0)
    stand_in = SearchState(rewind_state={}, masks=state.masks,
                           trained_weights={name: rng.random(mask.shape)
                                            for name, mask in state.masks.items()})
    rounds = 0
    while not ((rule.max_rounds is not None and rounds >= rule.max_rounds)
               or (target is not None and n_active(stand_in.masks) <= target)):
        masks = _next_masks(stand_in, rule, target)
        if masks is None:
            break
        stand_in.masks = masks
        rounds += 1
    return rounds + 1


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
    "early_bird": early_bird,
    "snip": snip,
}
