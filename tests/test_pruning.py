"""The pruning mathematics alone: counts, ranks, floors, scopes, permutation, rewinding."""

import math

import numpy as np
import pytest

from skticket._pruning import (
    allocate_removals,
    count_to_remove,
    magnitude_prune,
    n_active,
    permute_masks,
    rewound_weights,
    sparsity,
    target_active_count,
)


def _dense(weights):
    return {name: np.ones(w.shape, dtype=bool) for name, w in weights.items()}


def _random_weights(seed=0, shapes=(("a", (20, 10)), ("b", (5, 20)))):
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape) for name, shape in shapes}


def test_count_uses_ceil_and_respects_floor():
    assert count_to_remove(100, 0.2, floor=1) == 20
    assert count_to_remove(7, 0.2, floor=1) == 2  # ceil(1.4)
    # round(0.25 * 2) = 0 would stall forever; ceil keeps pruning to the floor.
    assert count_to_remove(2, 0.25, floor=1) == 1
    assert count_to_remove(3, 0.9, floor=2) == 1
    assert count_to_remove(1, 0.5, floor=1) == 0


def test_a_round_removes_what_count_to_remove_says_layer_by_layer():
    # magnitude_prune counts with count_to_remove: a layer of 2 at rate 0.25 still
    # loses one weight (round would stall), and no layer goes below its floor.
    weights = {"two": np.array([0.2, 0.1]), "three": np.array([0.3, 0.1, 0.2]),
               "seven": np.arange(1.0, 8.0)}
    masks = _dense(weights)
    for _ in range(4):
        new = magnitude_prune(weights, masks, fraction=0.25, min_weights=2)
        for name in weights:
            before = int(masks[name].sum())
            assert before - int(new[name].sum()) == count_to_remove(before, 0.25, floor=2)
        masks = new
    assert [int(m.sum()) for m in masks.values()] == [2, 2, 2]


def test_a_pool_counts_only_the_capacity_of_layers_above_their_floor():
    # "empty" has no survivor left, below its floor of 1: it cannot make room for the
    # others. A pool floor of 1 + 1 = 2 would keep 2 of "full"; the floors keep 1.
    weights = {"empty": np.array([1.0, 2.0]), "full": np.array([0.4, 0.1, 0.3, 0.2])}
    masks = {"empty": np.zeros(2, dtype=bool), "full": np.ones(4, dtype=bool)}
    new = magnitude_prune(weights, masks, fraction=1.0, scope="global", min_weights=1)
    assert new["empty"].tolist() == [False, False]
    assert new["full"].tolist() == [True, False, False, False]


def test_local_round_removes_ceil_of_each_layers_remaining_lowest_first():
    weights = _random_weights()
    masks = _dense(weights)
    for _ in range(6):
        new = magnitude_prune(weights, masks, fraction=0.3)
        for name in weights:
            before, after = masks[name], new[name]
            assert not np.any(after & ~before), "a pruned weight came back"
            removed = before & ~after
            assert removed.sum() == math.ceil(0.3 * before.sum())
            # Every removed weight is no larger than every surviving one.
            assert np.abs(weights[name][removed]).max() <= np.abs(weights[name][after]).min()
        masks = new


def test_remaining_fraction_follows_one_minus_p_to_the_k():
    weights = {"w": np.random.default_rng(1).normal(size=(100, 100))}
    masks = _dense(weights)
    for _ in range(10):
        masks = magnitude_prune(weights, masks, fraction=0.2)
    # 0.8^10 = 10.7%; ceil rounding removes at most one extra weight per round.
    assert abs(n_active(masks) / 10_000 - 0.8**10) < 10 / 10_000


def test_ties_break_by_lower_flat_index_whatever_the_threshold():
    weights = {"w": np.array([[0.5, 0.5, 0.5], [0.5, 0.1, 0.5]])}
    new = magnitude_prune(weights, _dense(weights), fraction=0.5)
    # 3 removed: the 0.1, then the two lowest-index 0.5s.
    assert new["w"].tolist() == [[False, False, True], [True, False, True]]
    # Equal magnitudes of either sign: the lower flat indices go first.
    for scope in ("local", "global"):
        new = magnitude_prune({"w": np.array([1.0, -1.0, 1.0])}, {"w": np.ones(3, bool)},
                              fraction=0.5, scope=scope)  # ceil(1.5) = 2 removed
        assert new["w"].tolist() == [False, False, True]


@pytest.mark.parametrize("scope", ["local", "global"])
def test_masked_entries_are_never_chosen_even_when_their_value_is_small(scope):
    weights = {"w": np.array([0.0, 0.2, 0.3, 0.4, 0.5])}
    masks = {"w": np.array([False, True, True, True, True])}
    new = magnitude_prune(weights, masks, fraction=0.5, scope=scope)  # ceil(2.0) = 2 removed
    assert new["w"].tolist() == [False, False, False, True, True]


def test_global_scope_uses_one_threshold_over_all_layers():
    weights = {"a": np.array([0.1, 0.2, 0.9, 1.0]), "b": np.array([0.3, 0.05, 0.8, 0.7])}
    new = magnitude_prune(weights, _dense(weights), fraction=0.5, scope="global")
    # The 4 smallest of the pooled 8: 0.05, 0.1, 0.2, 0.3.
    assert new["a"].tolist() == [False, False, True, True]
    assert new["b"].tolist() == [False, False, True, True]


def test_global_scope_never_empties_a_layer():
    weights = {"small": np.full(10, 1e-3), "large": np.linspace(1, 2, 100)}
    masks = _dense(weights)
    for _ in range(30):
        masks = magnitude_prune(weights, masks, fraction=0.5, scope="global", min_weights=3)
    assert masks["small"].sum() == 3
    assert masks["large"].sum() == 3


def test_global_scope_with_a_layer_override_prunes_it_apart():
    weights = _random_weights(2)
    new = magnitude_prune(weights, _dense(weights), fraction=0.5, scope="global",
                          layer_fractions={"b": 0.1})
    assert (~new["b"]).sum() == math.ceil(0.1 * 100)
    # "a" is the whole pool now: half of it goes.
    assert (~new["a"]).sum() == 100


def test_layer_fractions_must_name_pruned_layers_with_rates_in_0_1():
    # One check, shared with the estimators' layer_prune_fractions.
    weights = _random_weights()
    with pytest.raises(ValueError, match=r"layer_fractions names \['zzz'\], which are not "
                                         "pruned parameters"):
        magnitude_prune(weights, _dense(weights), fraction=0.2, layer_fractions={"zzz": 0.1})
    name = next(iter(weights))
    for rate in (0, 1, "0.5"):
        with pytest.raises(ValueError, match=rf"layer_fractions\['{name}'\] must be a float"):
            magnitude_prune(weights, _dense(weights), fraction=0.2, layer_fractions={name: rate})


def test_last_round_lands_exactly_on_the_target_spread_in_proportion():
    weights = _random_weights(3)  # layers of 200 and 100 weights
    target = target_active_count(300, 0.3)  # 210
    new = magnitude_prune(weights, _dense(weights), fraction=0.5, target_n_active=target)
    assert n_active(new) == target
    # At the full rate "a" would lose 100 and "b" 50: the 90 removals split 60 / 30.
    assert (~new["a"]).sum() == 60 and (~new["b"]).sum() == 30


@pytest.mark.parametrize("scope", ["local", "global"])
def test_target_is_reached_exactly_under_either_scope(scope):
    weights = _random_weights(4)
    masks = _dense(weights)
    target = target_active_count(300, 0.87)
    while n_active(masks) > target:
        masks = magnitude_prune(weights, masks, fraction=0.2, scope=scope,
                                target_n_active=target)
    assert n_active(masks) == target
    assert sparsity(masks) == pytest.approx(1 - target / 300)


def test_allocate_removals_sums_and_caps():
    for needed in range(0, 12):
        shares = allocate_removals(needed, [5, 3, 2, 1])
        assert sum(shares) == min(needed, 11)
        assert all(0 <= s <= c for s, c in zip(shares, [5, 3, 2, 1], strict=True))


def test_non_finite_weights_raise_a_clear_error():
    weights = {"w": np.array([1.0, np.nan, 0.5])}
    with pytest.raises(ValueError, match=r"non-finite.*'w'|'w'.*non-finite"):
        magnitude_prune(weights, _dense(weights), fraction=0.5)


def test_unknown_scope_is_an_error():
    weights = _random_weights()
    with pytest.raises(ValueError, match="scope"):
        magnitude_prune(weights, _dense(weights), fraction=0.5, scope="layerwise")


def test_permutation_shuffles_the_flattened_matrix_and_keeps_counts():
    rng = np.random.default_rng(0)
    masks = {
        # A single-row output layer: shuffling rows would never move it.
        "out": np.zeros((1, 50), dtype=bool),
        "hidden": np.zeros((50, 4), dtype=bool),
    }
    masks["out"][0, :5] = True
    masks["hidden"][:, 0] = True  # a whole column: row shuffles keep it in column 0
    permuted = permute_masks(masks, rng)
    for name, mask in masks.items():
        assert permuted[name].shape == mask.shape
        assert permuted[name].sum() == mask.sum()
        assert not np.array_equal(permuted[name], mask)
    assert permuted["hidden"][:, 1:].any(), "entries stayed in their column: rows were shuffled"
    assert masks["out"][0, :5].all(), "the input masks were changed in place"


def test_rewound_weights_copy_and_zero_the_pruned_entries():
    snapshot = {"w": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([5.0])}
    masks = {"w": np.array([[True, False], [False, True]])}
    state = rewound_weights(snapshot, masks)
    assert state["w"].tolist() == [[1.0, 0.0], [0.0, 4.0]]
    state["w"][0, 0] = 100.0
    state["b"][0] = 100.0
    assert snapshot["w"][0, 0] == 1.0 and snapshot["b"][0] == 5.0, "snapshot aliased"
