"""The nets the estimators train when ``net=None``, tunable like any skorch net.

:class:`DefaultClassifierNet` and :class:`DefaultRegressorNet` are skorch
nets with defaults chosen on a benchmark of real tables
(``benchmarks/bench_real_tables.py``; the user guide's "Defaults" page,
``docs/guide/defaults.rst``, has its table). Each setting is one constant
below, which the nets' signatures and docstrings read: an
:class:`~skticket.MLP` of ``HIDDEN_UNITS`` (a 90% ticket of scikit-learn's
100-unit MLP is too small for many tables), Adam at ``LEARNING_RATE`` (on its
fused kernel, as every torch optimizer that has one runs in a search; wider
nets collapsed at 0.01), batches of ``AUTO_BATCH_ROWS`` rows at most, as
scikit-learn's MLPs take them, silent, and trained until they converge:
scikit-learn's MLP rule with ``early_stopping=True`` (``HELD_OUT`` rows, a
fixed shuffled split, are held out; training stops once their loss has not
improved by ``CONVERGENCE_TOL`` for ``CONVERGENCE_PATIENCE`` epochs, and the
net keeps the weights of its best epoch: the ``"converged"`` callback, which
waits for a one-training search's mask schedule to end), at most
``MAX_EPOCHS`` epochs. A held-out stopping rule lets a wide net fit a large
table without memorizing a small, noisy one.

Every setting is an ordinary skorch parameter: ``net__max_epochs``,
``net__lr``, ``net__module__hidden_units``, ``net__device``,
``net__callbacks__converged__patience``, ``net__train_split=None`` to train on
every row (the rule then watches the training loss and keeps the last
epoch, scikit-learn's MLP default), or ``net__callbacks__converged=None`` to
train a fixed number of epochs. :func:`validate_net_params` checks the
default nets' settings at ``fit`` (the estimators' and the nets' own), as
scikit-learn checks an MLP's, with its ``InvalidParameterError``.

:func:`sized_net` sizes any net, default or given, from the training data
when an estimator fits it.
"""
from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import torch
from skorch import NeuralNet, NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import EarlyStopping
from skorch.dataset import ValidSplit

from ._compat import (
    ChangedDefaultCallbacks,
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)
from ._mlp import MLP, activation_names

__all__ = ["DefaultClassifierNet", "DefaultRegressorNet", "auto_batch_size", "sized_net",
           "validate_net_params"]

#: The default net's hidden layers and learning rate (benchmarks/bench_real_tables.py).
HIDDEN_UNITS = (256, 256)
LEARNING_RATE = 1e-3
#: scikit-learn's MLP defaults for its stopping rule: ``tol``, ``n_iter_no_change`` and
#: ``validation_fraction``.
CONVERGENCE_TOL = 1e-4
CONVERGENCE_PATIENCE = 10
VALIDATION_FRACTION = 0.1
#: The rows the default nets hold out: a fixed shuffled split (not stratified, so that
#: multilabel targets and classes of one member split too), the same in every round.
HELD_OUT = ValidSplit(VALIDATION_FRACTION, stratified=False, random_state=0)
#: The largest batch of ``batch_size="auto"``, as in scikit-learn's MLPs.
AUTO_BATCH_ROWS = 200
#: The most epochs a training runs (scikit-learn's MLP ``max_iter``).
MAX_EPOCHS = 200


def auto_batch_size(n_rows: int) -> int:
    """The rows per batch ``batch_size="auto"`` means for ``n_rows`` rows:
    ``min(200, n_rows)``, scikit-learn's MLP rule.

    >>> auto_batch_size(150), auto_batch_size(1797)
    (150, 200)
    """
    return max(1, min(AUTO_BATCH_ROWS, int(n_rows)))


# The default nets' own settings, constrained as scikit-learn's MLPs constrain theirs
# (learning_rate_init, max_iter, batch_size, n_iter_no_change, tol).
_NET_CONSTRAINTS: dict[str, list] = {
    "lr": [Interval(Real, 0, None, closed="neither")],
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
}
_CONVERGED_CONSTRAINTS: dict[str, list] = {
    "patience": [Interval(Integral, 1, None, closed="left")],
    "threshold": [Interval(Real, 0, None, closed="left")],
}


def validate_net_params(net: NeuralNet, *, default: bool, prefix: str = "",
                        caller: str | None = None) -> None:
    """Check ``net``'s settings before any training, as scikit-learn checks an MLP's.

    A default net (``default``): ``lr`` (a float > 0), ``max_epochs`` (an int
    >= 1), ``batch_size`` (an int >= 1 or ``"auto"``), with the
    :class:`~skticket.MLP` module its ``module__hidden_units`` (a tuple of
    positive ints) and ``module__activation`` (a name of the activation table
    or a ``torch.nn.Module`` subclass), and the ``"converged"`` callback's
    ``patience`` (an int >= 1) and ``threshold`` (a float >= 0) where it is
    there. Any other net keeps skorch's handling of its settings, except that
    a ``max_epochs`` below 1, a training that trains nothing, is refused.

    Parameters
    ----------
    net : skorch NeuralNet
        The unfitted net.
    default : bool
        Whether ``net`` is one of the default nets.
    prefix : str, default=""
        What the caller names the net's parameters with (``"net__"`` for an
        estimator's), so that the error names the parameter as it was set.
    caller : str, default=None
        Whose parameters they are (the estimator's name); the net's class name
        by default.

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        A ``ValueError`` and ``TypeError``, scikit-learn's, naming the parameter.
    """
    caller = type(net).__name__ if caller is None else caller
    params = net.get_params(deep=False)
    if not default:
        max_epochs = params.get("max_epochs")
        if isinstance(max_epochs, Real) and max_epochs < 1:
            _validated({"max_epochs": max_epochs}, _NET_CONSTRAINTS, prefix, caller)
        return
    _validated({name: params[name] for name in _NET_CONSTRAINTS if name in params},
               _NET_CONSTRAINTS, prefix, caller)
    if isinstance(net.module, type) and issubclass(net.module, MLP):
        _check_mlp_settings(params, prefix, caller)
    callback = params.get("callbacks__converged",
                          dict(net.get_default_callbacks()).get("converged"))
    if isinstance(callback, EarlyStopping):
        prefix_ = f"{prefix}callbacks__converged__"
        settings = {name: params.get(f"callbacks__converged__{name}", getattr(callback, name))
                    for name in _CONVERGED_CONSTRAINTS}
        _validated(settings, _CONVERGED_CONSTRAINTS, prefix_, caller)


def _validated(values: dict[str, Any], constraints: dict[str, list], prefix: str,
               caller: str) -> None:
    """scikit-learn's check of ``values``, its messages naming them with ``prefix``."""
    validate_parameter_constraints(
        {f"{prefix}{name}": constraints[name] for name in values},
        {f"{prefix}{name}": value for name, value in values.items()}, caller_name=caller)


def _check_mlp_settings(params: dict[str, Any], prefix: str, caller: str) -> None:
    """The :class:`~skticket.MLP` module's hidden units and activation, where set."""
    if "module__hidden_units" in params:
        units = params["module__hidden_units"]
        if not (isinstance(units, Sequence) and not isinstance(units, str) and all(
                isinstance(u, Integral) and not isinstance(u, bool) and u >= 1 for u in units)):
            raise InvalidParameterError(
                f"The '{prefix}module__hidden_units' parameter of {caller} must be a tuple of "
                f"positive ints, one per hidden layer, such as (256, 256). Got {units!r} "
                "instead.")
    if "module__activation" in params:
        activation = params["module__activation"]
        names = activation_names()
        if not ((isinstance(activation, str) and activation in names) or (
                isinstance(activation, type) and issubclass(activation, torch.nn.Module))):
            raise InvalidParameterError(
                f"The '{prefix}module__activation' parameter of {caller} must be a str among "
                f"{sorted(names)} or a torch.nn.Module subclass. Got {activation!r} instead.")


def _module_takes(module, name: str) -> bool:
    """Whether the module class (or factory) ``module`` has a parameter ``name``; a
    module instance is used as it is."""
    if isinstance(module, torch.nn.Module):
        return False
    try:
        return name in inspect.signature(module).parameters
    except (TypeError, ValueError):
        return False


def sized_net(net: NeuralNet, n_rows: int, n_features: int, n_outputs: int,
              **module_defaults: Any) -> NeuralNet:
    """``net`` sized for training data of ``n_rows`` rows and ``n_features`` features.

    The module's ``n_features`` and ``n_outputs``, and each of
    ``module_defaults``, are filled in when the module's constructor takes them
    and the net does not set them (as SciKeras sizes a model from the data
    when it fits); ``batch_size="auto"`` becomes :func:`auto_batch_size` of
    ``n_rows``. Sets them on ``net``, which must be unfitted and the caller's
    own (a clone), and returns it.

    Parameters
    ----------
    net : skorch NeuralNet
        Unfitted; changed in place.
    n_rows, n_features : int
        The shape of the training data.
    n_outputs : int
        Outputs of the module: classes, labels or targets.
    **module_defaults
        Further module parameters to fill in the same way (the classifier's
        ``output_activation``).

    Returns
    -------
    NeuralNet
        ``net``.

    Examples
    --------
    >>> net = sized_net(DefaultClassifierNet(), 150, 4, 3, output_activation="softmax")
    >>> params = net.get_params()
    >>> params["module__n_features"], params["module__n_outputs"], params["batch_size"]
    (4, 3, 150)
    """
    set_by_net = net.get_params(deep=False)
    sizing = {"n_features": n_features, "n_outputs": n_outputs, **module_defaults}
    fill = {f"module__{key}": value for key, value in sizing.items()
            if f"module__{key}" not in set_by_net and _module_takes(net.module, key)}
    if isinstance(net.batch_size, str) and net.batch_size == "auto":
        fill["batch_size"] = auto_batch_size(n_rows)
    if fill:
        net.set_params(**fill)
    return net


class Converged(EarlyStopping):
    """skorch's ``EarlyStopping``, that lets a training run on while a callback holds it.

    The default nets' ``"converged"`` rule. An epoch counts toward it only
    once no callback of the net has a true ``holds_training`` attribute: a
    one-training search's mask schedule holds the training until its last
    update (the loss of a net whose mask is still moving says nothing about
    convergence, and a pruning schedule cut short would miss its target).

    ``monitor="auto"`` and ``load_best="auto"`` (the defaults) follow the
    net's ``train_split``, as scikit-learn's MLPs follow ``early_stopping``:
    with held-out rows, their ``valid_loss`` is watched and the best epoch's
    weights are kept; with ``train_split=None``, the ``train_loss`` is
    watched and the last epoch's weights are kept. Any other value is
    skorch's.
    """

    def __init__(self, monitor="auto", patience=CONVERGENCE_PATIENCE,
                 threshold=CONVERGENCE_TOL, threshold_mode="abs", lower_is_better=True,
                 sink=print, load_best="auto") -> None:
        super().__init__(monitor=monitor, patience=patience, threshold=threshold,
                         threshold_mode=threshold_mode, lower_is_better=lower_is_better,
                         sink=sink, load_best=load_best)

    def on_train_begin(self, net, **kwargs) -> None:
        held_out = net.train_split is not None
        self.monitor_ = (("valid_loss" if held_out else "train_loss") if self.monitor == "auto"
                         else self.monitor)
        self.load_best_ = held_out if self.load_best == "auto" else self.load_best
        super().on_train_begin(net, **kwargs)

    @contextlib.contextmanager
    def _resolved(self, load_best: bool):
        # skorch's methods read ``monitor`` and ``load_best``: they see the resolved
        # values for the call, and the parameters stay as the user set them.
        params = self.monitor, self.load_best
        self.monitor, self.load_best = self.monitor_, load_best
        try:
            yield
        finally:
            self.monitor, self.load_best = params

    def on_epoch_end(self, net, **kwargs) -> None:
        if any(getattr(callback, "holds_training", False) for _, callback in net.callbacks_):
            return
        best_epoch = self.best_epoch_
        try:
            # skorch would deepcopy the state dict at every better epoch (on iris, 2.37 s
            # of a fit against 1.66 s): the best weights are copied into tensors kept
            # instead.
            with self._resolved(load_best=False):
                super().on_epoch_end(net, **kwargs)
        finally:
            if self.load_best_ and self.best_epoch_ != best_epoch:
                self._keep_best(net.module_.state_dict())

    def _keep_best(self, state) -> None:
        if self.best_model_weights_ is None:
            self.best_model_weights_ = {k: v.detach().clone() for k, v in state.items()}
        else:
            for name, value in state.items():
                self.best_model_weights_[name].copy_(value)

    def on_train_end(self, net, **kwargs) -> None:
        with self._resolved(load_best=self.load_best_):
            super().on_train_end(net, **kwargs)


class _TabularDefaults(ChangedDefaultCallbacks):
    """What the default nets change in skorch's: the ``"converged"`` callback instead of
    ``"valid_acc"``, ``batch_size="auto"``, and their settings checked at ``fit``."""

    def fit(self, X, y=None, **fit_params):
        """skorch's ``fit``, once the settings are checked (:func:`validate_net_params`)."""
        validate_net_params(self, default=True)
        return super().fit(X, y, **fit_params)

    def _changed_default_callbacks(self, callbacks):
        # skorch's valid_acc would score a multilabel target as multiclass and cannot
        # read a weighted batch; the rule watches the held-out loss, and the
        # estimators score held-out rows themselves (score_tolerance).
        return [
            *((name, callback) for name, callback in callbacks if name != "valid_acc"),
            ("converged", Converged()),
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
                 optimizer=torch.optim.Adam, lr=LEARNING_RATE, max_epochs=MAX_EPOCHS,
                 batch_size="auto", train_split=HELD_OUT, verbose=0, **kwargs) -> None:
        kwargs.setdefault("module__hidden_units", HIDDEN_UNITS)
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
        ``optimizer__foreach`` is set (see the user guide's
        performance page, ``docs/guide/performance.rst``).
    lr : float, default={lr}
    max_epochs : int, default={max_epochs}
        At most this many epochs; the ``"converged"`` callback usually ends a
        training sooner.
    batch_size : int or "auto", default="auto"
        Rows per batch; ``"auto"``: ``min({auto_rows}, n_samples)``, as in
        scikit-learn's MLPs (a whole small data set is one batch).
    train_split : callable or None, default=ValidSplit({fraction}, stratified=False, random_state=0)
        The rows held out for the ``"converged"`` rule: a fixed shuffled
        {percent:g}%. None: every row trains, and the rule watches the training loss.
    verbose : int, default=0
    **kwargs
        Any other skorch parameter. ``module__hidden_units`` defaults to
        ``{hidden_units}``.
"""



def _shared_doc(criterion: str) -> str:
    """The default nets' parameter docs, their defaults read from the constants above."""
    return _SHARED_DOC.format(
        criterion=criterion, lr=LEARNING_RATE, max_epochs=MAX_EPOCHS,
        auto_rows=AUTO_BATCH_ROWS, fraction=VALIDATION_FRACTION,
        percent=100 * VALIDATION_FRACTION, hidden_units=HIDDEN_UNITS)


class DefaultClassifierNet(_TabularDefaults, NeuralNetClassifier):
    __doc__ = ("The net :class:`~skticket.LotteryTicketClassifier` trains when ``net=None``.\n"
               + _shared_doc(criterion="torch.nn.NLLLoss (on the MLP's softmax)") + """
    Examples
    --------
    >>> from skticket import DefaultClassifierNet, LotteryTicketClassifier
    >>> clf = LotteryTicketClassifier().set_params(net__max_epochs=50, net__lr=0.005)
    >>> type(clf.net).__name__, clf.net.max_epochs, clf.net.lr
    ('DefaultClassifierNet', 50, 0.005)
    >>> params = clf.get_params()
    >>> params["net__module__hidden_units"], params["net__train_split"].cv
    ((256, 256), 0.1)
    >>> LotteryTicketClassifier().net is None  # the default is built per estimator
    True
    """)

    __init__ = _tabular_init(torch.nn.NLLLoss)


class DefaultRegressorNet(_TabularDefaults, NeuralNetRegressor):
    __doc__ = ("The net :class:`~skticket.LotteryTicketRegressor` trains when ``net=None``.\n\n"
               "    With this net the regressor trains on the standardized target.\n"
               + _shared_doc(criterion="torch.nn.MSELoss"))

    __init__ = _tabular_init(torch.nn.MSELoss)
