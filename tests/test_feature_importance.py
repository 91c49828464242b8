"""The ticket as a feature selector: ``feature_importances_``, ``used_features_`` and
``SelectFromModel``."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_classification, make_regression
from sklearn.feature_selection import SelectFromModel
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from torch import nn

from skticket import LotteryTicketClassifier, LotteryTicketRegressor
from skticket._importance import input_importances

#: The net these tests' bounds were set for: one hidden layer of 100 units, every row
#: training. At 99% sparsity its first layer keeps 20 of 2,000 weights; the default
#: net's 256-wide layer keeps 51 of 5,120, and reads more of the noise inputs.
NARROW = dict(net__module__hidden_units=(100,), net__lr=0.01, net__train_split=None)


@pytest.fixture(scope="module")
def few_informative():
    # The 3 informative features first (shuffle=False), 17 of noise after them; the
    # rows shuffled (shuffle=False also leaves them sorted by cluster).
    X, y = make_classification(n_samples=600, n_features=20, n_informative=3, n_redundant=0,
                               shuffle=False, random_state=0)
    rows = np.random.default_rng(0).permutation(len(X))
    return StandardScaler().fit_transform(X[rows]).astype(np.float32), y[rows]


@pytest.fixture(scope="module")
def sparse_ticket(few_informative):
    X, y = few_informative
    return LotteryTicketClassifier(target_sparsity=0.99, prune_fraction=0.5,
                                   random_state=0).set_params(**NARROW).fit(X, y)


def test_input_importances_are_zero_exactly_for_disconnected_inputs():
    rng = np.random.default_rng(0)
    first = rng.normal(size=(6, 5))
    first[:, 1] = 0.0                 # input 1: every weight pruned
    first[[0, 1], 3] = 0.0
    first[2:, 3] = 0.0
    first[0, 3] = 0.7                 # input 3: only into unit 0 ...
    after = rng.normal(size=(2, 6))
    after[:, 0] = 0.0                 # ... which passes nothing on
    importances = input_importances(first, after)
    assert importances[1] == 0.0 and importances[3] == 0.0
    assert np.all(importances[[0, 2, 4]] > 0)
    assert importances.sum() == pytest.approx(1.0)
    # Without the next layer, input 3 still counts.
    assert input_importances(first)[3] > 0
    assert np.all(input_importances(np.zeros((3, 4))) == 0)


def test_importances_follow_the_tickets_first_layer(sparse_ticket):
    est = sparse_ticket
    importances = est.feature_importances_
    mask = est.winning_ticket_.masks["hidden_0.weight"]
    assert importances.shape == (20,) and importances.sum() == pytest.approx(1.0)
    # An input with no surviving first-layer weight is exactly 0.
    unread = ~mask.any(axis=0)
    assert unread.any() and np.all(importances[unread] == 0)
    assert np.all(importances >= 0)


def test_a_99_percent_ticket_reads_the_informative_features(sparse_ticket):
    importances = sparse_ticket.feature_importances_
    assert set(np.argsort(importances)[::-1][:3]) == {0, 1, 2}
    assert sparse_ticket.used_features_.tolist()[:3] == ["x0", "x1", "x2"]
    assert len(sparse_ticket.used_features_) < 10


def test_used_features_by_name(few_informative):
    X, y = few_informative
    frame = pd.DataFrame(X, columns=[f"col_{i}" for i in range(20)])
    est = LotteryTicketClassifier(target_sparsity=0.99, prune_fraction=0.5,
                                  random_state=0).set_params(**NARROW).fit(frame, y)
    used = est.used_features_
    assert set(used) >= {"col_0", "col_1", "col_2"}
    np.testing.assert_array_equal(used, frame.columns[est.feature_importances_ > 0])


def test_select_from_model_in_a_pipeline(few_informative):
    X, y = few_informative
    ticket = LotteryTicketClassifier(target_sparsity=0.99, prune_fraction=0.5,
                                     random_state=0).set_params(**NARROW)
    # A threshold above 0 keeps exactly the inputs the ticket reads.
    model = make_pipeline(SelectFromModel(ticket, threshold=1e-12), KNeighborsClassifier())
    model.fit(X, y)
    kept = np.flatnonzero(model[0].get_support())
    assert {0, 1, 2} <= set(kept) and len(kept) < 10
    np.testing.assert_array_equal(kept, np.flatnonzero(
        model[0].estimator_.feature_importances_ > 0))
    assert model.score(X, y) > 0.9
    # The default threshold (the mean importance) keeps the strongest of them.
    strongest = SelectFromModel(ticket).fit(X, y).get_support()
    assert strongest.sum() >= 1 and set(np.flatnonzero(strongest)) <= set(kept)


def test_importances_follow_prune(few_informative):
    X, y = few_informative
    est = LotteryTicketClassifier(target_sparsity=0.9, random_state=0).set_params(
        net__max_epochs=20).fit(X, y)
    before = est.feature_importances_ > 0
    est.prune(X, y)
    after = est.feature_importances_ > 0
    assert np.all(after <= before)


def test_regressor_importances():
    # y = 5.5 x0 + 68.1 x1: the other six inputs do not matter.
    X, y = make_regression(n_samples=300, n_features=8, n_informative=2, shuffle=False,
                           random_state=0)
    reg = LotteryTicketRegressor(target_sparsity=0.95, prune_fraction=0.5,
                                 random_state=0).set_params(**NARROW).fit(X, y)
    importances = reg.feature_importances_
    assert np.argmax(importances) == 1 and np.all(importances[2:] == 0)


class _ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3)
        self.out = nn.Linear(16, 2)

    def forward(self, X):
        return torch.softmax(self.out(torch.flatten(self.conv(X[:, None, :]), 1)), dim=-1)


def test_no_importances_without_a_linear_layer_reading_the_inputs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 10)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    net = NeuralNetClassifier(_ConvNet, max_epochs=2, train_split=None, verbose=0)
    est = LotteryTicketClassifier(net, target_sparsity=0.5, random_state=0).fit(X, y)
    assert not hasattr(est, "feature_importances_")
    with pytest.raises(AttributeError, match=r"nn\.Linear layer that reads the 10 inputs"):
        est.feature_importances_  # noqa: B018
    assert not hasattr(LotteryTicketClassifier(), "feature_importances_")
