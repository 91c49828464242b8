"""LotteryTicketClassifierCV and LotteryTicketRegressorCV: fold scores, the choice of the
level, the refit, and what they must work with."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from helpers import breast_cancer, small_net
from sklearn.base import clone
from sklearn.datasets import load_iris, make_multilabel_classification, make_regression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from skorch import NeuralNetRegressor

import skticket._session
from skticket import (
    SNIP,
    LotteryTicketClassifier,
    LotteryTicketClassifierCV,
    LotteryTicketRegressor,
    LotteryTicketRegressorCV,
    Ticket,
)
from skticket._cv import one_standard_error

PARAMS = dict(prune_fraction=0.5, target_sparsity=0.75, random_state=0)


def _cv_classifier(**params):
    return LotteryTicketClassifierCV(small_net(max_epochs=3), **{**PARAMS, "cv": 3, **params})


@pytest.fixture(scope="module")
def data():
    return breast_cancer(rows=150)


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return _cv_classifier().fit(X, y)


def test_fold_scores_equal_the_plain_estimators_ending_at_each_level(data, fitted):
    X, y = data
    splits = list(StratifiedKFold(3).split(X, y))
    assert fitted.cv_results_["sparsity"].tolist() == [0.0, 0.5, 0.75]
    for k, (train, test) in enumerate(splits):
        for level in range(3):
            plain = LotteryTicketClassifier(small_net(max_epochs=3), **PARAMS, max_rounds=level)
            score = plain.fit(X[train], y[train]).score(X[test], y[test])
            assert fitted.cv_results_[f"split{k}_test_score"][level] == score


def test_cv_results_are_shaped_as_grid_search_cv(fitted):
    results = fitted.cv_results_
    scores = np.array([results[f"split{k}_test_score"] for k in range(3)])
    np.testing.assert_array_equal(results["mean_test_score"], scores.mean(axis=0))
    np.testing.assert_array_equal(results["std_test_score"], scores.std(axis=0))
    best = results["mean_test_score"].max()
    assert results["rank_test_score"][results["mean_test_score"] == best].tolist() == [1] * int(
        (results["mean_test_score"] == best).sum())
    for key in ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"):
        assert results[key].shape == (3,) and np.all(results[key] >= 0)
    # A fold's path up to a level includes the levels before it.
    assert np.all(np.diff(results["mean_fit_time"]) > 0)
    assert fitted.n_splits_ == 3


def test_one_standard_error_rule_against_a_hand_computation(fitted):
    results = fitted.cv_results_
    mean, std = results["mean_test_score"], results["std_test_score"]
    best = max(i for i in range(len(mean)) if mean[i] == mean.max())
    threshold = mean[best] - std[best] / math.sqrt(3)
    expected = max(i for i in range(len(mean)) if mean[i] >= threshold)
    assert fitted.best_index_ == expected
    assert fitted.best_score_ == mean[expected]
    assert fitted.sparsity_ == results["sparsity"][expected]


def test_one_standard_error_picks_the_sparsest_level_within_reach_of_the_best():
    mean = np.array([0.90, 0.95, 0.94, 0.93, 0.80])
    std = np.array([0.01, 0.04, 0.01, 0.01, 0.01])
    # best 0.95, one standard error 0.04 / 2: levels down to 0.93 are within it.
    assert one_standard_error(mean, std, 4) == 3
    assert one_standard_error(mean, np.zeros(5), 4) == 1


def test_select_best_picks_the_highest_mean(data, fitted):
    X, y = data
    best = _cv_classifier(select="best").fit(X, y)
    mean = best.cv_results_["mean_test_score"]
    assert mean[best.best_index_] == mean.max()
    # The folds do not depend on select.
    np.testing.assert_array_equal(mean, fitted.cv_results_["mean_test_score"])


def test_the_refit_is_the_plain_estimator_on_all_rows_up_to_the_chosen_level(data, fitted):
    X, y = data
    plain = LotteryTicketClassifier(small_net(max_epochs=3), **PARAMS,
                                    max_rounds=fitted.best_index_).fit(X, y)
    assert fitted.winning_ticket_.sparsity == pytest.approx(fitted.sparsity_)
    assert len(fitted.rounds_) == fitted.best_index_ + 1
    np.testing.assert_array_equal(fitted.predict_proba(X), plain.predict_proba(X))
    np.testing.assert_array_equal(fitted.classes_, [0, 1])
    assert fitted.feature_importances_.shape == (X.shape[1],)
    np.testing.assert_allclose(fitted.compact().predict_proba(X), fitted.predict_proba(X),
                               atol=1e-5)


def test_prune_goes_on_from_the_refit(data):
    X, y = data
    est = _cv_classifier(select="best").fit(X, y)
    sparsity = est.winning_ticket_.sparsity
    est.prune(X, y)
    assert est.winning_ticket_.sparsity > sparsity


def test_n_jobs_does_not_change_the_results(data, fitted):
    X, y = data
    parallel = _cv_classifier(n_jobs=2).fit(X, y)
    for key in ("sparsity", "mean_test_score", "std_test_score", "split0_test_score"):
        np.testing.assert_array_equal(parallel.cv_results_[key], fitted.cv_results_[key])
    np.testing.assert_array_equal(parallel.predict_proba(X), fitted.predict_proba(X))


def test_a_fold_missing_a_class_predicts_and_scores_with_every_class():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    # The first fold trains on classes 0 and 1 only and is tested on all three.
    train0 = np.flatnonzero(y < 2)
    test0 = np.arange(0, 150, 3)
    train1 = np.setdiff1d(np.arange(150), test0)
    splits = [(train0, test0), (train1, test0)]
    est = _cv_classifier(cv=splits).fit(X, y)
    path = LotteryTicketClassifier(small_net(max_epochs=3), **PARAMS)._open_path(
        X[train0], y[train0], None, classes=np.array([0, 1, 2]))
    for level, point in enumerate(path):
        np.testing.assert_array_equal(point.estimator.classes_, [0, 1, 2])
        assert point.estimator.predict_proba(X[test0]).shape == (len(test0), 3)
        expected = np.mean(point.estimator.predict(X[test0]) == y[test0])
        assert est.cv_results_["split0_test_score"][level] == expected
        # The net never saw class 2: its test rows are never right.
        assert expected <= 1 - np.mean(y[test0] == 2) + 1e-12


def test_a_second_identical_fit_with_memory_trains_nothing(data, tmp_path, monkeypatch):
    X, y = data
    first = _cv_classifier(memory=tmp_path).fit(X, y)
    trainings = []
    train_members = skticket._session.train_members
    monkeypatch.setattr(skticket._session, "train_members",
                        lambda specs, **kwargs: trainings.extend(specs)
                        or train_members(specs, **kwargs))
    second = _cv_classifier(memory=tmp_path).fit(X, y)
    assert trainings == []
    assert all(record["cached"] for record in second.rounds_)
    np.testing.assert_array_equal(second.cv_results_["mean_test_score"],
                                  first.cv_results_["mean_test_score"])


def test_sample_weights_are_used_in_training_and_scoring(data):
    X, y = data
    weights = np.random.default_rng(0).uniform(0.2, 2.0, len(y))
    est = _cv_classifier().fit(X, y, sample_weight=weights)
    train, test = next(StratifiedKFold(3).split(X, y))
    plain = LotteryTicketClassifier(small_net(max_epochs=3), **PARAMS, max_rounds=2).fit(
        X[train], y[train], sample_weight=weights[train])
    assert est.cv_results_["split0_test_score"][2] == plain.score(
        X[test], y[test], sample_weight=weights[test])


def test_sample_weights_reach_it_through_a_pipeline(data):
    X, y = data
    weights = np.random.default_rng(0).uniform(0.2, 2.0, len(y))
    pipe = make_pipeline(StandardScaler(), _cv_classifier())
    pipe.fit(X, y, lotteryticketclassifiercv__sample_weight=weights)
    direct = _cv_classifier().fit(StandardScaler().fit_transform(X), y, sample_weight=weights)
    np.testing.assert_array_equal(pipe[-1].cv_results_["mean_test_score"],
                                  direct.cv_results_["mean_test_score"])


def test_a_scoring_name_scores_every_level(data):
    X, y = data
    est = _cv_classifier(scoring="balanced_accuracy").fit(X, y)
    train, test = next(StratifiedKFold(3).split(X, y))
    plain = LotteryTicketClassifier(small_net(max_epochs=3), **PARAMS, max_rounds=1).fit(
        X[train], y[train])
    assert est.cv_results_["split0_test_score"][1] == balanced_accuracy_score(
        y[test], plain.predict(X[test]))


def test_sparse_input_gives_the_dense_results(data, fitted):
    X, y = data
    est = _cv_classifier().fit(sp.csr_matrix(X), y)
    np.testing.assert_array_equal(est.cv_results_["mean_test_score"],
                                  fitted.cv_results_["mean_test_score"])


def test_nested_in_a_grid_search_and_cloned(data):
    X, y = data
    grid = GridSearchCV(_cv_classifier(cv=2), {"prune_fraction": [0.5, 0.75]}, cv=2).fit(X, y)
    assert grid.best_estimator_.cv_results_["sparsity"][-1] == pytest.approx(0.75)
    assert set(grid.cv_results_["param_prune_fraction"]) == {0.5, 0.75}
    est = clone(grid.best_estimator_)
    assert not hasattr(est, "cv_results_") and est.get_params()["cv"] == 2


def test_multilabel_targets():
    X, Y = make_multilabel_classification(n_samples=120, n_features=8, n_classes=3,
                                          random_state=0)
    X = StandardScaler().fit_transform(X)
    est = LotteryTicketClassifierCV(**PARAMS, cv=3).set_params(net__max_epochs=3).fit(X, Y)
    assert est.predict(X).shape == Y.shape
    # KFold for an indicator matrix; subset accuracy as the score.
    train, test = next(KFold(3).split(X))
    plain = LotteryTicketClassifier(**PARAMS, max_rounds=1).set_params(net__max_epochs=3)
    plain.fit(X[train], Y[train])
    assert est.cv_results_["split0_test_score"][1] == plain.score(X[test], Y[test])


def test_regressor_scores_r2_on_each_fold():
    X, y = make_regression(n_samples=120, n_features=5, noise=1.0, random_state=0)
    y = y / 100
    net = small_net(NeuralNetRegressor, max_epochs=3)
    est = LotteryTicketRegressorCV(net, **PARAMS, cv=3).fit(X, y)
    train, test = next(KFold(3).split(X))
    plain = LotteryTicketRegressor(net, **PARAMS, max_rounds=2).fit(X[train], y[train])
    assert est.cv_results_["split0_test_score"][2] == plain.score(X[test], y[test])
    assert est.predict(X).shape == y.shape


def test_a_search_that_is_not_a_path_is_trained_to_each_level_imp_visits(data):
    X, y = data
    est = _cv_classifier(search=SNIP()).fit(X, y)
    assert est.cv_results_["sparsity"].tolist() == [0.0, 0.5, 0.75]
    train, test = next(StratifiedKFold(3).split(X, y))
    snip = LotteryTicketClassifier(small_net(max_epochs=3), **{**PARAMS, "target_sparsity": 0.5},
                                   search=SNIP()).fit(X[train], y[train])
    assert est.cv_results_["split0_test_score"][1] == snip.score(X[test], y[test])
    dense = LotteryTicketClassifier(small_net(max_epochs=3), **PARAMS, max_rounds=0).fit(
        X[train], y[train])
    assert est.cv_results_["split0_test_score"][0] == dense.score(X[test], y[test])
    assert est.winning_ticket_.sparsity == pytest.approx(est.sparsity_)


def test_progress_bars_show_the_folds(data, capsys):
    X, y = data
    _cv_classifier(cv=2, verbose=1).fit(X, y)
    err = capsys.readouterr().err
    assert "fold 1/2" in err and "fold 2/2" in err


@pytest.mark.parametrize("params, name", [
    ({"cv": 1}, "cv"),
    ({"select": "2se"}, "select"),
    ({"scoring": "no_such_score"}, "scoring"),
    ({"score_tolerance": 0.05}, "score_tolerance"),
    ({"min_weights_per_layer": 400, "target_sparsity": 0.9}, "target_sparsity"),
    ({"search": "snip", "target_sparsity": None}, "target_sparsity"),
    ({"ticket": Ticket(masks={"w": np.ones((2, 2), bool)}, weights={"w": np.ones((2, 2))},
                       round=1)}, "ticket"),
    ({"scoring": lambda estimator, X, y: 1 / 0}, "scoring"),
    ({"scoring": lambda estimator, X, y: float("nan")}, "scoring"),
])
def test_bad_input_is_refused_naming_the_parameter_and_leaves_nothing_fitted(data, params, name):
    X, y = data
    est = _cv_classifier(**params)
    with pytest.raises((ValueError, InvalidParameterError), match=name):
        est.fit(X, y)
    assert not hasattr(est, "n_features_in_") and not hasattr(est, "cv_results_")
    assert not hasattr(est, "classes_")


def test_a_failed_fit_keeps_the_previous_fit(data):
    X, y = data
    est = _cv_classifier(cv=2).fit(X, y)
    results = est.cv_results_
    est.set_params(scoring=lambda estimator, X, y: 1 / 0)
    with pytest.raises(ValueError, match="scoring"):
        est.fit(X, y)
    assert est.cv_results_ is results


def test_sample_weights_are_routed_by_metadata_routing(data):
    X, y = data
    weights = np.random.default_rng(0).uniform(0.2, 2.0, len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        est = _cv_classifier(cv=2).set_fit_request(sample_weight=True).set_score_request(
            sample_weight=False)
        grid = GridSearchCV(est, {"prune_fraction": [0.5]}, cv=2).fit(X, y,
                                                                      sample_weight=weights)
    weighted = _cv_classifier(cv=2).fit(X, y, sample_weight=weights)
    unweighted = _cv_classifier(cv=2).fit(X, y)
    np.testing.assert_array_equal(grid.best_estimator_.cv_results_["mean_test_score"],
                                  weighted.cv_results_["mean_test_score"])
    assert not np.array_equal(weighted.cv_results_["split0_test_score"],
                              unweighted.cv_results_["split0_test_score"])


@pytest.mark.parametrize("search", ["early_bird", "gradual"])
def test_other_searches_are_trained_to_imps_levels_and_refit_at_the_chosen_one(data, search):
    X, y = data
    est = _cv_classifier(search=search, cv=2).fit(X, y)
    assert est.cv_results_["sparsity"].tolist() == [0.0, 0.5, 0.75]
    assert est.winning_ticket_.sparsity == pytest.approx(est.sparsity_)
    # The refit is the plain search trained to the chosen level (IMP's dense round for 0).
    level = est.sparsity_
    plain = (LotteryTicketClassifier(small_net(max_epochs=3), **PARAMS, max_rounds=0)
             if level == 0 else
             LotteryTicketClassifier(small_net(max_epochs=3), **{**PARAMS,
                                     "target_sparsity": level}, search=search))
    np.testing.assert_array_equal(est.predict_proba(X), plain.fit(X, y).predict_proba(X))
