"""run_training's shortcuts change nothing: batch fetching, masks that prune nothing."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.dataset import ValidSplit
from torch import nn
from torch.utils.data import DataLoader

import skticket._training as training
from skticket import MLP
from skticket._training import (
    ApplyMasks,
    TrainingSpec,
    initial_state,
    module_state,
    run_training,
)


class DropoutMLP(nn.Module):
    """Dropout draws from the same generator as the shuffling, so any change in
    the order of random draws would show in the weights."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_features, 16), nn.ReLU(), nn.Dropout(0.3),
                                    nn.Linear(16, n_outputs))

    def forward(self, X):
        return self.layers(X)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=101, n_features=6, random_state=0)
    return X.astype(np.float32), y.astype(np.int64)


def _classifier(**params):
    params = dict(dict(max_epochs=3, batch_size=16, verbose=0), **params)
    return NeuralNetClassifier(DropoutMLP, module__n_features=6, module__n_outputs=2,
                               criterion=nn.CrossEntropyLoss, **params)


def _train_both_ways(net, X, y, monkeypatch):
    """The same training through the batch-fetching loader and through skorch's own.

    Each batch the fast loader hands out is one ``BatchDataset`` indexing: counting
    them proves which path ran (a fast path that silently fell back to the
    row-by-row loader would compare skorch with itself).
    """
    init = initial_state(net, seed=1)
    masks = {name: np.random.default_rng(0).random(value.shape) > 0.5
             for name, value in init.items() if name.endswith("weight")}
    start = {name: np.where(masks[name], value, 0).astype(value.dtype) if name in masks
             else value for name, value in init.items()}
    fetches = []
    real_getitem = training.BatchDataset.__getitem__
    monkeypatch.setattr(training.BatchDataset, "__getitem__",
                        lambda rows, positions: fetches.append(len(positions))
                        or real_getitem(rows, positions))
    # skorch's loop, whose loader this is (a stack draws its batches itself).
    fast = training.train_alone(TrainingSpec(net, X, y, start=start, masks=masks, seed=5))
    # Each epoch's training batches, then its held-out batches (with a train_split).
    batches = [b.get("train_batch_size", b.get("valid_batch_size"))
               for h in fast.net.history for b in h["batches"]]
    assert fetches == batches, "the fast path did not fetch every batch"
    fetches.clear()
    monkeypatch.setattr(training, "fetches_batches", lambda net, prefix="iterator_train": False)
    rowwise = training.train_alone(TrainingSpec(net, X, y, start=start, masks=masks, seed=5))
    assert fetches == [], "the row-by-row path went through the fast loader"
    return fast.net, rowwise.net


@pytest.mark.parametrize("params", [
    dict(train_split=None, iterator_train__shuffle=True),
    dict(train_split=ValidSplit(4), iterator_train__shuffle=True,
         iterator_train__drop_last=True),
    dict(train_split=None, batch_size=-1),
    # The default nets' pipeline: in order, rows a split keeps, the last batch short.
    dict(train_split=ValidSplit(4)),
])
def test_batch_fetching_trains_bit_for_bit_as_skorch_does(data, params, monkeypatch):
    X, y = data
    fast, rowwise = _train_both_ways(_classifier(**params), X, y, monkeypatch)
    a, b = module_state(fast.module_), module_state(rowwise.module_)
    assert all(np.array_equal(a[name], b[name]) for name in a)
    assert [h["train_loss"] for h in fast.history] == [h["train_loss"] for h in rowwise.history]
    assert ([h.get("valid_loss") for h in fast.history]
            == [h.get("valid_loss") for h in rowwise.history])
    # The net handed back is configured as the user configured it.
    assert fast.iterator_train is DataLoader and fast.iterator_valid is DataLoader


def test_batch_fetching_keeps_regression_targets_2d(monkeypatch):
    X, y = make_classification(n_samples=50, n_features=4, random_state=0)
    X, y = X.astype(np.float32), y.astype(np.float32).reshape(-1, 1)
    net = NeuralNetRegressor(MLP, module__n_features=4, module__n_outputs=1, max_epochs=2,
                             batch_size=8, optimizer=torch.optim.SGD, lr=0.01,
                             optimizer__momentum=0.9, train_split=None, verbose=0)
    fast, rowwise = _train_both_ways(net, X, y, monkeypatch)
    a, b = module_state(fast.module_), module_state(rowwise.module_)
    assert all(np.array_equal(a[name], b[name]) for name in a)


def test_a_custom_data_pipeline_is_left_alone(data):
    X, y = data
    seen = []

    def loader(dataset, **kwargs):
        seen.append(kwargs)
        return DataLoader(dataset, **kwargs)

    net = _classifier(train_split=None, iterator_train=loader)
    assert not training.fetches_batches(net)
    run_training(TrainingSpec(net, X, y, start=initial_state(net, seed=0), masks=None, seed=0))
    assert seen == [{"batch_size": 16}]  # the user's own loader, called by skorch


def test_masks_that_prune_nothing_cost_nothing(data):
    X, y = data
    net = _classifier(train_split=None)
    init = initial_state(net, seed=0)
    masks = {"layers.0.weight": np.ones(init["layers.0.weight"].shape, dtype=bool),
             "layers.3.weight": np.arange(32).reshape(2, 16) % 2 == 0}
    result = run_training(TrainingSpec(net, X, y, start=init, masks=masks, seed=0))
    callback = dict(result.net.callbacks_)[training.MASK_CALLBACK]
    assert isinstance(callback, ApplyMasks)
    # Only the layer that is really pruned is multiplied every step.
    assert len(callback.pairs_) == 1
    weight = result.net.module_.layers[3].weight.detach().numpy()
    assert np.all(weight[~masks["layers.3.weight"]] == 0)
