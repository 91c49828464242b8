"""Searches: strategies that decide which rounds to train, one trained round at a time.

A search is a small public object, one class per strategy, with its own
parameters and their validation: :class:`IMP`, :class:`EarlyBird` and
:class:`SNIP`, and :class:`GivenTicket` (what an estimator's ``ticket=``
runs). Each is a scikit-learn style parameter object (``get_params``,
``set_params``, ``clone``), so an estimator's ``search=`` is gridable as
``search__*`` the way ``net__*`` is. A search never trains on its own: the
estimator opens a :class:`SearchRun` on one fit's data (the
:class:`~skticket._session.Session` every search shares, the
:class:`PruningRule` the estimator's pruning parameters describe, and the
:class:`SearchProgress` that says where the search stands) and hands it to the
search's :meth:`Search.rounds`, which yields each trained round; the search
path (:mod:`skticket._path`, which ``fit``, ``ticket_path`` and
``ticket_curve`` walk) records each, and after any round the run's progress
describes the winning ticket so far.

A new search is one new subclass of :class:`Search`: its ``__init__`` stores
its parameters, ``_parameter_constraints`` validates them, ``rounds(run)``
yields what it trains and ``planned_rounds(run)`` says how many rounds that
will be (for progress bars). What it needs from inside a training (a
snapshot, a stopping rule, masks that move) it asks for with training hooks
(:class:`~skticket.TrainingHook`, :mod:`skticket._hooks`), passed to
:meth:`SearchRun.train`.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from ._compat import Interval, StrOptions, validate_params
from ._hooks import EarlyBirdStop, LateResetCapture, MaskSchedule, TrainingHook
from ._mask_schedules import GradientRegrowth, GradualSchedule, MaskUpdateSchedule, MomentumRegrowth
from ._pruning import (
    MagnitudeRule,
    n_active,
    rewound_weights,
    target_active_count,
)
from ._rng import round_seed
from ._session import Round, Session
from ._ticket import TICKET_KINDS, Ticket
from ._training import ModuleState, prunable_weights

__all__ = [
    "IMP",
    "SEARCHES",
    "SNIP",
    "EarlyBird",
    "GivenTicket",
    "GradualPruning",
    "PruningRule",
    "RigL",
    "Search",
    "SearchProgress",
    "SearchRun",
    "SparseMomentum",
    "SparseTraining",
    "captured_rewind_point",
    "late_reset_capture",
    "prune_once",
]


@dataclass(frozen=True)
class PruningRule:
    """What the estimator's pruning parameters say, read when a search (or ``prune()``) starts.

    Attributes mirror the estimators' parameters: ``prune_fraction``,
    ``scope``, ``layer_fractions`` (``layer_prune_fractions``, checked),
    ``min_weights`` (``min_weights_per_layer``), ``target_sparsity``,
    ``max_rounds``, ``score_tolerance``, ``rewind_step`` and ``criterion``
    (``prune_criterion``).
    """

    prune_fraction: float
    scope: str
    layer_fractions: Mapping[str, float]
    min_weights: int
    target_sparsity: float | None = None
    max_rounds: int | None = None
    score_tolerance: float | None = None
    rewind_step: int = 0
    criterion: str = "large_final"

    @property
    def magnitude(self) -> MagnitudeRule:
        """The rate, scope, per-layer rates, floor and criterion every magnitude pruning
        follows."""
        return MagnitudeRule(fraction=self.prune_fraction, scope=self.scope,
                             layer_fractions=dict(self.layer_fractions),
                             min_weights=self.min_weights, criterion=self.criterion)

    def refuse_criterion(self, search_name: str) -> None:
        """Refuse a ``criterion`` other than ``"large_final"`` for a search that ranks scores
        of its own rather than a trained ticket's weights (SNIP, the one-training
        searches): the criterion would change nothing there."""
        if self.criterion != "large_final":
            raise ValueError(
                f"prune_criterion={self.criterion!r} ranks the weights of a trained ticket "
                f"against where they started; search={search_name!r} ranks scores of its "
                "own, so the criterion would change nothing: leave prune_criterion="
                "'large_final', or use search='imp' or 'early_bird'.")


@dataclass(eq=False)
class SearchProgress:
    """Where a search stands: the winning ticket so far and what the next round needs.

    Kept after ``fit`` (it holds no data) so that ``prune()`` can go on.

    Attributes
    ----------
    rewind_point : dict of str to ndarray
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

    rewind_point: ModuleState
    masks: dict[str, np.ndarray]
    trained_weights: ModuleState
    round: int = 0
    next_round: int = 0

    @classmethod
    def start(cls, session: Session) -> SearchProgress:
        """Before round 0: the dense masks, rewinding to theta_0."""
        return cls(rewind_point=session.theta_0, masks=session.dense_masks(), trained_weights={})

    def accept(self, trained: Round, prunable: list[str]) -> None:
        """Make ``trained`` the winning ticket."""
        self.masks = trained.masks
        self.trained_weights = prunable_weights(trained.result.net, prunable)
        self.round = trained.index


class SearchRun:
    """A search opened on one fit's data: what drives it, and what it trains with.

    An estimator opens one on the data of a fit, and its search path
    (:func:`skticket.ticket_path`, which ``fit`` walks too) drives it::

        total = run.planned_rounds()   # for a progress bar; None if unknown
        for trained in run.rounds():   # each trained round, as it is trained
            print(trained.record)

    A :class:`Search` receives the run in :meth:`Search.rounds` and trains
    through it (:meth:`train`, :meth:`accept`); the session, rule and
    progress are there for searches that need more.

    Parameters
    ----------
    search : Search
        The search to run; its parameters are validated here.
    session : Session
        What every search of the fit shares, and the only way to train.
    rule : PruningRule
        The estimator's pruning parameters.
    progress : SearchProgress or None, default=None
        Where the search starts; ``None``: before round 0 (dense masks,
        rewinding to theta_0).

    Attributes
    ----------
    search : Search
    session : Session
    rule : PruningRule
    progress : SearchProgress
    """

    def __init__(self, search: Search, session: Session, rule: PruningRule,
                 progress: SearchProgress | None = None) -> None:
        if not isinstance(search, Search):
            raise TypeError(f"search must be a Search, got {type(search).__name__}.")
        validate_params(search)
        self.search = search
        self.session = session
        self.rule = rule
        self.progress = SearchProgress.start(session) if progress is None else progress

    # --- driving the search ---------------------------------------------------

    def planned_rounds(self) -> int | None:
        """Rounds the search plans to train from here (a progress bar's total), or None."""
        return self.search.planned_rounds(self)

    def rounds(self) -> Iterator[Round]:
        """Train the search's rounds, yielding each as it is trained."""
        return self.search.rounds(self)

    def baseline(self, masks: dict[str, np.ndarray], index: int, kind: str) -> Round:
        """The random-ticket baseline ``kind`` ("reinit" or "permute") of ``masks``, trained
        with round ``index``'s data order.

        Parameters
        ----------
        masks : dict of str to bool ndarray
            The ticket's masks.
        index : int
            The round whose data order (and baseline seeds) to use.
        kind : {"reinit", "permute"}
            Fresh weights on the same masks, or on each layer's mask shuffled.

        Returns
        -------
        Round
        """
        return self.session.baseline(masks, index, kind)

    # --- what a search trains with ---------------------------------------------

    @property
    def masks(self) -> dict[str, np.ndarray]:
        """The winning ticket's masks so far (before any round: every weight kept)."""
        return self.progress.masks

    @property
    def n_prunable(self) -> int:
        """How many weights the masks cover."""
        return sum(mask.size for mask in self.progress.masks.values())

    def target_n_active(self) -> int:
        """Weights left at ``target_sparsity``; a ``ValueError`` when it is None."""
        if self.rule.target_sparsity is None:
            raise ValueError(f"search={_name(self.search)!r} prunes to target_sparsity in one "
                             "step; set target_sparsity (it is None).")
        return target_active_count(self.n_prunable, self.rule.target_sparsity)

    def train(self, masks: dict[str, np.ndarray], *, index: int | None = None,
              hooks: Iterable[TrainingHook] = ()) -> Round:
        """Train ``masks``, the survivors rewound, as round ``index`` (default: the next).

        Each of ``hooks`` runs its callback in the training, and the round's
        record lists their summaries, in order, under ``"hook_summaries"``;
        ``memory`` keys the training by the hooks' values. A hook that moves
        the masks leaves the round with those the training ended with. The
        trained round is not the winning ticket until :meth:`accept` makes it
        so.

        Parameters
        ----------
        masks : dict of str to bool ndarray
            The masks to train (where they start, if a hook moves them).
        index : int or None, default=None
            The round's number (its data order); None: the next.
        hooks : iterable of TrainingHook, default=()
            What the search needs from inside the training.

        Returns
        -------
        Round
        """
        hooks = tuple(hooks)
        for hook in hooks:
            if not isinstance(hook, TrainingHook):
                raise TypeError(f"hooks must be TrainingHook instances, got "
                                f"{type(hook).__name__}: {hook!r}.")
        if index is not None:
            self.progress.next_round = index
        trained = self.session.train_round(self.progress.next_round, masks,
                                           rewound_weights(self.progress.rewind_point, masks),
                                           hooks=hooks)
        self.progress.next_round += 1
        return trained

    def accept(self, trained: Round) -> None:
        """Make ``trained`` the winning ticket (what ``fit`` returns and ``prune()`` goes on
        from).

        Parameters
        ----------
        trained : Round
            A round :meth:`train` returned.
        """
        self.progress.accept(trained, self.session.prunable)


def _name(search: Search) -> str:
    return next((name for name, cls in SEARCHES.items() if type(search) is cls),
                type(search).__name__)


class Search(BaseEstimator, metaclass=ABCMeta):
    """Base class of the searches: subclass it to add one.

    A search stores its parameters in a keyword-only ``__init__`` (and does
    nothing else there), declares their constraints in
    ``_parameter_constraints`` (checked when a run opens), and implements
    :meth:`rounds`; :meth:`planned_rounds` is optional. It keeps no state of
    its own between fits: everything a fit changes lives in the
    :class:`SearchRun`. Pass an instance as an estimator's ``search=``.

    Examples
    --------
    >>> from skticket import Search
    >>> class DenseOnly(Search):
    ...     '''Train the dense net and keep it.'''
    ...     def planned_rounds(self, run):
    ...         return 1
    ...     def rounds(self, run):
    ...         dense = run.train(run.masks)
    ...         run.accept(dense)
    ...         yield dense
    >>> DenseOnly()
    DenseOnly()
    """

    _parameter_constraints: ClassVar[dict] = {}

    def planned_rounds(self, run: SearchRun) -> int | None:
        """How many rounds :meth:`rounds` will train from ``run``'s progress (None: unknown).

        Only progress bars read it.

        Parameters
        ----------
        run : SearchRun
            The search opened on a fit's data: what it trains through.

        Returns
        -------
        int or None
        """
        return None

    @abstractmethod
    def rounds(self, run: SearchRun) -> Iterator[Round]:
        """Train the search's rounds through ``run``, yielding each as it is trained.

        Call ``run.accept(round)`` on each round that becomes the winning
        ticket; set ``round.accepted = False`` on one trained but not kept.

        Parameters
        ----------
        run : SearchRun
            The search opened on a fit's data: what it trains through.

        Yields
        ------
        Round
            Each trained round.
        """


def _next_masks(progress: SearchProgress, rule: PruningRule,
                target_n_active: int | None = None) -> dict[str, np.ndarray] | None:
    """The masks one round of magnitude pruning leaves, or None if nothing can go.

    The trained weights are scored against the rewind point: it is where their
    training started, and where the next ticket starts again.
    """
    masks = rule.magnitude.prune(progress.trained_weights, progress.masks, target_n_active,
                                 initial=progress.rewind_point)
    return None if n_active(masks) == n_active(progress.masks) else masks


def _imp_reached(rule: PruningRule, round_index: int, masks: dict[str, np.ndarray],
                 target_n_active: int | None) -> bool:
    """IMP's stopping rule: after round ``round_index``, with ``masks``, is the search
    done (``max_rounds`` trained, or ``target_sparsity`` reached)? ``rounds`` and
    ``planned_rounds`` both ask it."""
    return ((rule.max_rounds is not None and round_index >= rule.max_rounds)
            or (target_n_active is not None and n_active(masks) <= target_n_active))


def late_reset_capture(rule: PruningRule) -> tuple[TrainingHook, ...]:
    """The hooks of a dense training that takes the late-reset snapshot: one
    :class:`~skticket._hooks.LateResetCapture` with ``rewind_step > 0``, none without."""
    return (LateResetCapture(rule.rewind_step),) if rule.rewind_step > 0 else ()


def captured_rewind_point(dense: Round, rule: PruningRule, *, training: str,
                          remedy: str) -> ModuleState:
    """The late-reset snapshot ``dense`` took (its first hook's summary, see
    :func:`late_reset_capture`), refused by name where ``training`` (what trained it)
    had fewer optimizer steps than ``rewind_step``; ``remedy`` says what to do."""
    rewind_point = dense.record["hook_summaries"][0]
    if rewind_point is None:
        steps = sum(dense.result.net.history[:, "train_batch_count"])
        raise ValueError(f"rewind_step={rule.rewind_step} is beyond the {steps} optimizer "
                         f"steps of {training}{remedy}")
    return rewind_point


def _train_dense_round(run: SearchRun, *hooks: TrainingHook) -> Round:
    """Round 0: the dense net, with the late-reset snapshot taken if asked for, and
    ``hooks`` after it (their summaries follow the snapshot's in the record)."""
    rule, progress = run.rule, run.progress
    capture = late_reset_capture(rule)
    dense = run.train(progress.masks, index=0, hooks=(*capture, *hooks))
    if capture:
        # Late resetting: one snapshot, taken once, for every later round.
        progress.rewind_point = captured_rewind_point(
            dense, rule, training="the dense training",
            remedy="; lower rewind_step or train for more epochs.")
    run.accept(dense)
    progress.next_round = 1
    return dense


class IMP(Search):
    """Iterative magnitude pruning (Frankle & Carbin, ICLR 2019): the default search.

    Round 0 trains the dense net; round k trains the ticket left by k rounds
    of magnitude pruning (``prune_fraction`` of the survivors per round, under
    the estimator's ``scope``, ``layer_prune_fractions`` and
    ``min_weights_per_layer``, ranked by its ``prune_criterion``), rewound to
    theta_0 (or to ``rewind_step``) and trained in full. It stops after the
    round that meets ``target_sparsity`` or ``max_rounds``, when every layer
    is at its floor, or after the first round out of ``score_tolerance``
    (recorded with ``accepted=False``; the winning ticket is the round
    before). ``search="imp"`` means ``IMP()``.

    IMP has no parameters of its own: the estimator's pruning parameters are
    its rule.

    See Also
    --------
    EarlyBird, SNIP : One-shot searches that train the ticket once.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skticket import IMP, LotteryTicketClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LotteryTicketClassifier(search=IMP(), prune_fraction=0.5, target_sparsity=0.75,
    ...                               random_state=0).set_params(net__max_epochs=5)
    >>> [r["round"] for r in clf.fit(X, y).rounds_], clf.winning_ticket_.sparsity
    ([0, 1, 2], 0.75)
    """

    def __init__(self) -> None:
        pass

    def planned_rounds(self, run: SearchRun) -> int | None:
        """The rounds until ``target_sparsity`` or ``max_rounds``, the dense one included.

        Counted by pruning stand-in weights (:meth:`planned_active`);
        ``score_tolerance`` may end the search sooner. ``None`` when neither
        ``target_sparsity`` nor ``max_rounds`` is set.
        """
        rule = run.rule
        if rule.target_sparsity is None and rule.max_rounds is None:
            return None
        return len(self.planned_active(run))

    def planned_active(self, run: SearchRun) -> list[int]:
        """The weights each planned round keeps, the dense round first: the sparsity
        levels IMP's rule visits on its way to ``target_sparsity`` or ``max_rounds``.

        Counted by pruning stand-in weights: under local scope the counts do
        not depend on the values; under global scope, floors that bind can
        change them. Without ``target_sparsity`` and ``max_rounds`` the plan
        goes on until every layer is at its floor. The CV estimators train
        the searches whose rounds are not a path to these levels.

        Parameters
        ----------
        run : SearchRun
            A search opened on the data (of any search: only its pruning
            rule and masks are read).

        Returns
        -------
        list of int
            Weights left after each planned round, the dense round's first.
        """
        rule, progress = run.rule, run.progress
        target = (None if rule.target_sparsity is None
                  else target_active_count(run.n_prunable, rule.target_sparsity))
        rng = np.random.default_rng(0)
        # Stand-ins that started at 0: every criterion then ranks them by magnitude.
        stand_in = SearchProgress(rewind_point={name: np.zeros(mask.shape)
                                                for name, mask in progress.masks.items()},
                                  masks=progress.masks,
                                  trained_weights={name: rng.random(mask.shape)
                                                   for name, mask in progress.masks.items()})
        active = [n_active(stand_in.masks)]
        while not _imp_reached(rule, len(active) - 1, stand_in.masks, target):
            masks = _next_masks(stand_in, rule, target)
            if masks is None:
                break
            stand_in.masks = masks
            active.append(n_active(masks))
        return active

    def rounds(self, run: SearchRun) -> Iterator[Round]:
        """The dense round, then each ticket as it is trained."""
        rule, progress = run.rule, run.progress
        dense = _train_dense_round(run)
        yield dense
        target = (None if rule.target_sparsity is None
                  else target_active_count(run.n_prunable, rule.target_sparsity))
        dense_score = dense.record["valid_score"]
        while not _imp_reached(rule, progress.round, progress.masks, target):
            masks = _next_masks(progress, rule, target)
            if masks is None:
                return  # every layer is at its floor
            trained = run.train(masks)
            score = trained.record["valid_score"]
            trained.accepted = (rule.score_tolerance is None
                                or score >= dense_score - rule.score_tolerance)
            if trained.accepted:
                run.accept(trained)
            yield trained
            if not trained.accepted:
                return  # the previous ticket was the sparsest within tolerance


class EarlyBird(Search):
    """Early-bird tickets (You et al., ICLR 2020): draw the ticket during the dense training.

    After every epoch of the dense training (round 0) the mask that IMP would
    reach at ``target_sparsity`` is drawn from the current weights in one step
    (same scope, per-layer rates, floors and ``prune_criterion``; a criterion
    that compares with the rewind point draws no mask before the training
    has passed it). Once the newest mask is within
    ``tolerance`` of each of the ``window`` masks before it (the share of
    surviving weights that changed), the dense training stops; the survivors
    are rewound and the ticket is trained once (round 1). If the masks never
    settle, the whole dense training runs and the mask of its last epoch is
    the ticket. Round 0's record adds ``ticket_epoch``, ``mask_distances``
    (per epoch, the largest distance to the kept masks; None until one is
    kept) and ``masks_settled``. Needs the estimator's ``target_sparsity``.
    ``search="early_bird"`` means ``EarlyBird()``.

    Parameters
    ----------
    window : int, default=5
        Masks kept: the training stops once the newest is within
        ``tolerance`` of each of these.
    tolerance : float, default=0.02
        Largest share of the surviving weights that may differ between the
        newest mask and each kept one for the training to stop. Calibrated on
        digits (LeNet-300-100) and breast cancer (default net) at 80% and 95%
        sparsity, 3 seeds (``examples/calibrate_early_bird.py``): of 0.02,
        0.05, 0.1 and 0.2, the one whose tickets stayed within 1 point of
        IMP's mean accuracy on both in every run of the calibration (0.05
        passed one run by 0.01 points and failed the other). Looser ones stop
        sooner (0.1: epoch 10-21 of 30 on digits) but lose up to 1.6 points
        on breast cancer at 95%.

    See Also
    --------
    IMP : Trains the dense net to the end and prunes it over several rounds.
    SNIP : Prunes before any training, by connection sensitivity.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skticket import EarlyBird, LotteryTicketClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LotteryTicketClassifier(search=EarlyBird(window=2, tolerance=0.1),
    ...                               target_sparsity=0.8, random_state=0)
    >>> clf.set_params(net__max_epochs=10, search__window=3).search
    EarlyBird(tolerance=0.1, window=3)
    >>> [r["round"] for r in clf.fit(X, y).rounds_]
    [0, 1]
    >>> clf.get_params()["search__tolerance"]
    0.1
    """

    _parameter_constraints: ClassVar[dict] = {
        "window": [Interval(Integral, 1, None, closed="left")],
        "tolerance": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, *, window: int = 5, tolerance: float = 0.02) -> None:
        self.window = window
        self.tolerance = tolerance

    def planned_rounds(self, run: SearchRun) -> int:
        """2: the dense round and the ticket."""
        return 2

    def rounds(self, run: SearchRun) -> Iterator[Round]:
        """The (early-stopped) dense round, then the ticket."""
        stop = EarlyBirdStop(target_n_active=run.target_n_active(),
                             magnitude=run.rule.magnitude, window=self.window,
                             tolerance=self.tolerance, names=tuple(run.masks),
                             rewind_step=run.rule.rewind_step)
        dense = _train_dense_round(run, stop)
        drawn = dense.record["hook_summaries"][-1]
        dense.record.update(ticket_epoch=drawn["epoch"], mask_distances=drawn["distances"],
                            masks_settled=drawn["settled"])
        yield dense
        trained = run.train(drawn["masks"])
        run.accept(trained)
        yield trained


class SNIP(Search):
    """SNIP (Lee et al., ICLR 2019): prune at initialization, train the ticket once.

    Each pruned weight is scored by its connection sensitivity ``|w * dL/dw|``
    at theta_0, summed over ``batches`` mini-batches of the training data and
    the net's own loss; the lowest-scored weights are removed to exactly the
    estimator's ``target_sparsity``, with the per-layer sparsities IMP would
    reach (same scope, per-layer rates and floors). No dense net is trained:
    the one round, round 1, trains the ticket from theta_0 (so
    ``rewind_step`` must be 0). ``search="snip"`` means ``SNIP()``; with
    ``ticket_init="permute"`` it is the random control with SNIP's per-layer
    densities (Frankle et al., ICLR 2021).

    Parameters
    ----------
    batches : int, default=1
        Mini-batches (of the net's batch size, drawn from the estimator's
        ``random_state``) over which the sensitivities are summed.

    See Also
    --------
    EarlyBird : Draws the mask from a dense training that stops once it settles.
    IMP : Prunes trained weights by magnitude, a training per round.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skticket import SNIP, LotteryTicketClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LotteryTicketClassifier(search=SNIP(batches=2), target_sparsity=0.9,
    ...                               random_state=0).set_params(net__max_epochs=5)
    >>> [r["round"] for r in clf.fit(X, y).rounds_], round(clf.winning_ticket_.sparsity, 2)
    ([1], 0.9)
    """

    _parameter_constraints: ClassVar[dict] = {
        "batches": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, batches: int = 1) -> None:
        self.batches = batches

    def planned_rounds(self, run: SearchRun) -> int:
        """1: the ticket."""
        return 1

    def rounds(self, run: SearchRun) -> Iterator[Round]:
        """The ticket, pruned at initialization and trained once."""
        rule = run.rule
        target = run.target_n_active()
        if rule.rewind_step > 0:
            raise ValueError("search='snip' trains no dense net to rewind to a step of: "
                             "rewind_step must be 0.")
        rule.refuse_criterion(_name(self))
        masks = rule.magnitude.prune_to(run.session.sensitivity(self.batches), run.masks,
                                        target)
        trained = run.train(masks, index=1)
        run.accept(trained)
        yield trained


class SparseTraining(Search):
    """Base class of the one-training searches: the masks move while one net trains.

    The one round, round 1, trains from theta_0 with start masks of
    :meth:`start_masks` moved by the schedule of :meth:`schedule`; no dense
    net is trained first (so ``rewind_step`` must be 0) and nothing is
    retrained: ``net_`` is the sparse net that training produced. The round's
    masks (and ``winning_ticket_``'s) are those the training ended with, on
    the training's start weights (theta_0), so that ``fit(ticket=...)`` tests
    whether the mask is also a winning ticket trained from there, and
    ``ticket_init="reinit"``/``"permute"`` train that mask's baselines. The
    round's record adds ``mask_updates``: per update, the optimizer ``step``,
    ``n_active``, the share of the surviving weights ``regrown`` and the
    per-layer ``densities``. The estimator's ``target_sparsity`` is required.
    """

    def planned_rounds(self, run: SearchRun) -> int:
        """1: the one training."""
        return 1

    @abstractmethod
    def start_masks(self, run: SearchRun) -> dict[str, np.ndarray]:
        """The masks the training starts with.

        Parameters
        ----------
        run : SearchRun
            The search opened on a fit's data (``run.masks``, ``run.rule``,
            ``run.target_n_active()``).

        Returns
        -------
        dict of str to bool ndarray
        """

    @abstractmethod
    def schedule(self, run: SearchRun) -> MaskUpdateSchedule:
        """When and how the masks move during the training.

        Parameters
        ----------
        run : SearchRun
            The search opened on a fit's data.

        Returns
        -------
        MaskUpdateSchedule
            A frozen description of the updates (part of the ``memory`` key).
        """

    def rounds(self, run: SearchRun) -> Iterator[Round]:
        """The one training, its masks moving."""
        if run.rule.rewind_step > 0:
            raise ValueError(f"search={_name(self)!r} trains once from theta_0, with no dense "
                             "training to rewind to a step of: rewind_step must be 0.")
        run.rule.refuse_criterion(_name(self))
        trained = run.train(self.start_masks(run), index=1,
                            hooks=(MaskSchedule(self.schedule(run)),))
        (trained.record["mask_updates"],) = trained.record["hook_summaries"]
        # The ticket: the masks the training ended with, on the weights it started from.
        trained.start = rewound_weights(run.progress.rewind_point, trained.masks)
        run.accept(trained)
        yield trained


def random_masks(run: SearchRun) -> dict[str, np.ndarray]:
    """Masks at ``target_sparsity`` with the per-layer densities of the pruning rule, drawn
    at random positions (the ``"mask"`` seed stream): where a sparse-from-scratch training
    starts.

    The counts are those IMP's rule reaches (same scope, per-layer rates and
    floors) when every weight is ranked by a random score.
    """
    rule = run.rule
    rng = np.random.default_rng(round_seed(run.session.seeds["mask"], 1))
    scores = {name: rng.random(mask.shape) for name, mask in run.masks.items()}
    return rule.magnitude.prune_to(scores, run.masks, run.target_n_active())


_SHARE = Interval(Real, 0, 1, closed="both")
_STEPS = [None, Interval(Integral, 1, None, closed="left")]


class GradualPruning(SparseTraining):
    """Gradual magnitude pruning (Zhu & Gupta, 2017): prune while the one net trains.

    The training starts dense from theta_0. Every ``frequency`` optimizer
    steps from ``start`` to ``end`` (shares of the training's planned steps)
    the sparsity is raised on Zhu & Gupta's cubic schedule, ``s_t = s (1 - (1
    - p)^3)`` at progress ``p`` from ``start`` to ``end``, to reach the
    estimator's ``target_sparsity`` exactly at ``end``; each update removes
    the lowest-magnitude surviving weights by the rule IMP uses (the
    estimator's ``scope``, ``layer_prune_fractions``, ``prune_fraction`` and
    ``min_weights_per_layer`` decide the per-layer sparsities). Pruned weights
    stay pruned; after ``end`` the sparse net trains on to recover. The round,
    round 1, is that one training. ``search="gradual"`` means
    ``GradualPruning()``.

    Parameters
    ----------
    start : float, default=0.25
        Share of the training after which pruning starts.
    end : float, default=0.75
        Share of the training at which the target sparsity is reached. The
        defaults prune over the middle half of the training, leaving its last
        quarter to recover, the shape of the schedules Gale et al. (2019)
        trained with.
    frequency : int or None, default=None
        Optimizer steps between two updates; None: one epoch's steps (Zhu &
        Gupta update every 100 to 1,000 steps of trainings hundreds of times
        longer than a tabular one).

    See Also
    --------
    SparseMomentum, RigL : Start sparse and move the mask instead.
    IMP : Train, prune, rewind, repeat: a training per round.

    References
    ----------
    .. [1] M. Zhu and S. Gupta, "To prune, or not to prune: exploring the
       efficacy of pruning for model compression", arXiv:1710.01878, 2017.
    .. [2] T. Gale, E. Elsen and S. Hooker, "The state of sparsity in deep
       neural networks", arXiv:1902.09574, 2019.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skticket import GradualPruning, LotteryTicketClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LotteryTicketClassifier(search=GradualPruning(), target_sparsity=0.9,
    ...                               random_state=0).set_params(net__max_epochs=20)
    >>> clf.fit(X, y).rounds_[0]["round"], round(clf.winning_ticket_.sparsity, 2)
    (1, 0.9)
    """

    _parameter_constraints: ClassVar[dict] = {
        "start": [_SHARE], "end": [_SHARE], "frequency": _STEPS,
    }

    def __init__(self, *, start: float = 0.25, end: float = 0.75,
                 frequency: int | None = None) -> None:
        self.start = start
        self.end = end
        self.frequency = frequency

    def start_masks(self, run: SearchRun) -> dict[str, np.ndarray]:
        """Every weight kept: the training starts dense."""
        return run.masks

    def schedule(self, run: SearchRun) -> GradualSchedule:
        """The cubic schedule to the target, by the estimator's pruning rule."""
        if self.end < self.start:
            raise ValueError(f"GradualPruning's end ({self.end}) comes before its start "
                             f"({self.start}).")
        rule = run.rule
        return GradualSchedule(
            target_n_active=run.target_n_active(), n_prunable=run.n_prunable,
            magnitude=rule.magnitude, start=self.start, end=self.end, frequency=self.frequency)


class SparseMomentum(SparseTraining):
    """Sparse momentum (Dettmers & Zettlemoyer, 2019): sparse from the start, mask moved
    by the momentum.

    The training starts at the estimator's ``target_sparsity`` with random
    masks of the per-layer densities its pruning rule gives. At the end of
    every epoch but the last, each layer drops ``drop_fraction`` of its
    surviving weights, those of lowest magnitude (the fraction
    cosine-decayed to 0 over the training); the freed weights are
    redistributed over the layers in proportion to the mean momentum
    magnitude of each layer's surviving weights and regrown where the
    momentum is largest. The number of surviving weights is exactly the same
    after every update (the reference implementation's can fall below its
    target: it grows without checking that a position is inactive). New
    weights start at zero with their optimizer state reset. The momentum is
    the optimizer's: Adam's and AdamW's first moment, SGD's momentum buffer;
    an optimizer without one raises a ``ValueError``. The round, round 1, is
    that one training. ``search="sparse_momentum"`` means ``SparseMomentum()``.

    Parameters
    ----------
    drop_fraction : float, default=0.5
        Share of each layer's surviving weights dropped (and regrown) at the
        first update, decayed on a cosine to 0 at the end of the training:
        the paper's prune rate.

    See Also
    --------
    RigL : Regrows by the gradient, at a fixed density per layer.
    GradualPruning : Starts dense and prunes while training.

    References
    ----------
    .. [1] T. Dettmers and L. Zettlemoyer, "Sparse networks from scratch:
       faster training without losing performance", arXiv:1907.04840, 2019.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skticket import LotteryTicketClassifier, SparseMomentum
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LotteryTicketClassifier(search=SparseMomentum(), target_sparsity=0.8,
    ...                               random_state=0).set_params(net__max_epochs=5)
    >>> updates = clf.fit(X, y).rounds_[0]["mask_updates"]
    >>> len(updates), {u["n_active"] for u in updates} == {clf.winning_ticket_.n_active}
    (4, True)
    """

    _parameter_constraints: ClassVar[dict] = {"drop_fraction": [_SHARE]}

    def __init__(self, *, drop_fraction: float = 0.5) -> None:
        self.drop_fraction = drop_fraction

    def start_masks(self, run: SearchRun) -> dict[str, np.ndarray]:
        """Random masks at the target sparsity (:func:`random_masks`)."""
        return random_masks(run)

    def schedule(self, run: SearchRun) -> MomentumRegrowth:
        """Drop and regrow at every epoch's end but the last."""
        return MomentumRegrowth(drop_fraction=self.drop_fraction,
                                min_weights=run.rule.min_weights)


class RigL(SparseTraining):
    """RigL (Evci et al., 2020): sparse from the start, mask moved by the gradient.

    The training starts at the estimator's ``target_sparsity`` with random
    masks of the per-layer densities its pruning rule gives. Every
    ``update_every`` optimizer steps until ``end`` (a share of the training),
    each layer drops ``drop_fraction`` (cosine-decayed to 0 at ``end``) of its
    surviving weights, those of lowest magnitude, and grows as many where the
    dense gradient of that step's batch is largest; every layer keeps its
    number of weights. New weights start at zero with their optimizer state
    (momentum, Adam's moments) reset. The reference updates the mask instead
    of that step's optimizer step; here the step is taken first, with the
    old mask, and the mask moves after it. The round, round 1, is that one
    training. ``search="rigl"`` means ``RigL()``.

    Parameters
    ----------
    drop_fraction : float, default=0.3
        Share of each layer's surviving weights dropped and regrown at the
        first update (the paper's alpha).
    update_every : int or None, default=None
        Optimizer steps between two updates; None: one epoch's steps. The
        paper's 100 steps are a twelfth of an ImageNet epoch at its batch of
        4,096, a quarter of a CIFAR-10 epoch at 128; a tabular epoch is a few
        batches.
    end : float, default=0.75
        Share of the training after which the mask stays as it is.

    See Also
    --------
    SparseMomentum : Regrows by the momentum and moves weights between layers.
    GradualPruning : Starts dense and prunes while training.

    References
    ----------
    .. [1] U. Evci, T. Gale, J. Menick, P. S. Castro and E. Elsen, "Rigging the
       lottery: making all tickets winners", ICML 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skticket import LotteryTicketClassifier, RigL
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LotteryTicketClassifier(search=RigL(update_every=2), target_sparsity=0.8,
    ...                               random_state=0).set_params(net__max_epochs=8)
    >>> record = clf.fit(X, y).rounds_[0]
    >>> [u["step"] for u in record["mask_updates"]], round(record["sparsity"], 2)
    ([2, 4, 6], 0.8)
    """

    _parameter_constraints: ClassVar[dict] = {
        "drop_fraction": [_SHARE], "update_every": _STEPS, "end": [_SHARE],
    }

    def __init__(self, *, drop_fraction: float = 0.3, update_every: int | None = None,
                 end: float = 0.75) -> None:
        self.drop_fraction = drop_fraction
        self.update_every = update_every
        self.end = end

    def start_masks(self, run: SearchRun) -> dict[str, np.ndarray]:
        """Random masks at the target sparsity (:func:`random_masks`)."""
        return random_masks(run)

    def schedule(self, run: SearchRun) -> GradientRegrowth:
        """Drop by magnitude, grow by gradient, until ``end``."""
        return GradientRegrowth(drop_fraction=self.drop_fraction,
                                update_every=self.update_every, end=self.end)


def check_ticket(ticket: Ticket, session: Session, init: str) -> None:
    """Refuse a ticket that does not fit the session's sized net, naming the first mismatch."""
    theta_0 = session.theta_0
    for name, mask in ticket.masks.items():
        if name not in session.prunable:
            raise ValueError(f"The ticket masks {name!r}, which is not a parameter of this "
                             "net's module.")
        if mask.shape != theta_0[name].shape:
            raise ValueError(
                f"The ticket's mask of {name!r} has shape {mask.shape}, the net's parameter "
                f"{tuple(theta_0[name].shape)}.")
    if init not in ("rewind", "sign"):
        return
    for name, value in theta_0.items():
        if name not in ticket.weights:
            raise ValueError(
                f"The ticket holds no start value of {name!r}, which the net's module has; "
                f"ticket_init={init!r} needs the ticket's whole start theta_0.")
        if np.shape(ticket.weights[name]) != tuple(value.shape):
            raise ValueError(
                f"The ticket's start value of {name!r} has shape "
                f"{np.shape(ticket.weights[name])}, the net's {tuple(value.shape)}.")
    extra = [name for name in ticket.weights if name not in theta_0]
    if extra:
        raise ValueError(f"The ticket holds a start value of {extra[0]!r}, which the net's "
                         "module does not have.")


class GivenTicket(Search):
    """Train ``ticket`` once on the run's data (transfer): what an estimator's ``ticket=`` runs.

    With ``init="rewind"`` the ticket trains from its own start weights (they
    must cover the net's whole state), with ``"sign"`` from their signs times
    each layer's initializer standard deviation; ``"reinit"`` and
    ``"permute"`` draw fresh ones (the baselines). The one round is numbered
    as the ticket's round. The estimator makes one from its ``ticket`` and
    ``ticket_init``.

    Parameters
    ----------
    ticket : Ticket
        The masks (and start weights) to train.
    init : {"rewind", "reinit", "permute", "sign"}, default="rewind"
        What the ticket trains from.

    Examples
    --------
    >>> import numpy as np
    >>> from skticket import Ticket
    >>> from skticket._search import GivenTicket
    >>> ticket = Ticket(masks={"w": np.ones((2, 2), dtype=bool)}, weights={"w": np.ones((2, 2))},
    ...                 round=1)
    >>> GivenTicket(ticket=ticket, init="reinit").get_params()["init"]
    'reinit'
    """

    _parameter_constraints: ClassVar[dict] = {
        "ticket": [Ticket],
        "init": [StrOptions(set(TICKET_KINDS))],
    }

    def __init__(self, *, ticket: Ticket | None = None, init: str = "rewind") -> None:
        self.ticket = ticket
        self.init = init

    def planned_rounds(self, run: SearchRun) -> int:
        """1: the ticket."""
        return 1

    def rounds(self, run: SearchRun) -> Iterator[Round]:
        """The ticket, trained once."""
        ticket, session, progress = self.ticket, run.session, run.progress
        check_ticket(ticket, session, self.init)
        masks = {name: np.array(mask, dtype=bool) for name, mask in ticket.masks.items()}
        progress.next_round = ticket.round
        start = None
        if self.init in ("rewind", "sign"):
            start = {name: np.array(ticket.weights[name], dtype=value.dtype)
                     for name, value in session.theta_0.items()}
            start = rewound_weights(start, masks)
        if self.init == "rewind":
            trained = session.train_round(ticket.round, masks, start)
        else:  # a baseline of the ticket's masks; the sign ticket of its start
            trained, = session.baselines(masks, ticket.round, [self.init], start=start)
        progress.next_round += 1
        # prune() goes on from this ticket, rewinding to what it trained from.
        progress.rewind_point = trained.start
        run.accept(trained)
        yield trained


def prune_once(session: Session, rule: PruningRule, progress: SearchProgress) -> Round | None:
    """One more round of magnitude pruning from ``progress``'s ticket, accepted; None if
    every layer is at its floor. ``target_sparsity``, ``max_rounds`` and
    ``score_tolerance`` do not apply."""
    masks = _next_masks(progress, rule)
    if masks is None:
        return None
    run = SearchRun(IMP(), session, rule, progress)
    trained = run.train(masks)
    run.accept(trained)
    return trained


# The searches of their own modules build on the classes above.
from ._supermask import Supermask  # noqa: E402

#: The searches by the name an estimator's ``search`` parameter may give instead of an
#: object: the name means the class with its defaults.
SEARCHES: dict[str, type[Search]] = {
    "imp": IMP,
    "early_bird": EarlyBird,
    "snip": SNIP,
    "gradual": GradualPruning,
    "sparse_momentum": SparseMomentum,
    "rigl": RigL,
    "supermask": Supermask,
}
