"""compact(): the ticket as a smaller network that predicts what the masked net predicts."""

import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

from skticket import MLP, LotteryTicketClassifier, LotteryTicketRegressor
from skticket._activations import ACTIVATIONS, entry_of
from skticket._compact import (
    CSR_MIN_SPARSITY,
    CompactClassifier,
    CompactRegressor,
    compact_module,
)

# The compact network and the estimator both compute in float64 from the same
# weights: they agree to float64 rounding, whatever the order of their sums.
FLOAT64 = dict(rtol=1e-12, atol=1e-12)


def in_float64(module, X):
    """What ``module`` computes for ``X`` with its weights in float64."""
    with torch.no_grad():
        return copy.deepcopy(module).double()(X.double())


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


@pytest.fixture(scope="module")
def classifier(digits):
    X, y = digits
    net = NeuralNetClassifier(MLP, module__hidden_units=(64, 64), max_epochs=4, lr=0.01,
                              batch_size=128, optimizer=torch.optim.Adam, train_split=None,
                              verbose=0)
    return LotteryTicketClassifier(net, prune_fraction=0.7, target_sparsity=0.95,
                                   random_state=0).fit(X[:900], y[:900])


def hidden_units(compact):
    return compact.module_.widths[1:-1]


def test_compact_classifier_predicts_as_the_masked_net(classifier, digits):
    X, y = digits
    compact = classifier.compact()
    assert isinstance(compact, CompactClassifier)
    np.testing.assert_allclose(compact.predict_proba(X), classifier.predict_proba(X), **FLOAT64)
    np.testing.assert_array_equal(compact.predict(X), classifier.predict(X))
    np.testing.assert_array_equal(compact.classes_, classifier.classes_)
    assert compact.score(X, y) == classifier.score(X, y)
    # The same score, weights and all: both are ClassPredictions' over the same encoding.
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    assert compact.score(X, y, sample_weight=weights) == classifier.score(
        X, y, sample_weight=weights)
    assert compact.predict_proba(X).dtype == np.float64
    # Units died at 95% sparsity (local pruning left at most 32 weights to the
    # 64 units feeding the output), and every one of them is gone.
    assert hidden_units(compact)[-1] <= classifier.winning_ticket_.masks["output.weight"].sum()
    assert all(units < 64 for units in hidden_units(compact))


def test_compact_applies_the_nets_predict_nonlinearity(digits):
    X, y = digits
    # CrossEntropyLoss: the module emits logits and skorch's predict_proba applies softmax.
    net = NeuralNetClassifier(MLP, module__hidden_units=(32,), criterion=nn.CrossEntropyLoss,
                              max_epochs=2, lr=0.01, optimizer=torch.optim.Adam,
                              train_split=None, verbose=0)
    clf = LotteryTicketClassifier(net, prune_fraction=0.8, max_rounds=1,
                                  random_state=0).fit(X[:400], y[:400])
    proba = clf.compact().predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=0, atol=1e-14)
    np.testing.assert_allclose(proba, clf.predict_proba(X), **FLOAT64)


@pytest.mark.parametrize("activation", ["tanh", "logistic"])
def test_compact_regressor_predicts_as_the_masked_net(activation):
    X, y = make_regression(n_samples=300, n_features=8, n_targets=2, random_state=0)
    net = NeuralNetRegressor(MLP, module__hidden_units=(32, 32), module__activation=activation,
                             max_epochs=5, lr=0.01, optimizer=torch.optim.Adam,
                             train_split=None, verbose=0)
    reg = LotteryTicketRegressor(net, prune_fraction=0.7, target_sparsity=0.97,
                                 random_state=0).fit(X, y / 100)
    compact = reg.compact()
    assert isinstance(compact, CompactRegressor)
    assert compact.predict(X).shape == (300, 2)
    np.testing.assert_allclose(compact.predict(X), reg.predict(X), **FLOAT64)
    assert compact.score(X, y / 100) == pytest.approx(reg.score(X, y / 100), rel=1e-9)
    single = LotteryTicketRegressor(net, prune_fraction=0.7, target_sparsity=0.97,
                                    random_state=0).fit(X, y[:, 0] / 100)
    assert single.compact().predict(X).shape == (300,)
    np.testing.assert_allclose(single.compact().predict(X), single.predict(X), **FLOAT64)


def test_toy_sum_ticket_compacts_to_one_or_two_hidden_units():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(512, 2)).astype(np.float32)
    y = X.sum(axis=1)
    net = NeuralNetRegressor(MLP, module__hidden_units=(50,), max_epochs=15, lr=0.01,
                             optimizer=torch.optim.Adam, batch_size=32, train_split=None,
                             verbose=0)
    # 150 weights; local pruning to 4 of them: 3 left in layer one, 1 or 2 in the output.
    reg = LotteryTicketRegressor(net, prune_fraction=0.5, target_sparsity=1 - 4 / 150,
                                 random_state=0).fit(X, y)
    compact = reg.compact()
    assert hidden_units(compact)[0] in (1, 2)
    np.testing.assert_allclose(compact.predict(X), reg.predict(X), **FLOAT64)


def set_weights(module, weights, biases):
    linears = [m for m in module if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for linear, weight, bias in zip(linears, weights, biases, strict=True):
            linear.weight.copy_(torch.tensor(weight, dtype=torch.float32))
            linear.bias.copy_(torch.tensor(bias, dtype=torch.float32))


@pytest.mark.parametrize("activation", [nn.ReLU, nn.Sigmoid, nn.Tanh])
def test_dead_units_are_removed_exactly(activation):
    module = nn.Sequential(nn.Linear(4, 5), activation(), nn.Linear(5, 3), activation(),
                           nn.Linear(3, 2))
    set_weights(module, [
        # unit 0: in and out; unit 1: no inputs (a constant); unit 2: no outputs;
        # unit 3: neither; unit 4: inputs, but its only output feeds a dead unit.
        [[1, 2, 0, 0], [0, 0, 0, 0], [0, 0, 3, 0], [0, 0, 0, 0], [0, 1, 0, 0]],
        # layer two: unit 0 reads units 0 and 1; unit 1 reads the constant only
        # (so is constant too); unit 2 reads unit 4 but feeds nothing.
        [[1, -2, 0, 0, 0], [0, 0.5, 0, 0, 0], [0, 0, 0, 0, 1]],
        [[1, 0, 0], [2, 3, 0]],
    ], [[0.1, 0.7, 0.2, -0.3, 0.0], [0.3, -0.1, 0.2], [0.05, -0.05]])
    compact = compact_module(module)
    # Input 2 fed only the dead unit 2, input 3 nothing.
    assert compact.widths == [2, 1, 1, 2]
    np.testing.assert_array_equal(compact.input_index.numpy(), [0, 1])
    X = torch.randn(100, 4)
    with torch.no_grad():
        torch.testing.assert_close(compact(X), in_float64(module, X), **FLOAT64)


def test_masks_are_applied_and_prefix_and_tail_kept():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(6, 20), nn.ReLU(), nn.Dropout(0.5),
                           nn.Linear(20, 4), nn.Softmax(dim=-1)).eval()
    masks = {"1.weight": np.random.default_rng(0).random((20, 6)) < 0.2,
             "4.weight": np.random.default_rng(1).random((4, 20)) < 0.3}
    masked = pickle.loads(pickle.dumps(module))
    with torch.no_grad():
        for name, mask in masks.items():
            dict(masked.named_parameters())[name].mul_(torch.as_tensor(mask))
    compact = compact_module(module, masks)
    assert compact.widths[1] < 20
    X = torch.randn(50, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(compact(X), in_float64(masked, X), **FLOAT64)


def random_sparse_mlp(sparsities, widths, seed=0):
    torch.manual_seed(seed)
    module = MLP(n_features=widths[0], n_outputs=widths[-1], hidden_units=widths[1:-1])
    rng = np.random.default_rng(seed)
    masks = {name: rng.random(param.shape) >= sparsity
             for (name, param), sparsity in zip(
                 [(n, p) for n, p in module.named_parameters() if n.endswith("weight")],
                 sparsities, strict=True)}
    return module, masks


def test_csr_above_the_crossover_and_dense_below():
    above, below = min(0.97, CSR_MIN_SPARSITY + 0.05), max(0.0, CSR_MIN_SPARSITY - 0.4)
    module, masks = random_sparse_mlp([above, below, 0.0], widths=(256, 256, 256, 10))
    compact = compact_module(module, masks)
    assert [layer.is_sparse for layer in compact.linears] == [True, False, False]
    X = torch.randn(300, 256)
    for threshold, expected in [(0.0, [True, True, False]), (1.0, [False, False, False])]:
        other = compact_module(module, masks, sparse_threshold=threshold)
        assert [layer.is_sparse for layer in other.linears] == expected
        with torch.no_grad():
            torch.testing.assert_close(other(X), compact(X), **FLOAT64)
    for layer in compact.linears:  # the rule, on the compacted shapes
        out_features, in_features = layer.weight.shape
        zeros = 1 - layer.nnz / (out_features * in_features)
        assert layer.is_sparse == (zeros > CSR_MIN_SPARSITY)


def test_batches_and_pickling_do_not_change_predictions(classifier, digits):
    X, _ = digits
    whole = classifier.compact(batch_size=len(X))
    small = classifier.compact(batch_size=7)
    np.testing.assert_allclose(small.predict_proba(X), whole.predict_proba(X), **FLOAT64)
    for restored in (pickle.loads(pickle.dumps(whole)), copy.deepcopy(whole)):
        np.testing.assert_array_equal(restored.predict_proba(X), whole.predict_proba(X))
    assert "csr" in repr(whole) or "dense" in repr(whole)


class Custom(nn.Module):
    def __init__(self, n_features=3, n_outputs=2):
        super().__init__()
        self.layer = nn.Linear(n_features, n_outputs)

    def forward(self, X):
        return torch.softmax(self.layer(X.float()), dim=-1)


class SequentialWithForward(nn.Sequential):
    def forward(self, X):
        return super().forward(X) * 2


@pytest.mark.parametrize("module, match", [
    (Custom(), "not an nn.Sequential"),
    (SequentialWithForward(nn.Linear(3, 2)), "overrides forward"),
    (nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)), "BatchNorm1d"),
    (nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=-1), nn.Linear(4, 2)), "Softmax"),
    (nn.Sequential(nn.ReLU()), "no nn.Linear"),
])
def test_unsupported_modules_raise_a_clear_error(module, match):
    with pytest.raises(TypeError, match=match):
        compact_module(module)


def test_estimator_with_unsupported_module_raises(digits):
    X, y = digits
    net = NeuralNetClassifier(Custom, module__n_features=64, module__n_outputs=10, max_epochs=1,
                              train_split=None, verbose=0)
    est = LotteryTicketClassifier(net, max_rounds=0, random_state=0).fit(X[:100], y[:100])
    with pytest.raises(TypeError, match="compact\\(\\) cannot rebuild a Custom"):
        est.compact()
    with pytest.raises(NotFittedError):
        LotteryTicketClassifier().compact()
    with pytest.raises(ValueError, match="features"):
        LotteryTicketClassifier(max_rounds=0, random_state=0).fit(X[:50], y[:50]).compact(
        ).predict(X[:5, :10])


@pytest.mark.parametrize("name", ["relu", "tanh", "logistic", "identity"])
def test_each_word_mlp_takes_for_an_activation_is_a_row_of_the_table(name):
    # scikit-learn's words for MLP(activation=...) come from the table itself.
    module = MLP(n_features=2, n_outputs=1, hidden_units=(3,), activation=name)
    entry = entry_of(module.activation_0)
    assert entry is not None and entry.name == name


def test_a_word_the_table_lacks_is_refused_with_the_words_it_has():
    with pytest.raises(ValueError, match=r"\['identity', 'logistic', 'relu', 'tanh'\]"):
        MLP(n_features=2, n_outputs=1, activation="gelu")


@pytest.mark.parametrize("entry", ACTIVATIONS, ids=lambda entry: entry.module.__name__)
def test_the_activation_table_says_what_compact_takes_between_layers(entry):
    settings = {nn.Threshold: dict(threshold=0.1, value=-1.0), nn.Softmax: dict(dim=-1),
                nn.LogSoftmax: dict(dim=-1)}
    module = nn.Sequential(nn.Linear(4, 6), entry.module(**settings.get(entry.module, {})),
                           nn.Linear(6, 2)).eval()
    if not entry.elementwise:
        with pytest.raises(TypeError, match=entry.module.__name__):
            compact_module(module)
        return
    X = torch.randn(50, 4)
    with torch.no_grad():
        torch.testing.assert_close(compact_module(module)(X), in_float64(module, X), **FLOAT64)
