"""Searches in parallel on one machine: worker processes and threads.

torch has one global random generator per process. Every fit seeds it and
restores it, under one process-wide lock (``skticket._rng``): fits and
predictions in threads run one at a time, so a threaded search gives exactly
the results of ``n_jobs=1`` instead of results that depend on timing.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from skorch import NeuralNetClassifier

from skticket import MLP, LotteryTicketClassifier
from skticket._rng import preserved_global_state, preserved_torch_rng, seeded

GRID = {"prune_fraction": [0.5, 0.8], "target_sparsity": [0.5, 0.9]}
JOIN_TIMEOUT = 60


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=240, n_features=10, n_informative=6,
                               random_state=0)
    return X.astype(np.float32), y


def search(**kwargs) -> GridSearchCV:
    net = NeuralNetClassifier(MLP, module__hidden_units=(16,), max_epochs=3, lr=0.01,
                              batch_size=32, optimizer=torch.optim.Adam,
                              iterator_train__shuffle=True, train_split=None, verbose=0)
    clf = LotteryTicketClassifier(net, random_state=0)
    return GridSearchCV(clf, GRID, cv=2, **kwargs)


def split_scores(grid: GridSearchCV, metric: str = "score") -> np.ndarray:
    return np.array([grid.cv_results_[f"split{i}_test_{metric}"] for i in range(2)])


@pytest.fixture(scope="module")
def serial(data):
    return search(n_jobs=1).fit(*data)


def draws_alone(seed: int) -> list[torch.Tensor]:
    with seeded(seed):
        return [torch.rand(4) for _ in range(3)]


def run_threads(*targets) -> None:
    threads = [threading.Thread(target=target, daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread is still waiting"


@pytest.mark.parametrize("other", ["seeded", "preserved_torch_rng", "preserved_global_state"])
def test_a_seeded_section_in_a_thread_draws_what_it_draws_alone(other):
    contexts = {"seeded": lambda: seeded(2), "preserved_torch_rng": preserved_torch_rng,
                "preserved_global_state": preserved_global_state}
    expected = draws_alone(1)
    torch_state = torch.get_rng_state()
    inside, draws, other_draws = threading.Event(), [], []

    def first():
        with seeded(1):
            draws.append(torch.rand(4))
            inside.set()
            # Sleeping lets the other thread enter its section: without the lock,
            # the rest of this section would draw from the other one's stream.
            time.sleep(0.2)
            draws.extend(torch.rand(4) for _ in range(2))

    def second():
        inside.wait(JOIN_TIMEOUT)
        with contexts[other]():
            other_draws.append(torch.rand(4))
            time.sleep(0.4)
            other_draws.extend(torch.rand(4) for _ in range(2))

    run_threads(first, second)
    assert all(torch.equal(a, b) for a, b in zip(draws, expected, strict=True))
    if other == "seeded":
        assert all(torch.equal(a, b) for a, b in zip(other_draws, draws_alone(2), strict=True))
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_nested_sections_in_a_thread_do_not_wait_for_themselves():
    # A fit's preserved_global_state wraps seeded trainings and predictions.
    done = []

    def nested():
        with preserved_global_state(), seeded(0), preserved_torch_rng(), seeded(1):
            done.append(torch.rand(1))

    run_threads(nested)
    assert len(done) == 1


def _seed_in_child(queue) -> None:
    with seeded(0):
        queue.put(torch.rand(2).tolist())


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="no fork on this platform")
def test_a_forked_child_is_not_blocked_by_a_lock_another_thread_held():
    holding, release = threading.Event(), threading.Event()

    def hold():
        with seeded(5):
            holding.set()
            release.wait(JOIN_TIMEOUT)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(JOIN_TIMEOUT)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_seed_in_child, args=(queue,))
    try:
        child.start()
        child.join(JOIN_TIMEOUT)
        alive = child.is_alive()
    finally:
        if child.is_alive():
            child.kill()
        release.set()
        holder.join(JOIN_TIMEOUT)
    assert not alive, "the child waited for a lock held by a thread it does not have"
    assert child.exitcode == 0
    assert queue.get(timeout=JOIN_TIMEOUT) == draws_alone(0)[0][:2].tolist()


def test_grid_search_in_threads_equals_n_jobs_1(data, serial):
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    with joblib.parallel_config(backend="threading", n_jobs=2):
        threaded = search(n_jobs=2).fit(*data)
    np.testing.assert_array_equal(split_scores(threaded), split_scores(serial))
    assert threaded.best_params_ == serial.best_params_
    assert threaded.best_estimator_.winning_ticket_ == serial.best_estimator_.winning_ticket_
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]


def test_grid_search_in_worker_processes_uses_their_share_of_the_cores(data, serial):
    # joblib's process workers set OMP_NUM_THREADS (unless the parent sets it),
    # which torch reads when it starts: one thread per worker when n_jobs is the
    # number of cores, not every core in every worker.
    expected = int(os.environ.get("OMP_NUM_THREADS", max(joblib.cpu_count() // 2, 1)))
    threads_before = torch.get_num_threads()
    scoring = {"score": "accuracy",
               "torch_threads": lambda estimator, X, y: float(torch.get_num_threads())}
    with joblib.parallel_config(backend="loky"):
        parallel = search(n_jobs=2, scoring=scoring, refit="score").fit(*data)
    np.testing.assert_array_equal(split_scores(parallel), split_scores(serial))
    assert parallel.best_params_ == serial.best_params_
    assert set(parallel.cv_results_["mean_test_torch_threads"]) == {expected}
    assert torch.get_num_threads() == threads_before
