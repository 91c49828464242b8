"""The default net: tunable through net__*, trained to convergence, a standardized target
for the regressor, and a warning for unscaled inputs."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris, make_classification
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier, NeuralNetRegressor

from skticket import (
    MLP,
    DefaultClassifierNet,
    DefaultRegressorNet,
    LotteryTicketClassifier,
    LotteryTicketRegressor,
)
from skticket.exceptions import InputScaleWarning


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


@pytest.mark.parametrize("cls, net_class", [(LotteryTicketClassifier, DefaultClassifierNet),
                                            (LotteryTicketRegressor, DefaultRegressorNet)])
def test_the_default_net_is_tunable_through_net_params(cls, net_class):
    est = cls()
    params = est.get_params(deep=True)
    assert params["net"] is None
    assert params["net__max_epochs"] == 200 and params["net__lr"] == 0.001
    assert params["net__module__hidden_units"] == (256, 256)
    split = params["net__train_split"]
    assert (split.cv, split.stratified, split.random_state) == (0.1, False, 0)
    est.set_params(net__max_epochs=10, net__lr=0.05, net__module__hidden_units=(8,),
                   net__device="cpu", net__batch_size=16)
    assert type(est.net) is net_class
    assert (est.net.max_epochs, est.net.lr, est.net.batch_size) == (10, 0.05, 16)
    copy = clone(est)
    assert copy.net is not est.net and copy.get_params()["net__max_epochs"] == 10
    # The default is built per estimator: nothing is shared with a fresh one.
    assert cls().net is None and cls().get_params()["net__max_epochs"] == 200


def test_net_params_apply_to_the_fit(iris):
    X, y = iris
    est = LotteryTicketClassifier(target_sparsity=0.5, random_state=0).set_params(
        net__max_epochs=3, net__module__hidden_units=(8,))
    est.fit(X, y)
    assert all(r["epochs"] <= 3 for r in est.rounds_)
    assert tuple(est.winning_ticket_.masks["hidden_0.weight"].shape) == (8, 4)


def test_grid_search_over_the_default_nets_params(iris):
    X, y = iris
    grid = GridSearchCV(LotteryTicketClassifier(target_sparsity=0.5, random_state=0),
                        {"net__max_epochs": [2, 5], "net__lr": [0.01, 0.05]}, cv=2).fit(X, y)
    assert sorted((p["net__max_epochs"], p["net__lr"]) for p in grid.cv_results_["params"]) == [
        (2, 0.01), (2, 0.05), (5, 0.01), (5, 0.05)]
    best = grid.best_estimator_
    assert best.net.max_epochs == grid.best_params_["net__max_epochs"]
    assert all(r["epochs"] <= best.net.max_epochs for r in best.rounds_)


def test_tiny_sets_train_until_converged_large_ones_stop_early():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    tiny = LotteryTicketClassifier(max_rounds=1, random_state=0).fit(X[::5], y[::5])
    # 30 rows are one batch an epoch: a fixed 30 epochs would be 30 steps.
    assert all(r["epochs"] > 30 for r in tiny.rounds_)
    assert tiny.score(X, y) > 0.85
    X, y = make_classification(n_samples=4000, n_features=10, n_informative=4,
                               class_sep=3.0, random_state=0)
    large = LotteryTicketClassifier(max_rounds=1, random_state=0).fit(
        StandardScaler().fit_transform(X), y)
    assert all(r["epochs"] < 200 for r in large.rounds_)


def test_the_convergence_rule_watches_held_out_rows_and_keeps_the_best_epoch(iris):
    X, y = iris
    est = LotteryTicketClassifier(max_rounds=0, random_state=0).set_params(
        net__lr=0.05, net__callbacks__converged__patience=3)
    est.fit(X, y)
    history = est.net_.history
    converged = dict(est.net_.callbacks_)["converged"]
    assert (converged.monitor_, converged.load_best_) == ("valid_loss", True)
    # The parameters stay as set: "auto" is resolved for each training.
    assert (converged.monitor, converged.load_best) == ("auto", "auto")
    assert history[-1, "epoch"] < 200
    # 15 of the 150 rows (a fixed 10%) held out.
    assert [b.get("valid_batch_size") for b in history[-1, "batches"]] == [None, 15]
    # It stopped 3 epochs after its best, and kept the best epoch's weights.
    best = converged.best_epoch_
    assert best == history[-1, "epoch"] - 3
    held_out = est.net_.get_split_datasets(X, y)[1].indices
    probs = est.net_.predict_proba(X[held_out])
    nll = -np.log(probs[np.arange(len(held_out)), y[held_out]]).mean()
    assert nll == pytest.approx(history[best - 1, "valid_loss"], rel=1e-4)
    assert nll != pytest.approx(history[-1, "valid_loss"], rel=1e-4)


def test_without_held_out_rows_the_rule_watches_the_training_loss(iris):
    X, y = iris
    est = LotteryTicketClassifier(max_rounds=0, random_state=0).set_params(
        net__train_split=None)
    est.fit(X, y)
    converged = dict(est.net_.callbacks_)["converged"]
    assert (converged.monitor_, converged.load_best_) == ("train_loss", False)
    assert "valid_loss" not in est.net_.history[-1]
    assert est.score(X, y) > 0.9


def test_the_convergence_rule_can_be_turned_off(iris):
    X, y = iris
    est = LotteryTicketClassifier(max_rounds=0, random_state=0).set_params(
        net__callbacks__converged=None, net__max_epochs=40)
    est.fit(X, y)
    assert est.rounds_[0]["epochs"] == 40


def test_the_default_regressor_copes_with_an_unscaled_target():
    X, y = load_diabetes(return_X_y=True)  # the raw target, 25 to 346
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    scaler = StandardScaler().fit(y_train.reshape(-1, 1))

    def fit(target):
        model = make_pipeline(StandardScaler(), LotteryTicketRegressor(
            prune_fraction=0.5, target_sparsity=0.9, random_state=0))
        return model.fit(X_train, target)

    raw = fit(y_train)
    standardized = fit(scaler.transform(y_train.reshape(-1, 1)).ravel())
    raw_r2 = raw.score(X_test, y_test)
    standardized_pred = scaler.inverse_transform(
        standardized.predict(X_test).reshape(-1, 1)).ravel()
    standardized_r2 = 1 - ((y_test - standardized_pred) ** 2).sum() / (
        (y_test - y_test.mean()) ** 2).sum()
    assert raw_r2 > 0.2
    assert abs(raw_r2 - standardized_r2) < 0.05
    reg = raw[-1]
    assert reg.target_mean_ == pytest.approx([y_train.mean()])
    assert reg.target_scale_ == pytest.approx([y_train.std()])
    # compact() predicts on the target's scale too.
    np.testing.assert_allclose(reg.compact().predict(raw[0].transform(X_test)),
                               reg.predict(raw[0].transform(X_test)), rtol=1e-4)


def test_a_users_own_regressor_net_trains_on_the_target_as_given():
    X, y = load_diabetes(return_X_y=True)
    net = NeuralNetRegressor(MLP, optimizer=torch.optim.Adam, max_epochs=2, train_split=None,
                             verbose=0)
    reg = LotteryTicketRegressor(net, max_rounds=0, random_state=0).fit(
        StandardScaler().fit_transform(X), y)
    assert reg.target_mean_ is None and reg.target_scale_ is None


def test_unscaled_inputs_warn_with_the_default_net(iris):
    X, y = iris
    skewed = X * np.array([1.0, 1.0, 1000.0, 1.0], dtype=np.float32)
    with pytest.warns(InputScaleWarning, match="differ by orders of magnitude.*StandardScaler"):
        LotteryTicketClassifier(max_rounds=0, random_state=0).set_params(
            net__max_epochs=1).fit(skewed, y)
    # Every feature far from 1, though alike: the message says which it is.
    with pytest.warns(InputScaleWarning, match=r"are far from 1 \(over 100\) \(from 1.*"):
        LotteryTicketClassifier(max_rounds=0, random_state=0).set_params(
            net__max_epochs=1).fit(X * 300 + 1000, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputScaleWarning)
        LotteryTicketClassifier(max_rounds=0, random_state=0).set_params(
            net__max_epochs=1).fit(X, y)
        # A net of the user's own is left to the user.
        LotteryTicketClassifier(NeuralNetClassifier(MLP, max_epochs=1, train_split=None),
                                max_rounds=0, random_state=0).fit(skewed, y)
