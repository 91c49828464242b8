"""One more epoch of an estimator's ticket: what ``partial_fit`` trains.

``partial_fit`` trains the ticket an estimator holds (its ``net_``, under the
masks of its ``winning_ticket_``) for one epoch on the rows it is given, as
``MLPClassifier.partial_fit`` trains its network: every row trains (no rows
are held out), masks held, through :func:`~skticket._training.run_training`
like every other training. The optimizer's state goes on from one call to
the next, as the MLP's Adam state does, so ``n`` calls on the same rows
train as one training of ``n`` epochs. On an unfitted estimator the first
call starts the search's first round (the dense net from theta_0, or a given
ticket), so that ``prune()`` can go on from it.

The estimator validates and encodes the data and sets the fitted attributes;
this module trains the epoch and says what the fitted attributes become.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.utils.multiclass import unique_labels
from skorch import NeuralNet
from skorch.history import History

from ._search import (
    GivenTicket,
    PruningRule,
    SearchProgress,
    SearchRun,
    captured_rewind_point,
    late_reset_capture,
)
from ._session import Data, Round, Session
from ._ticket import Ticket
from ._training import TrainingResult, module_state, prunable_weights, run_training
from .exceptions import TrainingDivergedError

__all__ = ["PARTIAL_FIT_EPOCH", "carried_optimizer_state", "checked_classes",
           "continued_attributes", "refuse_balanced_class_weight", "start_round", "train_epoch"]

#: The key of ``net_.history``'s epochs that ``partial_fit`` trained: the next call goes on
#: with the optimizer's state when the last epoch is one of them.
PARTIAL_FIT_EPOCH = "partial_fit"

#: What the training net of one ``partial_fit`` epoch sets, and the fitted net
#: gets back from the template: one epoch, on every row given (the net's held-out
#: split decides when a training stops, and one epoch has nothing to decide).
_ONE_EPOCH = {"max_epochs": 1, "train_split": None}


def checked_classes(classes, fitted_classes: np.ndarray | None) -> np.ndarray | None:
    """``classes`` of a classifier's ``partial_fit``, sorted and unique, checked.

    scikit-learn's rule (``SGDClassifier``, ``MLPClassifier``): the first call
    needs them, and a later call that gives them must give the classes of
    the fit. ``None`` when they are not given to a fitted classifier.

    Raises
    ------
    ValueError
        ``classes`` missing on the first call (scikit-learn's message), not
        the fitted classes on a later one, or fewer than two.
    """
    if classes is None:
        if fitted_classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        return None
    given = unique_labels(classes)
    if fitted_classes is not None:
        if not np.array_equal(given, fitted_classes):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to "
                             f"partial_fit, was: {fitted_classes!r}")
        return given
    if len(given) < 2:
        raise ValueError(f"classes must hold at least 2 classes to train a classifier; got "
                         f"{given.tolist()!r}.")
    return given


def refuse_balanced_class_weight(class_weight) -> None:
    """``class_weight="balanced"`` counts the classes of the rows at hand, which in a
    stream are one batch's: refused, as ``SGDClassifier.partial_fit`` refuses it."""
    if isinstance(class_weight, str) and class_weight == "balanced":
        raise ValueError(
            "class_weight='balanced' is not supported for partial_fit: it would weigh the "
            "classes by their counts in each batch. Compute the weights once, "
            "dict(zip(classes, compute_class_weight('balanced', classes=classes, y=y))) with "
            "y a large enough sample of the targets, and pass that dict as class_weight.")


def _one_epoch(template: NeuralNet) -> NeuralNet:
    net = clone(template)
    net.set_params(**_ONE_EPOCH)
    return net


def _as_template(net: NeuralNet, template: NeuralNet) -> NeuralNet:
    """The trained one-epoch ``net`` with the template's own settings back, so that the
    fitted ``net_`` is configured as the user configured it (a clone of it trains as
    ``fit`` would)."""
    net.set_params(**{name: getattr(template, name) for name in _ONE_EPOCH})
    return net


def start_round(session: Session, rule: PruningRule, *, ticket: Ticket | None,
                ticket_init: str) -> tuple[Round, SearchProgress]:
    """The first epoch of an unfitted estimator's ``partial_fit``: its first round.

    The dense net from theta_0 as round 0 (with late resetting's snapshot
    taken after ``rule.rewind_step`` optimizer steps, which this epoch must
    have), or the given ``ticket`` trained from ``ticket_init`` as ``fit``
    trains it (:class:`~skticket._search.GivenTicket`), for one epoch on the
    session's data. ``memory`` is not used: each call trains on new rows.

    Returns
    -------
    Round
        The trained round, its net configured as the session's template.
    SearchProgress
        Where ``prune()`` goes on from: this round accepted.

    Raises
    ------
    ValueError
        ``rewind_step`` beyond this epoch's optimizer steps; a ticket that does
        not fit the net.
    """
    epoch = session.attached(session.data, memory=None, scorer=None)
    epoch.template = _one_epoch(session.template)
    if ticket is not None:
        run = SearchRun(GivenTicket(ticket=ticket, init=ticket_init), epoch, rule)
        trained = next(iter(run.rounds()))  # its one round, accepted
        progress = run.progress
    else:
        capture = late_reset_capture(rule)
        trained = epoch.train_round(0, session.dense_masks(), session.theta_0, hooks=capture)
        progress = SearchProgress.start(session)
        if capture:
            progress.rewind_point = captured_rewind_point(
                trained, rule, training="partial_fit's first call",
                remedy=(", which starts the dense net and takes the rewind point: give the "
                        "first call more rows, lower rewind_step, or fit."))
        progress.accept(trained, session.prunable)
        progress.next_round = 1
    net = _as_template(trained.result.net, session.template)
    net.history.record(PARTIAL_FIT_EPOCH, True)
    return trained, progress


def carried_optimizer_state(net: NeuralNet) -> dict | None:
    """The optimizer state the next ``partial_fit`` epoch of ``net`` goes on from: the
    net's own when its last epoch was a ``partial_fit`` epoch, else None (a fresh
    optimizer): ``fit`` and ``prune()`` train each round with a fresh one, and a round
    read from ``memory`` has no optimizer state, so the first call after them starts
    afresh whether or not the round was read."""
    if len(net.history) and net.history[-1].get(PARTIAL_FIT_EPOCH, False):
        return net.optimizer_.state_dict()
    return None


def train_epoch(session: Session, data: Data, net: NeuralNet, masks: dict[str, np.ndarray],
                round_index: int, *, optimizer_state: dict | None) -> TrainingResult:
    """One more epoch of the fitted ``net`` on ``data``, ``masks`` held.

    From ``net``'s trained state, with ``optimizer_state`` (None: a fresh
    optimizer). The data order is seeded by the session's data seed, the
    round and the epoch, so that the same calls train the same. The net
    handed back lists ``net``'s epochs and then this one in its history, and
    is configured as the session's template.

    Raises
    ------
    TrainingDivergedError
        The epoch's loss or weights are not finite.
    """
    epoch = session.attached(data, memory=None, scorer=None)
    epoch.template = template = _one_epoch(session.template)
    epochs_before = len(net.history)
    spec = epoch.training_spec(round_index, masks, module_state(net.module_),
                               epoch=epochs_before, optimizer_state=optimizer_state)
    try:
        result = run_training(spec)
    except TrainingDivergedError as error:
        optimizer = getattr(template.optimizer, "__name__", type(template.optimizer).__name__)
        raise TrainingDivergedError(
            f"partial_fit: the epoch produced non-finite values ({error}). The likely cause "
            f"is the net's optimizer, {optimizer} with lr={template.lr}: lower the learning "
            "rate, or standardize the inputs (and a regression target).") from error
    trained = result.net
    # The epoch goes on from net's: its history goes on too, numbered after them.
    epochs = [dict(entry, epoch=epochs_before + 1 + position, **{PARTIAL_FIT_EPOCH: True})
              for position, entry in enumerate(trained.history)]
    trained.history = History([*net.history, *epochs])
    _as_template(trained, session.template)
    return result


def continued_record(record: dict, result: TrainingResult) -> dict:
    """A round's record after one more epoch: its epochs counted, the last epoch's
    loss, the time added, and no held-out score (scored before this epoch)."""
    return {**record, "epochs": record["epochs"] + 1, "train_loss": result.train_loss,
            "seconds": record["seconds"] + result.seconds, "valid_score": None}


def continued_attributes(records: list[dict], progress: SearchProgress, ticket_round: int,
                         session: Session, result: TrainingResult) -> dict[str, Any]:
    """The fitted attributes after one more epoch (``result``) of the ticket of round
    ``ticket_round``: the net, ``records`` with that round's continued, and the search's
    ``progress`` with the trained weights ``prune()`` ranks. The ticket itself (masks and
    start state) is the same."""
    records = list(records)
    for position in reversed(range(len(records))):
        if records[position]["round"] == ticket_round:
            records[position] = continued_record(records[position], result)
            break
    progress = copy.copy(progress)
    progress.trained_weights = prunable_weights(result.net, session.prunable)
    return {"net_": result.net, "rounds_": records, "_search_progress_": progress}


#: The docstrings of the estimators' ``partial_fit``, written once (filled in by
#: Substitution).
PARTIAL_FIT_DOCS = {
    "partial_fit_summary": """Train the ticket one more epoch on the rows given (a stream).

        One epoch of ``net_`` on ``X``, ``y``, as ``MLPClassifier.partial_fit``
        trains one: every row trains (none is held out, whatever the net's
        ``train_split``), in the net's batches, and the pruned weights stay
        exactly 0. The optimizer's state (Adam's moments and step count)
        goes on from the previous ``partial_fit`` call, as the MLP's does, so
        ``n`` calls on the same rows train as ``fit`` with
        ``net__max_epochs=n`` trains the ticket, for a net that does not
        shuffle and holds no rows out (the net's own callbacks, an LR
        schedule's included, start again in each call). The first call after
        ``fit`` or ``prune()`` starts a fresh optimizer, as each of their
        rounds does (a round read from ``memory`` has no optimizer state).

        On an unfitted estimator the first call sizes the net from its rows
        and starts the search's first round: the dense net from its initial
        weights theta_0 (round 0, where ``rewind_step`` takes its rewind
        point), or with ``ticket`` set that ticket, from ``ticket_init``, as
        ``fit`` trains it; ``search`` is not used. Later calls train on, and
        ``prune()`` cuts the net they trained, so calls of ``partial_fit``
        and ``prune()`` run iterative magnitude pruning on a stream. That is
        why the estimators have no ``warm_start``: ``prune()`` goes on from
        the fitted ticket, and ``ticket=`` trains a ticket one has.

        ``winning_ticket_`` (masks and start state) stays as it is; ``net_``
        is its net trained one epoch more (``net_.history`` lists every epoch
        it trained, ``partial_fit``'s marked ``"partial_fit": True``); the
        ticket's record in ``rounds_`` counts the epoch (``epochs`` + 1, the
        last epoch's ``train_loss``, its ``seconds`` added, ``valid_score``
        None: scored before), and ``prune()`` ranks the weights as they are
        now. The parameters that decide where the search
        started (``net`` and every ``net__*``, ``prunable``, ``rewind_step``,
        ``random_state``) must stay as they were, as for ``prune()``;
        ``memory`` is not used. ``batch_size="auto"`` means ``min(200,
        n_samples)`` of each call, as in scikit-learn's MLPs. A call that
        raises (bad input, a Ctrl-C, a diverged epoch) leaves the estimator
        exactly as it was.""",
    "partial_fit_X": """X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training rows, as :meth:`fit` takes them (after the first call, with
            its features).""",
    "partial_fit_sample_weight":
        """sample_weight : float or array-like of shape (n_samples,), default=None
            Per-sample weights, as in :meth:`fit` (each call's are rescaled to
            mean 1: the loss does not depend on their scale).""",
    "partial_fit_returns": """Returns
        -------
        self : object
            The estimator, its ticket trained one epoch more.""",
}
