"""What makes a training cheap changes nothing a user sees but its speed.

The optimizer runs on torch's fused (or foreach) kernels unless the user chose
an implementation, skorch's default callbacks that would do nothing are left
out of the training, and the default nets take scikit-learn's batch rule.
"""

import functools

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from skorch.callbacks import PrintLog
from skorch.dataset import ValidSplit

from skticket import MLP, DefaultClassifierNet, DefaultRegressorNet, LotteryTicketClassifier
from skticket._cache import training_key
from skticket._nets import auto_batch_size
from skticket._training import (
    MASK_CALLBACK,
    TrainingSpec,
    initial_state,
    optimizer_implementation,
    run_training,
)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def net(**params):
    return NeuralNetClassifier(MLP, module__n_features=4, module__n_outputs=3,
                               module__hidden_units=(8,), train_split=None, verbose=0,
                               **params)


@pytest.mark.parametrize("optimizer, chosen", [
    (torch.optim.Adam, {"optimizer__fused": True}),
    (torch.optim.AdamW, {"optimizer__fused": True}),
    (torch.optim.SGD, {"optimizer__fused": True}),
    (torch.optim.Adagrad, {"optimizer__fused": True}),
    (torch.optim.RMSprop, {"optimizer__foreach": True}),
    (torch.optim.LBFGS, {}),  # neither implementation exists
])
def test_torch_optimizers_run_on_their_fastest_implementation(optimizer, chosen):
    assert optimizer_implementation(net(optimizer=optimizer)) == chosen


@pytest.mark.parametrize("optimizer, chosen", [
    (torch.optim.Adam, {"optimizer__fused": True}),
    (torch.optim.SGD, {"optimizer__fused": True}),
    # No fused CUDA kernel before torch 2.8, above the floor.
    (torch.optim.Adagrad, {"optimizer__foreach": True}),
])
def test_the_choice_follows_the_device(optimizer, chosen):
    # Only the choice is made here: no tensor goes to the device.
    assert optimizer_implementation(net(optimizer=optimizer, device="cuda")) == chosen
    assert optimizer_implementation(net(optimizer=optimizer, device="meta")) == (
        {"optimizer__foreach": True})


@pytest.mark.parametrize("params", [
    {"optimizer__fused": False},
    {"optimizer__foreach": False},
    {"optimizer__foreach": True},
    {"optimizer__differentiable": True},
    {"optimizer": functools.partial(torch.optim.Adam, foreach=False)},
])
def test_an_implementation_the_user_chose_is_kept(params):
    assert optimizer_implementation(net(**{"optimizer": torch.optim.Adam, **params})) == {}


def test_an_optimizer_that_is_not_torchs_is_left_alone():
    class Custom:  # any callable skorch can build an optimizer from
        def __init__(self, params, lr):
            self.inner = torch.optim.SGD(params, lr=lr)

    assert optimizer_implementation(net(optimizer=Custom)) == {}
    # A subclass that does not take the argument is not given it.
    class Plain(torch.optim.Adam):
        def __init__(self, params, lr=1e-3):
            super().__init__(params, lr=lr)

    assert optimizer_implementation(net(optimizer=Plain)) == {}
    # A partial of a torch optimizer is still torch's.
    partial = functools.partial(torch.optim.SGD, momentum=0.9)
    assert optimizer_implementation(net(optimizer=partial)) == {"optimizer__fused": True}


def test_the_trained_net_ran_the_fused_optimizer(iris):
    X, y = iris
    est = LotteryTicketClassifier(target_sparsity=0.5, random_state=0).set_params(
        net__max_epochs=3).fit(X, y)
    assert est.net_.optimizer_.defaults["fused"] is True
    kept = LotteryTicketClassifier(target_sparsity=0.5, random_state=0).set_params(
        net__max_epochs=3, net__optimizer__fused=False).fit(X, y)
    assert not kept.net_.optimizer_.defaults["fused"]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_fused_path_finds_the_ticket_the_single_tensor_path_finds(iris, optimizer):
    """Same masks; predictions equal up to float rounding (stated: 1e-5)."""
    X, y = iris
    params = {"net__max_epochs": 20, "net__module__hidden_units": (16,)}
    if optimizer == "sgd":
        params.update(net__optimizer=torch.optim.SGD, net__optimizer__momentum=0.9,
                      net__lr=0.05)

    def fit(**extra):
        return LotteryTicketClassifier(target_sparsity=0.8, random_state=0).set_params(
            **params, **extra).fit(X, y)

    fast, loop = fit(), fit(net__optimizer__foreach=False)
    assert fast.net_.optimizer_.defaults["fused"] is True
    assert loop.net_.optimizer_.defaults["foreach"] is False
    for name, mask in fast.winning_ticket_.masks.items():
        np.testing.assert_array_equal(mask, loop.winning_ticket_.masks[name])
    np.testing.assert_allclose(fast.predict_proba(X), loop.predict_proba(X), atol=1e-5)
    # Reproducible: the same seed gives the same bits.
    np.testing.assert_array_equal(fit().predict_proba(X), fast.predict_proba(X))


@pytest.mark.parametrize("optimizer, params", [
    (torch.optim.Adam, {"optimizer__weight_decay": 1e-3, "optimizer__amsgrad": True}),
    (torch.optim.AdamW, {"optimizer__weight_decay": 0.1}),
    (torch.optim.SGD, {"optimizer__momentum": 0.9, "optimizer__nesterov": True,
                       "optimizer__weight_decay": 1e-3}),
    (torch.optim.Adagrad, {"optimizer__weight_decay": 1e-3}),
    (torch.optim.RMSprop, {"optimizer__momentum": 0.9}),
])
def test_pruned_weights_stay_exactly_zero_under_every_fast_optimizer(iris, optimizer, params):
    X, y = iris
    template = net(optimizer=optimizer, lr=0.05, max_epochs=3, batch_size=32, **params)
    start = initial_state(template, seed=0)
    rng = np.random.default_rng(0)
    masks = {name: rng.random(start[name].shape) < 0.3
             for name in ("hidden_0.weight", "output.weight")}
    result = run_training(TrainingSpec(template, X, y.astype(np.int64), start=start,
                                       masks=masks, seed=0))
    assert optimizer_implementation(template)  # a fast path ran
    weights = dict(result.net.module_.named_parameters())
    for name, mask in masks.items():
        pruned = weights[name].detach().numpy()[~mask]
        assert np.all(pruned == 0.0), name
        assert np.any(weights[name].detach().numpy()[mask] != 0.0)
    assert MASK_CALLBACK in dict(result.net.callbacks_)


def test_an_implementation_that_computes_the_same_shares_its_rounds_in_memory(iris):
    X, y = iris
    start = initial_state(net(optimizer=torch.optim.Adam), seed=0)

    def key(**params):
        return training_key(TrainingSpec(net(optimizer=torch.optim.Adam, **params), X, y,
                                         start=start, masks=None, seed=0))

    # Asking for the kernel that is chosen anyway computes the same: same key.
    assert key() == key(optimizer__fused=True)
    # Another implementation computes other last bits: another key.
    assert key() != key(optimizer__fused=False)
    assert key(optimizer__foreach=True) != key(optimizer__fused=False)


def test_idle_default_callbacks_are_left_out_of_a_silent_training(iris, capsys):
    X, y = iris
    est = LotteryTicketClassifier(target_sparsity=0.5, random_state=0).set_params(
        net__max_epochs=2, net__train_split=None).fit(X, y)
    names = dict(est.net_.callbacks_)
    assert "print_log" not in names and "valid_loss" not in names
    assert {"epoch_timer", "train_loss", "converged"} <= set(names)
    assert "train_loss" in est.net_.history[-1] and "dur" in est.net_.history[-1]
    assert capsys.readouterr().out == ""


def test_a_table_asked_for_is_printed(iris, capsys):
    X, y = iris
    LotteryTicketClassifier(target_sparsity=0.5, random_state=0, verbose=2).set_params(
        net__max_epochs=2).fit(X, y)
    assert "train_loss" in capsys.readouterr().out


def test_a_configured_print_log_stays(iris):
    X, y = iris
    lines = []
    est = LotteryTicketClassifier(target_sparsity=0.5, random_state=0).set_params(
        net__max_epochs=2, net__callbacks__print_log=PrintLog(sink=lines.append)).fit(X, y)
    assert "print_log" in dict(est.net_.callbacks_)
    assert any("train_loss" in line for line in lines)


def test_validation_scores_stay_when_there_is_a_validation_split(iris):
    X, y = iris
    net = NeuralNetClassifier(MLP, module__hidden_units=(16,), max_epochs=2,
                              train_split=ValidSplit(5), verbose=0)
    est = LotteryTicketClassifier(net, target_sparsity=0.5, random_state=0).fit(X, y)
    assert {"valid_loss", "valid_acc"} <= set(est.net_.history[-1])
    # The default net holds rows out too, and watches their loss (it has no valid_acc).
    default = LotteryTicketClassifier(target_sparsity=0.5, random_state=0).set_params(
        net__max_epochs=2).fit(X, y)
    assert "valid_loss" in default.net_.history[-1]
    assert "valid_acc" not in dict(default.net_.callbacks_)


@pytest.mark.parametrize("net_class", [DefaultClassifierNet, DefaultRegressorNet])
def test_the_default_nets_take_scikit_learns_batch_rule(net_class):
    assert net_class().batch_size == "auto"
    est = LotteryTicketClassifier()
    assert est.get_params()["net__batch_size"] == "auto"
    assert [auto_batch_size(n) for n in (1, 150, 200, 201, 10_000)] == [1, 150, 200, 200, 200]


@pytest.mark.parametrize("n_rows, expected", [(150, 150), (120, 120)])
def test_auto_batches_are_sized_from_the_training_rows(iris, n_rows, expected):
    X, y = iris
    rows = np.random.default_rng(0).permutation(len(X))[:n_rows]
    est = LotteryTicketClassifier(target_sparsity=0.5, random_state=0).set_params(
        net__max_epochs=2).fit(X[rows], y[rows])
    assert est.net_.batch_size == expected
    assert est.net_.history[-1, "train_batch_count"] == 1
    # Held-out rows are not trained on: the batch is sized from what trains.
    split = LotteryTicketClassifier(target_sparsity=0.5, random_state=0, score_tolerance=0.5,
                                    validation_fraction=0.2).set_params(
        net__max_epochs=2).fit(X[rows], y[rows])
    assert split.net_.batch_size == n_rows - round(0.2 * n_rows)
    # A batch size the user sets is theirs.
    given = LotteryTicketClassifier(target_sparsity=0.5, random_state=0).set_params(
        net__max_epochs=2, net__batch_size=32).fit(X[rows], y[rows])
    assert given.net_.batch_size == 32


def test_a_default_net_on_its_own_resolves_auto_batches(iris):
    X, y = iris
    alone = DefaultClassifierNet(module__n_features=4, module__n_outputs=3,
                                 module__output_activation="softmax", max_epochs=2)
    alone.fit(X, y.astype(np.int64))
    assert alone.history[-1, "train_batch_count"] == 1  # 150 rows, one batch of 150
    assert alone.predict_proba(X).shape == (150, 3)
