"""The path of a search: each trained round, as the fitted estimator it stands for.

:func:`ticket_path` runs an estimator's search on a clone and yields one
:class:`TicketPathPoint` per trained round, leaving the estimator untouched:
``lasso_path`` beside ``LassoCV``. A point's ``estimator`` is what ``fit``
leaves had the search ended at that round, so any scikit-learn scorer,
``scorer(point.estimator, X, y)``, scores a round as it scores a fit.

``fit`` walks the same :class:`SearchPath` on the estimator itself and keeps
its last point (:func:`kept_attributes`); :func:`~skticket.ticket_curve`
scores every point and its random baselines. The estimator opens the path
(validating and encoding the data, sizing the net, drawing the seeds is its
job); this module trains the rounds, snapshots where the search stands after
each, and builds the fitted attributes of a round.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sklearn.base import clone

from ._rng import preserved_global_state
from ._search import SearchProgress, SearchRun
from ._session import Round, Session
from ._ticket import TICKET_KINDS

if TYPE_CHECKING:
    from ._estimators import BaseLotteryTicket

__all__ = [
    "SearchPath",
    "TicketPathPoint",
    "fitted_attributes",
    "kept_attributes",
    "ticket_path",
    "trained_as",
]

def trained_as(session: Session, trained: Round, init: str) -> Round:
    """``trained``'s masks trained from ``init``: the round itself when it trained from
    ``init``, else its random baseline ``init`` ("reinit" or "permute"), or its sign
    ticket ("sign": the round's rewound start, each survivor at its sign times its
    layer's initializer standard deviation), trained now with the round's data order.

    What ``ticket_init`` asks of the ticket a fit (or ``prune()``) keeps.

    Raises
    ------
    ValueError
        ``init="rewind"`` or ``"sign"`` of a round that trained from fresh weights
        (a given ticket's baseline): its rewound start is not in the search.
    """
    if trained.init == init:
        return trained
    if init in ("rewind", "sign") and trained.init != "rewind":
        raise ValueError(f"Round {trained.index} trained from {trained.init!r} start weights; "
                         "the search holds no rewound start of it.")
    baseline, = session.baselines(trained.masks, trained.index, [init], start=trained.start)
    return baseline


def kept_attributes(session: Session, progress: SearchProgress, kept: Round,
                    records: list[dict]) -> dict[str, Any]:
    """The fitted attributes of a search that keeps ``kept``, with ``records`` trained
    and ``progress`` where it stands: what ``fit`` and ``prune()`` set.

    The whole start state (biases and buffers too) is in the ticket: training it
    again, on this data or other, needs it. The session (without its data) and
    the progress are kept so that ``prune()`` can go on.
    """
    return {"rounds_": list(records), "net_": kept.result.net,
            "winning_ticket_": kept.ticket(), "_session_": session.detached(),
            "_search_progress_": progress}


class SearchPath:
    """A search's rounds on one fit's data, each trained as the path is iterated.

    An iterator of :class:`TicketPathPoint`. The estimator opens it (the data
    validated and encoded, the net sized, the seeds drawn) and ``fit`` and
    :func:`ticket_path` iterate it. Each round trains with the global random
    states, torch's thread count and default dtype restored after it, as
    ``fit`` leaves them; between two rounds the caller's own draws are its
    own.

    Parameters
    ----------
    estimator : LotteryTicketClassifier or LotteryTicketRegressor
        The estimator the path was opened on: its parameters make the points'
        estimators (clones; it is never changed here).
    run : SearchRun
        The search opened on the data.
    fitted : dict
        The fitted attributes the data gives every point's estimator (the
        target encoding, ``n_features_in_``, the start point).
    device : str
        The net's device, whose random state is restored.

    Attributes
    ----------
    planned_rounds : int or None
        The rounds the search plans to train (a progress bar's total).
    """

    def __init__(self, estimator: BaseLotteryTicket, run: SearchRun, fitted: dict[str, Any],
                 device: str) -> None:
        self.estimator = estimator
        self.run = run
        self.fitted = fitted
        self.device = device
        self.planned_rounds = run.planned_rounds()
        self._rounds = run.rounds()  # a generator: nothing trains until asked
        self._records: list[dict] = []
        self._winning: TicketPathPoint | None = None

    def __iter__(self) -> SearchPath:
        return self

    def __length_hint__(self) -> int:
        if self.planned_rounds is None:
            return NotImplemented
        return max(self.planned_rounds - len(self._records), 0)

    def __next__(self) -> TicketPathPoint:
        with preserved_global_state(self.device):
            trained = next(self._rounds)
        self._records.append(trained.record)
        # Searches rebind (never mutate) what their progress holds, so a shallow copy
        # is where the search stood after this round, whatever it trains next.
        point = TicketPathPoint(self, trained, records=list(self._records),
                                progress=copy.copy(self.run.progress), winning=self._winning,
                                accepted=trained.accepted)
        if trained.accepted:
            self._winning = point._winning = point
        return point


class TicketPathPoint:
    """One trained round of a search's path, and the fitted estimator it stands for.

    :func:`ticket_path` yields one per trained round. Its :attr:`estimator` is
    what ``fit`` leaves had the search ended at this round, so that
    ``scorer(point.estimator, X_test, y_test)`` scores the round as the
    scorer scores that fit.

    Parameters
    ----------
    path : SearchPath
        The path the round is on (made by :func:`ticket_path`, not by hand).
    trained : Round
        The trained round.
    records : list of dict
        The records of the path's rounds up to this one.
    progress : SearchProgress
        Where the search stood after this round.
    winning : TicketPathPoint or None
        The point of the last round the search accepted before this one (an
        accepted point then becomes its own).
    accepted : bool
        Whether the search accepted the round.
    origin : TicketPathPoint or None, default=None
        For a point of :meth:`trained_from`, the search's point it trains again.

    Attributes
    ----------
    record : dict
        The round's record, as ``rounds_`` lists it (for a point of
        :meth:`trained_from`, the record of that training).
    round : int
        The round's number.
    init : {"rewind", "reinit", "permute", "sign"}
        What the round's ticket trained from: its own rewound start, fresh
        weights, or its start's signs at a constant magnitude per layer.
    accepted : bool
        False for a round the search trained but did not keep (out of
        ``score_tolerance``); the estimator then keeps the round before.
    winning_round : int or None
        The round whose ticket the estimator keeps: this one if accepted,
        else the last accepted before it (None: none yet).

    See Also
    --------
    ticket_path : Yields the points of a search.
    """

    def __init__(self, path: SearchPath, trained: Round, *, records: list[dict],
                 progress: SearchProgress, winning: TicketPathPoint | None, accepted: bool,
                 origin: TicketPathPoint | None = None) -> None:
        self._path = path
        self._round = trained
        self._records = records
        self._progress = progress
        self._winning = winning
        # A point of trained_from(): the search's point it retrains, and its estimator
        # keeps its own training whatever the search accepted.
        self._origin = origin
        self._trained_from: dict[str, TicketPathPoint] = {}
        self._estimator: BaseLotteryTicket | None = None
        self.accepted = accepted

    @property
    def record(self) -> dict:
        return self._round.record

    @property
    def round(self) -> int:
        return self._round.index

    @property
    def init(self) -> str:
        return self._round.init

    @property
    def winning_round(self) -> int | None:
        if self._origin is not None:
            return self.round
        return None if self._winning is None else self._winning.round

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(round={self.round}, init={self.init!r}, "
                f"sparsity={self.record['sparsity']:.4f}, accepted={self.accepted})")

    def ticket(self):
        """The round's ticket: its masks and the whole start state it trained from.

        Returns
        -------
        Ticket
        """
        return self._round.ticket()

    def trained_from(self, init: str) -> TicketPathPoint:
        """This round's masks trained from ``init``, as a point of its own (trained once).

        ``"rewind"`` is the round as the search trained it; ``"reinit"``
        (fresh weights) and ``"permute"`` (each layer's mask shuffled over its
        whole matrix, fresh weights) are its random baselines, and ``"sign"``
        its sign ticket (the rewound start's signs times each layer's
        initializer standard deviation), trained with the round's data order,
        as ``ticket_init`` trains them. The point's
        estimator keeps this training as its ticket, with ``ticket_init=init``:
        for an accepted round, what ``fit`` with ``ticket_init=init`` leaves
        had the search ended here.

        Parameters
        ----------
        init : {"rewind", "reinit", "permute", "sign"}

        Returns
        -------
        TicketPathPoint
        """
        point, = self.trained_from_each([init])
        return point

    def trained_from_each(self, inits: Sequence[str]) -> list[TicketPathPoint]:
        """:meth:`trained_from` of each of ``inits``; the baselines not trained yet are
        trained together, as one stack (:meth:`Session.baselines
        <skticket._session.Session.baselines>`).

        Parameters
        ----------
        inits : sequence of {"rewind", "reinit", "permute", "sign"}

        Returns
        -------
        list of TicketPathPoint
            One per init, in order.
        """
        unknown = [init for init in inits if init not in TICKET_KINDS]
        if unknown:
            raise ValueError(f"init must be one of {list(TICKET_KINDS)}, got {unknown[0]!r}.")
        origin = self._origin or self
        path = self._path
        for init in inits:
            if init == origin._round.init and init not in origin._trained_from:
                origin._trained_from[init] = self._retrained(origin, origin._round)
        untrained = list(dict.fromkeys(init for init in inits
                                       if init not in origin._trained_from))
        if untrained:
            for init in ("rewind", "sign"):
                if init in untrained and origin._round.init != "rewind":
                    trained_as(path.run.session, origin._round, init)  # refused there
            with preserved_global_state(path.device):
                baselines = path.run.session.baselines(origin._round.masks, origin._round.index,
                                                       untrained, start=origin._round.start)
            for init, trained in zip(untrained, baselines, strict=True):
                origin._trained_from[init] = self._retrained(origin, trained)
        return [origin._trained_from[init] for init in inits]

    def _retrained(self, origin: TicketPathPoint, trained: Round) -> TicketPathPoint:
        return TicketPathPoint(self._path, trained, records=origin._records,
                               progress=origin._progress, winning=None,
                               accepted=origin.accepted, origin=origin)

    @property
    def estimator(self) -> BaseLotteryTicket:
        """A fitted estimator of the path's class and parameters, as ``fit`` leaves it had
        the search ended at this round (built, and with ``ticket_init="reinit"``,
        ``"permute"`` or ``"sign"`` its baseline trained, on first access).

        Its ``rounds_`` are the rounds up to this one, its ``winning_ticket_``
        and ``net_`` those of :attr:`winning_round` (or of the
        :meth:`trained_from` training), and its ``prune()`` goes on from
        here as the fitted estimator's would.
        """
        if self._estimator is None:
            estimator = clone(self._path.estimator)
            init = self._kept_init()
            if estimator.ticket_init != init:
                estimator.set_params(ticket_init=init)
            for name, value in fitted_attributes(self).items():
                setattr(estimator, name, value)
            self._estimator = estimator
        return self._estimator

    def _kept_init(self) -> str:
        # A point of trained_from() keeps its own training; a search's point, the
        # winning round trained as the estimator's ticket_init asks.
        return self.init if self._origin is not None else self._path.estimator.ticket_init


def fitted_attributes(point: TicketPathPoint) -> dict[str, Any]:
    """Every fitted attribute of the estimator that keeps ``point``: what its
    :attr:`~TicketPathPoint.estimator` holds and what ``fit`` sets on itself.

    With ``ticket_init="reinit"``, ``"permute"`` or ``"sign"`` the winning round's
    baseline (or sign ticket) is trained here (once per point).
    """
    if point._origin is not None:
        kept = point._round
    elif point._winning is None:
        raise ValueError(f"No round of the search was accepted up to round {point.round}: "
                         "there is no ticket to keep.")
    else:
        kept = point._winning.trained_from(point._kept_init())._round
    path = point._path
    return {**path.fitted, **kept_attributes(path.run.session, point._progress, kept,
                                             point._records)}


def ticket_path(estimator: BaseLotteryTicket, X, y, *,
                sample_weight=None) -> Iterator[TicketPathPoint]:
    """Each trained round of an estimator's search, run on a clone.

    The search ``fit`` would run (the estimator's ``search``, pruning
    parameters, net and ``random_state``, with ``memory`` if set) trains on a
    clone of ``estimator`` one round at a time, as the returned iterator is
    advanced; ``estimator`` itself is never changed. The data are validated,
    encoded and the net sized now, as ``fit`` does (and with the same errors).
    Each :class:`TicketPathPoint` holds the round's ``record`` and
    ``ticket()``, and an ``estimator``: what ``fit`` leaves had the search
    ended at that round, so that a scikit-learn scorer,
    ``scorer(point.estimator, X_test, y_test)``, or
    ``point.estimator.score(X_test, y_test)`` scores the round exactly as it
    scores that fit.

    Parameters
    ----------
    estimator : LotteryTicketClassifier or LotteryTicketRegressor
        Its parameters decide the search; it is cloned, never changed.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Training data, as :meth:`~skticket.LotteryTicketClassifier.fit` takes it.
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        Target values.
    sample_weight : float or array-like of shape (n_samples,), default=None
        Per-sample weights, as in ``fit``.

    Returns
    -------
    iterator of TicketPathPoint
        One point per trained round, in order, each trained when the iterator
        reaches it; ``operator.length_hint`` gives the rounds the search
        plans, when it knows. A Ctrl-C or a diverged round propagates; the
        points already yielded keep their rounds.

    See Also
    --------
    LotteryTicketClassifier : Keeps the last point of its search's path.
    ticket_curve : Scores every point of the path and its random baselines.

    Examples
    --------
    >>> from sklearn.base import clone
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skticket import LotteryTicketClassifier, ticket_path
    >>> X, y = load_iris(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> est = LotteryTicketClassifier(target_sparsity=0.75, random_state=0)
    >>> est = est.set_params(net__max_epochs=5, net__module__hidden_units=(16,))
    >>> points = list(ticket_path(est, X, y))
    >>> [(point.round, point.record["sparsity"]) for point in points]
    [(0, 0.0), (1, 0.5), (2, 0.75)]
    >>> hasattr(est, "n_features_in_")  # the estimator itself is untouched
    False

    Round 1's estimator is the fit whose search ends at round 1:

    >>> fitted = clone(est).set_params(max_rounds=1).fit(X, y)
    >>> points[1].estimator.score(X, y) == fitted.score(X, y)
    True
    """
    # fit walks a SearchPath, so this module is below the estimators and imports
    # them only when a path is asked for.
    from ._estimators import BaseLotteryTicket

    if not isinstance(estimator, BaseLotteryTicket):
        raise TypeError("ticket_path needs a LotteryTicketClassifier or "
                        f"LotteryTicketRegressor, got {type(estimator).__name__}.")
    return clone(estimator)._open_path(X, y, sample_weight)
