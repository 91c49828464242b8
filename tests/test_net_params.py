"""The default nets' own settings, checked at fit as scikit-learn's MLPs check theirs.

Each bad setting is refused with scikit-learn's ``InvalidParameterError`` naming the
parameter as the user set it (``net__lr``), before any training; a net of one's own
keeps skorch's handling, except that a training of no epochs is refused."""

import numpy as np
import pytest
from helpers import small_net
from sklearn.datasets import make_classification, make_regression
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from skticket import (
    DefaultClassifierNet,
    DefaultRegressorNet,
    LotteryTicketClassifier,
    LotteryTicketClassifierCV,
    LotteryTicketRegressor,
    ticket_path,
)

BAD_SETTINGS = [
    ("lr", "abc"), ("lr", 0), ("lr", -0.1),
    ("max_epochs", 0), ("max_epochs", -1), ("max_epochs", 2.5),
    ("batch_size", 0), ("batch_size", -5), ("batch_size", "big"),
    ("module__hidden_units", (0, 3)), ("module__hidden_units", 16),
    ("module__hidden_units", (16.0,)), ("module__hidden_units", "16"),
    ("module__activation", "foo"), ("module__activation", nn.Tanh()),
    ("callbacks__converged__patience", 0), ("callbacks__converged__threshold", -1e-4),
]


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(60, 5, n_informative=3, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, random_state=0)
    return X.astype(np.float32), y


class TrainingSpy(Exception):
    """Raised by the patched training: the check came too late."""


@pytest.fixture
def no_training(monkeypatch):
    """Any training at all fails the test: the settings are checked before it."""
    def refuse(*args, **kwargs):
        raise TrainingSpy("a net was initialized before the settings were checked")
    monkeypatch.setattr(DefaultClassifierNet, "initialize", refuse)
    monkeypatch.setattr(DefaultRegressorNet, "initialize", refuse)


@pytest.mark.parametrize("name, value", BAD_SETTINGS)
def test_a_bad_default_net_setting_is_refused_by_name(data, no_training, name, value):
    X, y = data
    est = LotteryTicketClassifier().set_params(**{f"net__{name}": value})
    with pytest.raises(InvalidParameterError, match=f"'net__{name}' parameter of "
                                                    "LotteryTicketClassifier"):
        est.fit(X, y)
    assert not hasattr(est, "winning_ticket_")


@pytest.mark.parametrize("name, value", BAD_SETTINGS[:3])
def test_the_regressor_and_a_given_default_net_are_checked_too(name, value, no_training):
    X, y = make_regression(40, 4, random_state=0)
    est = LotteryTicketRegressor(DefaultRegressorNet(**{name: value}))
    with pytest.raises(InvalidParameterError, match=f"'net__{name}' parameter of "
                                                    "LotteryTicketRegressor"):
        est.fit(X, y)


def test_the_cv_estimator_and_ticket_path_check_them(data, no_training):
    X, y = data
    cv = LotteryTicketClassifierCV(cv=2).set_params(net__lr=0)
    with pytest.raises(InvalidParameterError, match="'net__lr' parameter of "
                                                    "LotteryTicketClassifierCV"):
        cv.fit(X, y)
    with pytest.raises(InvalidParameterError, match="'net__batch_size' parameter"):
        ticket_path(LotteryTicketClassifier().set_params(net__batch_size=0), X, y)


def test_a_default_net_on_its_own_checks_them_at_fit(data, no_training):
    X, y = data
    net = DefaultClassifierNet(max_epochs=0, module__n_features=5, module__n_outputs=3)
    with pytest.raises(InvalidParameterError, match="'max_epochs' parameter of "
                                                    "DefaultClassifierNet"):
        net.fit(X, y)


@pytest.mark.parametrize("params", [
    dict(net__module__hidden_units=[8], net__module__activation=nn.Tanh,
         net__batch_size=16, net__lr=np.float64(0.01)),
    dict(net__module__hidden_units=(), net__callbacks__converged=None, net__max_epochs=2),
    dict(net__callbacks__converged__patience=np.int64(2),
         net__callbacks__converged__threshold=0, net__max_epochs=3),
])
def test_good_settings_of_any_accepted_kind_fit(data, params):
    X, y = data
    est = LotteryTicketClassifier(target_sparsity=0.5, random_state=0).set_params(
        net__module__hidden_units=(8,), net__max_epochs=3).set_params(**params)
    assert est.fit(X, y).score(X, y) > 0


def test_a_net_of_ones_own_keeps_skorchs_handling_but_not_zero_epochs(data):
    X, y = data
    # skorch trains at lr=0 (nothing moves): no check of it here.
    LotteryTicketClassifier(small_net(lr=0, max_epochs=1), target_sparsity=0.5,
                            random_state=0).fit(X, y)
    for epochs in (0, -1):
        with pytest.raises(InvalidParameterError, match="'net__max_epochs' parameter of "
                                                        "LotteryTicketClassifier"):
            LotteryTicketClassifier(small_net(max_epochs=epochs)).fit(X, y)
