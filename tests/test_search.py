"""The searches: early-bird, SNIP, a given ticket, and search as a parameter."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier

from skticket import MLP, LotteryTicketClassifier, Ticket
from skticket._pruning import target_active_count


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def net(**params):
    defaults = dict(module=MLP, module__hidden_units=(32,), optimizer=torch.optim.Adam,
                    lr=0.01, max_epochs=30, batch_size=64, train_split=None, verbose=0)
    return NeuralNetClassifier(**{**defaults, **params})


def estimator(net=net, **params):
    if callable(net):
        net = net()
    return LotteryTicketClassifier(net, **{"target_sparsity": 0.9, "random_state": 0,
                                           **params})



def active_per_layer(est):
    return {name: int(mask.sum()) for name, mask in est.winning_ticket_.masks.items()}


# --- early-bird --------------------------------------------------------------------------


def test_early_bird_stops_the_dense_training_once_the_masks_settle(cancer, training_calls):
    X, y = cancer
    est = estimator(search="early_bird", early_bird_window=3,
                    early_bird_tolerance=0.1).fit(X, y)
    dense, ticket = est.rounds_
    assert (dense["round"], ticket["round"]) == (0, 1)
    assert dense["masks_settled"]
    assert dense["epochs"] == dense["ticket_epoch"] < 30  # stopped before the last epoch
    assert ticket["epochs"] == 30 and ticket["sparsity"] == pytest.approx(0.9, abs=1e-3)
    distances = dense["mask_distances"]
    assert len(distances) == dense["epochs"]
    # The rule: with a full window (3 masks before the newest), the first distance
    # within the tolerance stops the training.
    assert distances[:1] == [None] and all(d is not None for d in distances[1:])
    assert distances[-1] <= 0.1
    assert all(d > 0.1 for d in distances[3:-1])
    assert len(training_calls) == 2 and training_calls[0].early_bird is not None


def test_early_bird_masks_that_never_settle_use_the_whole_dense_training(cancer):
    X, y = cancer
    est = estimator(search="early_bird", early_bird_tolerance=0.0,
                    net=net(max_epochs=8)).fit(X, y)
    dense = est.rounds_[0]
    assert not dense["masks_settled"]
    assert dense["epochs"] == dense["ticket_epoch"] == 8
    assert est.winning_ticket_.round == 1
    assert est.winning_ticket_.n_active == target_active_count(
        est.winning_ticket_.n_prunable, 0.9)


def test_early_bird_draws_the_masks_imp_would_reach(cancer):
    X, y = cancer
    # Per-layer rates and floors as in IMP: the output layer pruned at its own rate.
    fractions = {"output.weight": 0.1}
    imp = estimator(layer_prune_fractions=fractions, net=net(max_epochs=3)).fit(X, y)
    bird = estimator(search="early_bird", layer_prune_fractions=fractions,
                     net=net(max_epochs=3)).fit(X, y)
    assert active_per_layer(bird) == active_per_layer(imp)


# --- SNIP ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["local", "global"])
def test_snip_prunes_to_the_exact_target_without_dense_training(cancer, training_calls, scope):
    X, y = cancer
    est = estimator(search="snip", scope=scope, min_weights_per_layer=10).fit(X, y)
    assert [r["round"] for r in est.rounds_] == [1]
    assert len(training_calls) == 1  # the ticket alone: no dense net
    ticket = est.winning_ticket_
    assert ticket.n_active == target_active_count(ticket.n_prunable, 0.9)
    assert min(active_per_layer(est).values()) >= 10
    # The ticket trains from theta_0: the same start as IMP's dense round.
    theta_0 = estimator(max_rounds=0).fit(X, y).winning_ticket_.weights
    for name, mask in ticket.masks.items():
        np.testing.assert_array_equal(ticket.weights[name], theta_0[name] * mask)


def test_snip_masks_depend_on_the_data(cancer):
    X, y = cancer
    a = estimator(search="snip").fit(X[:300], y[:300])
    b = estimator(search="snip").fit(X[300:], y[300:])
    assert a.winning_ticket_.masks.keys() == b.winning_ticket_.masks.keys()
    assert any(not np.array_equal(a.winning_ticket_.masks[name], b.winning_ticket_.masks[name])
               for name in a.winning_ticket_.masks)
    # More batches, another score, another mask.
    c = estimator(search="snip", snip_batches=4).fit(X[:300], y[:300])
    assert any(not np.array_equal(a.winning_ticket_.masks[name], c.winning_ticket_.masks[name])
               for name in a.winning_ticket_.masks)


def test_permute_after_snip_keeps_each_layers_count(cancer):
    X, y = cancer
    snip = estimator(search="snip").fit(X, y)
    permuted = estimator(search="snip", ticket_init="permute").fit(X, y)
    assert permuted.winning_ticket_.init == "permute"
    assert active_per_layer(permuted) == active_per_layer(snip)
    assert any(not np.array_equal(snip.winning_ticket_.masks[name],
                                  permuted.winning_ticket_.masks[name])
               for name in snip.winning_ticket_.masks)


@pytest.mark.parametrize("search", ["early_bird", "snip"])
def test_one_shot_searches_need_a_target(cancer, search):
    X, y = cancer
    with pytest.raises(ValueError, match=rf"search='{search}'.*set target_sparsity"):
        estimator(search=search, target_sparsity=None).fit(X, y)


def test_prune_goes_on_from_a_one_shot_ticket(cancer):
    X, y = cancer
    est = estimator(search="snip", target_sparsity=0.5).fit(X, y)
    est.prune(X, y)
    assert [r["round"] for r in est.rounds_] == [1, 2]
    assert est.winning_ticket_.sparsity == pytest.approx(0.6, abs=0.01)


# --- a given ticket -------------------------------------------------------------------------


def test_a_given_ticket_trains_once_on_new_data_with_its_mask(cancer, training_calls):
    X, y = cancer
    found = estimator().fit(X[:300], y[:300]).winning_ticket_
    training_calls.clear()
    moved = estimator(ticket=found, random_state=1).fit(X[300:], y[300:])
    assert len(training_calls) == 1
    assert [r["round"] for r in moved.rounds_] == [found.round]
    ticket = moved.winning_ticket_
    assert ticket == found  # same masks, start weights, round and init
    params = dict(moved.net_.module_.named_parameters())
    for name, mask in found.masks.items():
        trained = params[name].detach().numpy()
        assert np.all(trained[~mask] == 0) and np.count_nonzero(trained) == mask.sum()
    assert moved.score(X[300:], y[300:]) > 0.8


def test_a_given_ticket_with_fresh_weights(cancer, training_calls):
    X, y = cancer
    found = estimator().fit(X[:300], y[:300]).winning_ticket_
    training_calls.clear()
    moved = estimator(ticket=found, ticket_init="reinit").fit(X[300:], y[300:])
    assert len(training_calls) == 1  # the baseline only, never the rewound ticket too
    for name, mask in found.masks.items():
        np.testing.assert_array_equal(moved.winning_ticket_.masks[name], mask)
        assert not np.array_equal(moved.winning_ticket_.weights[name], found.weights[name])


@pytest.fixture(scope="module")
def found(cancer):
    X, y = cancer
    return estimator(net=net(max_epochs=3)).fit(X, y).winning_ticket_


@pytest.mark.parametrize("other, extra, match", [
    ({"module__hidden_units": (16,)}, None,
     r"mask of 'hidden_0.weight' has shape \(32, 30\), the net's parameter \(16, 30\)"),
    ({"module__hidden_units": (32, 8)}, None,
     r"mask of 'output.weight' has shape \(2, 32\), the net's parameter \(2, 8\)"),
    ({"module__hidden_units": (32,), "module__bias": False}, None,
     r"start value of 'hidden_0.bias', which the net's module does not have"),
    ({"module__hidden_units": (32,)}, "extra.weight",
     r"masks 'extra.weight', which is not a parameter of this net's module"),
])
def test_a_ticket_that_does_not_fit_the_net_is_refused(cancer, found, other, extra, match):
    X, y = cancer
    if extra is not None:
        found = Ticket(masks={**found.masks, extra: np.ones((2, 2), dtype=bool)},
                       weights={**found.weights, extra: np.ones((2, 2))}, round=found.round)
    est = LotteryTicketClassifier(net(**other), ticket=found, random_state=0)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)
    assert not hasattr(est, "n_features_in_")


# --- search is a parameter like any other ----------------------------------------------------


def test_search_and_ticket_survive_clone_params_and_grid_search(cancer):
    X, y = cancer
    found = estimator(net=net(max_epochs=3)).fit(X, y).winning_ticket_
    est = estimator(search="snip", ticket=found)
    copy = clone(est)
    assert copy.get_params()["search"] == "snip" and copy.get_params()["ticket"] == found
    assert copy.set_params(search="early_bird", ticket=None).search == "early_bird"
    grid = GridSearchCV(estimator(net=net(max_epochs=3)),
                        {"search": ["imp", "early_bird", "snip"], "target_sparsity": [0.5, 0.9]},
                        cv=2).fit(X, y)
    assert [p["search"] for p in grid.cv_results_["params"]] == ["imp"] * 2 + [
        "early_bird"] * 2 + ["snip"] * 2
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_estimator_.winning_ticket_.sparsity == pytest.approx(
        grid.best_params_["target_sparsity"], abs=1e-3)


@pytest.mark.parametrize("search", ["early_bird", "snip"])
def test_one_shot_rounds_are_cached_and_reused(cancer, tmp_path, training_calls, search):
    X, y = cancer
    first = estimator(search=search, memory=tmp_path).fit(X, y)
    assert len(training_calls) == len(first.rounds_)
    training_calls.clear()
    again = estimator(search=search, memory=tmp_path).fit(X, y)
    assert training_calls == [] and all(r["cached"] for r in again.rounds_)
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))
    if search == "early_bird":
        assert again.rounds_[0]["mask_distances"] == first.rounds_[0]["mask_distances"]
