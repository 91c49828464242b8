"""The memory parameter: cached fits equal uncached ones and train only missing rounds."""

import copy
import functools

import joblib
import numpy as np
import pytest
import torch
from helpers import breast_cancer, small_net
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skticket import MLP, LotteryTicketClassifier
from skticket._cache import content_hash


@pytest.fixture(scope="module")
def cancer():
    return breast_cancer(rows=300)


net = functools.partial(small_net, batch_size=64)


def estimator(**params):
    params = {"prune_fraction": 0.5, "target_sparsity": 0.75, "random_state": 0, **params}
    return LotteryTicketClassifier(params.pop("net", net()), **params)



def assert_same_fit(a, b, X):
    assert a.winning_ticket_.masks.keys() == b.winning_ticket_.masks.keys()
    for name, mask in a.winning_ticket_.masks.items():
        np.testing.assert_array_equal(mask, b.winning_ticket_.masks[name])
        np.testing.assert_array_equal(a.winning_ticket_.weights[name],
                                      b.winning_ticket_.weights[name])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert [r["n_active"] for r in a.rounds_] == [r["n_active"] for r in b.rounds_]
    assert [r["train_loss"] for r in a.rounds_] == [r["train_loss"] for r in b.rounds_]


@pytest.mark.parametrize("as_object", [False, True])
def test_cached_fit_equals_uncached_fit(cancer, tmp_path, training_calls, as_object):
    X, y = cancer
    memory = joblib.Memory(tmp_path, verbose=0) if as_object else str(tmp_path)
    plain = estimator().fit(X, y)
    n_rounds = len(plain.rounds_)
    assert not any(r["cached"] for r in plain.rounds_)

    first = estimator(memory=memory).fit(X, y)
    second = estimator(memory=memory).fit(X, y)
    assert len(training_calls) == 2 * n_rounds  # plain and first train, second reads
    assert [r["cached"] for r in first.rounds_] == [False] * n_rounds
    assert [r["cached"] for r in second.rounds_] == [True] * n_rounds
    # A cached round reports the time its training took.
    assert [r["seconds"] for r in second.rounds_] == [r["seconds"] for r in first.rounds_]
    assert_same_fit(plain, first, X)
    assert_same_fit(plain, second, X)
    np.testing.assert_array_equal(second.predict(X), plain.predict(X))


def test_a_sparser_fit_trains_only_the_missing_rounds(cancer, tmp_path, training_calls):
    X, y = cancer
    # p=0.5: the 0.75 trajectory is rounds 0 (dense), 1 (0.5), 2 (0.75); the
    # 0.9 one goes on with 3 (0.875) and 4 (0.9).
    estimator(target_sparsity=0.75, memory=str(tmp_path)).fit(X, y)
    assert len(training_calls) == 3
    training_calls.clear()
    sparser = estimator(target_sparsity=0.9, memory=str(tmp_path)).fit(X, y)
    assert [r["cached"] for r in sparser.rounds_] == [True, True, True, False, False]
    assert len(training_calls) == 2
    assert_same_fit(sparser, estimator(target_sparsity=0.9).fit(X, y), X)

    # The denser target afterwards is entirely in memory, its last round included.
    training_calls.clear()
    denser = estimator(target_sparsity=0.75, memory=str(tmp_path)).fit(X, y)
    assert training_calls == []
    assert all(r["cached"] for r in denser.rounds_)


def test_baselines_and_prune_go_through_memory(cancer, tmp_path, training_calls):
    X, y = cancer
    first = estimator(ticket_init="reinit", memory=str(tmp_path)).fit(X, y).prune(X, y)
    n_trained = len(training_calls)
    assert n_trained == len(first.rounds_) + 2  # a baseline after fit and after prune
    training_calls.clear()
    second = estimator(ticket_init="reinit", memory=str(tmp_path)).fit(X, y).prune(X, y)
    assert training_calls == []
    assert_same_fit(first, second, X)


def test_nothing_is_cached_without_random_state(cancer, tmp_path, training_calls):
    X, y = cancer
    est = estimator(random_state=None, memory=str(tmp_path))
    est.fit(X, y)
    est.fit(X, y)
    assert len(training_calls) == 2 * len(est.rounds_)
    assert not any(r["cached"] for r in est.rounds_)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("change", [
    {"lr": 0.02}, {"max_epochs": 5}, {"batch_size": 32}, {"module__hidden_units": (17,)},
    {"optimizer": torch.optim.SGD}, {"criterion": torch.nn.CrossEntropyLoss},
    {"optimizer__weight_decay": 1e-4}, {"iterator_train__shuffle": True},
])
def test_a_changed_net_parameter_misses_the_cache(cancer, tmp_path, training_calls, change):
    X, y = cancer
    estimator(max_rounds=0, memory=str(tmp_path)).fit(X, y)
    other = estimator(net=net().set_params(**change), max_rounds=0, memory=str(tmp_path))
    other.fit(X, y)
    assert len(training_calls) == 2
    assert not other.rounds_[0]["cached"]


def test_other_data_or_seed_misses_the_cache(cancer, tmp_path, training_calls):
    X, y = cancer
    estimator(max_rounds=0, memory=str(tmp_path)).fit(X, y)
    estimator(max_rounds=0, memory=str(tmp_path), random_state=1).fit(X, y)
    estimator(max_rounds=0, memory=str(tmp_path)).fit(X[:-1], y[:-1])
    estimator(max_rounds=0, memory=str(tmp_path)).fit(X, y)  # the first again: a hit
    assert len(training_calls) == 3


def test_content_hash_is_by_value():
    torch.manual_seed(0)
    module = torch.nn.Linear(3, 2)
    classifier = net(module=module)
    assert content_hash(classifier.get_params(deep=False)) == content_hash(
        clone(classifier).get_params(deep=False))
    assert content_hash(module) == content_hash(copy.deepcopy(module))
    changed = copy.deepcopy(module)
    with torch.no_grad():
        changed.weight[0, 0] += 1e-6
    assert content_hash(module) != content_hash(changed)
    assert content_hash({"a": 1, "b": np.zeros(2)}) == content_hash({"b": np.zeros(2), "a": 1})


def test_a_module_instance_is_keyed_by_its_weights(cancer, tmp_path, training_calls):
    X, y = cancer
    torch.manual_seed(0)
    module = MLP(n_features=X.shape[1], n_outputs=2, hidden_units=(8,),
                 output_activation="softmax")
    first = estimator(net=net(module=module), max_rounds=1, memory=str(tmp_path)).fit(X, y)
    second = estimator(net=net(module=module), max_rounds=1, memory=str(tmp_path)).fit(X, y)
    assert len(training_calls) == 2
    assert all(r["cached"] for r in second.rounds_)
    assert_same_fit(first, second, X)
    with torch.no_grad():
        module.output.bias += 1.0
    estimator(net=net(module=module), max_rounds=1, memory=str(tmp_path)).fit(X, y)
    assert len(training_calls) == 4


def test_grid_search_with_n_jobs_shares_rounds_across_processes(cancer, tmp_path,
                                                                training_calls):
    X, y = cancer
    grid = {"target_sparsity": [0.5, 0.75]}
    plain = GridSearchCV(estimator(), grid, cv=2, n_jobs=1).fit(X, y)
    training_calls.clear()
    parallel = GridSearchCV(estimator(memory=str(tmp_path)), grid, cv=2, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(parallel.cv_results_["mean_test_score"],
                                  plain.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(parallel.predict_proba(X), plain.predict_proba(X))
    training_calls.clear()
    # Workers' rounds are found again from this process: their keys hash alike.
    again = GridSearchCV(estimator(memory=str(tmp_path)), grid, cv=2, n_jobs=1).fit(X, y)
    assert training_calls == []
    assert_same_fit(again.best_estimator_, plain.best_estimator_, X)
