"""How the estimators predict: each row independent of the others in the call.

The promise: labels identical, probabilities equal to 1e-12 relative and a
regressor's values to 1e-12 of their target's scale, whatever the rows around a row
(an MLP-like net computes in float64); nets of one's own run skorch's forward on
fixed-shape blocks."""

import gc
import math
import weakref

import numpy as np
import pytest
import torch
from helpers import OwnSoftmaxModule, small_net
from sklearn.datasets import make_classification
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn
from torch.nn import functional

from skticket import LotteryTicketClassifier, LotteryTicketRegressor
from skticket._predict import COMPACT_MIN_ROWS

# Float64 rounding: a product differs with its batch in about the 16th digit.
RTOL = 1e-12


class OwnInference(NeuralNetClassifier):
    """A net with its own inference step: predictions must go through it."""

    def infer(self, x, **fit_params):
        return super().infer(x, **fit_params) * 1.0


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=9000, n_features=8, random_state=0)
    return X.astype(np.float32), y


# Each kind exercises another path: sparse (CSR) and dense layers of the compacted
# copy for many rows and the layers in float64 for few, smooth activations, a
# skorch nonlinearity, regressors with target scaling, and skorch's own forward
# on fixed-shape blocks (a net class or a module of one's own).
KINDS = {
    "sparse relu": dict(target_sparsity=0.95),
    "dense layers": dict(target_sparsity=0.2),
    "tanh": dict(net=dict(module__activation="tanh")),
    "cross-entropy": dict(net=dict(criterion=nn.CrossEntropyLoss)),
    "skorch's forward": dict(net=dict(net_class=OwnInference)),
    "a module of one's own": dict(net=dict(module=OwnSoftmaxModule)),
    "regressor, 2 targets, logistic output": dict(
        net=dict(net_class=NeuralNetRegressor, module__output_activation="logistic")),
    "regressor, 1 target": dict(net=dict(net_class=NeuralNetRegressor)),
}


def fitted(kind, X, y):
    params = dict(KINDS[kind])
    net_params = params.pop("net", {})
    if net_params.get("module") is None:
        net_params = {"module__hidden_units": (16, 16), **net_params}
    net = small_net(**{"max_epochs": 2, "batch_size": 64, **net_params})
    params = {"prune_fraction": 0.6, "target_sparsity": 0.9, "random_state": 0, **params}
    if isinstance(net, NeuralNetRegressor):
        target = X[:, :2] @ np.array([[1.0, 0.5], [-1.0, 2.0]])
        target = target if "2 targets" in kind else target[:, 0]
        if "logistic" in kind:
            target = 1 / (1 + np.exp(-target))
        return LotteryTicketRegressor(net, **params).fit(X[:1500], target[:1500])
    return LotteryTicketClassifier(net, **params).fit(X[:1500], y[:1500])


def values_and_labels(est):
    """The estimator's (values method, labels method or None)."""
    if isinstance(est, LotteryTicketClassifier):
        return est.predict_proba, est.predict
    return est.predict, None


def assert_same_rows(est, X, index, whole_values, whole_labels):
    """The rows ``index`` of X predicted on their own equal those of the whole call.

    Probabilities each to RTOL; a regressor's values to RTOL of their target's scale
    (a value near zero is a difference of larger terms, each rounded to float64).
    """
    values, labels = values_and_labels(est)
    scale = 0 if labels is not None else RTOL * float(np.abs(whole_values).max())
    np.testing.assert_allclose(values(X[index]), whole_values[index], rtol=RTOL, atol=scale)
    if labels is not None:
        np.testing.assert_array_equal(labels(X[index]), whole_labels[index])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_rows_prediction_does_not_depend_on_the_other_rows(data, kind, threads):
    X, y = data
    est = fitted(kind, X, y)
    values, labels = values_and_labels(est)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        whole_values, whole_labels = values(X), labels and labels(X)
        # Shuffled, slices below and above COMPACT_MIN_ROWS (one path each), single rows.
        order = np.random.default_rng(0).permutation(len(X))
        slices = [order, slice(5, 8), slice(0, 17), slice(1000, 1300),
                  slice(0, COMPACT_MIN_ROWS - 1), slice(3, COMPACT_MIN_ROWS + 3),
                  slice(4090, 4100), slice(0, 4097)]
        for index in [*slices, *(slice(row, row + 1) for row in (0, 1, 255, 4096, 8999))]:
            assert_same_rows(est, X, index, whole_values, whole_labels)
    finally:
        torch.set_num_threads(before)
    # The same numbers, to float32 rounding, as skorch's own predict.
    skorch_path = (est.net_.predict_proba(X) if isinstance(est, LotteryTicketClassifier)
                   else est.net_.predict(X).reshape(est.predict(X).shape))
    if isinstance(est, LotteryTicketRegressor) and est.target_scale_ is not None:
        whole_values = (whole_values - est.target_mean_.ravel()) / est.target_scale_.ravel()
    np.testing.assert_allclose(whole_values, skorch_path, rtol=1e-5, atol=1e-6)


def test_probabilities_are_float64_and_sum_to_one(data):
    X, y = data
    for kind in ("sparse relu", "cross-entropy"):
        est = fitted(kind, X, y)
        for rows in (X[:10], X):  # both paths
            proba = est.predict_proba(rows)
            assert proba.dtype == np.float64
            # float64 rounding, where float32 probabilities sum to 1 only to ~1e-7.
            np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=0, atol=1e-14)


def test_rows_stay_apart_when_a_kernel_rounds_by_batch_size(data, monkeypatch):
    # A float64 product that rounds the rows past the last whole group of 4 one ulp
    # up, as a vectorized kernel's remainder loop may: by numerics, a row's
    # prediction still agrees to RTOL and its label is the same.
    X, y = data
    real = functional.linear

    def by_batch(h, weight, bias=None):
        out = real(h, weight, bias)
        tail = out[len(h) // 4 * 4:]
        tail.copy_(torch.nextafter(tail, torch.full_like(tail, math.inf)))
        return out

    est = fitted("tanh", X, y)
    rows = X[:600]
    whole_values, whole_labels = est.predict_proba(rows), est.predict(rows)
    monkeypatch.setattr(functional, "linear", by_batch)
    changed = est.predict_proba(rows[:7])
    assert not np.array_equal(changed, whole_values[:7])  # the fake kernel is used
    for start, stop in [(0, 1), (0, 7), (3, 6), (100, 163), (0, 599)]:
        assert_same_rows(est, rows, slice(start, stop), whole_values, whole_labels)


def test_the_estimator_predicts_what_its_compact_predictor_does(data):
    X, y = data
    for kind in ("sparse relu", "dense layers", "tanh", "regressor, 1 target"):
        est = fitted(kind, X, y)
        compact = est.compact()
        classifier = isinstance(est, LotteryTicketClassifier)
        values = "predict_proba" if classifier else "predict"
        for rows in (X[:10], X):
            np.testing.assert_allclose(getattr(compact, values)(rows),
                                       getattr(est, values)(rows), rtol=RTOL, atol=0)
            if classifier:
                np.testing.assert_array_equal(compact.predict(rows), est.predict(rows))


def test_predictions_follow_changes_to_the_module(data):
    X, y = data
    est = fitted("sparse relu", X, y)
    module = est.net_.module_

    def assert_as_skorch():
        for rows in (X[:10], X):  # both paths
            np.testing.assert_allclose(est.predict_proba(rows), est.net_.predict_proba(rows),
                                       rtol=1e-5, atol=1e-6)

    before = est.predict_proba(X)
    with torch.no_grad():  # in place
        module.output.weight.mul_(2.0)
    assert not np.allclose(est.predict_proba(X), before)
    assert_as_skorch()

    module.activation_0 = nn.LeakyReLU(0.5)  # a replaced submodule
    assert_as_skorch()
    relu = est.predict_proba(X)
    module.activation_0.negative_slope = 0.1  # a setting changed in place
    assert not np.allclose(est.predict_proba(X), relu)
    assert_as_skorch()

    calls = []
    handle = module.register_forward_hook(lambda *args: calls.append(1))
    hooked = est.predict_proba(X[:10])
    assert calls  # a hooked module runs its own forward
    handle.remove()
    calls.clear()
    np.testing.assert_allclose(est.predict_proba(X[:10]), hooked, rtol=1e-5, atol=1e-6)
    assert not calls


def test_a_predicting_estimator_is_not_kept_alive(data):
    X, y = data
    est = fitted("sparse relu", X, y)
    est.predict(X[:3])
    est.predict(X)
    module = weakref.ref(est.net_.module_)
    del est
    gc.collect()
    assert module() is None


def draws(x):
    """A nonlinearity that draws from torch's global generator (and discards it)."""
    return x + 0 * torch.rand(x.shape)


def test_the_global_random_state_is_untouched_by_every_path(data):
    X, y = data
    for kind in ("sparse relu", "tanh", "skorch's forward"):
        est = fitted(kind, X, y)
        for rows in (X[:100], X):
            state = torch.get_rng_state()
            est.predict(rows)
            assert torch.equal(torch.get_rng_state(), state)
    # A nonlinearity of one's own that draws, on both float64 paths.
    est = fitted("sparse relu", X, y)
    est.net_.set_params(predict_nonlinearity=draws)
    for rows in (X[:100], X):
        state = torch.get_rng_state()
        est.predict(rows)
        assert torch.equal(torch.get_rng_state(), state)
