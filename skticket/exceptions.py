"""Warnings and errors that skticket raises, for users who want to catch or filter them.

The two ways a search can end early are a Ctrl-C and a training that
diverges. Either way nothing that completed is lost: a search that has
finished at least one pruning round keeps the last good one as its winning
ticket and says so with a warning; one that has not finished the dense round
has nothing to keep and raises.
"""

from __future__ import annotations

__all__ = [
    "FitInterruptedWarning",
    "InputScaleWarning",
    "TrainingDivergedError",
    "TrainingDivergedWarning",
    "TrainingInterrupted",
]


class TrainingInterrupted(KeyboardInterrupt):
    """A Ctrl-C (SIGINT) arrived while a net was training.

    skorch ends a training quietly on any ``KeyboardInterrupt``, because that is
    also how its callbacks (``EarlyStopping``) stop one early. A Ctrl-C is told
    apart by a signal handler around the training and re-raised as this
    subclass, so that code which does not catch it sees the ``KeyboardInterrupt``
    it expects.
    """


class TrainingDivergedError(ValueError):
    """A training produced a non-finite loss or non-finite weights.

    Raised by ``fit`` when the dense round diverges; the estimator is then left
    as it was before ``fit``.
    """


class FitInterruptedWarning(UserWarning):
    """A Ctrl-C ended a search after it had completed at least one round.

    The fit returned normally, with the last completed round as its winning
    ticket.
    """


class TrainingDivergedWarning(UserWarning):
    """A pruning round diverged, and the search stopped before it.

    The winning ticket is the last round whose training stayed finite.
    """


class InputScaleWarning(UserWarning):
    """The features' scales differ by orders of magnitude, and the default net will
    train poorly on them: standardize the inputs (``StandardScaler``)."""
