"""Sparse X: fit, prune, predict, score, compact() and ticket_curve take scipy sparse
matrices, give what the same data passed dense gives, and never densify the whole matrix."""

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits, make_regression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skticket import LotteryTicketClassifier, LotteryTicketRegressor, ticket_curve

FORMATS = [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32)[:600], y[:600]


def classifier(**params):
    return LotteryTicketClassifier(**{"target_sparsity": 0.5, "prune_fraction": 0.5,
                                      "random_state": 0, **params}).set_params(
        net__max_epochs=4)


@pytest.mark.filterwarnings("ignore::skticket.exceptions.InputScaleWarning")
@pytest.mark.parametrize("to_sparse", FORMATS)
def test_sparse_and_dense_give_the_same_predictions(digits, to_sparse):
    X, y = digits
    dense = classifier().fit(X, y)
    sparse = classifier().fit(to_sparse(X), y)
    np.testing.assert_allclose(sparse.predict_proba(to_sparse(X)), dense.predict_proba(X),
                               rtol=0, atol=1e-6)
    np.testing.assert_array_equal(sparse.predict(to_sparse(X)), dense.predict(X))
    assert sparse.score(to_sparse(X), y) == dense.score(X, y)
    assert sparse.winning_ticket_ == dense.winning_ticket_
    np.testing.assert_allclose(sparse.compact().predict_proba(to_sparse(X)),
                               dense.predict_proba(X), rtol=0, atol=1e-5)


@pytest.mark.filterwarnings("ignore::skticket.exceptions.InputScaleWarning")
@pytest.mark.parametrize("search", ["early_bird", "snip", "gradual", "rigl"])
def test_every_search_and_prune_take_sparse_input(digits, search):
    X, y = digits
    dense = classifier(search=search, target_sparsity=0.8).fit(X, y)
    sparse = classifier(search=search, target_sparsity=0.8).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.predict_proba(X), dense.predict_proba(X), atol=1e-6)
    sparse.prune(sp.csr_matrix(X), y)
    dense.prune(X, y)
    np.testing.assert_allclose(sparse.predict_proba(X), dense.predict_proba(X), atol=1e-6)


def test_the_regressor_takes_sparse_input():
    X, y = make_regression(n_samples=300, n_features=20, random_state=0)
    X[np.abs(X) < 1] = 0.0
    reg = LotteryTicketRegressor(target_sparsity=0.5, random_state=0).set_params(
        net__max_epochs=5)
    dense = reg.fit(X, y).predict(X)
    sparse = reg.fit(sp.csr_matrix(X), y).predict(sp.csr_matrix(X))
    np.testing.assert_allclose(sparse, dense, rtol=0, atol=1e-6 * np.abs(dense).max())
    np.testing.assert_allclose(reg.compact().predict(sp.csc_matrix(X)), dense,
                               rtol=1e-5, atol=1e-4)


@pytest.mark.filterwarnings("ignore::skticket.exceptions.InputScaleWarning")
def test_ticket_curve_on_sparse_input(digits):
    X, y = digits
    est = classifier(target_sparsity=0.75)
    curves = [ticket_curve(est, to(X[:400]), y[:400], to(X[400:]), y[400:], n_repeats=1,
                           as_frame=False) for to in (np.asarray, sp.csr_matrix)]
    assert [r["score"] for r in curves[0]] == [r["score"] for r in curves[1]]


def test_a_sparse_one_hot_column_transformer_ends_in_the_estimator():
    rng = np.random.default_rng(0)
    n = 800
    frame = pd.DataFrame({
        "city": rng.integers(0, 300, n).astype(str),   # many categories
        "x": rng.normal(size=n),
    })
    y = (frame["x"] + (frame["city"].astype(int) % 3 == 0) > 0.5).astype(int)
    encode = ColumnTransformer([("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
                                ("x", StandardScaler(), ["x"])])
    assert sp.issparse(encode.fit_transform(frame))  # what the last step receives
    model = make_pipeline(encode, LotteryTicketClassifier(target_sparsity=0.8, random_state=0))
    model.set_params(lotteryticketclassifier__net__max_epochs=20).fit(frame, y)
    assert model[-1].n_features_in_ > 250
    assert model.score(frame, y) > 0.8


def test_a_sparse_fit_never_densifies_the_whole_matrix():
    # 6,000 x 5,000 at 0.2% non-zeros: 120 MB dense, under 1 MB as CSR. Training
    # densifies a batch (200 rows), prediction 4,096 rows at a time.
    rng = np.random.default_rng(0)
    X = sp.random(6000, 5000, density=0.002, format="csr", dtype=np.float32, random_state=rng)
    y = np.asarray(X[:, :50].sum(axis=1)).ravel() > 0
    est = LotteryTicketClassifier(target_sparsity=0.5, prune_fraction=0.5, max_rounds=1,
                                  random_state=0).set_params(
        net__max_epochs=1, net__module__hidden_units=(8,))
    dense_bytes = 6000 * 5000 * 4
    tracemalloc.start()
    try:
        est.fit(X, y)
        est.predict(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < dense_bytes / 4, f"peak {peak / 2**20:.0f} MiB"
