"""Sample weights: the weighted loss, its checks, and its way through pipelines, grids, every
search and ``memory``."""

import functools

import numpy as np
import pytest
import sklearn
import torch
from helpers import breast_cancer, small_net
from sklearn.datasets import make_regression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

from skticket import MLP, LotteryTicketClassifier, LotteryTicketRegressor, ticket_path
from skticket._training import weighted_loss

SEARCHES = ["imp", "early_bird", "snip", "gradual", "sparse_momentum", "rigl"]


@pytest.fixture(scope="module")
def cancer():
    return breast_cancer()


net = functools.partial(small_net, module__hidden_units=(32,), max_epochs=10, batch_size=64)


def estimator(net=net, **params):
    if callable(net):
        net = net()
    return LotteryTicketClassifier(net, **{"target_sparsity": 0.5, "prune_fraction": 0.5,
                                           "random_state": 0, **params})


def test_the_loss_is_the_weighted_mean_of_the_per_sample_losses():
    torch.manual_seed(0)
    classifier = NeuralNetClassifier(MLP, module__n_features=3, module__n_outputs=4,
                                     module__output_activation="softmax").initialize()
    X = torch.randn(6, 3)
    y = torch.tensor([0, 1, 2, 3, 1, 0])
    w = torch.tensor([1.0, 0.0, 2.0, 0.5, 3.0, 1.0])
    y_pred = classifier.infer(X)
    per_sample = -torch.log(y_pred[torch.arange(6), y] + torch.finfo(y_pred.dtype).eps)
    expected = (per_sample * w).sum() / w.sum()
    got = weighted_loss(classifier, y_pred, y, w, X=X, training=True)
    assert torch.allclose(got, expected)
    assert classifier.criterion_.reduction == "mean"  # put back
    # Several outputs per sample are averaged first, as scikit-learn's MLP does.
    regressor = NeuralNetRegressor(MLP, module__n_features=3, module__n_outputs=2).initialize()
    targets = torch.randn(6, 2)
    outputs = regressor.infer(X)
    squared = ((outputs - targets) ** 2).mean(dim=1)
    assert torch.allclose(weighted_loss(regressor, outputs, targets, w),
                          (squared * w).sum() / w.sum())
    # A batch of zero weights has no loss.
    assert weighted_loss(regressor, outputs, targets, torch.zeros(6)).item() == 0.0


@pytest.mark.parametrize("weight", [1.0, 3.5])
def test_uniform_weights_train_exactly_as_none(cancer, weight):
    X, y = cancer
    plain = estimator().fit(X, y)
    weighted = estimator().fit(X, y, sample_weight=np.full(len(y), weight))
    np.testing.assert_array_equal(weighted.predict_proba(X), plain.predict_proba(X))
    assert weighted.winning_ticket_ == plain.winning_ticket_
    Xr, yr = make_regression(n_samples=120, n_features=4, random_state=0)
    reg = LotteryTicketRegressor(target_sparsity=0.5, random_state=0).set_params(
        net__max_epochs=5)
    np.testing.assert_array_equal(
        reg.fit(Xr, yr, sample_weight=np.full(len(yr), weight)).predict(Xr),
        reg.fit(Xr, yr).predict(Xr))


@pytest.mark.parametrize("search", SEARCHES)
def test_zero_weights_on_a_class_make_it_rare_in_every_search(cancer, search):
    X, y = cancer
    weight = np.where(y == 0, 0.0, 1.0)
    plain = estimator(search=search).fit(X, y)
    weighted = estimator(search=search).fit(X, y, sample_weight=weight)
    before = np.mean(plain.predict(X) == 0)
    after = np.mean(weighted.predict(X) == 0)
    assert before > 0.3 and after < before / 3


def test_balanced_weights_raise_the_minority_recall():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 5)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=1500) > 1.9).astype(int)  # about 3% positives
    balanced = compute_sample_weight("balanced", y)
    plain = estimator(target_sparsity=0.5).fit(X, y)
    weighted = estimator(target_sparsity=0.5).fit(X, y, sample_weight=balanced)
    recall = [np.mean(est.predict(X)[y == 1] == 1) for est in (plain, weighted)]
    assert recall[1] > recall[0]


@pytest.mark.parametrize("weight, match", [
    (-np.ones(10), "negative values"),
    (np.full(10, np.nan), "NaN"),
    (np.full(10, np.inf), "infinity"),
    (np.ones(9), r"shape \(9,\); X has 10 samples"),
    (np.ones((10, 2)), r"shape \(10, 2\)"),
    (np.zeros(10), "zero for every sample"),
])
def test_bad_weights_are_refused_by_name(cancer, weight, match):
    X, y = cancer
    X, y = X[:10], np.arange(10) % 2
    weight = np.array(weight)
    if weight.ndim == 1 and weight.shape[0] == 10 and np.all(weight == weight[0]) and (
            match == "negative values"):
        weight[0] = -2.0
    est = estimator()
    with pytest.raises(ValueError, match=match):
        est.fit(X, y, sample_weight=weight)
    assert not hasattr(est, "classes_")  # nothing half-fitted


def test_prune_takes_weights(cancer):
    X, y = cancer
    weight = np.where(y == 0, 0.0, 1.0)
    est = estimator(target_sparsity=0.2).fit(X, y, sample_weight=weight)
    est.prune(X, y, sample_weight=weight)
    assert est.rounds_[-1]["round"] == 2 and np.mean(est.predict(X) == 0) < 0.15
    with pytest.raises(ValueError, match="negative"):
        est.prune(X, y, sample_weight=-np.ones(len(y)))


def test_the_held_out_score_is_weighted(cancer):
    X, y = cancer
    weight = np.random.default_rng(0).random(len(y))
    est = estimator(score_tolerance=1.0, validation_fraction=0.3)
    run = ticket_path(est, X, y, sample_weight=weight).run
    data = run.session.data
    assert data.w_valid is not None and len(data.w_valid) == len(data.X_valid)
    dense = next(iter(run.rounds()))
    predicted = dense.result.net.predict_proba(data.X_valid).argmax(axis=1)
    expected = np.average(predicted == data.y_valid, weights=data.w_valid)
    assert dense.record["valid_score"] == pytest.approx(expected)
    assert dense.record["valid_score"] != pytest.approx(np.mean(predicted == data.y_valid))


def test_snip_ranks_by_the_weighted_loss(cancer):
    X, y = cancer
    weight = np.where(y == 0, 0.1, 5.0)
    plain = estimator(search="snip", target_sparsity=0.9).fit(X, y)
    weighted = estimator(search="snip", target_sparsity=0.9).fit(X, y, sample_weight=weight)
    assert weighted.winning_ticket_.masks.keys() == plain.winning_ticket_.masks.keys()
    assert any(not np.array_equal(mask, plain.winning_ticket_.masks[name])
               for name, mask in weighted.winning_ticket_.masks.items())


def test_weights_are_part_of_the_memory_key(cancer, tmp_path, training_calls):
    X, y = cancer
    first = np.where(y == 0, 0.5, 1.0)
    estimator(memory=tmp_path).fit(X, y, sample_weight=first)
    trained = len(training_calls)
    assert trained > 0
    estimator(memory=tmp_path).fit(X, y, sample_weight=first)
    assert len(training_calls) == trained  # all cached
    estimator(memory=tmp_path).fit(X, y, sample_weight=np.where(y == 0, 2.0, 1.0))
    assert len(training_calls) == 2 * trained  # other weights, other rounds


def test_weights_through_a_pipeline_without_routing(cancer):
    X, y = cancer
    weight = np.where(y == 0, 0.0, 1.0)
    model = make_pipeline(StandardScaler(), estimator())
    model.fit(X, y, lotteryticketclassifier__sample_weight=weight)
    assert np.mean(model.predict(X) == 0) < 0.1


def test_weights_route_through_pipeline_and_grid_search(cancer):
    X, y = cancer
    weight = np.where(y == 0, 0.0, 1.0)
    with sklearn.config_context(enable_metadata_routing=True):
        est = estimator().set_fit_request(sample_weight=True).set_score_request(
            sample_weight=True)
        # The pipeline's own score request too: scikit-learn before 1.7 asks for it.
        model = make_pipeline(StandardScaler().set_fit_request(sample_weight=False),
                              est).set_score_request(sample_weight=True)
        grid = GridSearchCV(model, {"lotteryticketclassifier__target_sparsity": [0.3, 0.5]},
                            cv=2).fit(X, y, sample_weight=weight)
    # Trained without class 0 and scored with it weighted out: every fold scores
    # the class-1 rows only, which it gets right.
    assert np.mean(grid.predict(X) == 0) < 0.1
    assert grid.best_score_ > 0.95


def test_a_criterion_without_per_sample_losses_is_named(cancer):
    X, y = cancer

    class Opaque(nn.Module):
        def forward(self, y_pred, y_true):
            return nn.functional.cross_entropy(y_pred, y_true)

    est = estimator(net(criterion=Opaque))
    with pytest.raises(TypeError, match="criterion Opaque has no 'reduction'"):
        est.fit(X, y, sample_weight=np.where(y == 0, 0.5, 1.0))
    assert estimator(net(criterion=Opaque)).fit(X, y).rounds_  # fine without weights
