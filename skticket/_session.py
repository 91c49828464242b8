"""What every search of one fit shares, and the one path by which it trains.

A :class:`Session` owns the sized template net, the training data and the
held-out split, the seeds, theta_0, the names of the pruned parameters and
``memory``. Searches (:mod:`skticket._search`) decide which masks and start
weights to train; they train only through :meth:`Session.train_round`, which builds
the :class:`~skticket._training.TrainingSpec` of each training and sends it
through the cache when there is one. Nothing here knows which search runs.
"""

from __future__ import annotations

import contextvars
import copy
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from joblib import Memory
from skorch import NeuralNet

from ._cache import CachedTrainingResult, cached_trainings, content_hash, training_key
from ._mlp import MLP
from ._pruning import n_active, permute_masks, rewound_weights, signed_weights, sparsity
from ._rng import round_seed
from ._stacking import train_members
from ._ticket import Ticket
from ._training import (
    ModuleState,
    TrainingResult,
    TrainingSpec,
    connection_sensitivity,
    initial_state,
    initialized_net,
    initializer_stds,
    module_state,
    prunable_parameters,
)
from .exceptions import TrainingDivergedError

if TYPE_CHECKING:
    from ._hooks import TrainingHook

__all__ = ["Data", "PendingTrainings", "Round", "Session", "lockstep", "with_trainings"]

T = TypeVar("T")

#: ``scorer(net, X, y, sample_weight=None) -> float``: a trained net's score on encoded
#: targets.
Scorer = Callable[[NeuralNet, np.ndarray, np.ndarray], float]


@dataclass(frozen=True, eq=False)
class Data:
    """The training data of a search, and the held-out part when one is scored.

    ``w_train`` and ``w_valid`` are the rows' sample weights (None: every row
    alike).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_valid: np.ndarray | None = None
    y_valid: np.ndarray | None = None
    w_train: np.ndarray | None = None
    w_valid: np.ndarray | None = None


@dataclass(eq=False)
class Round:
    """One trained round: its masks, the state it trained from, the result and its record.

    ``accepted`` is False for a round a search trained but did not keep (out
    of ``score_tolerance``). ``init`` says what the start weights are:
    ``"rewind"`` (the ticket's own), or a baseline's fresh ones. For a
    training whose masks a hook moved, ``masks`` are those it ended with.
    """

    index: int
    masks: dict[str, np.ndarray]
    start: ModuleState
    result: TrainingResult
    record: dict
    accepted: bool = True
    init: str = "rewind"

    def ticket(self) -> Ticket:
        """The round's ticket, as plain data the user keeps: copies of its masks and of
        the whole start state, its index and ``init``. The one place a fit's or a
        curve's :class:`~skticket.Ticket` is built."""
        return Ticket(masks={name: mask.copy() for name, mask in self.masks.items()},
                      weights={name: value.copy() for name, value in self.start.items()},
                      round=self.index, init=self.init)


class Session:
    """The shared state of one search and its only way to train.

    Parameters
    ----------
    template : skorch NeuralNet
        Unfitted, sized for the data.
    data : Data or None
        What trainings train on (``None`` for a session kept after ``fit``
        without its data; :meth:`attached` gives it data again).
    seeds : dict of str to int
        One base seed per stream (:data:`skticket._rng.SEED_STREAMS`).
    prunable : list of str, callable or None
        Which parameters are pruned (see
        :func:`~skticket._training.prunable_parameters`).
    memory : joblib.Memory or None
        Where trainings are cached; ``None`` trains every time.
    scorer : callable or None
        ``scorer(net, X, y, sample_weight=None)``, used on the held-out data when there
        is some.
    verbose : int, default=0
        1 or more: say which trainings cannot be stacked, and why
        (:func:`~skticket._stacking.train_members`).

    Attributes
    ----------
    theta_0 : dict of str to ndarray
        The module state drawn under the ``"init"`` seed: where tickets rewind to.
    prunable : list of str
        The pruned parameters, in module order.
    init_stds : dict of str to float
        Per pruned parameter, the standard deviation of its initializer: what
        every survivor of a sign ticket starts at, with its sign
        (:func:`~skticket._training.initializer_stds`; torch's own rule for
        the layers of :class:`~skticket.MLP` given as a class, the spread of
        theta_0's values for a module of one's own).
    """

    def __init__(self, template: NeuralNet, data: Data | None, seeds: dict[str, int], *,
                 prunable=None, memory: Memory | None = None,
                 scorer: Scorer | None = None, verbose: int = 0) -> None:
        self.template = template
        self.verbose = verbose
        self.data = data
        self.seeds = seeds
        self.memory = memory
        self.scorer = scorer
        initial = initialized_net(template, seeds["init"])
        self.theta_0 = module_state(initial.module_)
        self.prunable = prunable_parameters(initial.module_, prunable)
        # Only a module class the package builds is known to keep torch's own
        # initialization: an instance (or a subclass) may have been drawn otherwise.
        self.init_stds = initializer_stds(initial.module_, self.prunable, self.theta_0,
                                          default_init=template.module is MLP)

    def detached(self) -> Session:
        """This session without data, cache or scorer: what a fitted estimator keeps."""
        return self.attached(None, memory=None, scorer=None)

    def attached(self, data: Data | None, *, memory: Memory | None,
                 scorer: Scorer | None) -> Session:
        """This session (template, seeds, theta_0, pruned names) on other data."""
        session = copy.copy(self)
        session.data, session.memory, session.scorer = data, memory, scorer
        return session

    def dense_masks(self) -> dict[str, np.ndarray]:
        """Masks that keep every pruned weight."""
        return {name: np.ones(self.theta_0[name].shape, dtype=bool) for name in self.prunable}

    def train_round(self, round_index: int, masks: dict[str, np.ndarray], start: ModuleState,
                    *, init: str = "rewind", hooks: Iterable[TrainingHook] = ()) -> Round:
        """Train ``masks`` from ``start`` as round ``round_index`` (its data order), with
        ``hooks`` (:class:`~skticket.TrainingHook`), and record it, with the masks it
        ended with if a hook moved them.

        Every training of every search goes through here (or
        :meth:`train_rounds`, for several): it builds the
        :class:`~skticket._training.TrainingSpec` of each training
        (:meth:`training_spec`) and runs it (through the cache when there is
        one). A diverged training raises
        :class:`~skticket.exceptions.TrainingDivergedError` naming the round,
        the optimizer and the learning rate.
        """
        trained, = self.train_rounds([(round_index, masks, start, init, tuple(hooks))])
        return trained

    def training_spec(self, round_index: int, masks: dict[str, np.ndarray], start: ModuleState,
                      *, hooks: Iterable[TrainingHook] = (), epoch: int | None = None,
                      optimizer_state: dict | None = None) -> TrainingSpec:
        """The :class:`~skticket._training.TrainingSpec` of a training of round
        ``round_index`` on the session's data: its net, rows, weights and data order.

        The one place a training's spec is built. ``epoch`` and
        ``optimizer_state`` describe an epoch that goes on from a trained round
        (``partial_fit``): its data order is drawn for that epoch of the round,
        and its optimizer goes on from ``optimizer_state`` (None: a fresh one).
        """
        seed = round_seed(self.seeds["data"], round_index)
        if epoch is not None:
            seed = round_seed(seed, epoch)
        return TrainingSpec(
            template=self.template, X=self.data.X_train, y=self.data.y_train, start=start,
            masks=masks, seed=seed, hooks=tuple(hooks), sample_weight=self.data.w_train,
            optimizer_state=optimizer_state)

    def train_rounds(self, rounds: Sequence[tuple]) -> list[Round]:
        """:meth:`train_round` of independent trainings, trained as one stack where they can
        be (:func:`~skticket._stacking.train_members`).

        ``rounds`` holds ``(round_index, masks, start, init, hooks)`` per training.
        Inside :func:`lockstep`, a training not trained yet is handed to it
        instead (see there).
        """
        specs = [self.training_spec(round_index, masks, start, hooks=hooks)
                 for round_index, masks, start, _, hooks in rounds]
        stepping = _LOCKSTEP.get()
        if stepping is not None:
            results = stepping.results(specs, self.memory, self.verbose)
        elif self.memory is None:
            results = train_members(specs, verbose=self.verbose)
        else:
            results = cached_trainings(
                self.memory, functools.partial(train_members, verbose=self.verbose), specs)
        trained = []
        for (round_index, masks, start, init, _), result in zip(rounds, results, strict=True):
            if isinstance(result, TrainingDivergedError):
                raise _diverged(result, self.template, round_index) from result
            if result.masks is not None:
                masks = result.masks
            trained.append(Round(round_index, masks, start, result,
                                 self.record(round_index, masks, result), init=init))
        return trained

    def sensitivity(self, n_batches: int) -> ModuleState:
        """SNIP's connection sensitivity of the pruned weights at theta_0, on the
        training data (batches drawn under the data seed of round 0)."""
        return connection_sensitivity(
            self.template, self.theta_0, self.data.X_train, self.data.y_train,
            names=self.prunable, n_batches=n_batches,
            seed=round_seed(self.seeds["data"], 0), sample_weight=self.data.w_train)

    def record(self, round_index: int, masks: dict[str, np.ndarray],
               result: TrainingResult) -> dict:
        """The record of a trained round, as ``rounds_`` lists it: ``hook_summaries``
        holds the summary of each of its training's hooks, in order."""
        valid_score = None
        if self.data.X_valid is not None and self.scorer is not None:
            valid_score = float(self.scorer(result.net, self.data.X_valid, self.data.y_valid,
                                            sample_weight=self.data.w_valid))
        return {
            "round": round_index,
            "sparsity": sparsity(masks),
            "n_active": n_active(masks),
            "train_loss": result.train_loss,
            "valid_score": valid_score,
            "epochs": len(result.net.history),
            "seconds": result.seconds,
            "cached": isinstance(result, CachedTrainingResult),
            "hook_summaries": list(result.hook_summaries),
        }

    def signed(self, start: ModuleState, masks: dict[str, np.ndarray]) -> ModuleState:
        """The sign ticket's start of a ticket that starts at ``start``: each survivor at
        its sign times its layer's :attr:`init_stds`, a survivor at exactly 0 staying 0
        (:func:`~skticket._pruning.signed_weights`); everything else as in ``start``."""
        return signed_weights(start, masks, self.init_stds)

    def baseline(self, masks: dict[str, np.ndarray], round_index: int, kind: str) -> Round:
        """The random-ticket baseline ``kind`` ("reinit" or "permute") of ``masks``, trained.

        Fresh weights (the same for both kinds); ``"permute"`` also shuffles each
        layer's mask over its flattened matrix. The data order is the round's
        own, so the baseline differs from the ticket only in what it tests.
        """
        trained, = self.baselines(masks, round_index, [kind])
        return trained

    def baselines(self, masks: dict[str, np.ndarray], round_index: int,
                  kinds: Sequence[str], start: ModuleState | None = None) -> list[Round]:
        """:meth:`baseline` of each of ``kinds``, trained together (:meth:`train_rounds`);
        ``"sign"`` is the sign ticket of the round's rewound ``start`` (:meth:`signed`),
        which it then needs."""
        fresh = initial_state(self.template, round_seed(self.seeds["reinit"], round_index),
                              fresh=True)
        rounds = []
        for kind in kinds:
            kind_masks = masks
            if kind == "sign":
                if start is None:
                    raise ValueError("The sign ticket needs the round's rewound start.")
                rounds.append((round_index, masks, self.signed(start, masks), kind, ()))
                continue
            if kind == "permute":
                rng = np.random.default_rng(round_seed(self.seeds["permute"], round_index))
                kind_masks = permute_masks(masks, rng)
            rounds.append((round_index, kind_masks, rewound_weights(fresh, kind_masks), kind,
                           ()))
        return self.train_rounds(rounds)


# --- independent searches trained in lockstep ----------------------------------------------


class PendingTrainings(BaseException):
    """Raised by a session inside :func:`lockstep` that needs trainings not trained yet.

    A ``BaseException``, as ``KeyboardInterrupt`` is: no ``except Exception``
    of a search or an estimator may swallow it.
    """


class _Lockstep:
    """The trainings of the searches :func:`lockstep` runs: trained ones by key, and those
    asked for since the last stack was trained."""

    def __init__(self, trained: Mapping[str, TrainingResult | TrainingDivergedError] | None
                 = None) -> None:
        self.done: dict[str, TrainingResult | TrainingDivergedError] = dict(trained or {})
        self.pending: dict[str, tuple[TrainingSpec, Memory | None, int]] = {}
        # Trainings handed back in the current run of a task: each run of a task
        # that waits again must get further than its last.
        self.found = 0

    def results(self, specs: list[TrainingSpec], memory: Memory | None, verbose: int) -> list:
        keys = [training_key(spec) for spec in specs]
        missing = {key: (spec, memory, verbose) for key, spec in zip(keys, specs, strict=True)
                   if key not in self.done}
        if missing:
            self.pending.update(missing)
            raise PendingTrainings
        self.found += len(keys)
        return [self.done[key] for key in keys]

    def train_pending(self) -> None:
        if not self.pending:
            return
        # One stack per memory (each member stored where its session stores it).
        by_memory: dict[int, list[tuple[str, TrainingSpec, Memory | None]]] = {}
        for key, (spec, memory, _) in self.pending.items():
            by_memory.setdefault(id(memory), []).append((key, spec, memory))
        train = functools.partial(
            train_members, verbose=max(verbose for _, _, verbose in self.pending.values()))
        self.pending = {}
        for group in by_memory.values():
            specs = [spec for _, spec, _ in group]
            memory = group[0][2]
            results = (train(specs) if memory is None
                       else cached_trainings(memory, train, specs))
            self.done.update({key: result for (key, _, _), result in
                              zip(group, results, strict=True)})


class _Recorder(_Lockstep):
    """:func:`with_trainings`'s: each training trained when asked for (one task, nothing
    to stack it with, so it runs once, not again for each round), and kept by key."""

    def results(self, specs: list[TrainingSpec], memory: Memory | None, verbose: int) -> list:
        try:
            return super().results(specs, memory, verbose)
        except PendingTrainings:
            self.train_pending()
            return super().results(specs, memory, verbose)


_LOCKSTEP: contextvars.ContextVar[_Lockstep | None] = contextvars.ContextVar(
    "skticket_lockstep", default=None)


def lockstep(tasks: Sequence[Callable[[], T]], *,
             then: Callable[[list[T]], Any] | None = None,
             trained: Mapping[str, TrainingResult | TrainingDivergedError] | None = None
             ) -> list[T]:
    """Run independent tasks (each a search, or several) with their trainings stacked.

    Each task runs until one of its sessions needs a training not trained
    yet (it raises :class:`PendingTrainings`); once every task has run or
    stopped so, all the trainings they asked for are trained as one stack
    (:func:`~skticket._stacking.train_members`, through ``memory`` where a
    session has one), and the unfinished tasks run again from their start,
    finding those trainings done. A task is therefore run once per round it
    trains: it must be free of side effects other than its result (a search
    on a clone, the rows of a curve) and do its own expensive work, other
    than training, once it has all its trainings, and ask for the same
    trainings on every run (its seeds fixed: a task that gets no further than
    on its last run is an error). Each training is trained
    once, and each result is what the task would get alone, to float32
    rounding (a stacked member is its solo training). A diverged training
    raises, as alone, in the task that asked for it.

    Parameters
    ----------
    tasks : sequence of callables
        Each called with no argument, perhaps several times.
    then : callable, default=None
        Called with the tasks' results once all are done, with every
        training they trained at hand (and run again, as a task, for any it
        asks for beyond them): a refit whose rounds a task trained beside the
        others trains nothing.
    trained : mapping, default=None
        Trainings done elsewhere, by key (what :func:`with_trainings` gives
        back, from another process): a task that asks for one finds it.

    Returns
    -------
    list
        Each task's result, in order, and ``then``'s last when given.
    """
    stepping = _Lockstep(trained)
    token = _LOCKSTEP.set(stepping)
    try:
        results = _run_stepping(stepping, list(tasks))
        if then is not None:
            done = list(results)
            results += _run_stepping(stepping, [lambda: then(done)])
    finally:
        _LOCKSTEP.reset(token)
    return results


def with_trainings(task: Callable[[], T]
                   ) -> tuple[T, dict[str, TrainingResult | TrainingDivergedError]]:
    """Run ``task``: its result, and every training it trained, by key.

    For a task run in another process (a worker of ``n_jobs``): the
    trainings come back with its result, and :func:`lockstep`'s ``trained``
    hands them to whatever asks for the same trainings here (a refit whose
    rounds the task trained trains nothing). Each training is the task's solo
    training, a stack of one, as outside lockstep.
    """
    recorder = _Recorder()
    token = _LOCKSTEP.set(recorder)
    try:
        result = task()
    finally:
        _LOCKSTEP.reset(token)
    return result, dict(recorder.done)


def _run_stepping(stepping: _Lockstep, tasks: list[Callable[[], T]]) -> list[T]:
    results: list = [None] * len(tasks)
    unfinished = list(range(len(tasks)))
    reached = [-1] * len(tasks)
    while unfinished:
        waiting = []
        for position in unfinished:
            stepping.found = 0
            try:
                results[position] = tasks[position]()
            except PendingTrainings:
                # A task that asks for other trainings on each run (seeds drawn from
                # the operating system's entropy) would never end.
                if stepping.found <= reached[position]:
                    raise RuntimeError(
                        "A task run in lockstep did not get further than on its last run: "
                        "its trainings are not the same on each run (is its random_state "
                        "an int?).") from None
                reached[position] = stepping.found
                waiting.append(position)
        if waiting and not stepping.pending:
            raise RuntimeError("A task stopped for trainings but asked for none.")
        stepping.train_pending()
        unfinished = waiting
    return results


def _diverged(error: TrainingDivergedError, template: NeuralNet,
              round_index: int) -> TrainingDivergedError:
    optimizer = getattr(template.optimizer, "__name__", type(template.optimizer).__name__)
    diverged = TrainingDivergedError(
        f"round {round_index}: training produced non-finite values ({error}). The likely "
        f"cause is the net's optimizer, {optimizer} with lr={template.lr}: lower the "
        "learning rate, or standardize the inputs (and a regression target)."
    )
    diverged.round = round_index
    return diverged


# --- where a search starts from: what prune() must find unchanged -----------------------


def start_point(net: NeuralNet | None, prunable, rewind_step: int,
                random_state) -> dict[str, str]:
    """A hash of each estimator parameter that decides where a search starts from.

    The net (its class and each of its parameters, as ``net__*``),
    ``prunable``, ``rewind_step`` and ``random_state`` decide theta_0, the
    rewind point, the pruned names and the seeds: ``prune()`` can only go on
    from a search they still describe (:func:`check_start_point`). A
    RandomState instance changes with every draw, so only its being one is
    recorded.
    """

    values = {"prunable": prunable, "rewind_step": rewind_step,
              "random_state": (random_state if random_state is None
                               or isinstance(random_state, int | np.integer)
                               else np.random.RandomState)}
    if net is None:
        values["net"] = None
    else:
        values["net"] = type(net)
        # What the net prints changes no result.
        values.update({f"net__{name}": value
                       for name, value in net.get_params(deep=False).items()
                       if name != "verbose"})
    return {name: content_hash(value) for name, value in values.items()}


def check_start_point(recorded: dict[str, str], now: dict[str, str], *,
                      method: str = "prune") -> None:
    """Refuse to go on from a search whose :func:`start_point` changed.

    ``method`` names the estimator's method that would go on (``"prune"``,
    ``"partial_fit"``) in the message.

    Raises
    ------
    ValueError
        Naming the first parameter whose hash in ``now`` differs from ``recorded``.
    """
    for name, value in recorded.items():
        if now.get(name) != value:
            raise ValueError(
                f"{name} changed since fit, and it decides where the search starts from "
                "(the initial weights, the rewind point, the pruned parameters or the "
                f"seeds): {method}() cannot go on from that search. Call fit again."
            )
