"""The one-training searches: gradual pruning, sparse momentum and RigL.

Their mathematics is tested on constructed cases (what is grown, where weights
move, the schedule's sparsity at chosen steps); their trainings on real data
for what must hold whatever the data: exact counts after every update, masked
weights at zero after every step under every optimizer, the ticket they hand
back, the cache.
"""

import functools
import warnings

import numpy as np
import pytest
import torch
from helpers import breast_cancer, small_net
from sklearn.base import clone
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback, EarlyStopping
from torch import nn

from skticket import (
    GradualPruning,
    LotteryTicketClassifier,
    LotteryTicketRegressor,
    RigL,
    SparseMomentum,
    SparseTraining,
    ticket_path,
)
from skticket._hooks import MaskSchedule
from skticket._mask_schedules import GradientRegrowth, GradualSchedule, MomentumRegrowth
from skticket._pruning import (
    MagnitudeRule,
    allocate_growth,
    cosine_decay,
    cubic_sparsity,
    drop_and_grow,
    target_active_count,
)
from skticket._training import MASK_CALLBACK, ApplyMasks, TrainingSpec, run_training

SPARSE_SEARCHES = [GradualPruning, SparseMomentum, RigL]


@pytest.fixture(scope="module")
def cancer():
    return breast_cancer()


net = functools.partial(small_net, module__hidden_units=(32, 16), max_epochs=12, batch_size=64)


def estimator(search, net=net, **params):
    if callable(net):
        net = net()
    return LotteryTicketClassifier(net, search=search,
                                   **{"target_sparsity": 0.9, "random_state": 0, **params})


def masked_weights(est):
    params = dict(est.net_.module_.named_parameters())
    return {name: params[name].detach().numpy() for name in est.winning_ticket_.masks}


# --- the mathematics ----------------------------------------------------------------------


def test_cubic_schedule_values():
    assert cubic_sparsity(0.0, 0.9) == 0.0 and cubic_sparsity(1.0, 0.9) == 0.9
    assert cubic_sparsity(0.5, 0.8) == pytest.approx(0.8 * (1 - 0.5 ** 3))
    assert cubic_sparsity(2.0, 0.8) == 0.8 and cubic_sparsity(-1.0, 0.8) == 0.0
    # Fast at first, slow at the end.
    steps = [cubic_sparsity(p, 0.9) for p in np.linspace(0, 1, 11)]
    gains = np.diff(steps)
    assert np.all(gains > 0) and np.all(np.diff(gains) < 0)


def test_cosine_decay_values():
    assert cosine_decay(0.3, 0.0) == 0.3 and cosine_decay(0.3, 1.0) == 0.0
    assert cosine_decay(0.5, 0.5) == pytest.approx(0.25)
    assert cosine_decay(0.5, 0.25) == pytest.approx(0.25 * (1 + np.cos(np.pi / 4)))


def test_drop_and_grow_grows_only_inactive_positions_where_the_score_is_largest():
    weights = {"w": np.array([[0.9, -0.05, 0.0], [0.0, 0.4, 0.0]])}
    masks = {"w": np.array([[True, True, False], [False, True, False]])}
    # The largest score sits on an active weight: growing it would not add a weight
    # (the density bug of growing without that check).
    scores = {"w": np.array([[100.0, 0.0, 3.0], [2.0, 50.0, 1.0]])}
    new = drop_and_grow(weights, masks, scores, {"w": 1})
    # -0.05 dropped; of the inactive positions, 3.0 is the largest score.
    assert new["w"].tolist() == [[True, False, True], [False, True, False]]
    new = drop_and_grow(weights, masks, scores, {"w": 2})
    # 0.4 and -0.05 dropped; 50.0 (just dropped) and 3.0 are the largest: 0.4 stays.
    assert new["w"].tolist() == [[True, False, True], [False, True, False]]
    assert masks["w"].sum() == 3  # the input is not changed


def test_drop_and_grow_counts_are_exact_and_checked():
    rng = np.random.default_rng(0)
    weights = {"a": rng.normal(size=(20, 30)), "b": rng.normal(size=(5, 20))}
    masks = {name: rng.random(w.shape) < 0.1 for name, w in weights.items()}
    scores = {name: rng.normal(size=w.shape) for name, w in weights.items()}
    before = {name: int(m.sum()) for name, m in masks.items()}
    new = drop_and_grow(weights, masks, scores, {"a": 7, "b": 2}, {"a": 4, "b": 5})
    assert {name: int(m.sum()) for name, m in new.items()} == {
        "a": before["a"] - 3, "b": before["b"] + 3}
    with pytest.raises(ValueError, match="Cannot drop"):
        drop_and_grow(weights, masks, scores, {"a": before["a"] + 1})
    full = {"a": np.ones((2, 2), dtype=bool)}
    with pytest.raises(ValueError, match="Cannot grow 3 weights in 'a'"):
        drop_and_grow({"a": np.ones((2, 2))}, full, {"a": np.ones((2, 2))}, {"a": 1}, {"a": 3})


def test_allocate_growth_follows_the_scores_within_capacity():
    assert allocate_growth(10, {"a": 3.0, "b": 1.0}, {"a": 100, "b": 100}) == {"a": 8, "b": 2}
    # A full layer passes what it cannot take to the others.
    assert allocate_growth(10, {"a": 3.0, "b": 1.0}, {"a": 4, "b": 100}) == {"a": 4, "b": 6}
    # The shares always sum to the total when there is room.
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = rng.integers(1, 5)
        scores = {str(i): float(s) for i, s in enumerate(rng.random(n) * (rng.random(n) > 0.3))}
        capacity = {name: int(c) for name, c in zip(scores, rng.integers(0, 20, n), strict=True)}
        total = int(rng.integers(0, 60))
        shares = allocate_growth(total, scores, capacity)
        assert sum(shares.values()) == min(total, sum(capacity.values()))
        assert all(0 <= shares[name] <= capacity[name] for name in scores)


def test_sparse_momentum_moves_weights_toward_the_layer_with_more_momentum():
    rng = np.random.default_rng(0)
    weights = {"a": rng.normal(size=(10, 10)), "b": rng.normal(size=(10, 10))}
    masks = {"a": rng.random((10, 10)) < 0.3, "b": rng.random((10, 10)) < 0.3}
    momentum = {"a": rng.normal(size=(10, 10)) * 10.0, "b": rng.normal(size=(10, 10)) * 0.1}
    rule = MomentumRegrowth(drop_fraction=0.5)
    new = rule.updated(masks, weights, momentum, step=10, total_steps=1000)
    count = {name: int(m.sum()) for name, m in masks.items()}
    moved = {name: int(m.sum()) for name, m in new.items()}
    assert sum(moved.values()) == sum(count.values())
    assert moved["a"] > count["a"] and moved["b"] < count["b"]
    # Grown where the momentum is largest among the inactive positions.
    grown = new["a"] & ~masks["a"]
    inactive_left = ~new["a"]
    assert np.abs(momentum["a"][grown]).min() >= np.abs(momentum["a"][inactive_left]).max()


def test_rigl_grows_where_the_gradient_is_largest():
    weights = {"w": np.array([0.5, 0.01, -0.8, 0.02, 0.0, 0.0, 0.0, 0.0])}
    masks = {"w": np.array([True, True, True, True, False, False, False, False])}
    gradient = {"w": np.array([0.0, 0.0, 0.0, 0.0, -0.1, 5.0, 0.2, -3.0])}
    rule = GradientRegrowth(drop_fraction=0.5, end=1.0)
    new = rule.updated(masks, weights, gradient, step=0, total_steps=10)
    # The two smallest magnitudes go; the two largest |gradient| come in.
    assert np.flatnonzero(new["w"]).tolist() == [0, 2, 5, 7]


def test_gradual_schedule_sparsity_at_chosen_steps():
    n = 1000
    rule = GradualSchedule(target_n_active=100, n_prunable=n,
                           magnitude=MagnitudeRule(fraction=0.2, scope="local"),
                           start=0.2, end=0.6, frequency=10)
    total = 100
    assert [rule.due(step, total, 10) for step in (19, 20, 30, 60, 61)] == [
        False, True, True, True, False]
    assert rule.sparsity_at(20, total) == 0.0
    assert rule.sparsity_at(40, total) == pytest.approx(0.9 * (1 - 0.5 ** 3))
    assert rule.sparsity_at(60, total) == pytest.approx(0.9)
    # An update prunes to the schedule's count exactly.
    rng = np.random.default_rng(0)
    weights = {"w": rng.normal(size=(25, 40))}
    masks = {"w": np.ones((25, 40), dtype=bool)}
    new = rule.updated(masks, weights, None, step=40, total_steps=total)
    assert int(new["w"].sum()) == target_active_count(n, rule.sparsity_at(40, total))


# --- the searches, trained -----------------------------------------------------------------


class CheckMaskedZeros(Callback):
    """Before every batch: the weights outside the training's current masks are exactly 0."""

    def initialize(self):
        self.checked_ = 0
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        masks = dict(net.callbacks_)[MASK_CALLBACK].held_
        params = dict(net.module_.named_parameters())
        for name, mask in masks.items():
            outside = params[name].detach().numpy()[~mask]
            assert np.all(outside == 0), f"{name}: {np.count_nonzero(outside)} nonzero"
        self.checked_ += 1


@pytest.mark.parametrize("optimizer, extra", [
    (torch.optim.Adam, {}),
    (torch.optim.SGD, {"optimizer__momentum": 0.9, "optimizer__weight_decay": 1e-3}),
])
@pytest.mark.parametrize("cls", SPARSE_SEARCHES)
def test_counts_are_exact_and_masked_weights_zero_through_training(cancer, cls, optimizer,
                                                                   extra):
    X, y = cancer
    checker = CheckMaskedZeros()
    search = cls(update_every=3) if cls is RigL else cls()
    # A random 90%-sparse start dies at Adam's lr 0.05 (every ReLU dead): 0.01 for Adam.
    lr = 0.01 if optimizer is torch.optim.Adam else 0.05
    est = estimator(search, net(optimizer=optimizer, lr=lr, callbacks=[("check", checker)],
                                **extra)).fit(X, y)
    (record,) = est.rounds_
    n = est.winning_ticket_.n_prunable
    target = target_active_count(n, 0.9)
    updates = record["mask_updates"]
    assert len(updates) >= 3 and record["round"] == 1
    if cls is GradualPruning:
        counts = [u["n_active"] for u in updates]
        assert counts == sorted(counts, reverse=True) and counts[-1] == target
    else:
        # Exact after every update: the same number of weights, per layer for RigL.
        assert {u["n_active"] for u in updates} == {target}
        assert any(u["regrown"] > 0 for u in updates)
        if cls is RigL:
            first = updates[0]["densities"]
            assert all(u["densities"] == first for u in updates)
    assert est.winning_ticket_.n_active == record["n_active"] == target
    assert record["sparsity"] == est.winning_ticket_.sparsity
    # The trained net is the sparse net the training produced, zeros where masked.
    for name, weight in masked_weights(est).items():
        assert np.all(weight[~est.winning_ticket_.masks[name]] == 0)
    assert est.score(X, y) > 0.9


def test_sparse_from_scratch_moves_the_mask(cancer):
    X, y = cancer
    for cls in (SparseMomentum, RigL):
        est = estimator(cls()).fit(X, y)
        start = ticket_path(estimator(cls()), X, y).run
        initial = start.search.start_masks(start)
        moved = sum(int((est.winning_ticket_.masks[name] & ~mask).sum())
                    for name, mask in initial.items())
        assert moved > 0, cls.__name__
        assert sum(int(m.sum()) for m in initial.values()) == est.winning_ticket_.n_active


def test_the_ticket_is_the_final_mask_on_the_start_weights(cancer):
    X, y = cancer
    est = estimator(RigL()).fit(X, y)
    run = ticket_path(estimator(RigL()), X, y).run
    theta_0 = run.session.theta_0
    ticket = est.winning_ticket_
    assert ticket.round == 1 and ticket.init == "rewind"
    for name, value in theta_0.items():
        expected = np.where(ticket.masks[name], value, 0) if name in ticket.masks else value
        np.testing.assert_array_equal(ticket.weights[name], expected)


def test_a_sparse_training_ticket_trains_again_as_a_given_ticket(cancer, training_calls):
    X, y = cancer
    found = estimator(SparseMomentum()).fit(X, y)
    training_calls.clear()
    again = estimator(SparseMomentum(), ticket=found.winning_ticket_).fit(X, y)
    (spec,) = training_calls
    # The mask fixed, trained from the ticket's start weights.
    assert spec.hooks == ()
    assert again.winning_ticket_ == found.winning_ticket_
    for name, weight in masked_weights(again).items():
        assert np.all(weight[~found.winning_ticket_.masks[name]] == 0)
    assert again.score(X, y) > 0.9


@pytest.mark.parametrize("init", ["reinit", "permute"])
def test_baselines_of_a_sparse_training_ticket(cancer, init):
    X, y = cancer
    found = estimator(GradualPruning()).fit(X, y)
    baseline = estimator(GradualPruning(), ticket_init=init).fit(X, y)
    ticket = baseline.winning_ticket_
    assert ticket.init == init and ticket.n_active == found.winning_ticket_.n_active
    same = all(np.array_equal(ticket.masks[name], mask)
               for name, mask in found.winning_ticket_.masks.items())
    assert same == (init == "reinit")
    assert ticket.layer_sparsity() == found.winning_ticket_.layer_sparsity()


def test_the_trained_net_trains_on_with_its_final_masks(cancer):
    X, y = cancer
    est = estimator(RigL()).fit(X, y)
    held = dict(est.net_.callbacks_)[MASK_CALLBACK]
    assert type(held) is ApplyMasks
    est.net_.partial_fit(X, y)
    for name, weight in masked_weights(est).items():
        assert np.all(weight[~est.winning_ticket_.masks[name]] == 0)
    # So does a clone of it, fitted afresh.
    refit = clone(est.net_).fit(X, y)
    params = dict(refit.module_.named_parameters())
    for name, mask in est.winning_ticket_.masks.items():
        assert np.all(params[name].detach().numpy()[~mask] == 0)


@pytest.mark.parametrize("cls", SPARSE_SEARCHES)
def test_sparse_trainings_are_cached_like_any_other(cancer, tmp_path, training_calls, cls):
    X, y = cancer
    first = estimator(cls(), memory=tmp_path).fit(X, y)
    assert len(training_calls) == 1
    training_calls.clear()
    again = estimator(cls(), memory=tmp_path).fit(X, y)
    assert training_calls == [] and again.rounds_[0]["cached"]
    assert again.rounds_[0]["mask_updates"] == first.rounds_[0]["mask_updates"]
    assert again.winning_ticket_ == first.winning_ticket_
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))
    assert type(dict(again.net_.callbacks_)[MASK_CALLBACK]) is ApplyMasks
    # Another schedule is another training.
    estimator(cls(), memory=tmp_path, target_sparsity=0.8).fit(X, y)
    assert len(training_calls) == 1


def test_sparse_momentum_needs_an_optimizer_with_momentum(cancer):
    X, y = cancer
    with pytest.raises(ValueError, match=r"SGD keeps none .*momentum > 0"):
        estimator(SparseMomentum(), net(optimizer=torch.optim.SGD)).fit(X, y)
    assert estimator(SparseMomentum(), net(optimizer=torch.optim.SGD,
                                           optimizer__momentum=0.5)).fit(X, y).rounds_


@pytest.mark.parametrize("cls", SPARSE_SEARCHES)
def test_one_training_searches_refuse_a_rewind_step_and_need_a_target(cancer, cls):
    X, y = cancer
    with pytest.raises(ValueError, match="rewind_step must be 0"):
        estimator(cls(), rewind_step=5).fit(X, y)
    with pytest.raises(ValueError, match="set target_sparsity"):
        estimator(cls(), target_sparsity=None).fit(X, y)


def test_gradual_end_before_start_is_refused(cancer):
    X, y = cancer
    with pytest.raises(ValueError, match=r"end \(0.2\) comes before its start \(0.5\)"):
        estimator(GradualPruning(start=0.5, end=0.2)).fit(X, y)


def test_gradual_follows_the_estimators_pruning_rule(cancer):
    X, y = cancer
    # Per-layer rates decide the per-layer sparsities, as they do for IMP.
    rates = {"output.weight": 0.05}
    est = estimator(GradualPruning(), layer_prune_fractions=rates, target_sparsity=0.5).fit(X, y)
    layers = est.winning_ticket_.layer_sparsity()
    assert layers["output.weight"] < layers["hidden_0.weight"]
    assert est.winning_ticket_.sparsity == pytest.approx(0.5, abs=1e-3)


def test_the_searches_are_sparse_trainings_by_name():
    for name, cls in (("gradual", GradualPruning), ("sparse_momentum", SparseMomentum),
                      ("rigl", RigL)):
        assert issubclass(cls, SparseTraining)
        est = LotteryTicketClassifier(search=name)
        assert {k for k in est.get_params() if k.startswith("search__")} == {
            f"search__{p}" for p in cls().get_params()}


class _Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.out = nn.Linear(4, 1, bias=False)

    def forward(self, X):
        return self.out(X)


def input_2_rigl_training(schedule: GradientRegrowth, **net_params) -> TrainingSpec:
    """One linear layer on 4 inputs, a target that depends on input 2 alone, and a start
    mask that leaves input 2 out: its weight has by far the largest gradient."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = (3.0 * X[:, [2]]).astype(np.float32)
    template = NeuralNetRegressor(_Linear, optimizer=torch.optim.SGD, lr=0.01, max_epochs=4,
                                  batch_size=64, train_split=None, verbose=0, **net_params)
    start = {"out.weight": np.array([[0.1, 0.1, 0.0, 0.1]], dtype=np.float32)}
    masks = {"out.weight": np.array([[True, True, False, True]])}
    return TrainingSpec(template=template, X=X, y=y, start=start, masks=masks, seed=0,
                        hooks=(MaskSchedule(schedule),))


def test_rigl_in_training_grows_the_input_with_the_largest_gradient():
    result = run_training(input_2_rigl_training(
        GradientRegrowth(drop_fraction=0.5, update_every=1, end=1.0)))
    # At step 1 of 4 the drop fraction is 0.5 cosine-decayed to 0.43: one of three
    # weights is dropped and input 2 grown; it then learns the target's weight.
    (updates,) = result.hook_summaries
    assert updates[0]["step"] == 1 and updates[0]["regrown"] == pytest.approx(1 / 3)
    assert result.masks["out.weight"][0, 2]
    assert [u["n_active"] for u in updates] == [3, 3, 3, 3]
    assert result.net.module_.out.weight.detach().numpy()[0, 2] > 0


def test_regressors_take_the_one_training_searches():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = X @ rng.normal(size=5)
    reg = LotteryTicketRegressor(search="rigl", target_sparsity=0.8, random_state=0)
    reg.set_params(net__max_epochs=30).fit(X, y)
    assert reg.winning_ticket_.sparsity == pytest.approx(0.8, abs=1e-3)
    assert reg.score(X, y) > 0.5


class MomentumAt(Callback):
    """Before every batch: the SGD momentum of one weight."""

    def __init__(self, name, index):
        self.name, self.index = name, index

    def initialize(self):
        self.seen_ = []
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        param = dict(net.module_.named_parameters())[self.name]
        buffer = net.optimizer_.state.get(param, {}).get("momentum_buffer")
        self.seen_.append(None if buffer is None else float(buffer[self.index]))


def test_a_grown_weight_starts_with_its_optimizer_state_reset():
    # Grown after step 2: the momentum of the pruned weight has gathered gradients
    # for two steps by then, and is set back to zero.
    result = run_training(input_2_rigl_training(
        GradientRegrowth(drop_fraction=1.0, update_every=2, end=1.0),
        optimizer__momentum=0.9, callbacks=[("watch", MomentumAt("out.weight", (0, 2)))]))
    (updates,) = result.hook_summaries
    assert updates[0]["step"] == 2 and result.masks["out.weight"][0, 2]
    seen = dict(result.net.callbacks_)["watch"].seen_
    assert seen[0] is None and seen[1] != 0 and seen[2] == 0


def test_the_default_nets_convergence_waits_for_the_schedule(cancer):
    X, y = cancer
    # Without the hold, the default net stops long before a schedule laid out on
    # 300 epochs would end (the dense net converges within 200 here).
    dense = LotteryTicketClassifier(max_rounds=0, random_state=0).set_params(
        net__max_epochs=300).fit(X, y)
    assert dense.rounds_[0]["epochs"] < 200
    est = LotteryTicketClassifier(search=GradualPruning(end=0.7), target_sparsity=0.9,
                                  random_state=0).set_params(net__max_epochs=300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the schedule is not cut short
        est.fit(X, y)
    updates = est.rounds_[0]["mask_updates"]
    steps_per_epoch = -(-len(X) // 200)
    assert updates[-1]["step"] == int(0.7 * 300 * steps_per_epoch)
    assert est.rounds_[0]["epochs"] > 210


def test_a_schedule_cut_short_still_reaches_its_target_and_says_so(cancer):
    X, y = cancer
    stop = EarlyStopping(monitor="train_loss", patience=1, threshold=10.0)
    est = estimator(GradualPruning(), net(callbacks=[("stop", stop)]))
    with pytest.warns(UserWarning, match="before its mask schedule's last update"):
        est.fit(X, y)
    record = est.rounds_[0]
    assert record["epochs"] < 12
    assert est.winning_ticket_.n_active == target_active_count(
        est.winning_ticket_.n_prunable, 0.9) == record["mask_updates"][-1]["n_active"]


def test_ticket_curve_of_a_sparse_training(cancer):
    from skticket import ticket_curve
    X, y = cancer
    # prune_fraction=0.2: the per-layer sparsities these scores were set for (at the
    # default 0.5 the permuted mask of this 32-16 net scored 0.61).
    curve = ticket_curve(estimator(RigL(), prune_fraction=0.2), X[::2], y[::2], X[1::2],
                         y[1::2], n_repeats=1, as_frame=False)
    assert sorted(row["ticket"] for row in curve) == ["permute", "reinit", "rewind"]
    assert {row["round"] for row in curve} == {1}
    assert len({row["n_active"] for row in curve}) == 1
    assert all(row["sparsity"] == pytest.approx(0.9, abs=1e-3) for row in curve)
    assert all(row["score"] > 0.8 for row in curve)


def test_prune_goes_on_from_a_sparse_training_ticket(cancer):
    X, y = cancer
    est = estimator(SparseMomentum(), target_sparsity=0.8).fit(X, y)
    before = est.winning_ticket_
    est.prune(X, y)
    after = est.winning_ticket_
    assert after.n_active < before.n_active and after.round == 2
    assert all(np.all(after.masks[name] <= mask) for name, mask in before.masks.items())
