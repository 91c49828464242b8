"""Which inputs a sparse net still reads: the ticket as a feature selector.

A very sparse ticket disconnects most of its inputs; the inputs it still
reads are a feature selection learned with the model. The mathematics here
is plain numpy on the trained weights, so that it is tested on its own.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted
from torch import nn

__all__ = ["InputImportancesMixin", "feature_names", "first_layer_weights",
           "input_importances", "module_input_importances", "used_features"]


def _linear_chain(module: nn.Module, n_features: int) -> list[tuple[str, nn.Linear]]:
    """The ``nn.Linear`` layers of ``module`` in order, from the first one that reads the
    ``n_features`` inputs; empty if none does."""
    linears = [(name, sub) for name, sub in module.named_modules() if isinstance(sub, nn.Linear)]
    start = next((i for i, (_, layer) in enumerate(linears)
                  if layer.in_features == n_features), None)
    return [] if start is None else linears[start:]


def first_layer_weights(module: nn.Module,
                        n_features: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The weights of the first ``nn.Linear`` reading the inputs, and those of the layer
    after it when it reads the first one's outputs (None otherwise).

    Raises
    ------
    AttributeError
        No ``nn.Linear`` of the module takes ``n_features`` inputs (a
        convolutional net, say): per-input importances are not defined.
    """
    chain = _linear_chain(module, n_features)
    if not chain:
        raise AttributeError(
            f"feature importances need an nn.Linear layer that reads the {n_features} inputs; "
            f"the module {type(module).__name__} has none.")
    first = chain[0][1].weight.detach().cpu().numpy()
    after = None
    if len(chain) > 1 and chain[1][1].in_features == first.shape[0]:
        after = chain[1][1].weight.detach().cpu().numpy()
    return first, after


def input_importances(first: np.ndarray, after: np.ndarray | None = None) -> np.ndarray:
    """Per input, its share of the first layer's surviving weight magnitude.

    ``first`` is the first layer's (masked, trained) weight matrix, of shape
    (units, inputs). Each input's importance is the sum of ``|w|`` over its
    weights into units that still pass something on: with ``after``, the
    weights of the layer that reads those units, a unit with no surviving
    outgoing weight is left out (what it receives is lost). The importances
    are normalized to sum to 1 (all zero when nothing is connected). An input
    none of whose weights survive, or whose weights all lead to such dead
    units, gets exactly 0.

    Examples
    --------
    >>> first = np.array([[0.5, 0.0, -1.0], [0.0, 0.0, 2.0], [1.0, 0.0, 0.0]])
    >>> input_importances(first).tolist()
    [0.3333333333333333, 0.0, 0.6666666666666666]
    >>> after = np.array([[0.0, 1.0, 0.0]])  # units 0 and 2 pass nothing on
    >>> input_importances(first, after).tolist()
    [0.0, 0.0, 1.0]
    """
    magnitudes = np.abs(np.asarray(first, dtype=np.float64))
    if after is not None:
        alive = np.any(np.asarray(after) != 0, axis=0)
        magnitudes = magnitudes * alive[:, None]
    per_input = magnitudes.sum(axis=0)
    total = per_input.sum()
    return per_input / total if total > 0 else per_input


def module_input_importances(module: nn.Module, n_features: int) -> np.ndarray:
    """:func:`input_importances` of a trained module's first layer (see
    :func:`first_layer_weights`)."""
    return input_importances(*first_layer_weights(module, n_features))


def feature_names(n_features: int, names: np.ndarray | None) -> np.ndarray:
    """The inputs' names: ``names`` when ``fit`` saw them, else ``x0``, ``x1``, ... as
    scikit-learn names unnamed features."""
    if names is not None:
        return np.asarray(names, dtype=object)
    return np.asarray([f"x{i}" for i in range(n_features)], dtype=object)



def used_features(module: nn.Module, n_features: int, names: np.ndarray | None) -> np.ndarray:
    """The names (:func:`feature_names`) of the inputs a trained module still reads: those
    of non-zero :func:`module_input_importances`, in input order."""
    return feature_names(n_features, names)[module_input_importances(module, n_features) > 0]


class InputImportancesMixin:
    """``feature_importances_`` and ``used_features_`` of an estimator whose fitted ticket
    is a trained skorch ``net_`` on ``n_features_in_`` inputs."""

    @property
    def feature_importances_(self) -> np.ndarray:
        """Per input feature, its share of the ticket's surviving first-layer weight magnitude.

        For input j, the sum of ``|w|`` over its trained, unpruned weights into
        the first ``nn.Linear`` layer that reads the inputs, counting only the
        units of that layer that still pass something on to the next layer;
        normalized to sum to 1. An input the ticket no longer reads (every
        first-layer weight of it pruned, or leading only to units with no
        surviving outgoing weight) gets exactly 0, so that
        ``SelectFromModel(LotteryTicketClassifier(target_sparsity=0.99))``
        keeps the inputs the ticket uses. It says how strongly the net is
        wired to each input, not how much the predictions depend on it
        (inputs on different scales, later layers and the activations all
        change that): ``sklearn.inspection.permutation_importance`` measures
        that. Read from ``net_`` and ``winning_ticket_`` (so it follows
        ``prune()``); an ``AttributeError`` when no ``nn.Linear`` reads the
        inputs (a convolutional net).

        Returns
        -------
        ndarray of shape (n_features_in_,)
        """
        check_is_fitted(self, "net_")
        return module_input_importances(self.net_.module_, self.n_features_in_)

    @property
    def used_features_(self) -> np.ndarray:
        """The names of the inputs the ticket still reads (non-zero
        ``feature_importances_``), in input order: ``feature_names_in_`` when
        ``fit`` saw named columns, else ``x0``, ``x1``, ... as scikit-learn names
        unnamed features.

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self, "net_")
        return used_features(self.net_.module_, self.n_features_in_,
                             getattr(self, "feature_names_in_", None))
