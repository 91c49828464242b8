"""What every search of one fit shares, and the one path by which it trains.

A :class:`Session` owns the sized template net, the training data and the
held-out split, the seeds, theta_0, the names of the pruned parameters and
``memory``. Searches (:mod:`skticket._search`) decide which masks and start
weights to train; they train only through :meth:`Session.train_round`, which builds
the :class:`~skticket._training.TrainingSpec` of each training and sends it
through the cache when there is one. Nothing here knows which search runs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from joblib import Memory
from skorch import NeuralNet

from ._cache import CachedTrainingResult, cached_training, content_hash
from ._mlp import MLP
from ._pruning import n_active, permute_masks, rewound_weights, signed_weights, sparsity
from ._rng import round_seed
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
    run_training,
)
from .exceptions import TrainingDivergedError

if TYPE_CHECKING:
    from ._hooks import TrainingHook

__all__ = ["Data", "Round", "Session"]

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
                 scorer: Scorer | None = None) -> None:
        self.template = template
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

        Every training of every search goes through here: it builds the
        :class:`~skticket._training.TrainingSpec` and runs it (through the cache
        when there is one). A diverged training raises
        :class:`~skticket.exceptions.TrainingDivergedError` naming the round,
        the optimizer and the learning rate.
        """
        spec = TrainingSpec(
            template=self.template, X=self.data.X_train, y=self.data.y_train, start=start,
            masks=masks, seed=round_seed(self.seeds["data"], round_index),
            hooks=tuple(hooks), sample_weight=self.data.w_train,
        )
        try:
            if self.memory is None:
                result = run_training(spec)
            else:
                result = cached_training(self.memory, run_training, spec)
        except TrainingDivergedError as error:
            raise _diverged(error, self.template, round_index) from error
        if result.masks is not None:
            masks = result.masks
        return Round(round_index, masks, start, result, self.record(round_index, masks, result),
                     init=init)

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
        fresh = initial_state(self.template, round_seed(self.seeds["reinit"], round_index),
                              fresh=True)
        if kind == "permute":
            rng = np.random.default_rng(round_seed(self.seeds["permute"], round_index))
            masks = permute_masks(masks, rng)
        return self.train_round(round_index, masks, rewound_weights(fresh, masks), init=kind)


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
