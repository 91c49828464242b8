"""The nets the estimators train when ``net=None``, tunable like any skorch net.

:class:`DefaultClassifierNet` and :class:`DefaultRegressorNet` are skorch
nets with defaults that suit small tabular data: an :class:`~skticket.MLP`
with one hidden layer of 100 units, Adam at lr 0.01 (on its fused kernel,
as every torch optimizer that has one runs in a search), batches of
``min(200, n_samples)`` as scikit-learn's MLPs take them, no internal
validation split, silent, and trained to convergence the way
scikit-learn's MLPs are: until the training loss has not improved by
``1e-4`` for 10 epochs (a skorch ``EarlyStopping`` on ``train_loss``, the
default callback ``"converged"``, that waits for a one-training search's mask
schedule to end), at most 200 epochs. A tiny data set then
gets the steps it needs and a large one stops once it has learned.

Every setting is an ordinary skorch parameter: ``net__max_epochs``,
``net__lr``, ``net__module__hidden_units``, ``net__device``,
``net__callbacks__converged__patience``, or ``net__callbacks__converged=None``
to train a fixed number of epochs.
"""

from __future__ import annotations

import torch
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import EarlyStopping

from ._mlp import MLP

__all__ = ["DefaultClassifierNet", "DefaultRegressorNet"]

#: scikit-learn's MLP defaults for its stopping rule: ``tol`` and ``n_iter_no_change``.
CONVERGENCE_TOL = 1e-4
CONVERGENCE_PATIENCE = 10
#: The largest batch of ``batch_size="auto"``, as in scikit-learn's MLPs.
AUTO_BATCH_ROWS = 200


def auto_batch_size(n_rows: int) -> int:
    """The rows per batch ``batch_size="auto"`` means for ``n_rows`` rows:
    ``min(200, n_rows)``, scikit-learn's MLP rule.

    >>> auto_batch_size(150), auto_batch_size(1797)
    (150, 200)
    """
    return max(1, min(AUTO_BATCH_ROWS, int(n_rows)))


class Converged(EarlyStopping):
    """skorch's ``EarlyStopping``, that lets a training run on while a callback holds it.

    The default nets' ``"converged"`` rule. An epoch counts toward it only
    once no callback of the net has a true ``holds_training`` attribute: a
    one-training search's mask schedule holds the training until its last
    update (the loss of a net whose mask is still moving says nothing about
    convergence, and a pruning schedule cut short would miss its target).
    """

    def on_epoch_end(self, net, **kwargs) -> None:
        if any(getattr(callback, "holds_training", False) for _, callback in net.callbacks_):
            return
        super().on_epoch_end(net, **kwargs)


class _TabularDefaults:
    """What the default nets add to skorch's: the ``"converged"`` callback, and
    ``batch_size="auto"``."""

    @property
    def _default_callbacks(self):
        return [
            *super()._default_callbacks,
            ("converged", Converged(monitor="train_loss", patience=CONVERGENCE_PATIENCE,
                                    threshold=CONVERGENCE_TOL, threshold_mode="abs")),
        ]

    def get_iterator(self, dataset, training=False):
        """skorch's iterator, with ``batch_size="auto"`` resolved for ``dataset``.

        The estimators resolve ``"auto"`` when they size the net from the data;
        this serves the net used on its own.
        """
        if self.batch_size != "auto":
            return super().get_iterator(dataset, training=training)
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = {"batch_size": auto_batch_size(len(dataset)), **self.get_params_for(prefix)}
        return getattr(self, prefix)(dataset, **kwargs)


def _tabular_init(default_criterion: type[torch.nn.Module]):
    """The default nets' ``__init__``, one signature for both, differing only in the
    criterion's default (scikit-learn's ``clone`` and the docs read the signature)."""

    def __init__(self, module=MLP, *args, criterion=default_criterion,
                 optimizer=torch.optim.Adam, lr=0.01, max_epochs=200, batch_size="auto",
                 train_split=None, verbose=0, **kwargs) -> None:
        kwargs.setdefault("module__hidden_units", (100,))
        super(_TabularDefaults, self).__init__(
            module, *args, criterion=criterion, optimizer=optimizer, lr=lr,
            max_epochs=max_epochs, batch_size=batch_size, train_split=train_split,
            verbose=verbose, **kwargs)

    return __init__


_SHARED_DOC = """
    Parameters
    ----------
    module : torch module class or instance, default=skticket.MLP
        Sized from the data by the estimator (``n_features``, ``n_outputs``).
    criterion : torch loss, default={criterion}
    optimizer : torch optimizer, default=torch.optim.Adam
        Run with ``fused=True`` in a search unless ``optimizer__fused`` or
        ``optimizer__foreach`` is set (see the README's section on speed).
    lr : float, default=0.01
    max_epochs : int, default=200
        At most this many epochs; the ``"converged"`` callback usually ends a
        training sooner.
    batch_size : int or "auto", default="auto"
        Rows per batch; ``"auto"``: ``min(200, n_samples)``, as in
        scikit-learn's MLPs (a whole small data set is one batch).
    train_split : None, default=None
        No internal validation split: every row trains.
    verbose : int, default=0
    **kwargs
        Any other skorch parameter. ``module__hidden_units`` defaults to
        ``(100,)``.
"""


class DefaultClassifierNet(_TabularDefaults, NeuralNetClassifier):
    __doc__ = ("The net :class:`~skticket.LotteryTicketClassifier` trains when ``net=None``.\n"
               + _SHARED_DOC.format(criterion="torch.nn.NLLLoss (on the MLP's softmax)") + """
    Examples
    --------
    >>> from skticket import DefaultClassifierNet, LotteryTicketClassifier
    >>> clf = LotteryTicketClassifier().set_params(net__max_epochs=50, net__lr=0.005)
    >>> type(clf.net).__name__, clf.net.max_epochs, clf.net.lr
    ('DefaultClassifierNet', 50, 0.005)
    >>> LotteryTicketClassifier().net is None  # the default is built per estimator
    True
    """)

    __init__ = _tabular_init(torch.nn.NLLLoss)


class DefaultRegressorNet(_TabularDefaults, NeuralNetRegressor):
    __doc__ = ("The net :class:`~skticket.LotteryTicketRegressor` trains when ``net=None``.\n\n"
               "    With this net the regressor trains on the standardized target.\n"
               + _SHARED_DOC.format(criterion="torch.nn.MSELoss"))

    __init__ = _tabular_init(torch.nn.MSELoss)
