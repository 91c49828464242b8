"""skticket: scikit-learn estimators that find lottery tickets in neural networks.

A lottery ticket is a sparse subnetwork of a randomly initialised dense network
that, trained in isolation from its original initial weights, matches the dense
network. :class:`LotteryTicketClassifier` and :class:`LotteryTicketRegressor`
find one around a skorch net by a search, passed as ``search=``: :class:`IMP`
(iterative magnitude pruning, the default), :class:`EarlyBird` or
:class:`SNIP`, or one of the one-training searches that move the mask while
the net trains, :class:`GradualPruning`, :class:`SparseMomentum` and
:class:`RigL`, or :class:`Supermask`, which learns a mask over the untrained
weights; a new search subclasses :class:`Search`, and what it needs from
inside a training is a :class:`TrainingHook`. :class:`TargetedDropout` is a
skorch callback (and a training hook) that makes a net robust to pruning.
"""

from ._compact import CompactClassifier, CompactRegressor
from ._curves import plot_ticket_curve, summarize_ticket_curve, ticket_curve
from ._cv import LotteryTicketClassifierCV, LotteryTicketRegressorCV
from ._display import TicketPathDisplay
from ._estimators import LotteryTicketClassifier, LotteryTicketRegressor
from ._hooks import TrainingHook
from ._mlp import MLP
from ._nets import DefaultClassifierNet, DefaultRegressorNet
from ._path import TicketPathPoint, ticket_path
from ._search import (
    IMP,
    SNIP,
    EarlyBird,
    GradualPruning,
    RigL,
    Search,
    SearchRun,
    SparseMomentum,
    SparseTraining,
)
from ._supermask import Supermask
from ._targeted_dropout import TargetedDropout
from ._ticket import Ticket

__all__ = [
    "IMP",
    "MLP",
    "SNIP",
    "CompactClassifier",
    "CompactRegressor",
    "DefaultClassifierNet",
    "DefaultRegressorNet",
    "EarlyBird",
    "GradualPruning",
    "LotteryTicketClassifier",
    "LotteryTicketClassifierCV",
    "LotteryTicketRegressor",
    "LotteryTicketRegressorCV",
    "RigL",
    "Search",
    "SearchRun",
    "SparseMomentum",
    "SparseTraining",
    "Supermask",
    "TargetedDropout",
    "Ticket",
    "TicketPathDisplay",
    "TicketPathPoint",
    "TrainingHook",
    "plot_ticket_curve",
    "summarize_ticket_curve",
    "ticket_curve",
    "ticket_path",
]

__version__ = "0.1.0"
