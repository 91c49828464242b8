"""Winning versus random tickets across sparsity: the lottery-ticket paper's curve.

:func:`ticket_curve` runs iterative magnitude pruning once per repeat and scores
every round's ticket on test data, next to the random baselines of the same
mask; :func:`summarize_ticket_curve` reduces the repeats to mean and spread,
and :func:`plot_ticket_curve` draws the result. Every net is trained by the
search ``fit`` runs, walked the same way (:func:`~skticket.ticket_path`), and
scored through each round's fitted estimator, so the curve shows exactly what
``fit`` does.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from numbers import Integral
from typing import Any

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_consistent_length

from ._estimators import BaseLotteryTicket
from ._path import ticket_path
from ._progress import RoundProgress
from ._session import lockstep
from ._ticket import TICKET_KINDS, Ticket
from ._training import load_state, module_state

__all__ = ["plot_ticket_curve", "summarize_ticket_curve", "ticket_curve"]

PERCENT_TICKS = (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01)

# What each kind of row is called in legends.
_LABELS = {
    "dense": "dense net",
    "rewind": "winning ticket (rewind)",
    "reinit": "random reinit",
    "permute": "random permute + reinit",
    "sign": "signs kept, constant magnitude",
}

#: The kinds a curve scores unless asked for others: the lottery-ticket paper's curve.
_PAPER_TICKETS = ("rewind", "reinit", "permute")


def _records_or_frame(records: list[dict], as_frame: bool | None, what: str):
    if as_frame is False:
        return records
    try:
        import pandas as pd
    except ImportError:
        if as_frame:
            raise ImportError(
                f"{what}(as_frame=True) needs pandas; install it with "
                "pip install 'skticket[report]' (or pass as_frame=False for a list of "
                "records)."
            ) from None
        return records
    return pd.DataFrame.from_records(records)


def _as_records(curve) -> list[dict]:
    """Rows of a curve given as a DataFrame or as a list of dicts."""
    to_dict = getattr(curve, "to_dict", None)
    if callable(to_dict):
        return to_dict(orient="records")
    return [dict(row) for row in curve]


def _check_tickets(tickets: Iterable[str]) -> tuple[str, ...]:
    tickets = (tickets,) if isinstance(tickets, str) else tuple(tickets)
    unknown = [kind for kind in tickets if kind not in TICKET_KINDS]
    if not tickets or unknown:
        raise ValueError(
            f"tickets must name one or more of {list(TICKET_KINDS)}, got {list(tickets)}."
        )
    return tuple(dict.fromkeys(tickets))


def _row(kind: str, ticket: Ticket, score: float, accepted: bool,
         untrained_score: float | None) -> dict:
    row = {
        "round": ticket.round,
        "ticket": kind,
        "sparsity": ticket.sparsity,
        "weights_remaining": ticket.n_active / ticket.n_prunable,
        "n_active": ticket.n_active,
        "score": score,
        "accepted": accepted,
    }
    if untrained_score is not None:
        row["untrained_score"] = untrained_score
    return row


@contextlib.contextmanager
def _at_start(estimator: BaseLotteryTicket, ticket: Ticket) -> Iterator[BaseLotteryTicket]:
    """``estimator`` with its trained net's module holding the ticket's start weights (its
    masks on the weights it trained from: the ticket before training), put back after."""
    module = estimator.net_.module_
    trained = module_state(module)
    load_state(module, ticket.weights)
    try:
        yield estimator
    finally:
        load_state(module, trained)


def _scorer(metric: Callable[[Any, Any], float] | None) -> Callable[..., float]:
    """``scorer(estimator, X, y)``, scikit-learn's protocol: the estimator's ``score``, or
    ``metric(y_true, y_pred)`` on its ``predict``."""
    if metric is None:
        return lambda estimator, X, y: float(estimator.score(X, y))
    return lambda estimator, X, y: float(metric(y, estimator.predict(X)))


def _repeat_rows(estimator: BaseLotteryTicket, seed: int, X_train, y_train, X_test, y_test,
                 kinds, metric, score_untrained: bool = False):
    """One search path of ``estimator`` seeded with ``seed``: each round's tickets, scored
    on the test data (with ``score_untrained``, also before training).

    Returns the ``(row, ticket)`` pairs (the dense net first, as the round-0
    ticket, when the search trains one) and the records of the rounds trained.
    """
    # The search fit runs, on a clone (ticket_path clones it).
    path = ticket_path(clone(estimator).set_params(random_state=int(seed)), X_train, y_train)
    score = _scorer(metric)
    trained, records = [], []
    for point in path:
        # Each row scores its own training: the round as the search trained it
        # ("rewind", or the dense net), or one of its baselines, kept as the ticket.
        # A round's baselines train together (one stack).
        row_kinds = ("dense",) if point.round == 0 else kinds
        inits = [point.init if kind in ("dense", "rewind") else kind for kind in row_kinds]
        for kind, ticketed in zip(row_kinds, point.trained_from_each(inits), strict=True):
            trained.append((kind, ticketed, point.accepted or kind == "dense"))
        records.append(point.record)
    # Scored once every training is done: in lockstep (ticket_curve's repeats) a repeat
    # is run again for each round it trains, and only its last run scores.
    rows = []
    for kind, ticketed, accepted in trained:
        ticket = ticketed.ticket()
        untrained = None
        if score_untrained:
            with _at_start(ticketed.estimator, ticket) as at_start:
                untrained = score(at_start, X_test, y_test)
        rows.append((_row(kind, ticket, score(ticketed.estimator, X_test, y_test), accepted,
                          untrained), ticket))
    return rows, records


def _check_test_data(X_train, X_test, y_test) -> None:
    """Refuse test data no round could be scored on, before anything trains.

    Each row is scored by a fitted estimator, which checks ``X_test`` again
    (feature names too); this catches, up front, what would otherwise end
    a curve after its first training.
    """
    X_test = check_array(X_test, accept_sparse="csr", dtype=[np.float32, np.float64],
                         input_name="X_test")
    check_consistent_length(X_test, y_test)
    train_shape = np.shape(X_train)
    if len(train_shape) == 2 and X_test.shape[1] != train_shape[1]:
        raise ValueError(f"X_test has {X_test.shape[1]} features, but X_train has "
                         f"{train_shape[1]}.")


class _CurveProgress(RoundProgress):
    """The bar over repeats x rounds: its total is set once the first search is planned."""

    def __init__(self, verbose: int, n_repeats: int) -> None:
        super().__init__(verbose, None, "ticket_curve")
        self.n_repeats = n_repeats
        self.planned = False

    def plan(self, rounds: int | None) -> None:
        if not self.planned and rounds is not None:
            self.set_total(rounds * self.n_repeats)
        self.planned = True


def ticket_curve(
    estimator: BaseLotteryTicket,
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    tickets: Sequence[str] = _PAPER_TICKETS,
    n_repeats: int = 3,
    metric: Callable[[Any, Any], float] | None = None,
    random_state: int | np.random.RandomState | None = None,
    as_frame: bool | None = None,
    return_tickets: bool = False,
    score_untrained: bool = False,
    n_jobs: int | None = None,
    verbose: int | None = None,
):
    """Test score of winning and random tickets at every round of a pruning search.

    For each repeat, a clone of ``estimator`` runs its search (``search``:
    iterative magnitude pruning by default) once on the training data
    (exactly as ``fit`` would), and
    every round's trained ticket is scored on the test data. For each pruned
    round, the random baselines named in ``tickets`` are trained with that
    round's mask: ``"reinit"`` (same mask, fresh weights) and ``"permute"``
    (each layer's mask shuffled over its whole matrix, fresh weights), and,
    if asked for, the sign ticket ``"sign"`` (the rewound start's signs, each
    survivor at its layer's initializer standard deviation; Zhou et al.,
    2019). One search serves every sparsity level: nothing is refitted per
    level.

    Parameters
    ----------
    estimator : LotteryTicketClassifier or LotteryTicketRegressor
        Unfitted template; its parameters (net, ``prune_fraction``,
        ``target_sparsity``, ``max_rounds``, ...) decide the rounds. It is
        cloned, never changed. ``ticket_init`` is ignored: every kind is in
        the curve.
    X_train, y_train : array-like
        Data the search trains on.
    X_test, y_test : array-like
        Data every trained net is scored on.
    tickets : sequence of {"rewind", "reinit", "permute", "sign"}, \
            default=("rewind", "reinit", "permute")
        Which kinds of ticket to score at each pruned round. ``"rewind"`` is
        the winning ticket; the dense net (round 0, which IMP and early-bird
        train) is always scored, as the reference line. For a one-training
        search (gradual pruning, sparse momentum, RigL) round 1 is that
        training, its mask the one the training ended with; its baselines
        train that mask fixed.
    n_repeats : int, default=3
        Independent searches, each with its own seed (initialisation, data
        order, baselines).
    metric : callable or None, default=None
        ``metric(y_true, y_pred) -> float`` on the test predictions, e.g.
        ``sklearn.metrics.mean_squared_error``. ``None``: the estimator's
        ``score`` metric (accuracy for a classifier, R^2 for a regressor).
    random_state : int, RandomState instance or None, default=None
        Draws the seed of each repeat. ``None`` uses ``estimator.random_state``,
        so an estimator with an int seed gives a reproducible curve.
    as_frame : bool or None, default=None
        ``True``: a pandas DataFrame (needs pandas); ``False``: a list of dicts;
        ``None``: a DataFrame when pandas is installed, else a list of dicts.
    return_tickets : bool, default=False
        Also return the :class:`Ticket` of every row (mask and the weights it
        trained from; the dense net's for round 0).
    score_untrained : bool, default=False
        Also score every row's ticket before training: its masks on the
        weights it trains from (for ``"rewind"``, the winning mask on the
        rewound weights, the "supermask" of Zhou et al., 2019; for round 0,
        the untrained dense net), in the column ``untrained_score``. One
        prediction per row, no training.
    n_jobs : int or None, default=None
        Repeats run in parallel through joblib (each with its baselines);
        ``None`` means 1 unless in a ``joblib.parallel_config`` context, -1
        all cores. The curve is identical whatever the number of jobs.
    verbose : int or None, default=None
        As the estimators' ``verbose``: 1 shows a progress bar over repeats
        x rounds (advanced per finished repeat when repeats run in parallel).
        ``None``: the estimator's own.

    Returns
    -------
    curve : pandas.DataFrame or list of dict
        One row per (repeat, round, ticket), with columns ``repeat``,
        ``random_state`` (the repeat's seed: ``estimator`` with this
        ``random_state`` fits exactly that repeat's search), ``round``,
        ``ticket`` (``"dense"`` for round 0, else the kind),
        ``sparsity``, ``weights_remaining`` (1 - sparsity), ``n_active``,
        ``score`` and ``accepted`` (False only for the round a
        ``score_tolerance`` search rejected); with ``score_untrained``, also
        ``untrained_score``. :func:`summarize_ticket_curve` gives mean and
        spread over the repeats.
    tickets : list of Ticket
        Only with ``return_tickets``: the ticket of each row, in row order.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_iris
    >>> from skorch import NeuralNetClassifier
    >>> from skticket import LotteryTicketClassifier, MLP, ticket_curve
    >>> X, y = load_iris(return_X_y=True)
    >>> net = NeuralNetClassifier(MLP, module__hidden_units=(16,), max_epochs=5, lr=0.02,
    ...                           optimizer=torch.optim.Adam, train_split=None, verbose=0)
    >>> est = LotteryTicketClassifier(net, prune_fraction=0.5, target_sparsity=0.75,
    ...                               random_state=0)
    >>> curve = ticket_curve(est, X[::2], y[::2], X[1::2], y[1::2], n_repeats=2,
    ...                      as_frame=False)
    >>> len(curve)  # per repeat: the dense net, then 2 rounds x 3 kinds
    14
    >>> sorted({(row["round"], row["ticket"], row["sparsity"]) for row in curve})[:3]
    [(0, 'dense', 0.0), (1, 'permute', 0.5), (1, 'reinit', 0.5)]
    """
    if not isinstance(estimator, BaseLotteryTicket):
        raise TypeError(
            "ticket_curve needs a LotteryTicketClassifier or LotteryTicketRegressor, "
            f"got {type(estimator).__name__}."
        )
    kinds = _check_tickets(tickets)
    if not isinstance(n_repeats, Integral) or isinstance(n_repeats, bool) or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive int, got {n_repeats!r}.")
    if random_state is None:
        random_state = estimator.random_state
    rng = check_random_state(random_state)
    seeds = rng.randint(0, 2**31 - 1, size=n_repeats)

    _check_test_data(X_train, X_test, y_test)
    args = (X_train, y_train, X_test, y_test, kinds, metric, bool(score_untrained))
    with _CurveProgress(estimator.verbose if verbose is None else verbose,
                        n_repeats) as bar:
        if effective_n_jobs(n_jobs) == 1:
            # The repeats' trainings of each round, and each round's baselines, as one
            # stack (lockstep); the bar hears of each repeat's rounds once it is done.
            repeats = lockstep([functools.partial(_repeat_rows, estimator, seed, *args)
                                for seed in seeds])
        else:
            repeats = Parallel(n_jobs=n_jobs, return_as="generator")(
                delayed(_repeat_rows)(estimator, seed, *args) for seed in seeds)
        records: list[dict] = []
        found: list[Ticket] = []
        for repeat, (seed, (rows, rounds)) in enumerate(zip(seeds, repeats, strict=True)):
            # Each repeat's rounds, reported once it is done (in a worker, or in lockstep).
            bar.plan(len(rounds))
            for record in rounds:
                bar.round_done(record)
            for row, ticket in rows:
                records.append({"repeat": repeat, "random_state": int(seed), **row})
                found.append(ticket)
    curve = _records_or_frame(records, as_frame, "ticket_curve")
    return (curve, found) if return_tickets else curve


def summarize_ticket_curve(curve, *, as_frame: bool | None = None):
    """Mean and spread of a :func:`ticket_curve` over its repeats.

    Parameters
    ----------
    curve : pandas.DataFrame or list of dict
        What :func:`ticket_curve` returned.
    as_frame : bool or None, default=None
        As in :func:`ticket_curve`.

    Returns
    -------
    pandas.DataFrame or list of dict
        One row per (round, ticket), in round order, with ``round``,
        ``ticket``, ``weights_remaining``, ``sparsity``, ``n_active``,
        ``n_repeats`` and the score's ``mean``, ``std`` (sample standard
        deviation; NaN for a single repeat), ``min`` and ``max``; for a curve
        with ``untrained_score``, also its ``untrained_mean`` and
        ``untrained_std``.

    Examples
    --------
    >>> from skticket import summarize_ticket_curve
    >>> curve = [
    ...     {"repeat": r, "round": 1, "ticket": "rewind", "sparsity": 0.5,
    ...      "weights_remaining": 0.5, "n_active": 10, "score": s, "accepted": True}
    ...     for r, s in enumerate([0.8, 0.9, 1.0])]
    >>> row, = summarize_ticket_curve(curve, as_frame=False)
    >>> row["n_repeats"], round(row["mean"], 3), round(row["std"], 3), row["min"], row["max"]
    (3, 0.9, 0.1, 0.8, 1.0)
    """
    groups: dict[tuple[int, str], list[dict]] = {}
    for row in _as_records(curve):
        groups.setdefault((int(row["round"]), str(row["ticket"])), []).append(row)
    order = {"dense": 0, **{kind: i + 1 for i, kind in enumerate(TICKET_KINDS)}}
    summary = []
    for (round_index, kind), rows in sorted(
        groups.items(), key=lambda item: (item[0][0], order.get(item[0][1], len(order)))
    ):
        scores = np.array([float(row["score"]) for row in rows])
        entry = {
            "round": round_index,
            "ticket": kind,
            "weights_remaining": float(np.mean([row["weights_remaining"] for row in rows])),
            "sparsity": float(np.mean([row["sparsity"] for row in rows])),
            "n_active": round(float(np.mean([row["n_active"] for row in rows]))),
            "n_repeats": len(rows),
            "mean": float(scores.mean()),
            "std": float(scores.std(ddof=1)) if len(scores) > 1 else math.nan,
            "min": float(scores.min()),
            "max": float(scores.max()),
        }
        if all("untrained_score" in row for row in rows):
            untrained = np.array([float(row["untrained_score"]) for row in rows])
            entry["untrained_mean"] = float(untrained.mean())
            entry["untrained_std"] = (float(untrained.std(ddof=1)) if len(untrained) > 1
                                      else math.nan)
        summary.append(entry)
    return _records_or_frame(summary, as_frame, "summarize_ticket_curve")


def plot_ticket_curve(curve, ax=None, *, ylabel: str = "test score", title: str | None = None):
    """Draw a :func:`ticket_curve`: score against the share of weights remaining.

    Each ticket kind is a line through its mean over the repeats, with the
    min-max range shaded; the dense net is a horizontal line with its range.
    The x axis is the percentage of weights remaining, log-scaled and running
    from dense (left) to sparse (right), as in the lottery-ticket paper.

    Parameters
    ----------
    curve : pandas.DataFrame or list of dict
        What :func:`ticket_curve` returned.
    ax : matplotlib Axes or None, default=None
        Where to draw; ``None`` makes a new figure.
    ylabel : str, default="test score"
        Label of the y axis (say which metric the curve holds).
    title : str or None, default=None
        Title of the axes.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from skticket import plot_ticket_curve
    >>> curve = [
    ...     {"repeat": 0, "round": r, "ticket": k, "sparsity": 1 - w,
    ...      "weights_remaining": w, "n_active": int(100 * w), "score": s, "accepted": True}
    ...     for r, k, w, s in [(0, "dense", 1.0, 0.9), (1, "rewind", 0.5, 0.92),
    ...                        (1, "reinit", 0.5, 0.85)]]
    >>> ax = plot_ticket_curve(curve, Figure().subplots(), ylabel="accuracy")
    >>> [line.get_label() for line in ax.get_lines()]
    ['dense net', 'winning ticket (rewind)', 'random reinit']
    """
    try:
        from matplotlib.ticker import FuncFormatter, NullFormatter
    except ImportError:
        raise ImportError(
            "plot_ticket_curve needs matplotlib; install it with "
            "pip install 'skticket[plot]'."
        ) from None
    summary = summarize_ticket_curve(curve, as_frame=False)
    if not summary:
        raise ValueError("The curve is empty: nothing to plot.")
    if ax is None:
        # pyplot only when asked for a new figure: it picks a GUI backend.
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.4, 4.2))

    dense = [row for row in summary if row["ticket"] == "dense"]
    if dense:
        row = dense[0]
        line = ax.axhline(row["mean"], color="0.3", linestyle="--", label=_LABELS["dense"])
        ax.axhspan(row["min"], row["max"], color=line.get_color(), alpha=0.12, linewidth=0)
    kinds = [kind for kind in TICKET_KINDS if any(r["ticket"] == kind for r in summary)]
    for kind in kinds:
        rows = [row for row in summary if row["ticket"] == kind]
        x = [100 * row["weights_remaining"] for row in rows]
        (line,) = ax.plot(x, [row["mean"] for row in rows], marker="o", markersize=3,
                          label=_LABELS[kind])
        ax.fill_between(x, [row["min"] for row in rows], [row["max"] for row in rows],
                        color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xscale("log")
    low = min(100 * row["weights_remaining"] for row in summary)
    # Plain percentages at 1-2-5 steps; log-axis defaults would print 6x10^1.
    ax.set_xticks([tick for tick in PERCENT_TICKS if low / 1.15 <= tick <= 100])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    # Dense on the left, sparsest on the right, as pruning proceeds.
    ax.set_xlim(100 * 1.15, low / 1.15)
    ax.set_xlabel("weights remaining (%)")
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return ax
