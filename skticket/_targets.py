"""What an estimator's target is to its net: the one place the two estimators differ.

A :class:`TargetEncoding` is learned from ``y`` at ``fit`` and says everything
that depends on the kind of target: the net the estimator wraps (its default,
the skorch nets of the other kind it refuses, the loss a multilabel target
needs), how many outputs the module has, ``y`` as the net trains on it, the
net's outputs as ``predict`` returns them, the score of a trained net, and the
fitted attributes it gives the estimator. :class:`ClassLabels` (scikit-learn's
``LabelEncoder``, and ``LabelBinarizer`` for a label indicator matrix) serves
the classifier, :class:`RegressionTarget` (a :class:`TargetScaling` fitted by
``StandardScaler``) the regressor; each estimator names its own and the shared
code calls it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.base import clone
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer, LabelEncoder, StandardScaler
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d
from skorch import NeuralNet, NeuralNetBinaryClassifier, NeuralNetClassifier, NeuralNetRegressor
from torch import nn

from ._nets import DefaultClassifierNet, DefaultRegressorNet

__all__ = ["ClassLabels", "ClassPredictions", "RegressionTarget", "TargetEncoding",
           "TargetPredictions", "TargetScaling", "is_criterion"]

#: A multilabel prediction is 1 where the label's probability is above this.
MULTILABEL_THRESHOLD = 0.5

# A row of class probabilities is renormalized in float64 when its sum is off
# 1 by more than float64 rounding (a float64 softmax is within a few 1e-16,
# and is left bit for bit as it is) and by no more than float32 rounding of
# a softmax over many classes (about n_classes * 6e-8): such a row is a
# float32 softmax handed back as float64. A row further off is not a
# probability vector (a net of one's own without a softmax) and is left alone.
_FLOAT64_SUM_TOLERANCE = 1e-12
_FLOAT32_SUM_TOLERANCE = 1e-4


def normalized_probabilities(proba: np.ndarray) -> np.ndarray:
    """``proba`` with each float32-rounded probability row divided by its float64 sum.

    Rows of non-negative values summing to 1 within float32 rounding (see
    ``_FLOAT32_SUM_TOLERANCE``) then sum to 1 to float64 rounding, as
    scikit-learn's ``log_loss`` checks; every other row is returned as it is.
    Each row is decided on its own, so a row's result does not depend on the
    others in the call.
    """
    sums = proba.sum(axis=1)
    off = np.abs(sums - 1.0)
    rows = ((off > _FLOAT64_SUM_TOLERANCE) & (off <= _FLOAT32_SUM_TOLERANCE)
            & (proba >= 0).all(axis=1))
    if not rows.any():
        return proba
    proba = proba.copy()
    proba[rows] /= sums[rows, None]
    return proba


def is_criterion(criterion, loss: type[nn.Module]) -> bool:
    """Whether a net's ``criterion`` (a class or an instance) is a ``loss``."""
    return (isinstance(criterion, type) and issubclass(criterion, loss)) or isinstance(
        criterion, loss)


@dataclass(frozen=True, eq=False)
class TargetScaling:
    """The default regressor's target standardization, and its inverse: one object that
    training, ``predict``, the compact predictor and ONNX export all use.

    Attributes
    ----------
    offset : ndarray of shape (n_outputs,)
        Each target's mean.
    scale : ndarray of shape (n_outputs,)
        Each target's standard deviation (1 for a constant target).

    Examples
    --------
    >>> scaling = TargetScaling.of(np.array([[1.0], [3.0]]))
    >>> scaling.transform(np.array([[3.0]])).tolist(), scaling.inverse(np.array([[1.0]])).tolist()
    ([[1.0]], [[3.0]])
    """

    offset: np.ndarray
    scale: np.ndarray

    @classmethod
    def of(cls, y: np.ndarray) -> TargetScaling:
        """The standardization of the (n_samples, n_outputs) target ``y``, as
        scikit-learn's ``StandardScaler`` fits it."""
        scaler = StandardScaler().fit(y)
        return cls(offset=scaler.mean_, scale=scaler.scale_)

    # The arithmetic of StandardScaler's transform and inverse_transform, without their
    # input checks: predict calls it on every batch, and the compact predictor and the
    # ONNX graph repeat it from offset and scale.
    def transform(self, y: np.ndarray) -> np.ndarray:
        """The target as the net trains on it."""
        return (y - self.offset) / self.scale

    def inverse(self, predictions: np.ndarray) -> np.ndarray:
        """The net's outputs in the target's units."""
        return predictions * self.scale + self.offset


class TargetEncoding(ABC):
    """What one kind of estimator's target is to its net, learned by :meth:`fit_transform`.

    Parameters
    ----------
    estimator_name : str
        The estimator's class name, for error messages.
    default_net : bool
        Whether the estimator trains its default net (``net=None``, or one of
        the default net's class).
    """

    #: The net ``net=None`` stands for, and the skorch nets of the other kind, refused.
    default_net_class: ClassVar[type[NeuralNet]]
    refused_nets: ClassVar[tuple[type[NeuralNet], ...]]
    #: Whether ``y`` must be numeric (scikit-learn's ``validate_data(y_numeric=...)``).
    y_numeric: ClassVar[bool]

    def __init__(self, *, estimator_name: str, default_net: bool) -> None:
        self.estimator_name = estimator_name
        self.default_net = default_net

    @abstractmethod
    def fit_transform(self, y: np.ndarray, *, classes: np.ndarray | None = None) -> np.ndarray:
        """Learn the encoding of the training target ``y``; ``y`` as the net trains on it.

        ``classes``, for a classifier, are the labels to encode over instead of
        those ``y`` holds: a cross-validation fold, which may lack a class, is
        encoded with the full data's classes (LogisticRegressionCV does the
        same), so its net has an output per class. Unused by a regressor.
        """

    @abstractmethod
    def transform(self, y: np.ndarray) -> np.ndarray:
        """``y`` as the net trains on it, checked against the target seen in fit."""

    @abstractmethod
    def decode(self, outputs: np.ndarray) -> np.ndarray:
        """The net's outputs (``predict_outputs``) as ``predict`` returns them."""

    @abstractmethod
    def score(self, y: np.ndarray, outputs: np.ndarray,
              sample_weight: np.ndarray | None = None) -> float:
        """The estimator's score (accuracy, R^2) of the net's ``outputs`` against the
        encoded target ``y``."""

    @property
    @abstractmethod
    def n_outputs(self) -> int:
        """Outputs of the module: classes (or labels), or targets."""

    @abstractmethod
    def fitted_attributes(self) -> dict[str, Any]:
        """The public fitted attributes the target gives the estimator."""


    def stratify(self, y: np.ndarray) -> np.ndarray | None:
        """What the held-out split is stratified on (None: a plain shuffled split)."""
        return None

    def net_params(self, net: NeuralNet) -> dict[str, Any]:
        """Parameters of the net that the target decides."""
        return {}

    def module_defaults(self, net: NeuralNet) -> dict[str, Any]:
        """Module parameters filled in when the module takes them and they are not set."""
        return {}

    def net(self, net: NeuralNet | None) -> NeuralNet:
        """The unfitted net to size: the default net for ``None``, else a clone of ``net``,
        with what the target decides of it set.

        Raises
        ------
        TypeError
            ``net`` is a skorch net of the other kind of estimator.
        """
        if net is None:
            net = self.default_net_class()
        elif isinstance(net, self.refused_nets):
            raise TypeError(
                f"{self.estimator_name} cannot wrap a {type(net).__name__}; pass a skorch "
                f"{self.default_net_class.__name__} (or a NeuralNet) as net.")
        else:
            net = clone(net)
        decided = self.net_params(net)
        if decided:
            net.set_params(**decided)
        return net


class ClassLabels(TargetEncoding):
    """A classifier's target: class labels, or a label indicator matrix (multilabel).

    Labels are encoded by scikit-learn's ``LabelEncoder`` (``classes_`` sorted,
    the net trains on their indices); a label indicator matrix, as
    ``MLPClassifier`` trains it, gets one output per label and a loss over one
    probability per label (``classes_`` the label indices, from
    ``LabelBinarizer``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, or the label indices.
    multilabel_ : bool
        Whether ``y`` is a label indicator matrix.
    label_dtype_ : numpy dtype
        For a label indicator matrix, its dtype (what ``decode`` returns).
    """

    default_net_class = DefaultClassifierNet
    refused_nets = (NeuralNetRegressor, NeuralNetBinaryClassifier)
    y_numeric = False

    def fit_transform(self, y: np.ndarray, *, classes: np.ndarray | None = None) -> np.ndarray:
        # A sparse label indicator matrix is taken as MLPClassifier takes it (its
        # LabelBinarizer returns it dense): the net trains on dense targets.
        y = y.toarray() if issparse(y) else y
        check_classification_targets(y)
        self.multilabel_ = type_of_target(y) == "multilabel-indicator"
        if self.multilabel_:
            # An indicator matrix has a column per label whatever rows it holds.
            self.classes_ = LabelBinarizer().fit(y).classes_
            if classes is not None and not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"y is a label indicator matrix of {len(self.classes_)} labels, whose "
                    f"classes are the label indices {self.classes_.tolist()}; got classes="
                    f"{np.asarray(classes).tolist()}.")
            self.label_dtype_ = y.dtype
            return np.asarray(y, dtype=np.float32)
        y = self._column(y)
        if np.ndim(y) == 2:
            raise ValueError(
                f"{self.estimator_name} takes a 1-D y of labels or a 2-D label indicator "
                f"matrix (multilabel); got a 2-D y of kind {type_of_target(y)!r}.")
        if classes is not None:
            self.classes_ = np.asarray(classes)
            return self.transform(y)
        encoder = LabelEncoder()
        encoded = encoder.fit_transform(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"{self.estimator_name} needs samples of at least 2 classes in "
                             f"y; got only one class: {self.classes_[0]!r}.")
        return encoded.astype(np.int64)

    @staticmethod
    def _column(y):
        # A column vector of labels is taken as 1-D, with scikit-learn's warning.
        return column_or_1d(y, warn=True) if np.ndim(y) == 2 and np.shape(y)[1] == 1 else y

    def transform(self, y: np.ndarray) -> np.ndarray:
        y = y.toarray() if issparse(y) else y
        if self.multilabel_:
            if np.ndim(y) != 2 or np.shape(y)[1] != len(self.classes_) or not np.isin(
                    y, (0, 1)).all():
                raise ValueError(f"y must be a label indicator matrix of {len(self.classes_)} "
                                 f"columns of 0 and 1, as in fit; got shape {np.shape(y)}.")
            return np.asarray(y, dtype=np.float32)
        y = self._column(y)
        if np.ndim(y) != 1:
            raise ValueError(f"y must be 1-D labels, as in fit; got shape {np.shape(y)}.")
        unseen = np.setdiff1d(y, self.classes_)
        if len(unseen):
            raise ValueError(f"y holds labels not seen in fit: {unseen.tolist()}.")
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def codes(self, proba: np.ndarray) -> np.ndarray:
        """Encoded predictions of the probabilities: class indices, or (multilabel) 1
        where the label's probability is above :data:`MULTILABEL_THRESHOLD`."""
        if self.multilabel_:
            return (proba > MULTILABEL_THRESHOLD).astype(np.int64)
        return proba.argmax(axis=1)

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        codes = self.codes(outputs)
        return codes.astype(self.label_dtype_) if self.multilabel_ else self.classes_[codes]

    def score(self, y, outputs, sample_weight=None) -> float:
        # Accuracy; multilabel: subset accuracy (a row counts when every label is right).
        predicted = self.codes(outputs)
        hits = np.all(y == predicted, axis=1) if self.multilabel_ else y == predicted
        return float(np.average(hits, weights=sample_weight))

    @property
    def n_outputs(self) -> int:
        return len(self.classes_)

    def fitted_attributes(self) -> dict[str, Any]:
        return {"classes_": self.classes_}


    def stratify(self, y: np.ndarray) -> np.ndarray | None:
        return y if y.ndim == 1 else None

    def net_params(self, net: NeuralNet) -> dict[str, Any]:
        if not self.multilabel_:
            return {}
        if is_criterion(net.criterion, nn.NLLLoss):
            if not self.default_net:
                raise ValueError(
                    "Multilabel targets need a loss over one probability per label, such as "
                    "torch.nn.BCEWithLogitsLoss; the net's criterion is NLLLoss.")
            # The default net: one logit per label and binary cross-entropy.
            criterion = nn.BCEWithLogitsLoss
        else:
            criterion = net.criterion
        params = {"criterion": criterion}
        auto = isinstance(net.predict_nonlinearity, str) and net.predict_nonlinearity == "auto"
        if auto and is_criterion(criterion, nn.BCEWithLogitsLoss):
            # skorch's "auto" after BCEWithLogitsLoss makes a binary classifier's two
            # columns; for one logit per label the probabilities are their sigmoids.
            params["predict_nonlinearity"] = torch.sigmoid
        return params

    def module_defaults(self, net: NeuralNet) -> dict[str, Any]:
        # skorch's default criterion, NLLLoss, takes the log of the module's output,
        # so the module must emit probabilities.
        return ({"output_activation": "softmax"} if is_criterion(net.criterion, nn.NLLLoss)
                else {})


class RegressionTarget(TargetEncoding):
    """A regressor's target: one or several continuous outputs.

    The net trains on a 2-D float32 target (skorch's regressors need one: a
    (B, 1) prediction against a (B,) target would silently broadcast in
    ``MSELoss``); with the default net, standardized per output by a
    :class:`TargetScaling`, and ``predict`` transforms back.

    Attributes
    ----------
    is_1d_ : bool
        Whether ``y`` was 1-D (``decode`` returns it so).
    n_targets_ : int
        Number of targets.
    scaling_ : TargetScaling or None
        The standardization the net trains under; None with a net of one's own.
    """

    default_net_class = DefaultRegressorNet
    refused_nets = (NeuralNetClassifier, NeuralNetBinaryClassifier)
    y_numeric = True

    def fit_transform(self, y: np.ndarray, *, classes: np.ndarray | None = None) -> np.ndarray:
        y = self._dense(y)
        self.is_1d_ = y.ndim == 1
        self.n_targets_ = 1 if y.ndim == 1 else y.shape[1]
        # The default net trains on the standardized target: Adam at its learning
        # rate from a small init cannot reach a target in the hundreds in a few
        # hundred steps, and MSE on it diverges.
        self.scaling_ = TargetScaling.of(y.reshape(len(y), -1)) if self.default_net else None
        return self._encoded(y)

    def transform(self, y: np.ndarray) -> np.ndarray:
        y = self._dense(y)
        if (y.ndim == 1) != self.is_1d_ or y.reshape(len(y), -1).shape[1] != self.n_targets_:
            raise ValueError(f"y has shape {y.shape}; fit saw {self.n_targets_} target(s).")
        return self._encoded(y)

    def _dense(self, y) -> np.ndarray:
        """``y`` as float64; a sparse ``y`` is refused as ``MLPRegressor`` refuses it
        (scikit-learn's message), before numpy would fail on it without naming it."""
        if issparse(y):
            raise TypeError(
                f"{self.estimator_name} got a sparse y: sparse data was passed for y, but "
                "dense data is required. Use y.toarray() to convert it to a dense numpy "
                "array.")
        return np.asarray(y, dtype=np.float64)

    def _encoded(self, y: np.ndarray) -> np.ndarray:
        y = y.reshape(len(y), -1)
        if self.scaling_ is not None:
            y = self.scaling_.transform(y)
        return y.astype(np.float32)

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        if self.scaling_ is not None:
            outputs = self.scaling_.inverse(outputs)
        return outputs.ravel() if self.is_1d_ else outputs

    def score(self, y, outputs, sample_weight=None) -> float:
        return r2_score(y, outputs, sample_weight=sample_weight)

    @property
    def n_outputs(self) -> int:
        return self.n_targets_

    def fitted_attributes(self) -> dict[str, Any]:
        scaling = self.scaling_
        return {"n_outputs_": self.n_targets_,
                "target_mean_": None if scaling is None else scaling.offset,
                "target_scale_": None if scaling is None else scaling.scale}



# --- predicting through a target encoding ----------------------------------------------------


class TargetPredictions:
    """``predict``: a net's outputs decoded by the target encoding it was trained for.

    What a fitted estimator and its compact predictor share
    (:class:`~skticket.LotteryTicketRegressor` and
    :class:`~skticket.CompactRegressor`, and with :class:`ClassPredictions`
    the classifiers); each says how it computes the net's outputs
    (``_outputs(X)``: float64 rows, checked against the fit, each independent
    of the others in the call) and holds the fitted :class:`TargetEncoding` as
    ``_target_``. A regressor's ``score`` is scikit-learn's ``RegressorMixin``'s
    (R^2).
    """

    _target_: TargetEncoding

    def predict(self, X) -> np.ndarray:
        """Predictions of the winning ticket's trained net.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Values in the target's units; for a classifier, class labels (for
            multilabel targets the indicator matrix, 1 where the label's
            probability is above 0.5).
        """
        # First the outputs: they check that the estimator is fitted (a classifier's
        # outputs are its predict_proba).
        outputs = self._outputs(X)
        return self._target_.decode(outputs)


class ClassPredictions(TargetPredictions):
    """A classifier's ``predict_proba``, ``predict`` and ``score``: its net's outputs
    decoded by its :class:`ClassLabels` (see :class:`TargetPredictions`)."""

    _target_: ClassLabels

    @property
    def _multilabel_(self) -> bool:
        # skticket.onnx refuses an estimator or predictor of multilabel targets by this name.
        return self._target_.multilabel_

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of the winning ticket's trained net.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``, float64; each row sums to 1
            to float64 rounding (a net's float32 softmax is renormalized in
            float64; ``predict`` labels the net's outputs as they are). For
            multilabel targets, each label's own probability (the rows need
            not sum to 1).

        See Also
        --------
        predict_log_proba : The logarithm of these probabilities.
        """
        outputs = self._outputs(X)
        return outputs if self._target_.multilabel_ else normalized_probabilities(outputs)

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of the class probabilities of the winning ticket's trained net.

        What ``np.log(self.predict_proba(X))`` returns, as scikit-learn's
        ``MLPClassifier.predict_log_proba`` does: a probability of 0 gives
        ``-inf``, without a warning.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.

        See Also
        --------
        predict_proba : The probabilities themselves.
        """
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba)

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy on ``(X, y)``: what ``accuracy_score(y, self.predict(X))`` returns
        (for multilabel targets, subset accuracy: a row counts when every label is right).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        y_pred = self.predict(X)
        labels = _plain_labels(y, self._target_.classes_)
        if labels is None or sample_weight is not None or len(labels) != len(y_pred):
            # Everything else (weights, mixed or continuous targets, a length
            # mismatch) goes through scikit-learn's checks and messages.
            return float(accuracy_score(y, y_pred, sample_weight=sample_weight))
        return float(np.mean(labels == y_pred))


def _plain_labels(y, classes: np.ndarray) -> np.ndarray | None:
    """``y`` as a 1-D array when it is one of labels of ``classes``' kind, else ``None``.

    Integers (or booleans) against integer classes, strings against string
    classes: for those ``accuracy_score``'s target checks find nothing to
    refuse, and on a one-row call they cost several times the prediction.
    """
    if issparse(y):
        return None
    labels = np.asarray(y)
    kinds = {labels.dtype.kind, classes.dtype.kind}
    if labels.ndim != 1 or not (kinds <= set("iub") or kinds == {"U"}):
        return None
    return labels
