"""skticket: scikit-learn estimators that find lottery tickets in neural networks.

A lottery ticket is a sparse subnetwork of a randomly initialised dense network
that, trained in isolation from its original initial weights, matches the dense
network. :class:`LotteryTicketClassifier` and :class:`LotteryTicketRegressor`
find one by iterative magnitude pruning around a skorch net.
"""

from ._compact import CompactClassifier, CompactRegressor
from ._curves import plot_ticket_curve, summarize_ticket_curve, ticket_curve
from ._estimators import LotteryTicketClassifier, LotteryTicketRegressor
from ._mlp import MLP
from ._nets import DefaultClassifierNet, DefaultRegressorNet
from ._ticket import Ticket

__all__ = [
    "MLP",
    "CompactClassifier",
    "CompactRegressor",
    "DefaultClassifierNet",
    "DefaultRegressorNet",
    "LotteryTicketClassifier",
    "LotteryTicketRegressor",
    "Ticket",
    "plot_ticket_curve",
    "summarize_ticket_curve",
    "ticket_curve",
]

__version__ = "0.1.0"
