"""Targeted dropout: the dropped set by hand, training only, seeds, and bad rates."""

import pickle

import numpy as np
import pytest
import torch
from helpers import breast_cancer, small_net
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError
from skorch import NeuralNetRegressor
from torch import nn

from skticket import LotteryTicketClassifier, Search, TargetedDropout, TrainingHook
from skticket._targeted_dropout import targeted_dropout_keep


def _draws(seed, n):
    return torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_the_dropped_weights_match_a_hand_computation():
    w = torch.tensor([[0.9, -0.1, 0.4], [-0.05, 0.7, 0.3]])
    keep = targeted_dropout_keep(w, rate=0.5, targeted_fraction=0.5, unit=False,
                                 generator=torch.Generator().manual_seed(11))
    # floor(0.5 * 6) = 3 targeted: |-0.05|, |-0.1| and |0.3|, at flat positions 3, 1, 5;
    # each dropped where its draw (one per weight, in flat order) is below 0.5.
    draws = _draws(11, 6)
    dropped = {position for position in (1, 3, 5) if draws[position] < 0.5}
    assert 0 < len(dropped) < 3  # this seed drops some targeted weights, not all
    expected = [position not in dropped for position in range(6)]
    assert keep.flatten().tolist() == expected
    assert keep.dtype == torch.bool and keep.shape == w.shape


def test_the_dropped_units_match_a_hand_computation():
    # Four units (rows) of L2 norms 5, 0.5, 1 and 0.1 (3-4-5 triangles scaled).
    w = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.6, 0.8], [0.06, 0.08]])
    keep = targeted_dropout_keep(w, rate=0.8, targeted_fraction=0.5, unit=True,
                                 generator=torch.Generator().manual_seed(0))
    # floor(0.5 * 4) = 2 units targeted, the two of lowest norm: rows 3 and 1; one draw
    # per unit.
    draws = _draws(0, 4)
    dropped = {row for row in (1, 3) if draws[row] < 0.8}
    assert len(dropped) == 1
    expected = [[row not in dropped] * 2 for row in range(4)]
    assert keep.tolist() == expected


def test_rate_one_drops_exactly_the_targeted_and_zero_nothing():
    w = torch.tensor([0.5, -0.2, 0.8, 0.1, -0.9, 0.3, 0.05, 0.6])
    generator = torch.Generator().manual_seed(0)
    every = targeted_dropout_keep(w, rate=1.0, targeted_fraction=0.25, unit=False,
                                  generator=generator)
    assert (~every).nonzero().flatten().tolist() == [3, 6]  # 0.1 and 0.05
    none = targeted_dropout_keep(w, rate=0.0, targeted_fraction=1.0, unit=False,
                                 generator=generator)
    assert bool(none.all())


def test_pruned_weights_are_never_targeted_and_not_counted():
    w = torch.tensor([0.0, 0.0, 0.3, -0.2, 0.9, 0.1])
    active = torch.tensor([False, False, True, True, True, True])
    keep = targeted_dropout_keep(w, rate=1.0, targeted_fraction=0.5, unit=False,
                                 generator=torch.Generator().manual_seed(0), active=active)
    # Half of the 4 survivors: 0.1 and -0.2; the pruned zeros are left alone.
    assert (~keep).nonzero().flatten().tolist() == [3, 5]
    units = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.5, 0.5], [0.2, 0.2]])
    active_units = units != 0
    keep = targeted_dropout_keep(units, rate=1.0, targeted_fraction=0.5, unit=True,
                                 generator=torch.Generator().manual_seed(0),
                                 active=active_units)
    # floor(0.5 * 3 units with a weight) = 1: row 1; row 0 has none and is not targeted.
    assert keep.all(dim=1).tolist() == [True, False, True, True]


class _Linear(nn.Module):
    """One linear layer without bias, recording the weight each forward pass saw."""

    def __init__(self, seen):
        super().__init__()
        self.layer = nn.Linear(4, 1, bias=False)
        self.seen = seen

    def forward(self, X):
        self.seen.append((self.training, self.layer.weight.detach().clone()))
        return self.layer(X)


def _regressor(seen, callbacks, **params):
    defaults = dict(module=_Linear, module__seen=seen, criterion=nn.MSELoss,
                    optimizer=torch.optim.SGD, lr=1.0, max_epochs=1, batch_size=8,
                    train_split=None, callbacks=callbacks, verbose=0)
    return NeuralNetRegressor(**{**defaults, **params})


def _data():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(8, 4)).astype(np.float32),
            rng.normal(size=(8, 1)).astype(np.float32))


def test_dropped_weights_are_zero_in_the_step_and_get_no_gradient():
    X, y = _data()
    torch.manual_seed(0)
    seen = []
    net = _regressor(seen, [TargetedDropout(rate=1.0, targeted_fraction=0.5, random_state=0)])
    net.initialize()
    start = net.module_.layer.weight.detach().clone()
    net.partial_fit(X, y)
    trained_with, after = seen[0][1], net.module_.layer.weight.detach()
    targeted = start.abs().flatten().argsort()[:2]
    # The step's forward pass saw the two smallest at zero, and they did not move.
    assert seen[0][0] and torch.all(trained_with.flatten()[targeted] == 0)
    assert torch.equal(after.flatten()[targeted], start.flatten()[targeted])
    others = np.setdiff1d(np.arange(4), targeted.numpy())
    assert not torch.equal(after.flatten()[others], start.flatten()[others])
    assert dict(net.callbacks_)["TargetedDropout"].dropped_share_ == {"layer.weight": 0.5}


def test_it_is_off_when_the_net_predicts_and_scores_held_out_rows():
    X, y = _data()
    seen = []
    dropout = TargetedDropout(rate=1.0, targeted_fraction=0.75, random_state=0)
    net = _regressor(seen, [dropout], max_epochs=3, lr=0.01,
                     train_split=lambda ds, y=None: (ds, ds))
    net.fit(X, y)
    training = [weight for is_training, weight in seen if is_training]
    evaluation = [weight for is_training, weight in seen if not is_training]
    assert all(int((weight == 0).sum()) == 3 for weight in training)
    assert evaluation and all(bool((weight != 0).all()) for weight in evaluation)
    # After training, predictions with and without the callback are the same.
    plain = _regressor([], None)
    plain.initialize()
    plain.module_.load_state_dict(net.module_.state_dict())
    np.testing.assert_array_equal(net.predict(X), plain.predict(X))
    assert torch.equal(net.module_.layer.weight, seen[-1][1])


def test_unit_dropout_in_a_training_drops_whole_units():
    X, y = breast_cancer(rows=64)
    seen = []
    net = small_net(max_epochs=1, batch_size=64, module__n_features=30, module__n_outputs=2,
                    criterion=nn.CrossEntropyLoss,
                    callbacks=[TargetedDropout(rate=1.0, targeted_fraction=0.5, unit=True,
                                               random_state=0)])
    net.initialize()
    layer = net.module_.hidden_0
    layer.register_forward_pre_hook(
        lambda module, args: seen.append((module.training, module.weight.detach().clone())))
    net.partial_fit(X, y)
    training = [weight for is_training, weight in seen if is_training]
    # 8 of the 16 hidden units (rows) are dropped whole; the others keep every weight.
    assert [int((w == 0).all(dim=1).sum()) for w in training] == [8]
    assert int((training[0] == 0).sum()) == 8 * 30
    assert dict(net.callbacks_)["TargetedDropout"].dropped_share_ == {
        "hidden_0.weight": 0.5, "output.weight": 0.5}


def test_in_an_estimator_it_is_reproducible_and_seeded_by_random_state():
    X, y = breast_cancer(rows=120)

    def fitted(random_state, dropout):
        net = small_net(max_epochs=3, callbacks=[dropout])
        est = LotteryTicketClassifier(net, target_sparsity=0.5, prune_fraction=0.5,
                                      random_state=random_state)
        return est.fit(X, y).net_.module_.state_dict()

    first = fitted(0, TargetedDropout())
    again = fitted(0, TargetedDropout())
    other = fitted(1, TargetedDropout())
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first
                   if first[name].shape == other[name].shape)
    # Its draws come from a stream of their own: at rate 0 the training is the one
    # without it, bit for bit (the data order is untouched).
    idle = fitted(0, TargetedDropout(rate=0.0))
    without = LotteryTicketClassifier(small_net(max_epochs=3), target_sparsity=0.5,
                                      prune_fraction=0.5, random_state=0).fit(X, y)
    plain = without.net_.module_.state_dict()
    assert all(torch.equal(idle[name], plain[name]) for name in plain)


def test_in_an_estimator_it_targets_the_surviving_weights_of_the_pruned_layers():
    X, y = breast_cancer(rows=120)
    dropout = TargetedDropout(rate=1.0, targeted_fraction=0.5, random_state=0)
    est = LotteryTicketClassifier(small_net(max_epochs=2, callbacks=[dropout]),
                                  target_sparsity=0.5, prune_fraction=0.5,
                                  random_state=0).fit(X, y)
    used = dict(est.net_.callbacks_)["TargetedDropout"]
    # The ticket's round: half of each layer is pruned, half of the rest dropped.
    assert used.dropped_share_ == {"hidden_0.weight": 0.25, "output.weight": 0.25}


@pytest.mark.parametrize("params", [
    {"rate": -0.1}, {"rate": 1.5}, {"targeted_fraction": 2.0}, {"rate": float("nan")},
    {"unit": "yes"}, {"random_state": -1},
])
def test_bad_settings_are_refused_before_training(params):
    X, y = _data()
    seen = []
    net = _regressor(seen, [TargetedDropout(**params)])
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of TargetedDropout"):
        net.fit(X, y)
    assert seen == []  # no forward pass ran


def test_an_estimator_refuses_a_bad_rate_before_training(training_calls):
    X, y = breast_cancer(rows=60)
    net = small_net(callbacks=[TargetedDropout(rate=3)])
    with pytest.raises(InvalidParameterError, match="'rate' parameter"):
        LotteryTicketClassifier(net, target_sparsity=0.5).fit(X, y)
    assert training_calls == []


def test_it_is_a_training_hook_equal_by_value():
    hook = TargetedDropout(rate=0.3, targeted_fraction=0.6, unit=True)
    assert isinstance(hook, TrainingHook)
    assert hook == TargetedDropout(rate=0.3, targeted_fraction=0.6, unit=True)
    assert hash(hook) == hash(TargetedDropout(rate=0.3, targeted_fraction=0.6, unit=True))
    assert hook != TargetedDropout(rate=0.3, targeted_fraction=0.6)
    fresh = hook.callback()
    assert fresh is not hook and fresh == hook
    assert clone(hook) == hook and pickle.loads(pickle.dumps(hook)) == hook
    assert repr(hook) == ("TargetedDropout(rate=0.3, targeted_fraction=0.6, unit=True, "
                          "random_state=None)")


class _DenseWithDropout(Search):
    """Train the dense net once, with targeted dropout as a hook."""

    def rounds(self, run):
        dense = run.train(run.masks, hooks=(TargetedDropout(rate=1.0, targeted_fraction=0.4),))
        run.accept(dense)
        yield dense


def test_a_search_trains_with_it_as_a_hook():
    X, y = breast_cancer(rows=120)
    est = LotteryTicketClassifier(small_net(max_epochs=2), search=_DenseWithDropout(),
                                  random_state=0).fit(X, y)
    (summary,) = est.rounds_[0]["hook_summaries"]
    # floor(0.4 * 480) = 192 of 30 x 16 and floor(0.4 * 32) = 12 of 16 x 2, every step.
    assert summary == pytest.approx({"hidden_0.weight": 192 / 480, "output.weight": 12 / 32})
    assert "TargetedDropout" not in dict(est.net_.callbacks_)
