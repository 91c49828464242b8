"""Class probabilities: rows that sum to 1 in float64, and their logarithms.

A net that is not MLP-like predicts through skorch's float32 forward, so its
softmax rows sum to 1 only to about 1e-7; scikit-learn's ``log_loss`` wants 1
to float64 rounding, and warns on every fold of a ``neg_log_loss`` grid
search otherwise."""

import warnings

import numpy as np
import pytest
from helpers import OwnSoftmaxModule, small_net
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV

from skticket import LotteryTicketClassifier, LotteryTicketClassifierCV
from skticket._targets import normalized_probabilities

# What float64 rounding leaves of a row's sum over a few classes.
SUM_ATOL = 1e-14
SUM_WARNING = "The y_prob values do not sum to one"


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(60, 5, n_informative=3, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, random_state=0)
    return X, y


def _own_module_classifier():
    return LotteryTicketClassifier(small_net(module=OwnSoftmaxModule, max_epochs=3),
                                   target_sparsity=0.5, random_state=0)


@pytest.fixture(scope="module")
def own_module(data):
    return _own_module_classifier().fit(*data)


@pytest.fixture(scope="module")
def default_mlp(data):
    return LotteryTicketClassifier(small_net(max_epochs=3), target_sparsity=0.5,
                                   random_state=0).fit(*data)


def test_float32_softmax_rows_sum_to_one_in_float64(data, own_module):
    X, _ = data
    raw = own_module.net_.predict_proba(X.astype(np.float32)).astype(np.float64)
    # The failure as it was: the net's own rows are off 1 by float32 rounding.
    assert np.abs(raw.sum(axis=1) - 1).max() > 1e-9
    proba = own_module.predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=0, atol=SUM_ATOL)
    np.testing.assert_allclose(proba, raw, rtol=1e-6)
    # predict labels the net's outputs as they are.
    np.testing.assert_array_equal(own_module.predict(X),
                                  own_module.classes_[raw.argmax(axis=1)])


def test_float64_rows_are_left_bit_for_bit(data, default_mlp):
    X, _ = data
    proba = default_mlp.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=0, atol=SUM_ATOL)
    np.testing.assert_array_equal(normalized_probabilities(proba), proba)
    compact = default_mlp.compact().predict_proba(X)
    np.testing.assert_allclose(compact.sum(axis=1), 1, rtol=0, atol=SUM_ATOL)
    np.testing.assert_allclose(compact, proba, rtol=1e-12)


def test_only_float32_rounded_probability_rows_are_renormalized():
    rows = np.array([
        [0.2, 0.3, 0.5 + 3e-8],     # a float32 softmax: renormalized
        [0.2, 0.3, 0.5 + 1e-16],    # float64 rounding: as it is
        [0.2, 0.3, 0.7],            # not a probability row: as it is
        [-1e-9, 0.5, 0.5 + 3e-8],   # a negative value: as it is
    ])
    result = normalized_probabilities(rows)
    assert abs(result[0].sum() - 1) <= SUM_ATOL
    np.testing.assert_allclose(result[0], rows[0], rtol=1e-7)
    np.testing.assert_array_equal(result[1:], rows[1:])
    np.testing.assert_array_equal(rows[0], [0.2, 0.3, 0.5 + 3e-8])  # the input is not changed


def test_predict_log_proba_is_the_log_of_predict_proba(data, own_module, default_mlp):
    X, y = data
    cv = LotteryTicketClassifierCV(small_net(max_epochs=2), target_sparsity=0.5, cv=2,
                                   random_state=0).fit(X, y)
    for est in (own_module, default_mlp, default_mlp.compact(), cv):
        np.testing.assert_array_equal(est.predict_log_proba(X), np.log(est.predict_proba(X)))


def test_a_zero_probability_has_log_minus_infinity_without_a_warning(data, default_mlp):
    X, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Far out along a feature the softmax saturates to exact zeros in float64.
        log_proba = default_mlp.predict_log_proba(X[:3] * 1e6)
    assert np.isneginf(log_proba).any()
    with np.errstate(divide="ignore"):
        expected = np.log(default_mlp.predict_proba(X[:3] * 1e6))
    np.testing.assert_array_equal(log_proba, expected)


def test_a_neg_log_loss_grid_search_does_not_warn_about_sums(data):
    X, y = data
    search = GridSearchCV(_own_module_classifier(), {"target_sparsity": [0.5]}, cv=2,
                          scoring="neg_log_loss")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=SUM_WARNING)
        search.fit(X, y)
    assert np.isfinite(search.best_score_)
