"""When things go wrong: Ctrl-C, divergence, every skorch setting, prune() after
set_params, a broken or stale cache, batch-independent predictions, failed fits."""

import importlib.util
import pathlib
import pickle
import signal
import sys
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, make_classification
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import Callback, Checkpoint, EarlyStopping, LRScheduler
from skorch.dataset import ValidSplit
from torch import nn

import skticket._estimators as estimators_module
from skticket import MLP, LotteryTicketClassifier, LotteryTicketRegressor
from skticket._predict import block_rows
from skticket.exceptions import (
    FitInterruptedWarning,
    TrainingDivergedError,
    TrainingDivergedWarning,
    TrainingInterrupted,
)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X)[:240].astype(np.float32), y[:240]


def small_net(net_class=NeuralNetClassifier, **params):
    defaults = dict(module=MLP, module__hidden_units=(16,), optimizer=torch.optim.Adam,
                    lr=0.01, max_epochs=4, batch_size=32, train_split=None, verbose=0)
    defaults.update(params)
    return net_class(**defaults)


def estimator(net=None, **params):
    params = {"prune_fraction": 0.5, "target_sparsity": 0.875, "random_state": 0, **params}
    return LotteryTicketClassifier(small_net() if net is None else net, **params)


def assert_masks_hold(est):
    params = dict(est.net_.module_.named_parameters())
    for name, mask in est.winning_ticket_.masks.items():
        assert np.all(params[name].detach().numpy()[~mask] == 0), name


def assert_same_ticket(a, b, X):
    for name, mask in a.winning_ticket_.masks.items():
        np.testing.assert_array_equal(mask, b.winning_ticket_.masks[name])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


class TrainingCounter:
    """Counts the trainings started in this process (cache hits start none)."""

    trainings = 0


class InRound(Callback):
    """Does ``action`` in the ``round``-th training of the process, after epoch ``epoch``.

    The counter is a class attribute: the net's callbacks are deep-copied for
    every round, a class is not.
    """

    def __init__(self, round, action, epoch=2):
        self.round = round
        self.action = action
        self.epoch = epoch

    def on_train_begin(self, net, **kwargs):
        TrainingCounter.trainings += 1

    def on_epoch_end(self, net, **kwargs):
        if TrainingCounter.trainings == self.round + 1 and len(net.history) == self.epoch:
            self.action(net)


def ctrl_c(net):
    signal.raise_signal(signal.SIGINT)


def poison(net):
    with torch.no_grad():
        next(net.module_.parameters()).fill_(float("nan"))


@pytest.fixture(autouse=True)
def fresh_counter():
    TrainingCounter.trainings = 0


def net_with(action, round):
    return small_net(callbacks=[("in_round", InRound(round, action))])


# --- predictions do not depend on the other rows ----------------------------------------------


@pytest.mark.parametrize("kind", ["classifier", "regressor-1d", "regressor-2d"])
def test_a_rows_prediction_does_not_depend_on_the_other_rows(kind):
    X, y = make_classification(n_samples=2600, n_features=8, random_state=0)
    X = X.astype(np.float32)
    if kind == "classifier":
        est = estimator(small_net(max_epochs=2), target_sparsity=0.5).fit(X, y)
        methods = [est.predict_proba, est.predict]
    else:
        target = X[:, :2] @ np.array([[1.0, 0.5], [-1.0, 2.0]])
        target = target[:, 0] if kind == "regressor-1d" else target
        est = LotteryTicketRegressor(small_net(NeuralNetRegressor, max_epochs=2),
                                     prune_fraction=0.5, target_sparsity=0.5,
                                     random_state=0).fit(X, target)
        methods = [est.predict]
    # More rows than one forward block, so that blocks and padding are exercised.
    assert len(X) > 2 * block_rows(est.net_.module_)
    order = np.random.default_rng(0).permutation(len(X))
    for method in methods:
        whole = method(X)
        np.testing.assert_array_equal(method(X[order]), whole[order])
        np.testing.assert_array_equal(method(X[5:8]), whole[5:8])
        for row in (0, 1, 1500, 2599):
            np.testing.assert_array_equal(method(X[row:row + 1]), whole[row:row + 1])
    # The same numbers, to float32 rounding, as skorch's own predict.
    skorch_path = (est.net_.predict_proba(X) if kind == "classifier"
                   else est.net_.predict(X).reshape(whole.shape))
    np.testing.assert_allclose(methods[0](X), skorch_path, rtol=1e-5, atol=1e-6)
