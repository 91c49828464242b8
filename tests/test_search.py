"""The searches: early-bird, SNIP, a given ticket, search objects as parameters, and a
search of one's own."""

import functools
import inspect
import pathlib
import re
import textwrap
from numbers import Integral
from operator import length_hint

import numpy as np
import pytest
from helpers import breast_cancer, small_net
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval, InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch import NeuralNetClassifier, NeuralNetRegressor
from test_common import _fast, expected_failed_checks

import skticket
from skticket import (
    IMP,
    SNIP,
    EarlyBird,
    GradualPruning,
    LotteryTicketClassifier,
    LotteryTicketRegressor,
    RigL,
    Search,
    SearchRun,
    SparseMomentum,
    Ticket,
    ticket_curve,
    ticket_path,
)
from skticket._hooks import EarlyBirdStop
from skticket._pruning import target_active_count
from skticket._search import SEARCHES

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cancer():
    return breast_cancer()


net = functools.partial(small_net, module__hidden_units=(32,), max_epochs=30, batch_size=64)


def estimator(net=net, **params):
    if callable(net):
        net = net()
    return LotteryTicketClassifier(net, **{"target_sparsity": 0.9, "random_state": 0,
                                           **params})



def active_per_layer(est):
    return {name: int(mask.sum()) for name, mask in est.winning_ticket_.masks.items()}


# --- early-bird --------------------------------------------------------------------------


def test_early_bird_stops_the_dense_training_once_the_masks_settle(cancer, training_calls):
    X, y = cancer
    est = estimator(search=EarlyBird(window=3, tolerance=0.1)).fit(X, y)
    dense, ticket = est.rounds_
    assert (dense["round"], ticket["round"]) == (0, 1)
    assert dense["masks_settled"]
    assert dense["epochs"] == dense["ticket_epoch"] < 30  # stopped before the last epoch
    assert ticket["epochs"] == 30 and ticket["sparsity"] == pytest.approx(0.9, abs=1e-3)
    distances = dense["mask_distances"]
    assert len(distances) == dense["epochs"]
    # The rule: with a full window (3 masks before the newest), the first distance
    # within the tolerance stops the training.
    assert distances[:1] == [None] and all(d is not None for d in distances[1:])
    assert distances[-1] <= 0.1
    assert all(d > 0.1 for d in distances[3:-1])
    assert len(training_calls) == 2
    assert [type(hook) for hook in training_calls[0].hooks] == [EarlyBirdStop]


def test_early_bird_masks_that_never_settle_use_the_whole_dense_training(cancer):
    X, y = cancer
    est = estimator(search=EarlyBird(tolerance=0.0), net=net(max_epochs=8)).fit(X, y)
    dense = est.rounds_[0]
    assert not dense["masks_settled"]
    assert dense["epochs"] == dense["ticket_epoch"] == 8
    assert est.winning_ticket_.round == 1
    assert est.winning_ticket_.n_active == target_active_count(
        est.winning_ticket_.n_prunable, 0.9)


def test_early_bird_draws_the_masks_imp_would_reach(cancer):
    X, y = cancer
    # Per-layer rates and floors as in IMP: the output layer pruned at its own rate.
    fractions = {"output.weight": 0.1}
    imp = estimator(layer_prune_fractions=fractions, net=net(max_epochs=3)).fit(X, y)
    bird = estimator(search="early_bird", layer_prune_fractions=fractions,
                     net=net(max_epochs=3)).fit(X, y)
    assert active_per_layer(bird) == active_per_layer(imp)


# --- SNIP ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["local", "global"])
def test_snip_prunes_to_the_exact_target_without_dense_training(cancer, training_calls, scope):
    X, y = cancer
    est = estimator(search="snip", scope=scope, min_weights_per_layer=10).fit(X, y)
    assert [r["round"] for r in est.rounds_] == [1]
    assert len(training_calls) == 1  # the ticket alone: no dense net
    ticket = est.winning_ticket_
    assert ticket.n_active == target_active_count(ticket.n_prunable, 0.9)
    assert min(active_per_layer(est).values()) >= 10
    # The ticket trains from theta_0: the same start as IMP's dense round.
    theta_0 = estimator(max_rounds=0).fit(X, y).winning_ticket_.weights
    for name, mask in ticket.masks.items():
        np.testing.assert_array_equal(ticket.weights[name], theta_0[name] * mask)


def test_snip_masks_depend_on_the_data(cancer):
    X, y = cancer
    a = estimator(search="snip").fit(X[:300], y[:300])
    b = estimator(search="snip").fit(X[300:], y[300:])
    assert a.winning_ticket_.masks.keys() == b.winning_ticket_.masks.keys()
    assert any(not np.array_equal(a.winning_ticket_.masks[name], b.winning_ticket_.masks[name])
               for name in a.winning_ticket_.masks)
    # More batches, another score, another mask.
    c = estimator(search=SNIP(batches=4)).fit(X[:300], y[:300])
    assert any(not np.array_equal(a.winning_ticket_.masks[name], c.winning_ticket_.masks[name])
               for name in a.winning_ticket_.masks)


def test_permute_after_snip_keeps_each_layers_count(cancer):
    X, y = cancer
    snip = estimator(search="snip").fit(X, y)
    permuted = estimator(search="snip", ticket_init="permute").fit(X, y)
    assert permuted.winning_ticket_.init == "permute"
    assert active_per_layer(permuted) == active_per_layer(snip)
    assert any(not np.array_equal(snip.winning_ticket_.masks[name],
                                  permuted.winning_ticket_.masks[name])
               for name in snip.winning_ticket_.masks)


@pytest.mark.parametrize("search", ["early_bird", "snip"])
def test_one_shot_searches_need_a_target(cancer, search):
    X, y = cancer
    with pytest.raises(ValueError, match=rf"search='{search}'.*set target_sparsity"):
        estimator(search=search, target_sparsity=None).fit(X, y)


def test_prune_goes_on_from_a_one_shot_ticket(cancer):
    X, y = cancer
    est = estimator(search="snip", target_sparsity=0.5).fit(X, y)
    est.prune(X, y)
    assert [r["round"] for r in est.rounds_] == [1, 2]
    # prune() removes prune_fraction (0.5) of the survivors: 1 - 0.5 * 0.5.
    assert est.winning_ticket_.sparsity == pytest.approx(0.75, abs=0.01)


# --- a given ticket -------------------------------------------------------------------------


def test_a_given_ticket_trains_once_on_new_data_with_its_mask(cancer, training_calls):
    X, y = cancer
    found = estimator().fit(X[:300], y[:300]).winning_ticket_
    training_calls.clear()
    moved = estimator(ticket=found, random_state=1).fit(X[300:], y[300:])
    assert len(training_calls) == 1
    assert [r["round"] for r in moved.rounds_] == [found.round]
    ticket = moved.winning_ticket_
    assert ticket == found  # same masks, start weights, round and init
    params = dict(moved.net_.module_.named_parameters())
    for name, mask in found.masks.items():
        trained = params[name].detach().numpy()
        assert np.all(trained[~mask] == 0) and np.count_nonzero(trained) == mask.sum()
    assert moved.score(X[300:], y[300:]) > 0.8


def test_a_given_ticket_with_fresh_weights(cancer, training_calls):
    X, y = cancer
    found = estimator().fit(X[:300], y[:300]).winning_ticket_
    training_calls.clear()
    moved = estimator(ticket=found, ticket_init="reinit").fit(X[300:], y[300:])
    assert len(training_calls) == 1  # the baseline only, never the rewound ticket too
    for name, mask in found.masks.items():
        np.testing.assert_array_equal(moved.winning_ticket_.masks[name], mask)
        assert not np.array_equal(moved.winning_ticket_.weights[name], found.weights[name])


@pytest.fixture(scope="module")
def found(cancer):
    X, y = cancer
    return estimator(net=net(max_epochs=3)).fit(X, y).winning_ticket_


@pytest.mark.parametrize("other, extra, match", [
    ({"module__hidden_units": (16,)}, None,
     r"mask of 'hidden_0.weight' has shape \(32, 30\), the net's parameter \(16, 30\)"),
    ({"module__hidden_units": (32, 8)}, None,
     r"mask of 'output.weight' has shape \(2, 32\), the net's parameter \(2, 8\)"),
    ({"module__hidden_units": (32,), "module__bias": False}, None,
     r"start value of 'hidden_0.bias', which the net's module does not have"),
    ({"module__hidden_units": (32,)}, "extra.weight",
     r"masks 'extra.weight', which is not a parameter of this net's module"),
])
def test_a_ticket_that_does_not_fit_the_net_is_refused(cancer, found, other, extra, match):
    X, y = cancer
    if extra is not None:
        found = Ticket(masks={**found.masks, extra: np.ones((2, 2), dtype=bool)},
                       weights={**found.weights, extra: np.ones((2, 2))}, round=found.round)
    est = LotteryTicketClassifier(net(**other), ticket=found, random_state=0)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)
    assert not hasattr(est, "n_features_in_")


# --- search is a parameter like any other ----------------------------------------------------


def test_search_and_ticket_survive_clone_params_and_grid_search(cancer):
    X, y = cancer
    found = estimator(net=net(max_epochs=3)).fit(X, y).winning_ticket_
    est = estimator(search="snip", ticket=found)
    copy = clone(est)
    assert copy.get_params()["search"] == "snip" and copy.get_params()["ticket"] == found
    assert copy.set_params(search="early_bird", ticket=None).search == "early_bird"
    grid = GridSearchCV(estimator(net=net(max_epochs=3)),
                        {"search": ["imp", "early_bird", "snip"], "target_sparsity": [0.5, 0.9]},
                        cv=2).fit(X, y)
    assert [p["search"] for p in grid.cv_results_["params"]] == ["imp"] * 2 + [
        "early_bird"] * 2 + ["snip"] * 2
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_estimator_.winning_ticket_.sparsity == pytest.approx(
        grid.best_params_["target_sparsity"], abs=1e-3)


@pytest.mark.parametrize("search", ["early_bird", "snip"])
def test_one_shot_rounds_are_cached_and_reused(cancer, tmp_path, training_calls, search):
    X, y = cancer
    first = estimator(search=search, memory=tmp_path).fit(X, y)
    assert len(training_calls) == len(first.rounds_)
    training_calls.clear()
    again = estimator(search=search, memory=tmp_path).fit(X, y)
    assert training_calls == [] and all(r["cached"] for r in again.rounds_)
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))
    if search == "early_bird":
        assert again.rounds_[0]["mask_distances"] == first.rounds_[0]["mask_distances"]


# --- search objects: parameters, validation, clone, grids -------------------------------------


SEARCH_CLASSES = [IMP, EarlyBird, SNIP, GradualPruning, SparseMomentum, RigL]


@pytest.mark.parametrize("cls", SEARCH_CLASSES)
def test_search_classes_are_public_parameter_objects(cls):
    assert cls.__name__ in skticket.__all__ and issubclass(cls, Search)
    # Keyword-only: every parameter of __init__ is.
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    assert set(cls().get_params()) == {p.name for p in params}
    assert set(cls._parameter_constraints) == {p.name for p in params}
    if params:
        with pytest.raises(TypeError):
            cls(params[0].default)


def test_init_only_stores_and_a_fit_validates(cancer):
    X, y = cancer
    bad = EarlyBird(window=0, tolerance="loose")  # no check here, as in scikit-learn
    assert bad.get_params() == {"window": 0, "tolerance": "loose"}
    with pytest.raises(InvalidParameterError, match=r"'tolerance' parameter of EarlyBird"):
        estimator(search=bad, net=net(max_epochs=1)).fit(X, y)
    with pytest.raises(InvalidParameterError, match=r"'window' parameter of EarlyBird"):
        estimator(search=EarlyBird(window=0), net=net(max_epochs=1)).fit(X, y)
    with pytest.raises(InvalidParameterError, match=r"'batches' parameter of SNIP"):
        estimator(search=SNIP(batches=0), net=net(max_epochs=1)).fit(X, y)
    # The estimator's own constraint: a name it knows, or a Search.
    with pytest.raises(InvalidParameterError, match=r"'search' parameter"):
        estimator(search="set", net=net(max_epochs=1)).fit(X, y)
    with pytest.raises(InvalidParameterError, match=r"'search' parameter"):
        estimator(search=object(), net=net(max_epochs=1)).fit(X, y)


def test_get_params_deep_lists_the_searchs_parameters():
    est = estimator(search=EarlyBird(window=3))
    params = est.get_params(deep=True)
    assert params["search__window"] == 3 and params["search__tolerance"] == 0.02
    assert "search__window" not in est.get_params(deep=False)
    # A name lists its class's defaults, as net=None lists the default net's.
    named = estimator(search="snip").get_params(deep=True)
    assert named["search"] == "snip" and named["search__batches"] == 1
    assert not any(k.startswith("search__") for k in estimator(search=IMP()).get_params())


def test_set_params_reaches_into_the_search():
    est = estimator(search=EarlyBird())
    assert est.set_params(search__tolerance=0.1) is est
    assert est.search.tolerance == 0.1 and est.get_params()["search__tolerance"] == 0.1
    # On a name: the class with its defaults becomes the search, then is set.
    named = estimator(search="early_bird").set_params(search__window=2)
    assert isinstance(named.search, EarlyBird)
    assert named.search.get_params() == {"window": 2, "tolerance": 0.02}
    both = estimator().set_params(search="snip", search__batches=3)
    assert isinstance(both.search, SNIP) and both.search.batches == 3
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        estimator(search=SNIP()).set_params(search__nope=1)


def test_clone_copies_the_search_object():
    search = EarlyBird(window=2, tolerance=0.5)
    est = estimator(search=search)
    copy = clone(est)
    assert copy.search is not search
    assert type(copy.search) is EarlyBird and copy.search.get_params() == search.get_params()
    copy.set_params(search__window=7)
    assert search.window == 2


def test_fit_does_not_change_the_search_it_was_given(cancer):
    X, y = cancer
    search = SNIP(batches=2)
    est = estimator(search=search, net=net(max_epochs=2)).fit(X, y)
    assert est.search is search and search.get_params() == {"batches": 2}


def test_a_name_means_the_class_with_its_defaults(cancer):
    X, y = cancer
    for name, obj in [("early_bird", EarlyBird()), ("snip", SNIP()), ("imp", IMP())]:
        by_name = estimator(search=name, net=net(max_epochs=3)).fit(X, y)
        by_object = estimator(search=obj, net=net(max_epochs=3)).fit(X, y)
        for key, mask in by_name.winning_ticket_.masks.items():
            np.testing.assert_array_equal(by_object.winning_ticket_.masks[key], mask)
        np.testing.assert_array_equal(by_object.predict_proba(X), by_name.predict_proba(X))


def test_grid_search_over_search_objects_and_their_parameters(cancer):
    X, y = cancer
    grid = GridSearchCV(
        estimator(net=net(max_epochs=3), target_sparsity=0.8),
        [{"search": [IMP(), SNIP(batches=2)]},
         {"search": [EarlyBird(window=2)], "search__tolerance": [0.0, 1.0]}],
        cv=2).fit(X, y)
    params = grid.cv_results_["params"]
    assert [type(p["search"]).__name__ for p in params] == ["IMP", "SNIP", "EarlyBird",
                                                           "EarlyBird"]
    assert [p.get("search__tolerance") for p in params] == [None, None, 0.0, 1.0]
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    best = grid.best_estimator_
    assert type(best.search) is type(grid.best_params_["search"])
    if isinstance(best.search, EarlyBird):
        assert best.search.tolerance == grid.best_params_["search__tolerance"]
    # The grid's objects are cloned into each fit, never changed.
    assert grid.param_grid[1]["search"][0].tolerance == 0.02


def test_grid_search_over_a_named_searchs_parameters(cancer):
    X, y = cancer
    grid = GridSearchCV(estimator(net=net(max_epochs=4), search="early_bird"),
                        {"search__tolerance": [0.0, 1.0], "search__window": [1]}, cv=2,
                        refit=False).fit(X, y)
    assert [p["search__tolerance"] for p in grid.cv_results_["params"]] == [0.0, 1.0]
    # What each point trains differs: tolerance 1 stops the dense training after 2 epochs.
    loose = estimator(net=net(max_epochs=4), search="early_bird").set_params(
        search__tolerance=1.0, search__window=1).fit(X, y)
    assert loose.rounds_[0]["epochs"] == 2 and loose.rounds_[0]["masks_settled"]


@pytest.mark.parametrize("search, rounds", [
    (IMP(), 5), (EarlyBird(window=2), 2), (SNIP(), 1), (GradualPruning(), 1),
    (SparseMomentum(), 1), (RigL(), 1)])
def test_each_search_plans_its_own_rounds(cancer, search, rounds):
    X, y = cancer
    est = estimator(search=search, net=net(max_epochs=2), prune_fraction=0.5, target_sparsity=0.9)
    path = ticket_path(est, X, y)
    assert isinstance(path.run, SearchRun) and path.run.search is not search
    assert path.planned_rounds == length_hint(path) == rounds
    assert len(list(path)) == rounds
    with_ticket = clone(est).set_params(ticket=clone(est).fit(X, y).winning_ticket_)
    assert length_hint(ticket_path(with_ticket, X, y)) == 1


def test_imp_plans_none_without_a_target_or_a_round_limit(cancer):
    X, y = cancer
    path = ticket_path(estimator(target_sparsity=None, net=net(max_epochs=1)), X, y)
    assert path.planned_rounds is None and length_hint(path, -1) == -1


def test_the_estimator_holds_no_branch_on_a_searchs_name():
    code = (ROOT / "skticket" / "_estimators.py").read_text()
    assert not re.search(r"search\s*==|\"(early_bird|snip)\"\s*:|planned_rounds\(self\.search",
                         code)
    search_code = (ROOT / "skticket" / "_search.py").read_text()
    assert not re.search(r"search\s*==\s*['\"]", search_code)


def test_a_searchs_parameters_are_its_own_not_the_estimators():
    # A search's parameters reach the estimator only as search__*: the estimator's
    # signature repeats none of them (the old early_bird_window / snip_batches).
    estimator_params = set(inspect.signature(LotteryTicketClassifier).parameters)
    for cls in set(SEARCHES.values()):
        own = set(inspect.signature(cls).parameters)
        prefixed = {f"{name}_{param}" for name in SEARCHES for param in own}
        assert not (estimator_params & prefixed), cls.__name__
    with pytest.raises(ValueError, match="early_bird_window"):
        LotteryTicketClassifier().set_params(early_bird_window=3)
    search = LotteryTicketClassifier(search="early_bird").set_params(search__window=3).search
    assert isinstance(search, EarlyBird) and search.window == 3


# --- a search of one's own, from the user guide -----------------------------------------------


def readme_snippet(marker: str) -> str:
    """The user guide's snippet (docs/guide/searches.rst) that holds ``marker``."""
    text = (ROOT / "docs" / "guide" / "searches.rst").read_text()
    blocks = [textwrap.dedent(block) for block in re.findall(
        r"^\.\. code-block:: python\n\n((?:(?: {3}.*)?\n)+)", text, re.M)]
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, f"one snippet of docs/guide/searches.rst holds {marker!r}"
    return found[0]


def test_the_readmes_custom_search_runs_and_is_a_search_like_the_others(monkeypatch):
    from skticket import DefaultClassifierNet

    monkeypatch.setitem(DefaultClassifierNet.__init__.__kwdefaults__, "max_epochs", 3)
    namespace = {"__name__": "readme_custom_search"}
    exec(compile(readme_snippet("class RandomPruning(Search)"), "docs/guide/searches.rst",
                 "exec"), namespace)
    RandomPruning, clf = namespace["RandomPruning"], namespace["clf"]
    assert issubclass(RandomPruning, Search)
    # One round, the random ticket at the target, trained from theta_0.
    assert [r["round"] for r in clf.rounds_] == [1]
    assert clf.winning_ticket_.sparsity == pytest.approx(0.9, abs=0.01)
    # Random: another seed, another mask; gridable, cloneable, validated like the others.
    assert clf.get_params()["search__random_state"] == 0
    X, y = namespace["X"], namespace["y"]
    other = clone(clf).set_params(search__random_state=1).fit(X, y)
    assert any(not np.array_equal(other.winning_ticket_.masks[n], m)
               for n, m in clf.winning_ticket_.masks.items())
    with pytest.raises(InvalidParameterError, match="'random_state' parameter of RandomPruning"):
        clone(clf).set_params(search__random_state=-1).fit(X, y)
    grid = GridSearchCV(clf, {"search__random_state": [0, 1]}, cv=2).fit(X, y)
    assert [p["search__random_state"] for p in grid.cv_results_["params"]] == [0, 1]


class KeepDense(Search):
    """A search of one's own: the dense net, trained twice under different round numbers."""

    _parameter_constraints = {"repeats": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, *, repeats=2):
        self.repeats = repeats

    def planned_rounds(self, run):
        return self.repeats

    def rounds(self, run):
        for _ in range(self.repeats):
            trained = run.train(run.masks)
            run.accept(trained)
            yield trained


def test_ticket_curve_drives_a_search_of_ones_own():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    est = LotteryTicketClassifier(net(max_epochs=2, batch_size=16), search=KeepDense(repeats=2),
                                  random_state=0)
    curve = ticket_curve(est, X[::2], y[::2], X[1::2], y[1::2], n_repeats=1,
                         tickets=("rewind",), as_frame=False)
    assert [(row["round"], row["ticket"], row["sparsity"]) for row in curve] == [
        (0, "dense", 0.0), (1, "rewind", 0.0)]


# --- scikit-learn's estimator checks with search objects ------------------------------------


@parametrize_with_checks([
    LotteryTicketClassifier(_fast(NeuralNetClassifier), prune_fraction=0.5,
                            target_sparsity=0.5, random_state=0,
                            search=EarlyBird(window=2, tolerance=0.1)),
    LotteryTicketRegressor(_fast(NeuralNetRegressor), prune_fraction=0.5, target_sparsity=0.5,
                           random_state=0, search=SNIP(batches=2)),
], expected_failed_checks=expected_failed_checks)
def test_sklearn_checks_with_search_objects(estimator, check):
    check(estimator)
