"""Inputs at the edges of what scikit-learn's MLP takes: numbers beyond float32, weights
at its edges or given as a number, a sparse label indicator matrix, and held-out splits
that cannot be stratified."""

import functools

import numpy as np
import pytest
import torch
from helpers import small_net
from scipy import sparse
from sklearn.base import clone
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.neural_network import MLPClassifier, MLPRegressor
from skorch import NeuralNetRegressor

from skticket import LotteryTicketClassifier, LotteryTicketRegressor, ticket_path
from skticket._estimators import checked_sample_weight
from skticket.exceptions import TrainingDivergedError


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(60, 5, n_informative=3, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, random_state=0)
    return X, y


net = functools.partial(small_net, module__hidden_units=(16,), max_epochs=4, batch_size=16)


def estimator(**params):
    return LotteryTicketClassifier(net(), **{"target_sparsity": 0.5, "random_state": 0,
                                             **params})


def same_state(a, b) -> bool:
    sa, sb = a.net_.module_.state_dict(), b.net_.module_.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- sample weights --------------------------------------------------------------------------


def test_a_number_as_sample_weight_weighs_every_sample_alike(data):
    X, y = data
    plain = estimator().fit(X, y)
    assert same_state(estimator().fit(X, y, sample_weight=2.0), plain)
    with pytest.raises(ValueError, match="sample_weight holds negative values"):
        estimator().fit(X, y, sample_weight=-1.0)
    with pytest.raises(ValueError, match="sample_weight is zero for every sample"):
        estimator().fit(X, y, sample_weight=0)


@pytest.mark.parametrize("scale", [1e-50, 1e37, 1e300])
def test_any_scale_of_the_weights_trains_as_the_weights(data, scale):
    X, y = data
    weight = np.random.default_rng(0).uniform(0.2, 2.0, len(y))
    reference = estimator().fit(X, y, sample_weight=weight)
    scaled = estimator().fit(X, y, sample_weight=weight * scale)
    # Before, 1e-50 became zeros in float32 (nothing trained) and 1e37 diverged.
    assert all(record["train_loss"] > 0 for record in scaled.rounds_)
    assert same_state(scaled, reference)


def test_weights_are_rescaled_to_unit_mean_in_float64():
    weight = np.array([1e-50, 3e-50, 0.0, 4e-50])
    rescaled = checked_sample_weight(weight, 4)
    assert rescaled.dtype == np.float64 and rescaled.mean() == pytest.approx(1, rel=1e-15)
    np.testing.assert_allclose(rescaled, [0.5, 1.5, 0.0, 2.0], rtol=1e-15)
    assert np.all(rescaled.astype(np.float32)[[0, 1, 3]] > 0)
    assert checked_sample_weight(np.full(4, 1e-50), 4) is None  # uniform: no weights


# --- values beyond float32 -------------------------------------------------------------------


@pytest.mark.parametrize("make_sparse", [False, True])
def test_a_value_beyond_float32_is_refused_at_fit_by_name(data, make_sparse):
    X, y = data
    X = X.copy()
    X[0, 0] = 1e39
    X = sparse.csr_matrix(X) if make_sparse else X
    est = estimator()
    with pytest.raises(ValueError, match=r"X holds values beyond float32's range") as raised:
        est.fit(X, y)
    assert not isinstance(raised.value, TrainingDivergedError)
    assert "StandardScaler" in str(raised.value)
    assert not hasattr(est, "classes_")


def test_a_value_beyond_float32_is_refused_at_predict_by_name(data):
    X, y = data
    clf = estimator().fit(X, y)
    reg = LotteryTicketRegressor(small_net(NeuralNetRegressor, max_epochs=2), target_sparsity=0.5,
                                 random_state=0).fit(X, X[:, 0])
    bad = X[:3].copy()
    bad[1, 2] = -1e39
    methods = [clf.predict, clf.predict_proba, clf.predict_log_proba, clf.compact().predict,
               clf.compact().predict_proba, reg.predict, reg.compact().predict,
               lambda X_: clf.predict(sparse.csr_matrix(X_))]
    for method in methods:
        # Before: NaN probabilities and class 0, with only numpy's cast warning.
        with pytest.raises(ValueError, match=r"X holds values beyond float32's range"):
            method(bad)
    # The largest float32 itself is still taken.
    edge = X[:3].copy()
    edge[1, 2] = float(np.finfo(np.float32).max)
    assert clf.predict(edge).shape == (3,)


# --- targets ---------------------------------------------------------------------------------


def test_a_sparse_label_indicator_matrix_trains_as_the_dense_one():
    X, Y = make_multilabel_classification(n_samples=80, n_features=6, n_classes=3,
                                          random_state=0)
    MLPClassifier(max_iter=5).fit(X, sparse.csr_matrix(Y))  # what the MLP takes
    # The default net: one logit per label.
    multilabel = LotteryTicketClassifier(target_sparsity=0.5, random_state=0).set_params(
        net__module__hidden_units=(16,), net__max_epochs=3)
    dense = multilabel.fit(X, Y)
    from_sparse = clone(multilabel).fit(X, sparse.csr_matrix(Y))
    assert same_state(from_sparse, dense)
    np.testing.assert_array_equal(from_sparse.predict(X), dense.predict(X))
    assert from_sparse.score(X, sparse.csr_matrix(Y)) == dense.score(X, Y)


@pytest.mark.parametrize("n_targets", [1, 2])
def test_a_sparse_regression_target_is_refused_naming_y(n_targets):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    Y = rng.normal(size=(40, n_targets))
    with pytest.raises(TypeError, match="Sparse data was passed for y"):
        MLPRegressor(max_iter=5).fit(X, sparse.csr_matrix(rng.normal(size=(40, 1))))
    regressor = LotteryTicketRegressor(target_sparsity=0.5, random_state=0).set_params(
        net__module__hidden_units=(8,), net__max_epochs=2)
    for method in (regressor.fit, regressor.partial_fit):
        with pytest.raises(TypeError, match=r"sparse y.*dense data is required.*y\.toarray\(\)"):
            method(X, sparse.csr_matrix(Y))
        assert not hasattr(regressor, "n_features_in_")
    regressor.fit(X, Y)
    with pytest.raises(TypeError, match="sparse y"):
        regressor.prune(X, sparse.csr_matrix(Y))


def test_a_class_of_one_member_is_held_out_by_a_plain_split(data):
    X, y = data
    y = y.copy()
    y[0] = 7  # a class of one member: no stratified split holds it out
    est = estimator(score_tolerance=0.5).fit(X, y)
    assert all(np.isfinite(record["valid_score"]) for record in est.rounds_)
    assert list(est.classes_) == [0, 1, 2, 7]


def test_more_classes_than_held_out_rows_are_held_out_by_a_plain_split():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    y = np.repeat(np.arange(200), 2)  # 200 classes of two; 40 rows held out
    data = ticket_path(estimator(score_tolerance=0.5), X, y).run.session.data
    assert len(data.X_valid) == 40 and len(data.X_train) == 360


def test_a_held_out_part_of_no_rows_names_validation_fraction(data):
    X, y = data
    with pytest.raises(ValueError, match=r"validation_fraction=0.99 of the 60 samples: 60 "
                                         r"held out, 0 to train on.*score_tolerance=None"):
        estimator(score_tolerance=0.5, validation_fraction=0.99).fit(X, y)
