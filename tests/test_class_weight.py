"""class_weight on the classifiers: scikit-learn's semantics (compute_sample_weight),
multiplied into sample_weight, in every search, the held-out score and the memory key."""

import functools

import numpy as np
import pytest
import torch
from helpers import breast_cancer, small_net
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.class_weight import compute_sample_weight

from skticket import (
    LotteryTicketClassifier,
    LotteryTicketClassifierCV,
    LotteryTicketRegressor,
    ticket_path,
)


@pytest.fixture(scope="module")
def cancer():
    X, y = breast_cancer(rows=200)
    return X, y


net = functools.partial(small_net, module__hidden_units=(16,), max_epochs=4, batch_size=32)


def estimator(**params):
    return LotteryTicketClassifier(net(), **{"target_sparsity": 0.5, "random_state": 0,
                                             **params})


def same_fit(a, b) -> bool:
    sa, sb = a.net_.module_.state_dict(), b.net_.module_.state_dict()
    return (a.winning_ticket_ == b.winning_ticket_
            and all(torch.equal(sa[k], sb[k]) for k in sa))


@pytest.mark.parametrize("search", ["imp", "snip", "rigl"])
@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0, 1: 0.5}])
def test_class_weight_trains_exactly_as_the_equivalent_sample_weight(cancer, search,
                                                                       class_weight):
    X, y = cancer
    by_class = estimator(search=search, class_weight=class_weight).fit(X, y)
    by_sample = estimator(search=search).fit(
        X, y, sample_weight=compute_sample_weight(class_weight, y))
    assert same_fit(by_class, by_sample)
    assert not same_fit(by_class, estimator(search=search).fit(X, y))


def test_class_weight_multiplies_sample_weight(cancer):
    X, y = cancer
    weight = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    both = estimator(class_weight="balanced").fit(X, y, sample_weight=weight)
    product = estimator().fit(X, y, sample_weight=weight * compute_sample_weight("balanced", y))
    np.testing.assert_allclose(both.predict_proba(X), product.predict_proba(X), rtol=1e-5)


def test_the_held_out_score_and_prune_use_them(cancer):
    X, y = cancer
    est = estimator(class_weight={0: 4.0, 1: 1.0}, score_tolerance=1.0)
    data = ticket_path(est, X, y).run.session.data
    assert data.w_valid is not None
    np.testing.assert_allclose(data.w_valid / data.w_valid[data.y_valid == 1][0],
                               np.where(data.y_valid == 0, 4.0, 1.0))
    # prune() counts "balanced" on the rows it is given.
    balanced = estimator(class_weight="balanced").fit(X, y)
    by_sample = estimator().fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    half = slice(0, 120)
    balanced.prune(X[half], y[half])
    by_sample.prune(X[half], y[half],
                    sample_weight=compute_sample_weight("balanced", y[half]))
    assert same_fit(balanced, by_sample)


def test_class_weight_is_part_of_the_memory_key(cancer, tmp_path, training_calls):
    X, y = cancer
    estimator(memory=tmp_path).fit(X, y)
    trained = len(training_calls)
    estimator(memory=tmp_path, class_weight="balanced").fit(X, y)
    assert len(training_calls) == 2 * trained  # other weights, other rounds
    # The same weights given as sample weights are the same rounds.
    estimator(memory=tmp_path).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    assert len(training_calls) == 2 * trained


def test_the_cv_classifier_takes_class_weight(cancer):
    X, y = cancer
    cv = LotteryTicketClassifierCV(net(), target_sparsity=0.5, cv=2, random_state=0,
                                   class_weight="balanced")
    assert clone(cv).get_params()["class_weight"] == "balanced"
    assert cv._plain().class_weight == "balanced"
    cv.fit(X, y)
    # The refit is the plain estimator's search with the same class weights.
    plain = LotteryTicketClassifier(net(), target_sparsity=cv.sparsity_, random_state=0,
                                    class_weight="balanced").fit(X, y)
    # Its rounds trained beside the folds, as members of their stacks: the plain fit's
    # to float32 rounding.
    assert cv.winning_ticket_ == plain.winning_ticket_
    trained, alone = cv.net_.module_.state_dict(), plain.net_.module_.state_dict()
    assert all(torch.allclose(trained[k], alone[k], rtol=0, atol=1e-5) for k in alone)
    assert not same_fit(cv, LotteryTicketClassifier(
        net(), target_sparsity=cv.sparsity_, random_state=0).fit(X, y))


def test_bad_class_weight_is_refused_by_name(cancer):
    X, y = cancer
    with pytest.raises(InvalidParameterError, match="'class_weight' parameter"):
        estimator(class_weight="auto").fit(X, y)
    with pytest.raises(ValueError, match="class_weight"):
        estimator(class_weight={0: 1.0, 5: 2.0}).fit(X, y)
    assert "class_weight" not in LotteryTicketRegressor().get_params()


def test_prune_weighs_its_rows_by_a_class_weight_dict(cancer):
    # prune() derives its rows' training weights again, and class_weight is in them, as
    # it was in fit's (test_the_held_out_score_and_prune_use_them checks "balanced").
    X, y = cancer
    class_weight = {0: 3.0, 1: 0.5}
    fit_weight = compute_sample_weight(class_weight, y)
    prune_weight = compute_sample_weight(class_weight, y[:150])
    by_class = estimator(class_weight=class_weight, max_rounds=1).fit(X, y)
    by_class.prune(X[:150], y[:150])
    by_sample = estimator(max_rounds=1).fit(X, y, sample_weight=fit_weight)
    by_sample.prune(X[:150], y[:150], sample_weight=prune_weight)
    assert same_fit(by_class, by_sample)
    unweighted_prune = estimator(max_rounds=1).fit(X, y, sample_weight=fit_weight)
    unweighted_prune.prune(X[:150], y[:150])
    assert not same_fit(by_class, unweighted_prune)
