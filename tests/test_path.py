"""ticket_path: a search's rounds on a clone, each point the fit that ends there."""

import numpy as np
import pytest
import scipy.sparse
import torch
from helpers import breast_cancer, small_net
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import get_scorer
from sklearn.utils.validation import check_is_fitted

from skticket import (
    LotteryTicketClassifier,
    LotteryTicketRegressor,
    TicketPathPoint,
    ticket_path,
)
from skticket._search import SEARCHES

# What differs between two runs of one search (its timing), and the hooks' own
# summaries (arrays; what the records say of them is in their other keys).
UNCOMPARED = ("seconds", "cached", "hook_summaries")


@pytest.fixture(scope="module")
def data():
    X, y = breast_cancer(rows=300)
    return X[:200], y[:200], X[200:], y[200:]


def imp(**params):
    """IMP on a tiny net: rounds 0 (dense), 1 (50%) and 2 (75%)."""
    return LotteryTicketClassifier(small_net(), **{
        "prune_fraction": 0.5, "target_sparsity": 0.75, "random_state": 0, **params})


def untimed(records):
    """The records as text, without their timing: equal for two runs of one search."""
    return repr([{k: v for k, v in record.items() if k not in UNCOMPARED}
                 for record in records])


def assert_same_fit(fitted, other, X, y):
    """Two fitted estimators that hold the same search, ticket and trained net."""
    assert untimed(fitted.rounds_) == untimed(other.rounds_)
    for name, mask in fitted.winning_ticket_.masks.items():
        np.testing.assert_array_equal(other.winning_ticket_.masks[name], mask)
    for name, value in fitted.winning_ticket_.weights.items():
        np.testing.assert_array_equal(other.winning_ticket_.weights[name], value)
    assert fitted.winning_ticket_.init == other.winning_ticket_.init
    np.testing.assert_array_equal(fitted.predict_proba(X), other.predict_proba(X))
    assert fitted.score(X, y) == other.score(X, y)


def test_the_estimator_is_left_without_fitted_attributes(data):
    X, y, _, _ = data
    random_state = np.random.RandomState(0)
    est = imp(random_state=random_state)
    before, params = dict(vars(est)), est.get_params(deep=False)
    drawn_before = random_state.get_state()[1].copy()
    points = list(ticket_path(est, X, y))
    assert [point.round for point in points] == [0, 1, 2]
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    assert vars(est) == before and est.get_params(deep=False) == params
    # The clone drew the seeds from its own copy of the RandomState.
    np.testing.assert_array_equal(random_state.get_state()[1], drawn_before)
    # Each point's estimator is a fitted clone, sharing no parameter object with est.
    fitted = points[-1].estimator
    check_is_fitted(fitted)
    assert fitted is not est and fitted.net is not est.net


def test_the_records_are_the_fits_rounds_and_the_last_ticket_is_the_fits(data):
    X, y, _, _ = data
    fitted = imp().fit(X, y)
    points = list(ticket_path(imp(), X, y))
    assert untimed([point.record for point in points]) == untimed(fitted.rounds_)
    assert all(isinstance(point, TicketPathPoint) and point.accepted for point in points)
    last = points[-1].ticket()
    assert last.round == fitted.winning_ticket_.round == 2
    for name, mask in fitted.winning_ticket_.masks.items():
        np.testing.assert_array_equal(last.masks[name], mask)
    for name, value in fitted.winning_ticket_.weights.items():
        np.testing.assert_array_equal(last.weights[name], value)


def test_each_point_scores_as_the_fit_whose_search_ends_there(data):
    X, y, X_test, y_test = data
    est = imp()
    accuracy = get_scorer("accuracy")
    for point in ticket_path(est, X, y):
        ended = clone(est).set_params(max_rounds=point.round).fit(X, y)
        assert point.estimator.score(X_test, y_test) == ended.score(X_test, y_test)
        assert accuracy(point.estimator, X_test, y_test) == accuracy(ended, X_test, y_test)
        assert_same_fit(point.estimator, ended, X_test, y_test)
        assert point.winning_round == point.round


@pytest.mark.parametrize("search", sorted(set(SEARCHES) - {"imp"}))
def test_every_searchs_last_point_is_its_fit(data, search):
    X, y, X_test, y_test = data
    # The regressor's default net: its target scaling is in the points' estimators too.
    est = LotteryTicketRegressor(search=search, target_sparsity=0.8, random_state=0)
    est.set_params(net__max_epochs=3, net__module__hidden_units=(16,))
    points = list(ticket_path(est, X, y.astype(float)))
    fitted = clone(est).fit(X, y.astype(float))
    assert points[-1].round == fitted.winning_ticket_.round
    assert points[-1].estimator.score(X_test, y_test) == fitted.score(X_test, y_test)
    np.testing.assert_array_equal(points[-1].estimator.predict(X_test), fitted.predict(X_test))
    assert untimed(points[-1].estimator.rounds_) == untimed(fitted.rounds_)


def test_a_rejected_round_keeps_the_round_before_as_the_fit_does(data):
    X, y, X_test, y_test = data
    # Nothing may be lost, and 90% of a 16-unit net's weights are pruned at once.
    est = imp(prune_fraction=0.9, target_sparsity=0.99, score_tolerance=0.0,
              validation_fraction=0.3)
    points = list(ticket_path(est, X, y))
    assert [point.accepted for point in points][-1] is False
    rejected = points[-1]
    assert rejected.winning_round == points[-2].round
    fitted = clone(est).fit(X, y)  # its search ends at the rejected round
    assert_same_fit(rejected.estimator, fitted, X_test, y_test)
    assert rejected.estimator.winning_ticket_.round == points[-2].round
    # Its own training is there too, kept as a ticket of its own.
    own = rejected.trained_from("rewind").estimator
    assert own.winning_ticket_.round == rejected.round
    assert own.winning_ticket_.n_active == rejected.record["n_active"]


def test_prune_goes_on_from_a_point_as_from_the_fit(data):
    X, y, X_test, y_test = data
    est = imp()
    point = next(point for point in ticket_path(est, X, y) if point.round == 1)
    fitted = clone(est).set_params(max_rounds=1).fit(X, y)
    assert_same_fit(point.estimator.prune(X, y), fitted.prune(X, y), X_test, y_test)
    assert point.estimator.rounds_[-1]["round"] == 2


@pytest.mark.parametrize("init", ["reinit", "permute"])
def test_a_points_baseline_is_the_fit_with_that_ticket_init(data, init, training_calls):
    X, y, X_test, y_test = data
    est = imp()
    point = next(point for point in ticket_path(est, X, y) if point.round == 1)
    del training_calls[:]
    baseline = point.trained_from(init)
    assert len(training_calls) == 1 and point.trained_from(init) is baseline
    assert baseline.round == 1 and baseline.init == init and baseline.accepted
    ticket = baseline.ticket()
    assert ticket.init == init and ticket.n_active == point.record["n_active"]
    assert baseline.estimator.ticket_init == init and point.estimator.ticket_init == "rewind"
    assert len(training_calls) == 1  # the estimator keeps the baseline trained above
    ended = clone(est).set_params(max_rounds=1, ticket_init=init).fit(X, y)
    assert_same_fit(baseline.estimator, ended, X_test, y_test)
    with pytest.raises(ValueError, match="init must be one of"):
        point.trained_from("random")


def test_with_ticket_init_reinit_the_points_estimator_trains_the_baseline(data, training_calls):
    X, y, X_test, y_test = data
    est = imp(ticket_init="reinit")
    points = list(ticket_path(est, X, y))
    assert len(training_calls) == 3  # the search's rounds only, until an estimator is asked for
    fitted = points[1].estimator
    assert len(training_calls) == 4 and points[1].estimator is fitted
    assert fitted.winning_ticket_.init == "reinit" and points[1].ticket().init == "rewind"
    ended = clone(est).set_params(max_rounds=1).fit(X, y)
    assert_same_fit(fitted, ended, X_test, y_test)


def test_the_data_are_checked_as_fit_checks_them_before_any_training(data, training_calls):
    X, y, _, _ = data
    bad_X = X.copy()
    bad_X[0, 0] = np.nan
    cases = [(bad_X, y, None), (X, y[:-1], None), (X, y, -np.ones(len(y))),
             (X, y, np.ones(3))]
    for X_case, y_case, weight in cases:
        with pytest.raises(ValueError) as by_fit:
            imp().fit(X_case, y_case, sample_weight=weight)
        with pytest.raises(ValueError) as by_path:
            ticket_path(imp(), X_case, y_case, sample_weight=weight)  # not iterated
        assert str(by_path.value) == str(by_fit.value)
    assert training_calls == []
    with pytest.raises(TypeError, match="ticket_path needs a LotteryTicketClassifier"):
        ticket_path(small_net(), X, y)


def test_sparse_X_weights_and_memory(data, tmp_path, training_calls):
    X, y, X_test, y_test = data
    X_sparse = scipy.sparse.csr_matrix(np.where(np.abs(X) > 0.5, X, 0))
    weight = np.random.default_rng(0).uniform(0.2, 2.0, len(y))
    est = imp(memory=tmp_path)
    points = list(ticket_path(est, X_sparse, y, sample_weight=weight))
    fitted = clone(est).fit(X_sparse, y, sample_weight=weight)
    assert all(record["cached"] for record in fitted.rounds_)  # the path stored every round
    assert_same_fit(points[-1].estimator, fitted, X_test, y_test)
    del training_calls[:]
    again = list(ticket_path(est, X_sparse, y, sample_weight=weight))
    assert training_calls == [] and untimed([p.record for p in again]) == untimed(
        [p.record for p in points])


def test_the_callers_random_draws_between_rounds_are_kept(data):
    X, y, _, _ = data

    def draw():
        # The legacy global generators: what the path must leave to its caller.
        return np.random.rand(), torch.rand(1).item()  # noqa: NPY002

    def reseed():
        np.random.seed(1)  # noqa: NPY002
        torch.manual_seed(1)

    reseed()
    drawn = [draw() for _ in ticket_path(imp(), X, y)]
    drawn.append(draw())  # after the path: its trainings drew nothing, undid nothing
    reseed()
    assert drawn == [draw() for _ in drawn]
