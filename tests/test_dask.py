"""A grid search on a Dask cluster through joblib's Dask backend.

Needs the ``dask`` extra (``pip install "skticket[dask]"``); skipped without it.
"""

from __future__ import annotations

import os

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, KFold
from skorch import NeuralNetClassifier

from skticket import MLP, LotteryTicketClassifier

pytest.importorskip("dask", reason="the dask extra is not installed (pip install skticket[dask])")
distributed = pytest.importorskip(
    "distributed", reason="the dask extra is not installed (pip install skticket[dask])")

GRID = {"prune_fraction": [0.5, 0.8], "target_sparsity": [0.5, 0.9]}
CV = KFold(2)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=240, n_features=10, n_informative=6,
                               random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def client():
    # Two single-threaded worker processes, as on a 2-core machine; their nannies
    # set OMP_NUM_THREADS=1 before starting them.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def estimator(memory=None) -> LotteryTicketClassifier:
    net = NeuralNetClassifier(MLP, module__hidden_units=(16,), max_epochs=3, lr=0.01,
                              batch_size=32, optimizer=torch.optim.Adam,
                              iterator_train__shuffle=True, train_split=None, verbose=0)
    return LotteryTicketClassifier(net, random_state=0, memory=memory)


def split_scores(grid: GridSearchCV) -> np.ndarray:
    return np.array([grid.cv_results_[f"split{i}_test_score"] for i in range(CV.n_splits)])


@pytest.fixture(scope="module")
def serial(data):
    return GridSearchCV(estimator(), GRID, cv=CV, n_jobs=1).fit(*data)


def test_grid_search_on_dask_equals_n_jobs_1(client, data, serial):
    scoring = {"score": "accuracy", "pid": lambda estimator, X, y: float(os.getpid())}
    with joblib.parallel_config(backend="dask"):
        on_dask = GridSearchCV(estimator(), GRID, cv=CV, scoring=scoring,
                               refit="score").fit(*data)
    np.testing.assert_array_equal(split_scores(on_dask), split_scores(serial))
    assert on_dask.best_params_ == serial.best_params_
    # The candidates were fitted and scored in the workers, not in this process.
    pids = {int(pid) for i in range(CV.n_splits)
            for pid in on_dask.cv_results_[f"split{i}_test_pid"]}
    assert pids <= set(client.run(os.getpid).values())
    assert os.getpid() not in pids


def test_dask_workers_share_a_memory_directory(client, data, serial, tmp_path):
    memory = tmp_path / "rounds"
    with joblib.parallel_config(backend="dask"):
        on_dask = GridSearchCV(estimator(memory), GRID, cv=CV).fit(*data)
    np.testing.assert_array_equal(split_scores(on_dask), split_scores(serial))
    assert on_dask.best_params_ == serial.best_params_
    # The rounds the workers stored are the ones this process finds: a fit of one
    # candidate on the first fold's training rows trains nothing here.
    X, y = data
    train, _ = next(CV.split(X))
    params = on_dask.cv_results_["params"][0]
    again = estimator(memory).set_params(**params).fit(X[train], y[train])
    assert again.rounds_ and all(record["cached"] for record in again.rounds_)
