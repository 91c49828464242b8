"""Sign tickets (``ticket_init="sign"``), pruning criteria (``prune_criterion``) and the
untrained scores of ``ticket_curve``: each against a hand computation on a tiny net."""

import math
from itertools import pairwise

import numpy as np
import pytest
import torch
from helpers import OwnSoftmaxModule, breast_cancer, small_net
from sklearn.base import clone
from sklearn.metrics import accuracy_score
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from skticket import (
    MLP,
    SNIP,
    EarlyBird,
    GradualPruning,
    LotteryTicketClassifier,
    LotteryTicketClassifierCV,
    Supermask,
    Ticket,
    summarize_ticket_curve,
    ticket_curve,
    ticket_path,
)
from skticket._pruning import (
    PRUNE_CRITERIA,
    MagnitudeRule,
    criterion_scores,
    kaiming_uniform_std,
    magnitude_prune,
    signed_weights,
    uniform_std,
)
from skticket._training import initializer_stds, module_state


@pytest.fixture(scope="module")
def data():
    return breast_cancer(rows=160)


def estimator(**params):
    return LotteryTicketClassifier(small_net(max_epochs=3), **{"random_state": 0, **params})


def flat_true(masks):
    return {name: np.flatnonzero(mask).tolist() for name, mask in masks.items()}


# --- criteria: the scores and the masks, by hand -------------------------------------

FINAL = np.array([0.5, -0.1, 0.4, 0.05, -0.3, 0.2])
INITIAL = np.array([0.1, -0.3, 0.45, 0.0, 0.3, -0.25])


def test_each_criterion_scores_as_zhou_et_al_define_it():
    # large_final |w_f|; magnitude_increase |w_f| - |w_i|; movement |w_f - w_i|.
    assert criterion_scores("large_final", FINAL).tolist() == pytest.approx(
        [0.5, 0.1, 0.4, 0.05, 0.3, 0.2])
    assert criterion_scores("magnitude_increase", FINAL, INITIAL).tolist() == pytest.approx(
        [0.4, -0.2, -0.05, 0.05, 0.0, -0.05])
    assert criterion_scores("movement", FINAL, INITIAL).tolist() == pytest.approx(
        [0.4, 0.2, 0.05, 0.05, 0.6, 0.45])


def test_large_final_same_sign_ranks_the_weights_that_lost_their_sign_first():
    # Kept their sign: 0 (+ to +), 1 (- to -), 2 (+ to +): scored |w_f|. Did not: 3 started
    # at 0 (no sign to keep), 4 went from + to -, 5 from - to +: scored -1 / (1 + |w_f|),
    # below every kept weight and in the order of their |w_f| (0.05 < 0.2 < 0.3).
    scores = criterion_scores("large_final_same_sign", FINAL, INITIAL)
    assert scores.tolist() == pytest.approx(
        [0.5, 0.1, 0.4, -1 / 1.05, -1 / 1.3, -1 / 1.2])
    assert scores[[3, 4, 5]].max() < scores[[0, 1, 2]].min()
    assert np.argsort(scores[[3, 4, 5]]).tolist() == [0, 2, 1]
    # A weight that ends at exactly 0 lost its sign too, whatever it started from; 0 to 0
    # kept none. Both are the lowest a score can be.
    final, initial = np.array([0.0, 0.0, 0.2]), np.array([0.3, 0.0, 0.0])
    assert criterion_scores("large_final_same_sign", final, initial).tolist() == pytest.approx(
        [-1.0, -1.0, -1 / 1.2])
    # float32 weights are compared in float64, where the order of tiny magnitudes survives.
    tiny = np.array([-3e-9, -1e-9, -2e-9], dtype=np.float32)
    assert np.argsort(criterion_scores("large_final_same_sign", tiny,
                                       -tiny)).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="initial weights are needed"):
        criterion_scores("large_final_same_sign", FINAL)


@pytest.mark.parametrize("criterion, kept", [
    # Each prunes half of the 6 weights: the 3 of lowest score go.
    ("large_final", [0, 2, 4]),          # 0.5, 0.4, 0.3 stay
    ("magnitude_increase", [0, 3, 4]),   # 0.4, 0.05, 0.0 stay (a shrinking weight goes)
    ("movement", [0, 4, 5]),             # 0.4, 0.6, 0.45 stay
    ("large_final_same_sign", [0, 1, 2]),  # 0.5, 0.1, 0.4 stay; -0.3 flipped and goes
])
def test_each_criterion_keeps_the_highest_scores_of_a_layer(criterion, kept):
    masks = magnitude_prune({"w": FINAL}, {"w": np.ones(6, dtype=bool)}, fraction=0.5,
                            criterion=criterion, initial={"w": INITIAL})
    assert np.flatnonzero(masks["w"]).tolist() == kept


def test_under_global_scope_a_criterion_ranks_the_pooled_layers():
    final = {"a": np.array([0.5, -0.1, 0.4]), "b": np.array([0.05, -0.3, 0.2])}
    initial = {"a": np.array([0.1, -0.3, 0.45]), "b": np.array([0.0, 0.3, -0.25])}
    ones = {name: np.ones(3, dtype=bool) for name in final}
    # movement: a -> 0.4, 0.2, 0.05; b -> 0.05, 0.6, 0.45. The 3 lowest of the pool:
    # a[2] 0.05 and b[0] 0.05, then a[1] 0.2.
    masks = magnitude_prune(final, ones, fraction=0.5, scope="global", criterion="movement",
                            initial=initial)
    assert flat_true(masks) == {"a": [0], "b": [1, 2]}
    # A floor of 2 keeps a's 2 best (a[0], a[1]); the pool gives up b's lowest instead.
    masks = magnitude_prune(final, ones, fraction=0.5, scope="global", criterion="movement",
                            initial=initial, min_weights=2)
    assert flat_true(masks) == {"a": [0, 1], "b": [1, 2]}
    # A per-layer rate takes b out of the pool: b alone loses ceil(0.34 * 3) = 2 by its
    # own scores (b[1] stays); a alone is the pool and loses ceil(0.5 * 3) = 2.
    masks = magnitude_prune(final, ones, fraction=0.5, scope="global", criterion="movement",
                            initial=initial, layer_fractions={"b": 0.34})
    assert flat_true(masks) == {"a": [0], "b": [1]}


def test_a_criterion_keeps_the_counts_and_exact_target_of_large_final():
    rng = np.random.default_rng(0)
    final = {"a": rng.normal(size=(7, 5)), "b": rng.normal(size=(3, 4))}
    initial = {name: rng.normal(size=value.shape) for name, value in final.items()}
    ones = {name: np.ones(value.shape, dtype=bool) for name, value in final.items()}
    rules = {c: MagnitudeRule(fraction=0.3, criterion=c) for c in PRUNE_CRITERIA}
    counts = {c: {name: int(m.sum()) for name, m in rule.prune_to(final, ones, 11,
                                                                   initial).items()}
              for c, rule in rules.items()}
    assert len(counts) == 4
    for criterion in PRUNE_CRITERIA:
        assert counts[criterion] == counts["large_final"]
    assert sum(counts["large_final_same_sign"].values()) == 11


def test_same_sign_prunes_the_exact_count_of_a_layer_whose_every_weight_flipped():
    # Every weight flipped: they are ranked by |w_f| alone; 2 (0.1) goes first, then of the
    # three at 0.2 the lowest flat index.
    final, initial = np.array([-0.2, -0.2, 0.1, -0.2]), np.array([0.1, 0.3, -0.2, 0.4])
    masks = magnitude_prune({"w": final}, {"w": np.ones(4, dtype=bool)}, fraction=0.5,
                            criterion="large_final_same_sign", initial={"w": initial})
    assert np.flatnonzero(masks["w"]).tolist() == [1, 3]
    # Now 0 kept its sign: it outranks 1 and 3 of the same |w_f|, where the tie-break alone
    # (large_final) would keep 3.
    initial[0] = -0.1
    masks = magnitude_prune({"w": final}, {"w": np.ones(4, dtype=bool)}, fraction=0.75,
                            criterion="large_final_same_sign", initial={"w": initial})
    assert np.flatnonzero(masks["w"]).tolist() == [0]
    masks = magnitude_prune({"w": final}, {"w": np.ones(4, dtype=bool)}, fraction=0.75)
    assert np.flatnonzero(masks["w"]).tolist() == [3]


def test_same_sign_under_global_scope_prunes_the_flipped_weights_of_every_layer_first():
    # a: every weight flipped, large |w_f|; b: every weight kept its sign, small |w_f|.
    final = {"a": np.array([0.9, -0.8, 0.7]), "b": np.array([0.01, -0.02, 0.03])}
    initial = {"a": np.array([-0.1, 0.1, -0.1]), "b": np.array([0.1, -0.1, 0.1])}
    ones = {name: np.ones(3, dtype=bool) for name in final}
    # ceil(0.5 * 6) = 3 go. The flipped weights of a go first, the smallest first, until
    # the floor of 1 keeps a's largest (0.9); the third is b's smallest (0.01).
    masks = magnitude_prune(final, ones, fraction=0.5, scope="global",
                            criterion="large_final_same_sign", initial=initial)
    assert flat_true(masks) == {"a": [0], "b": [1, 2]}
    # large_final takes b's two smallest (its floor keeps 0.03), then a's smallest.
    assert flat_true(magnitude_prune(final, ones, fraction=0.5, scope="global")) == {
        "a": [0, 1], "b": [2]}
    # With no floor in the way all three of a go.
    masks = magnitude_prune({**final, "c": np.ones(4)}, {**ones, "c": np.ones(4, dtype=bool)},
                            fraction=0.3, scope="global", criterion="large_final_same_sign",
                            initial={**initial, "c": np.ones(4)}, min_weights=0)
    assert flat_true(masks) == {"a": [], "b": [0, 1, 2], "c": [0, 1, 2, 3]}


def test_same_sign_never_counts_an_already_pruned_weight_again():
    # Training leaves pruned weights at 0, which has no sign: were they scored, they would
    # rank lowest and use up the round's removals. The 4 survivors lose ceil(0.5 * 4) = 2.
    final = np.array([0.0, 0.3, -0.6, 0.0, 0.5, -0.4])
    initial = np.array([0.2, 0.1, 0.1, -0.3, 0.2, -0.1])
    mask = np.array([False, True, True, False, True, True])
    new = magnitude_prune({"w": final}, {"w": mask}, fraction=0.5,
                          criterion="large_final_same_sign", initial={"w": initial})
    # 2 flipped (+ to -) goes first, then the smallest of those that kept their sign, 1.
    assert np.flatnonzero(new["w"]).tolist() == [4, 5]


def test_a_criterion_that_compares_with_the_start_needs_initial_weights():
    with pytest.raises(ValueError, match="initial"):
        magnitude_prune({"w": FINAL}, {"w": np.ones(6, dtype=bool)}, fraction=0.5,
                        criterion="movement")
    with pytest.raises(ValueError, match="criterion must be one of"):
        magnitude_prune({"w": FINAL}, {"w": np.ones(6, dtype=bool)}, fraction=0.5,
                        criterion="smallest")


# --- criteria in the searches -----------------------------------------------------------


def dense_and_first_round(est, X, y):
    """The dense round's start (theta_0) and trained pruned weights, and round 1's masks."""
    dense, first = list(ticket_path(est, X, y))[:2]
    names = list(first.ticket().masks)
    trained = module_state(dense.estimator.net_.module_)
    return ({name: dense.ticket().weights[name] for name in names},
            {name: trained[name] for name in names}, first.ticket().masks)


@pytest.mark.parametrize("criterion", ["magnitude_increase", "movement",
                                       "large_final_same_sign"])
@pytest.mark.parametrize("params", [{}, {"scope": "global", "min_weights_per_layer": 4},
                                    {"layer_prune_fractions": {"output.weight": 0.25}}])
def test_imp_prunes_by_the_criterion_against_theta_0(data, criterion, params):
    X, y = data
    est = estimator(prune_fraction=0.6, max_rounds=1, target_sparsity=None,
                    prune_criterion=criterion, **params)
    theta_0, trained, masks = dense_and_first_round(est, X, y)
    ones = {name: np.ones(value.shape, dtype=bool) for name, value in theta_0.items()}
    expected = magnitude_prune(trained, ones, fraction=0.6, criterion=criterion,
                               initial=theta_0, scope=params.get("scope", "local"),
                               min_weights=params.get("min_weights_per_layer", 1),
                               layer_fractions=params.get("layer_prune_fractions"))
    assert flat_true(masks) == flat_true(expected)
    # The criterion decided it: the largest final weights are another mask.
    _, _, large_final = dense_and_first_round(est.set_params(prune_criterion="large_final"),
                                              X, y)
    assert flat_true(masks) != flat_true(large_final)


def kept_their_sign(trained, start):
    """Per layer: where the trained value has the start value's sign (a 0 has none)."""
    return {name: (np.sign(trained[name]) == np.sign(start[name])) & (trained[name] != 0)
            for name in start}


@pytest.mark.parametrize("criterion", ["movement", "large_final_same_sign"])
def test_with_late_resetting_the_criterion_compares_with_the_rewind_point(data, criterion):
    X, y = data
    est = estimator(prune_fraction=0.5, max_rounds=1, target_sparsity=None, rewind_step=3,
                    prune_criterion=criterion).fit(X, y)
    rewind_point = est._search_progress_.rewind_point
    dense = next(iter(ticket_path(est, X, y)))
    trained = module_state(dense.estimator.net_.module_)
    names = list(est.winning_ticket_.masks)
    ones = {name: np.ones(trained[name].shape, dtype=bool) for name in names}
    expected = magnitude_prune({n: trained[n] for n in names}, ones, fraction=0.5,
                               criterion=criterion, initial=rewind_point)
    assert flat_true(est.winning_ticket_.masks) == flat_true(expected)
    theta_0 = dense.ticket().weights
    from_theta_0 = magnitude_prune({n: trained[n] for n in names}, ones, fraction=0.5,
                                   criterion=criterion, initial=theta_0)
    assert flat_true(expected) != flat_true(from_theta_0)
    if criterion == "large_final_same_sign":
        # Each layer has more weights that kept the rewind point's sign than it keeps: every
        # survivor is one of them, though some changed sign since theta_0.
        same = kept_their_sign(trained, {n: rewind_point[n] for n in names})
        since_theta_0 = kept_their_sign(trained, {n: theta_0[n] for n in names})
        for name, mask in est.winning_ticket_.masks.items():
            assert same[name].sum() >= mask.sum()
            assert np.all(same[name][mask])
        assert any(np.any(~since_theta_0[name][mask])
                   for name, mask in est.winning_ticket_.masks.items())


def test_imp_with_same_sign_keeps_only_weights_that_kept_their_sign_each_round(data):
    X, y = data
    est = estimator(prune_fraction=0.6, max_rounds=2, target_sparsity=None,
                    prune_criterion="large_final_same_sign")
    kept_flipped = {}
    for criterion in ("large_final_same_sign", "large_final"):
        points = list(ticket_path(est.set_params(prune_criterion=criterion), X, y))
        assert [point.round for point in points] == [0, 1, 2]
        theta_0 = points[0].ticket().weights
        kept_flipped[criterion] = 0
        # Each round trains from theta_0 (under its masks); the next round's masks keep,
        # of its trained weights, only some that ended with the sign they started with.
        for trained_round, pruned_round in pairwise(points):
            trained = module_state(trained_round.estimator.net_.module_)
            before, after = trained_round.ticket().masks, pruned_round.ticket().masks
            same = kept_their_sign(trained, {name: theta_0[name] for name in after})
            for name, mask in after.items():
                assert not np.any(mask & ~before[name])  # pruned weights stay pruned
                if criterion == "large_final_same_sign":
                    assert (same[name] & before[name]).sum() >= mask.sum()
                    assert np.all(same[name][mask])
                kept_flipped[criterion] += int(np.count_nonzero(mask & ~same[name]))
    # The criterion decided it: IMP's own rule keeps some weight whose sign flipped.
    assert kept_flipped["large_final_same_sign"] == 0 and kept_flipped["large_final"] > 0


def test_prune_goes_on_by_the_criterion_set_now(data):
    X, y = data
    est = estimator(prune_fraction=0.5, max_rounds=0, target_sparsity=None).fit(X, y)
    theta_0 = {name: est.winning_ticket_.weights[name] for name in est.winning_ticket_.masks}
    trained = module_state(est.net_.module_)
    trained = {name: trained[name] for name in theta_0}
    ones = {name: np.ones(value.shape, dtype=bool) for name, value in theta_0.items()}
    est.set_params(prune_criterion="magnitude_increase").prune(X, y)
    expected = magnitude_prune(trained, ones, fraction=0.5, criterion="magnitude_increase",
                               initial=theta_0)
    assert flat_true(est.winning_ticket_.masks) == flat_true(expected)
    assert flat_true(expected) != flat_true(magnitude_prune(trained, ones, fraction=0.5))


def test_early_bird_draws_its_mask_by_the_criterion(data):
    X, y = data
    # Masks that never count as settled: the ticket is the mask of the last epoch, drawn
    # from the dense net's final weights.
    est = estimator(search=EarlyBird(window=50, tolerance=0.0), target_sparsity=0.7,
                    prune_fraction=0.5, prune_criterion="movement")
    theta_0, trained, masks = dense_and_first_round(est, X, y)
    ones = {name: np.ones(value.shape, dtype=bool) for name, value in theta_0.items()}
    target = round(0.3 * sum(m.size for m in ones.values()))
    expected = MagnitudeRule(fraction=0.5, criterion="movement").prune_to(trained, ones, target,
                                                                          theta_0)
    assert flat_true(masks) == flat_true(expected)
    large_final = MagnitudeRule(fraction=0.5).prune_to(trained, ones, target)
    assert flat_true(expected) != flat_true(large_final)


def test_early_bird_draws_no_mask_before_the_rewind_point(data):
    X, y = data
    # 160 rows in batches of 32: 5 steps an epoch; the rewind point comes in epoch 2.
    est = estimator(search=EarlyBird(window=50, tolerance=0.0), target_sparsity=0.7,
                    rewind_step=7, prune_criterion="movement").fit(X, y)
    distances = est.rounds_[0]["mask_distances"]
    assert distances[0] is None and distances[1] is None and distances[2] is not None


def test_the_criterion_is_part_of_the_memory_key_where_it_changes_results(
        data, tmp_path, training_calls):
    X, y = data
    params = dict(prune_fraction=0.5, max_rounds=1, target_sparsity=None, memory=tmp_path)
    large_final = estimator(**params).fit(X, y)
    training_calls.clear()
    movement = estimator(prune_criterion="movement", **params).fit(X, y)
    # The dense round is the same training, read from memory; round 1 has other masks.
    assert len(training_calls) == 1
    assert flat_true(movement.winning_ticket_.masks) != flat_true(
        large_final.winning_ticket_.masks)
    training_calls.clear()
    estimator(prune_criterion="movement", **params).fit(X, y)
    assert training_calls == []
    # Early-bird's dense training draws masks by the criterion: another training. (Its
    # ticket, one halving of the full dense training by movement, is IMP's round 1 above,
    # which memory holds.)
    bird = dict(search=EarlyBird(window=2), target_sparsity=0.5, memory=tmp_path)
    estimator(**bird).fit(X, y)
    training_calls.clear()
    estimator(prune_criterion="movement", **bird).fit(X, y)
    assert [spec.hooks[0].magnitude.criterion for spec in training_calls] == ["movement"]


def test_the_cv_estimator_prunes_by_its_criterion(data):
    X, y = data
    params = dict(prune_fraction=0.5, target_sparsity=0.5, prune_criterion="movement",
                  random_state=0)
    cv = LotteryTicketClassifierCV(small_net(max_epochs=3), cv=2, select="best",
                                   **params).fit(X, y)
    plain = LotteryTicketClassifier(small_net(max_epochs=3), max_rounds=cv.best_index_,
                                    **params).fit(X, y)
    assert cv.get_params()["prune_criterion"] == "movement"
    assert flat_true(cv.winning_ticket_.masks) == flat_true(plain.winning_ticket_.masks)
    large_final = clone(plain).set_params(prune_criterion="large_final").fit(X, y)
    assert flat_true(cv.winning_ticket_.masks) != flat_true(large_final.winning_ticket_.masks)


@pytest.mark.parametrize("criterion", ["movement", "large_final_same_sign"])
@pytest.mark.parametrize("search", [SNIP(), GradualPruning(), Supermask()])
def test_a_search_with_scores_of_its_own_refuses_another_criterion(data, search, criterion,
                                                                    training_calls):
    X, y = data
    with pytest.raises(ValueError, match=f"prune_criterion='{criterion}' ranks the weights "
                                         f"of a trained ticket"):
        estimator(search=search, prune_criterion=criterion).fit(X, y)
    assert training_calls == []  # refused before any training


@pytest.mark.parametrize("params, name", [({"prune_criterion": "smallest"}, "prune_criterion"),
                                          ({"ticket_init": "signs"}, "ticket_init")])
@pytest.mark.parametrize("est_class", [LotteryTicketClassifier, LotteryTicketClassifierCV])
def test_an_unknown_criterion_or_init_is_refused_before_training(data, training_calls,
                                                                  params, name, est_class):
    X, y = data
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        est_class(small_net(), **params).fit(X, y)
    assert training_calls == []


# --- sign tickets --------------------------------------------------------------------


def test_the_sign_start_keeps_each_survivors_sign_at_the_layers_constant():
    start = {"w": np.array([[0.5, -0.2], [0.0, 0.3]], dtype=np.float32),
             "b": np.array([0.1, -0.1], dtype=np.float32)}
    masks = {"w": np.array([[True, True], [True, False]])}
    signed = signed_weights(start, masks, {"w": 0.25})
    # A survivor at exactly 0 has no sign to keep: it stays 0. Biases start as given.
    assert signed["w"].tolist() == [[0.25, -0.25], [0.0, 0.0]]
    assert signed["b"].tolist() == start["b"].tolist()
    assert signed["w"].dtype == np.float32 and signed["b"] is not start["b"]


def test_the_standard_deviation_of_torchs_default_initializer():
    assert uniform_std(3.0) == pytest.approx(3.0 / math.sqrt(3.0))
    # nn.Linear(64, 100): U(-1/8, 1/8), whose standard deviation is 1/8/sqrt(3).
    assert kaiming_uniform_std((100, 64)) == pytest.approx(1 / 8 / math.sqrt(3))
    # A convolution's fan-in is its input channels times its kernel: 4 * 3 * 3.
    assert kaiming_uniform_std((8, 4, 3, 3)) == pytest.approx(1 / math.sqrt(3 * 36))
    torch.manual_seed(0)
    drawn = nn.Linear(300, 400).weight.detach().numpy()
    assert drawn.std() == pytest.approx(kaiming_uniform_std(drawn.shape), rel=0.01)
    conv = nn.Conv2d(16, 32, 3).weight.detach().numpy()
    assert conv.std() == pytest.approx(kaiming_uniform_std(conv.shape), rel=0.02)


def test_the_initializer_of_mlp_layers_and_of_a_module_of_ones_own():
    module = MLP(n_features=5, n_outputs=3, hidden_units=(7,))
    state = module_state(module)
    names = ["hidden_0.weight", "output.weight", "output.bias"]
    by_scheme = initializer_stds(module, names, state, default_init=True)
    assert by_scheme["hidden_0.weight"] == pytest.approx(1 / math.sqrt(3 * 5))
    assert by_scheme["output.weight"] == pytest.approx(1 / math.sqrt(3 * 7))
    # A bias, and every parameter of a module of one's own: the spread of its values.
    assert by_scheme["output.bias"] == pytest.approx(np.std(state["output.bias"]))
    own = initializer_stds(module, names, state, default_init=False)
    assert own == pytest.approx({name: np.std(state[name], dtype=np.float64)
                                 for name in names})


def check_sign_ticket(sign, rewind, stds):
    """``sign``'s start is ``rewind``'s, each survivor at its sign times its layer's std."""
    assert sign.init == "sign" and flat_true(sign.masks) == flat_true(rewind.masks)
    for name, value in rewind.weights.items():
        if name in sign.masks:
            expected = np.where(sign.masks[name], np.sign(value) * stds[name], 0)
            np.testing.assert_allclose(sign.weights[name], expected, rtol=1e-6)
        else:
            np.testing.assert_array_equal(sign.weights[name], value)


def test_a_sign_ticket_of_mlp_starts_at_its_signs_times_torchs_initializer_std(data):
    X, y = data
    params = dict(prune_fraction=0.5, target_sparsity=0.75)
    rewind = estimator(**params).fit(X, y)
    sign = estimator(ticket_init="sign", **params).fit(X, y)
    stds = {"hidden_0.weight": 1 / math.sqrt(3 * 30), "output.weight": 1 / math.sqrt(3 * 16)}
    check_sign_ticket(sign.winning_ticket_, rewind.winning_ticket_, stds)
    # It trained from there.
    trained = module_state(sign.net_.module_)
    assert not np.allclose(trained["hidden_0.weight"],
                           sign.winning_ticket_.weights["hidden_0.weight"])


def test_with_late_resetting_a_sign_ticket_keeps_the_rewind_points_signs(data):
    X, y = data
    # 14 optimizer steps flip the sign of some surviving weights of the first layer.
    rewind = LotteryTicketClassifier(small_net(max_epochs=6), prune_fraction=0.5,
                                     target_sparsity=0.5, rewind_step=14, random_state=0)
    theta_0 = next(iter(ticket_path(rewind, X, y))).ticket().weights
    sign = clone(rewind).set_params(ticket_init="sign").fit(X, y).winning_ticket_
    rewound = rewind.fit(X, y).winning_ticket_
    stds = {"hidden_0.weight": 1 / math.sqrt(3 * 30), "output.weight": 1 / math.sqrt(3 * 16)}
    # The ticket rewinds to the snapshot, not to theta_0: the snapshot's signs are kept.
    check_sign_ticket(sign, rewound, stds)
    survivors = sign.masks["hidden_0.weight"]
    assert np.any(np.sign(sign.weights["hidden_0.weight"][survivors])
                  != np.sign(theta_0["hidden_0.weight"][survivors]))


def test_a_sign_ticket_of_a_module_of_ones_own_takes_the_spread_of_theta_0(data):
    X, y = data
    net = small_net(module=OwnSoftmaxModule, module__n_features=30, max_epochs=2)
    params = dict(prune_fraction=0.5, target_sparsity=0.5, random_state=0)
    rewind = LotteryTicketClassifier(net, **params)
    theta_0 = next(iter(ticket_path(rewind, X, y))).ticket().weights
    sign = clone(rewind).set_params(ticket_init="sign").fit(X, y)
    stds = {name: np.std(theta_0[name], dtype=np.float64) for name in sign.winning_ticket_.masks}
    check_sign_ticket(sign.winning_ticket_, rewind.fit(X, y).winning_ticket_, stds)


def test_prune_keeps_a_sign_ticket(data):
    X, y = data
    est = estimator(prune_fraction=0.5, max_rounds=1, target_sparsity=None,
                    ticket_init="sign").fit(X, y)
    est.prune(X, y)
    rewind = estimator(prune_fraction=0.5, max_rounds=2, target_sparsity=None).fit(X, y)
    stds = {"hidden_0.weight": 1 / math.sqrt(3 * 30), "output.weight": 1 / math.sqrt(3 * 16)}
    assert [r["round"] for r in est.rounds_] == [0, 1, 2]
    check_sign_ticket(est.winning_ticket_, rewind.winning_ticket_, stds)


def test_a_sign_ticket_round_trips_through_a_file_and_trains_again(data, tmp_path):
    X, y = data
    sign = estimator(prune_fraction=0.5, target_sparsity=0.75, ticket_init="sign").fit(X, y)
    path = tmp_path / "sign.safetensors"
    sign.winning_ticket_.save(path)
    loaded = Ticket.load(path)
    assert loaded == sign.winning_ticket_ and loaded.init == "sign"
    # Its weights are the sign start already: trained as a sign ticket it starts there,
    # and trains as it did.
    again = estimator(ticket=loaded, ticket_init="sign").fit(X, y)
    assert again.winning_ticket_ == loaded
    np.testing.assert_array_equal(again.predict_proba(X), sign.predict_proba(X))


def test_a_given_tickets_zero_start_survivor_stays_zero_as_a_sign_ticket(data):
    X, y = data
    ticket = estimator(prune_fraction=0.5, target_sparsity=0.5).fit(X, y).winning_ticket_
    weights = {name: value.copy() for name, value in ticket.weights.items()}
    survivor = tuple(np.argwhere(ticket.masks["hidden_0.weight"])[0])
    weights["hidden_0.weight"][survivor] = 0.0
    zeroed = Ticket(masks=ticket.masks, weights=weights, round=ticket.round)
    sign = estimator(ticket=zeroed, ticket_init="sign").fit(X, y).winning_ticket_
    assert sign.weights["hidden_0.weight"][survivor] == 0.0
    assert np.count_nonzero(sign.weights["hidden_0.weight"]) == (
        np.count_nonzero(ticket.masks["hidden_0.weight"]) - 1)


def test_a_sign_ticket_needs_the_given_tickets_whole_start(data):
    X, y = data
    ticket = estimator(prune_fraction=0.5, target_sparsity=0.5).fit(X, y).winning_ticket_
    partial = Ticket(masks=ticket.masks,
                     weights={name: ticket.weights[name] for name in ticket.masks},
                     round=ticket.round)
    with pytest.raises(ValueError, match="ticket_init='sign' needs the ticket's whole start"):
        estimator(ticket=partial, ticket_init="sign").fit(X, y)


# --- ticket_curve: the sign kind and the untrained scores ------------------------------


def untrained_accuracy(ticket, X, y):
    """A ticket scored before training, by hand: its start weights in a fresh MLP."""
    module = MLP(n_features=X.shape[1], n_outputs=2, hidden_units=(16,),
                 output_activation="softmax")
    module.load_state_dict({name: torch.as_tensor(value)
                            for name, value in ticket.weights.items()})
    with torch.no_grad():
        return accuracy_score(y, module(torch.as_tensor(X)).argmax(1).numpy())


def test_ticket_curve_scores_sign_tickets_and_each_ticket_before_training(data):
    X, y = data
    est = estimator(prune_fraction=0.5, target_sparsity=0.75)
    curve, tickets = ticket_curve(est, X[::2], y[::2], X[1::2], y[1::2],
                                  tickets=("rewind", "sign"), n_repeats=1, as_frame=False,
                                  return_tickets=True, score_untrained=True)
    assert [(row["round"], row["ticket"]) for row in curve] == [
        (0, "dense"), (1, "rewind"), (1, "sign"), (2, "rewind"), (2, "sign")]
    for row, ticket in zip(curve, tickets, strict=True):
        assert row["untrained_score"] == pytest.approx(
            untrained_accuracy(ticket, X[1::2], y[1::2]))
    stds = {"hidden_0.weight": 1 / math.sqrt(3 * 30), "output.weight": 1 / math.sqrt(3 * 16)}
    check_sign_ticket(tickets[2], tickets[1], stds)
    # The trained score is the fit's: the ticket kept with ticket_init="sign".
    fitted = clone(est).set_params(ticket_init="sign", max_rounds=1,
                                   random_state=curve[0]["random_state"]).fit(X[::2], y[::2])
    assert curve[2]["score"] == fitted.score(X[1::2], y[1::2])
    summary = summarize_ticket_curve(curve, as_frame=False)
    assert summary[2]["untrained_mean"] == curve[2]["untrained_score"]


def test_ticket_curve_leaves_signs_and_untrained_scores_out_unless_asked(data):
    X, y = data
    curve = ticket_curve(estimator(prune_fraction=0.5, target_sparsity=0.5), X[::2], y[::2],
                         X[1::2], y[1::2], n_repeats=1, as_frame=False)
    assert [row["ticket"] for row in curve] == ["dense", "rewind", "reinit", "permute"]
    assert all("untrained_score" not in row for row in curve)
    assert all("untrained_mean" not in row for row in summarize_ticket_curve(curve,
                                                                             as_frame=False))
