"""The supermask search: edge-popup's top-k and score step by hand, frozen weights, density."""

import math
import pickle

import numpy as np
import pytest
import torch
from helpers import breast_cancer, small_net
from sklearn.datasets import load_iris
from sklearn.utils._param_validation import InvalidParameterError
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import Callback
from torch import nn

from skticket import LotteryTicketClassifier, Supermask
from skticket._edge_popup import EdgePopup, initial_scores, top_k_masks
from skticket._search import SEARCHES
from skticket._training import TrainingSpec, run_training


def test_top_k_keeps_the_largest_absolute_scores_per_layer():
    scores = {"a": torch.tensor([[0.5, -0.9, 0.1], [-0.2, 0.3, -0.05]]),
              "b": torch.tensor([-1.0, 2.0, -3.0, 0.5])}
    masks = top_k_masks(scores, {"a": 2, "b": 3})
    # a: |-0.9| and |0.5| are the two largest; b: |-3|, |2| and |-1|.
    assert masks["a"].tolist() == [[True, True, False], [False, False, False]]
    assert masks["b"].tolist() == [True, True, True, False]
    # A tie at the boundary goes to the lower flat position.
    tied = top_k_masks({"c": torch.tensor([0.4, -0.4, 0.4, 0.1])}, {"c": 2})
    assert tied["c"].tolist() == [True, True, False, False]


def test_initial_scores_are_uniform_within_one_over_root_fan_in():
    weight = torch.zeros(400, 25)
    scores = initial_scores(weight, torch.Generator().manual_seed(0))
    bound = 1 / math.sqrt(25)
    assert scores.shape == weight.shape and scores.dtype == weight.dtype
    assert float(scores.abs().max()) <= bound
    # Uniform on [-b, b]: standard deviation b / sqrt(3), mean 0 (10,000 draws).
    assert float(scores.std()) == pytest.approx(bound / math.sqrt(3), rel=0.03)
    assert abs(float(scores.mean())) < 0.01
    # The same seed draws the same scores.
    again = initial_scores(weight, torch.Generator().manual_seed(0))
    assert torch.equal(scores, again)


@pytest.mark.parametrize(("net_lr", "score_lr"), [
    ({"lr": 5.0}, None), ({"lr": 1e-3}, 5.0), ({"lr": 1e-3, "optimizer__lr": 5.0}, None)])
def test_one_edge_popup_step_matches_a_hand_computation(net_lr, score_lr):
    """A linear layer 3 -> 2 without bias, MSE, one full batch, SGD with the net's weight
    decay: the scores' step and the new top-3 computed by hand, in float64. The scores'
    learning rate is the hook's, or the net's (its optimizer__lr, else its lr) when the
    hook gives none."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4, 3)).astype(np.float32)
    y = rng.normal(size=(4, 2)).astype(np.float32)
    w0 = rng.normal(size=(2, 3)).astype(np.float32)
    lr, decay, seed, kept = 5.0, 0.1, 7, 3
    net = NeuralNetRegressor(nn.Linear, module__in_features=3, module__out_features=2,
                             module__bias=False, criterion=nn.MSELoss,
                             optimizer=torch.optim.SGD, optimizer__weight_decay=decay,
                             max_epochs=1, batch_size=4, train_split=None, verbose=0,
                             **net_lr)
    spec = TrainingSpec(template=net, X=X, y=y, start={"weight": w0},
                        masks={"weight": np.ones((2, 3), dtype=bool)}, seed=0,
                        hooks=(EdgePopup(counts=(("weight", kept),), lr=score_lr,
                                         seed=seed),))
    result = run_training(spec)

    # The scores as drawn: uniform on [-1/sqrt(3), 1/sqrt(3)] from the seeded generator.
    draws = torch.rand((2, 3), generator=torch.Generator().manual_seed(seed)).double().numpy()
    s0 = (draws * 2 - 1) / math.sqrt(3)
    def top(scores):
        mask = np.zeros(6, dtype=bool)
        mask[np.argsort(-np.abs(scores).ravel(), kind="stable")[:kept]] = True
        return mask.reshape(2, 3)
    m0 = top(s0)
    W = w0.astype(np.float64) * m0
    residual = X.astype(np.float64) @ W.T - y
    grad_W = 2 / residual.size * residual.T @ X.astype(np.float64)  # MSE's mean over 8
    # Straight-through: the mask's gradient is the weight's times its value, and
    # reaches the score through |score|.
    s1 = s0 - lr * (grad_W * w0 * np.sign(s0) + decay * s0)
    m1 = top(s1)
    assert not np.array_equal(m0, m1)  # the step moved the mask
    assert np.array_equal(result.masks["weight"], m1)
    # The net's own weights did not train: theta_0 under the new mask, bit for bit.
    assert torch.equal(result.net.module_.weight.detach(), torch.as_tensor(w0 * m1))
    assert result.hook_summaries == ([1 / kept * np.count_nonzero(m1 & ~m0)],)


def _iris():
    X, y = load_iris(return_X_y=True)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y


def _supermask(**params):
    net = small_net(module__hidden_units=(16,), max_epochs=6)
    return LotteryTicketClassifier(net, search=Supermask(lr=0.01), target_sparsity=0.5,
                                   prune_fraction=0.5, scope="local", random_state=0,
                                   **params)


def test_a_supermask_fit_leaves_every_weight_at_theta_0():
    X, y = _iris()
    est = _supermask().fit(X, y)
    # theta_0 as drawn for random_state=0: IMP's dense round starts from it.
    dense = LotteryTicketClassifier(small_net(module__hidden_units=(16,), max_epochs=1),
                                    max_rounds=0, random_state=0).fit(X, y)
    theta_0 = dense.winning_ticket_.weights
    masks = est.winning_ticket_.masks
    assert set(masks) == {"hidden_0.weight", "output.weight"}
    for name, value in est.net_.module_.state_dict().items():
        expected = theta_0[name] * masks[name] if name in masks else theta_0[name]
        assert torch.equal(value, torch.as_tensor(expected)), name
    # The ticket is the learned mask on theta_0; the net predicts with exactly that.
    for name, value in est.winning_ticket_.weights.items():
        expected = theta_0[name] * masks[name] if name in masks else theta_0[name]
        assert np.array_equal(value, expected), name
    # It learned something: better than the most frequent class (a third on iris).
    assert est.score(X, y) > 0.6


def test_the_mask_keeps_the_target_density_in_every_layer():
    X, y = _iris()
    est = _supermask().fit(X, y)
    record = est.rounds_[0]
    # Every layer at 50% (local scope, prune_fraction 0.5): 4 x 16 and 16 x 3 weights.
    kept = {name: int(mask.sum()) for name, mask in est.winning_ticket_.masks.items()}
    assert kept == {"hidden_0.weight": 32, "output.weight": 24}
    assert record["round"] == 1 and record["sparsity"] == 0.5 and record["n_active"] == 56
    assert len(record["mask_changes"]) == 6
    assert all(0 <= change <= 1 for change in record["mask_changes"])
    assert record["hook_summaries"] == [record["mask_changes"]]


def test_per_layer_rates_set_the_per_layer_densities():
    X, y = _iris()
    est = _supermask(layer_prune_fractions={"output.weight": 0.25}).fit(X, y)
    kept = {name: int(mask.sum()) for name, mask in est.winning_ticket_.masks.items()}
    # IMP's rule at 50% overall with the output layer at half the rate: the hidden layer
    # goes further, and the total is the target.
    assert kept["output.weight"] > 24 and kept["hidden_0.weight"] < 32
    assert sum(kept.values()) == 56


def test_the_learned_ticket_trains_with_ticket():
    X, y = _iris()
    est = _supermask().fit(X, y)
    trained = LotteryTicketClassifier(small_net(module__hidden_units=(16,), max_epochs=6),
                                      ticket=est.winning_ticket_, random_state=0).fit(X, y)
    masks = est.winning_ticket_.masks
    weight = trained.net_.module_.state_dict()["hidden_0.weight"].numpy()
    assert np.array_equal(trained.winning_ticket_.masks["hidden_0.weight"],
                          masks["hidden_0.weight"])
    # The weights trained from theta_0 (unlike the supermask's own net); pruned stay 0.
    assert not np.array_equal(weight, est.winning_ticket_.weights["hidden_0.weight"])
    assert np.all(weight[~masks["hidden_0.weight"]] == 0)


def test_a_supermask_fit_is_reproducible_and_seeded():
    X, y = _iris()
    first = _supermask().fit(X, y).winning_ticket_.masks
    again = _supermask().fit(X, y).winning_ticket_.masks
    other = _supermask().set_params(random_state=1).fit(X, y).winning_ticket_.masks
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not all(np.array_equal(first[name], other[name]) for name in first)


def test_a_cached_supermask_round_is_the_same_round(tmp_path, training_calls):
    X, y = _iris()
    first = _supermask(memory=tmp_path).fit(X, y)
    second = _supermask(memory=tmp_path).fit(X, y)
    assert len(training_calls) == 1 and second.rounds_[0]["cached"]
    assert second.rounds_[0]["mask_changes"] == first.rounds_[0]["mask_changes"]
    for name, mask in first.winning_ticket_.masks.items():
        assert np.array_equal(second.winning_ticket_.masks[name], mask)
    np.testing.assert_array_equal(second.predict_proba(X), first.predict_proba(X))


def test_supermask_by_name_and_its_parameters():
    assert SEARCHES["supermask"] is Supermask
    est = LotteryTicketClassifier(search="supermask")
    assert est.get_params()["search__lr"] is None
    assert est.set_params(search__lr=0.1).search.lr == 0.1
    assert pickle.loads(pickle.dumps(Supermask(lr=0.5))).lr == 0.5


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"search": Supermask(lr=0.0)}, InvalidParameterError, "'lr' parameter"),
    ({"search": Supermask(lr=-1.0)}, InvalidParameterError, "'lr' parameter"),
    ({"rewind_step": 2}, ValueError, "rewind_step must be 0"),
    ({"target_sparsity": None}, ValueError, "set target_sparsity"),
])
def test_bad_settings_are_refused_before_training(params, error, match, training_calls):
    X, y = breast_cancer(rows=60)
    est = _supermask().set_params(**params)
    with pytest.raises(error, match=match):
        est.fit(X, y)
    assert training_calls == []


class _OnlyAScale(nn.Module):
    """No linear or convolution layer: nothing to prune by default."""

    def __init__(self, n_features=4, n_outputs=3):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n_features))
        self.n_outputs = n_outputs

    def forward(self, X):
        return torch.softmax((X * self.scale)[:, :self.n_outputs], dim=-1)


def test_a_net_with_no_prunable_weights_is_refused_before_training(training_calls):
    X, y = _iris()
    net = NeuralNetClassifier(_OnlyAScale, max_epochs=2, train_split=None, verbose=0)
    est = LotteryTicketClassifier(net, search="supermask", target_sparsity=0.5)
    with pytest.raises(ValueError, match="No parameter to prune"):
        est.fit(X, y)
    assert training_calls == []


class _FrozenHidden(nn.Module):
    def __init__(self, n_features=4, n_outputs=3):
        super().__init__()
        self.hidden = nn.Linear(n_features, 8)
        self.hidden.weight.requires_grad_(False)
        self.output = nn.Linear(8, n_outputs)

    def forward(self, X):
        return torch.softmax(self.output(torch.relu(self.hidden(X))), dim=-1)


def test_a_pruned_weight_without_gradient_is_refused_before_any_step():
    X, y = _iris()
    net = NeuralNetClassifier(_FrozenHidden, max_epochs=2, train_split=None, verbose=0)
    est = LotteryTicketClassifier(net, search="supermask", target_sparsity=0.5)
    with pytest.raises(ValueError, match=r"\['hidden.weight'\] do not require a gradient"):
        est.fit(X, y)


class _LoadEpoch(Callback):
    """Load, when the training ends, the weights the module had after epoch ``epoch``
    (as EarlyStopping(load_best=True) loads its best epoch's)."""

    def __init__(self, epoch=2):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            self.state_ = {k: v.clone() for k, v in net.module_.state_dict().items()}

    def on_train_end(self, net, **kwargs):
        net.module_.load_state_dict(self.state_)


def test_a_net_that_keeps_an_earlier_epoch_keeps_that_epochs_mask():
    X, y = _iris()
    loader = _LoadEpoch(epoch=2)
    net = small_net(module__hidden_units=(16,), max_epochs=6, callbacks=[loader])
    est = LotteryTicketClassifier(net, search=Supermask(lr=0.05), target_sparsity=0.5,
                                  prune_fraction=0.5, scope="local", random_state=0).fit(X, y)
    loaded = dict(est.net_.callbacks_)["_LoadEpoch"].state_
    assert sum(est.rounds_[0]["mask_changes"][2:]) > 0  # the mask moved after epoch 2
    for name, mask in est.winning_ticket_.masks.items():
        assert np.array_equal(mask, loaded[name].numpy() != 0), name
    for name, value in est.net_.module_.state_dict().items():
        assert torch.equal(value, loaded[name]), name
    assert est.rounds_[0]["n_active"] == 56


def test_sample_weights_reach_the_scores():
    X, y = breast_cancer(rows=300)
    weight = np.where(y == 0, 0.0, 1.0)
    plain = _supermask().fit(X, y)
    weighted = _supermask().fit(X, y, sample_weight=weight)
    # With no weight on class 0, the mask learned favours class 1: fewer rows go to class
    # 0. (A mask over frozen weights and biases cannot shift the outputs as a trained
    # bias would: the other searches' stronger effect is not expected here.)
    assert np.mean(weighted.predict(X) == 0) < np.mean(plain.predict(X) == 0)
    assert not all(np.array_equal(plain.winning_ticket_.masks[name], mask)
                   for name, mask in weighted.winning_ticket_.masks.items())

