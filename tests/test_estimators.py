"""The estimators' contract: the rounds, masks that hold, rewinding, baselines, conventions."""

import pickle
import re

import numpy as np
import pytest
import torch
from helpers import breast_cancer, small_net
from sklearn.base import clone
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNet, NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import Callback, LRScheduler
from torch import nn

import skticket._session as session_module
from skticket import LotteryTicketClassifier, LotteryTicketRegressor, Ticket
from skticket._training import ApplyMasks, load_state, prunable_parameters


@pytest.fixture(scope="module")
def cancer():
    return breast_cancer(rows=240)


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=160, n_features=6, n_targets=2, noise=0.1,
                           random_state=0)
    return X, y / np.abs(y).max()


def prunable_values(est):
    params = dict(est.net_.module_.named_parameters())
    return {name: params[name].detach().numpy() for name in est.winning_ticket_.masks}


# --- masks hold --------------------------------------------------------------------


class RecordMaskedMagnitude(Callback):
    """After every training batch, the largest |w| where the mask is off."""

    def __init__(self, masks):
        self.masks = masks

    def initialize(self):
        self.largest_ = []
        return self

    def on_batch_end(self, net, training=None, **kwargs):
        if training:
            params = dict(net.module_.named_parameters())
            self.largest_.append(max(
                float(params[name].detach().abs()[~torch.as_tensor(mask)].max())
                for name, mask in self.masks.items()))


@pytest.mark.parametrize("optimizer, params", [
    (torch.optim.SGD, {"optimizer__momentum": 0.9, "optimizer__weight_decay": 1e-2}),
    (torch.optim.Adam, {}),
    (torch.optim.AdamW, {"optimizer__weight_decay": 0.1}),
])
def test_pruned_weights_stay_exactly_zero_after_every_optimizer_step(cancer, optimizer, params):
    X, y = cancer
    params = dict(params, module__n_features=30, module__n_outputs=2,
                  module__output_activation="softmax")
    net = small_net(optimizer=optimizer, lr=0.05, **params)
    net.initialize()
    masks = {name: np.random.default_rng(0).random(p.shape) < 0.3
             for name, p in net.module_.named_parameters() if name.endswith("weight")}
    # The recorder runs after ApplyMasks, so it sees the weights as the next step will.
    recorder = RecordMaskedMagnitude(masks)
    net = small_net(optimizer=optimizer, lr=0.05, callbacks=[
        ("masks", ApplyMasks(masks)), ("recorder", recorder)], **params)
    net.fit(X, y)
    largest = dict(net.callbacks_)["recorder"].largest_
    assert len(largest) == 4 * 8
    assert max(largest) == 0.0


@pytest.mark.parametrize("optimizer, params", [
    (torch.optim.SGD, {"optimizer__momentum": 0.9, "optimizer__weight_decay": 1e-2}),
    (torch.optim.AdamW, {"optimizer__weight_decay": 0.1}),
])
def test_after_fit_the_nonzero_weights_are_the_ticket(cancer, optimizer, params):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(optimizer=optimizer, lr=0.05, **params),
                                  prune_fraction=0.5, target_sparsity=0.75,
                                  random_state=0).fit(X, y)
    values = prunable_values(est)
    assert sum(int(np.count_nonzero(v)) for v in values.values()) == est.winning_ticket_.n_active
    for name, mask in est.winning_ticket_.masks.items():
        assert np.all(values[name][~mask] == 0)


# --- which parameters are pruned -----------------------------------------------------


class NormedNet(nn.Module):
    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm1d(2 * n_features)
        self.layer_norm = nn.LayerNorm(2 * n_features)
        self.head = nn.Linear(2 * n_features, n_outputs)
        self.weight_scale = nn.Parameter(torch.ones(1))  # named "weight", not a layer weight

    def forward(self, X):
        h = self.conv(X.unsqueeze(1)).flatten(1)
        h = self.layer_norm(self.norm(h))
        return torch.softmax(self.head(h) * self.weight_scale, dim=-1)


def test_prunable_parameters_are_chosen_by_module_type_not_by_name():
    module = NormedNet(4, 2)
    assert prunable_parameters(module) == ["conv.weight", "head.weight"]
    assert prunable_parameters(module, ["head.weight"]) == ["head.weight"]
    assert prunable_parameters(module, lambda name, p: p.dim() == 3) == ["conv.weight"]
    with pytest.raises(ValueError, match="not parameters of the module"):
        prunable_parameters(module, ["head.wieght"])


def test_norm_layers_and_biases_are_never_pruned_by_default(cancer):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(module=NormedNet), prune_fraction=0.5,
                                  max_rounds=2, random_state=0).fit(X, y)
    assert list(est.winning_ticket_.masks) == ["conv.weight", "head.weight"]
    params = dict(est.net_.module_.named_parameters())
    assert torch.all(params["norm.weight"] != 0) and torch.all(params["head.bias"] != 0)


# --- counting and stopping -------------------------------------------------------


def test_each_round_removes_ceil_of_each_layers_remaining(cancer):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(), prune_fraction=0.3, target_sparsity=None,
                                  max_rounds=4, random_state=0).fit(X, y)
    sizes = [30 * 16, 16 * 2]
    expected = []
    for _ in range(5):
        expected.append(sum(sizes))
        sizes = [n - int(np.ceil(0.3 * n)) for n in sizes]
    assert [r["n_active"] for r in est.rounds_] == expected
    assert [r["round"] for r in est.rounds_] == [0, 1, 2, 3, 4]


def test_target_sparsity_is_reached_to_the_nearest_weight(cancer):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(), prune_fraction=0.2, target_sparsity=0.55,
                                  random_state=0).fit(X, y)
    n = est.winning_ticket_.n_prunable
    assert est.winning_ticket_.n_active == n - round(0.55 * n)
    # 0.8^3 = 51% remain, so the fourth round is the exact, shorter one.
    assert len(est.rounds_) == 5
    sparsities = [r["sparsity"] for r in est.rounds_]
    assert sparsities == sorted(sparsities)


def test_one_shot_pruning(cancer):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(), prune_fraction=0.9, target_sparsity=0.9,
                                  max_rounds=1, random_state=0).fit(X, y)
    assert len(est.rounds_) == 2
    assert est.winning_ticket_.sparsity == pytest.approx(0.9, abs=1 / 512)


def test_a_fit_with_k_rounds_trains_k_plus_one_times(cancer, monkeypatch):
    X, y = cancer
    calls = []
    real = session_module.train_members
    monkeypatch.setattr(session_module, "train_members",
                        lambda specs, **kwargs: calls.extend(specs) or real(specs, **kwargs))
    for ticket_init, extra in [("rewind", 0), ("reinit", 1), ("permute", 1)]:
        calls.clear()
        est = LotteryTicketClassifier(small_net(), prune_fraction=0.5, target_sparsity=0.7,
                                      ticket_init=ticket_init, random_state=0).fit(X, y)
        assert len(calls) == len(est.rounds_) + extra


def test_min_weights_per_layer_stops_the_search(cancer):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(), prune_fraction=0.6, target_sparsity=None,
                                  min_weights_per_layer=5, scope="global",
                                  random_state=0).fit(X, y)
    kept = {name: int(m.sum()) for name, m in est.winning_ticket_.masks.items()}
    assert kept == {"hidden_0.weight": 5, "output.weight": 5}


def test_layer_prune_fractions_override_a_layers_rate(cancer):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(), prune_fraction=0.5, target_sparsity=None,
                                  max_rounds=1, layer_prune_fractions={"output.weight": 0.25},
                                  random_state=0).fit(X, y)
    masks = est.winning_ticket_.masks
    assert masks["hidden_0.weight"].sum() == 240 and masks["output.weight"].sum() == 24
    with pytest.raises(ValueError, match="not pruned parameters"):
        LotteryTicketClassifier(small_net(), layer_prune_fractions={"out.weight": 0.1}).fit(X, y)


def test_score_tolerance_keeps_the_sparsest_ticket_within_it(cancer):
    X, y = cancer
    tolerance = 0.02
    net = small_net(module__hidden_units=(4,), max_epochs=6)
    est = LotteryTicketClassifier(net, prune_fraction=0.6, target_sparsity=0.995,
                                  score_tolerance=tolerance, validation_fraction=0.25,
                                  random_state=0).fit(X, y)
    scores = [r["valid_score"] for r in est.rounds_]
    assert all(s is not None for s in scores)
    # The tiny net cannot keep its score down to 0.5% of its weights.
    assert scores[-1] < scores[0] - tolerance
    assert all(s >= scores[0] - tolerance for s in scores[:-1])
    assert est.winning_ticket_.round == est.rounds_[-2]["round"]
    assert est.winning_ticket_.n_active == est.rounds_[-2]["n_active"]
    # The validation split is held out from training (stratified, 25%).
    assert est.net_.history[-1, "train_batch_count"] == int(np.ceil(180 / 32))


# --- rewinding ---------------------------------------------------------------------


def test_tickets_train_from_theta_0_whatever_the_rounds(cancer):
    X, y = cancer
    dense = LotteryTicketClassifier(small_net(), max_rounds=0, random_state=3).fit(X, y)
    theta_0 = dense.winning_ticket_.weights
    assert dense.winning_ticket_.sparsity == 0
    est = LotteryTicketClassifier(small_net(), prune_fraction=0.5, max_rounds=3,
                                  target_sparsity=None, random_state=3).fit(X, y)
    trained = prunable_values(est)
    for name, mask in est.winning_ticket_.masks.items():
        np.testing.assert_array_equal(est.winning_ticket_.weights[name],
                                      np.where(mask, theta_0[name], 0))
        # Training moved the weights; had it written through, theta_0 would have moved too.
        assert not np.allclose(trained[name][mask], theta_0[name][mask])


def test_late_resetting_uses_one_snapshot_for_every_round(cancer):
    X, y = cancer
    kwargs = dict(prune_fraction=0.5, target_sparsity=None, rewind_step=3, random_state=1)
    two = LotteryTicketClassifier(small_net(), max_rounds=2, **kwargs).fit(X, y)
    four = LotteryTicketClassifier(small_net(), max_rounds=4, **kwargs).fit(X, y)
    theta_0 = LotteryTicketClassifier(small_net(), max_rounds=0,
                                      random_state=1).fit(X, y).winning_ticket_.weights
    for name, mask in four.winning_ticket_.masks.items():
        # Survivors of round 4 survived round 2: same values, the one snapshot.
        np.testing.assert_array_equal(four.winning_ticket_.weights[name][mask],
                                      two.winning_ticket_.weights[name][mask])
        assert not np.allclose(four.winning_ticket_.weights[name][mask], theta_0[name][mask])


def test_rewind_step_beyond_the_dense_training_is_an_error(cancer):
    X, y = cancer
    steps = 4 * 8
    with pytest.raises(ValueError, match=f"rewind_step={steps + 1} is beyond the {steps}"):
        LotteryTicketClassifier(small_net(), rewind_step=steps + 1).fit(X, y)


def test_lr_schedule_and_optimizer_start_fresh_every_round(cancer):
    X, y = cancer
    schedule = LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5,
                           event_name="event_lr")
    est = LotteryTicketClassifier(small_net(callbacks=[schedule]), prune_fraction=0.5,
                                  max_rounds=2, target_sparsity=None, random_state=0)
    est.fit(X, y)
    assert est.net_.history[:, "event_lr"] == [0.01, 0.005, 0.0025, 0.00125]


def test_prune_continues_exactly_as_one_more_round_of_fit(cancer):
    X, y = cancer
    kwargs = dict(prune_fraction=0.4, target_sparsity=None, random_state=0)
    est = LotteryTicketClassifier(small_net(), max_rounds=2, **kwargs).fit(X, y)
    longer = LotteryTicketClassifier(small_net(), max_rounds=3, **kwargs).fit(X, y)
    assert est.prune(X, y) is est
    assert [r["n_active"] for r in est.rounds_] == [r["n_active"] for r in longer.rounds_]
    for name, mask in longer.winning_ticket_.masks.items():
        np.testing.assert_array_equal(est.winning_ticket_.masks[name], mask)
    np.testing.assert_array_equal(est.predict_proba(X), longer.predict_proba(X))


def test_prune_ignores_the_target_but_keeps_the_floor(cancer):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(), prune_fraction=0.5, target_sparsity=0.5,
                                  min_weights_per_layer=200, random_state=0).fit(X, y)
    assert est.winning_ticket_.sparsity == pytest.approx(0.5, abs=1 / 512)
    est.prune(X, y)
    assert est.winning_ticket_.masks["hidden_0.weight"].sum() == 200
    # A layer smaller than the floor is never pruned.
    assert est.winning_ticket_.masks["output.weight"].sum() == 32
    with pytest.warns(UserWarning, match="removed nothing"):
        est.prune(X, y)


# --- baselines ---------------------------------------------------------------------


def test_reinit_and_permute_baselines(cancer):
    X, y = cancer
    kwargs = dict(prune_fraction=0.5, target_sparsity=0.75, random_state=0)
    winning = LotteryTicketClassifier(small_net(), **kwargs).fit(X, y).winning_ticket_
    reinit_est = LotteryTicketClassifier(small_net(), ticket_init="reinit", **kwargs).fit(X, y)
    reinit = reinit_est.winning_ticket_
    permuted_est = LotteryTicketClassifier(small_net(), ticket_init="permute", **kwargs)
    permuted = permuted_est.fit(X, y).winning_ticket_
    assert (reinit.init, permuted.init) == ("reinit", "permute")
    for name, mask in winning.masks.items():
        np.testing.assert_array_equal(reinit.masks[name], mask)  # same mask...
        assert not np.allclose(reinit.weights[name][mask], winning.weights[name][mask])
        assert permuted.masks[name].sum() == mask.sum()  # ...or the same count, moved
        assert not np.array_equal(permuted.masks[name], mask)
    # The trained net of the baseline holds the baseline's (shuffled) mask.
    values = prunable_values(permuted_est)
    for name, mask in permuted.masks.items():
        assert np.all(values[name][~mask] == 0)


# --- reproducibility and the global random state ---------------------------------------


def test_same_random_state_same_masks_and_predictions(cancer):
    X, y = cancer
    a = LotteryTicketClassifier(small_net(), target_sparsity=0.6, random_state=7).fit(X, y)
    b = LotteryTicketClassifier(small_net(), target_sparsity=0.6, random_state=7).fit(X, y)
    c = LotteryTicketClassifier(small_net(), target_sparsity=0.6, random_state=8).fit(X, y)
    for name in a.winning_ticket_.masks:
        np.testing.assert_array_equal(a.winning_ticket_.masks[name],
                                      b.winning_ticket_.masks[name])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_the_global_random_state_is_left_as_found(cancer):
    X, y = cancer
    torch.manual_seed(123)
    # The legacy global generator is the state under test.
    np.random.seed(123)  # noqa: NPY002
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    est = LotteryTicketClassifier(small_net(), target_sparsity=0.5, random_state=0)
    est.fit(X, y)
    est.predict(X)
    est.predict_proba(X)
    est.score(X, y)
    LotteryTicketClassifier(small_net(), target_sparsity=0.5).fit(X, y)  # random_state=None
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(u, v) for u, v in zip(after, numpy_state, strict=True))


# --- data types and shapes -----------------------------------------------------------


@pytest.mark.parametrize("labels", [
    np.array(["setosa", "versicolor", "virginica"]), np.array([10, 20, 30]),
])
def test_any_label_type(labels):
    X, y = load_iris(return_X_y=True)
    y_labels = labels[y]
    est = LotteryTicketClassifier(small_net(max_epochs=8), target_sparsity=0.5,
                                  random_state=0).fit(X, y_labels)
    np.testing.assert_array_equal(est.classes_, labels)
    assert set(est.predict(X)) <= set(labels)
    assert est.predict_proba(X).shape == (150, 3)
    np.testing.assert_allclose(est.predict_proba(X).sum(axis=1), 1, rtol=1e-5)


def test_score_is_accuracy_score_of_predict_for_every_kind_of_y():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])
    fitted = {kind: LotteryTicketClassifier(small_net(max_epochs=3), target_sparsity=0.5,
                                            random_state=0).fit(X, labels)
              for kind, labels in [("int", y), ("str", names[y])]}
    half = np.r_[np.ones(75), np.zeros(75)]
    for kind, y_true in [("int", y), ("int", y.tolist()), ("int", y.astype(np.float64)),
                         ("int", y.astype(np.int32)), ("str", names[y]),
                         ("str", names[y].astype(object))]:
        est = fitted[kind]
        expected = accuracy_score(y_true, est.predict(X))
        assert est.score(X, y_true) == expected
        assert est.score(X, y_true, sample_weight=half) == accuracy_score(
            y_true, est.predict(X), sample_weight=half)
    # What accuracy_score refuses, score refuses with its message.
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fitted["int"].score(X, y[:-1])
    with pytest.raises(ValueError, match=r"[Mm]ix"):
        fitted["int"].score(X, y + 0.5)
    # Numbers against string labels: scikit-learn 1.6 with numpy 1.24 (the lowest
    # versions supported) scores them 0, later releases refuse them. score does what
    # the installed accuracy_score does.
    try:
        expected = accuracy_score(y, fitted["str"].predict(X))
    except ValueError as error:
        with pytest.raises(ValueError, match=re.escape(str(error))):
            fitted["str"].score(X, y)
    else:
        assert fitted["str"].score(X, y) == expected


def test_bool_labels_and_int_features(cancer):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(), target_sparsity=0.5, random_state=0)
    est.fit((X * 10).astype(np.int64), y.astype(bool))
    assert est.classes_.dtype == bool
    assert est.predict((X * 10).astype(np.int64)).dtype == bool


def test_regression_with_1d_and_2d_targets(regression):
    X, y = regression
    net = small_net(NeuralNetRegressor, max_epochs=20)
    two = LotteryTicketRegressor(net, target_sparsity=0.5, random_state=0).fit(X, y)
    assert two.predict(X).shape == (160, 2) and two.n_outputs_ == 2
    assert two.score(X, y) > 0.5
    one = LotteryTicketRegressor(net, target_sparsity=0.5, random_state=0).fit(X, y[:, 0])
    assert one.predict(X).shape == (160,)
    assert one.score(X, y[:, 0]) > 0.5


def test_pandas_dataframes_and_feature_names(cancer):
    pd = pytest.importorskip("pandas")
    X, y = cancer
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = LotteryTicketClassifier(small_net(), target_sparsity=0.5, random_state=0)
    est.fit(frame, pd.Series(y))
    assert list(est.feature_names_in_) == list(frame.columns)
    with pytest.warns(UserWarning, match="feature names"):
        from_array = est.predict(X)
    np.testing.assert_array_equal(est.predict(frame), from_array)


def test_a_plain_neuralnet_with_cross_entropy(cancer):
    X, y = cancer
    net = small_net(NeuralNet, criterion=nn.CrossEntropyLoss)
    est = LotteryTicketClassifier(net, target_sparsity=0.5, random_state=0).fit(X, y)
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)  # logits went through softmax
    assert est.score(X, y) > 0.8


class FixedWidth(nn.Module):
    def __init__(self, width=30):
        super().__init__()
        self.linear = nn.Linear(width, 2)

    def forward(self, X):
        return torch.softmax(self.linear(X), dim=-1)


def test_a_module_that_is_not_sized_from_the_data(cancer):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(module=FixedWidth), target_sparsity=0.5,
                                  random_state=0).fit(X, y)
    assert est.winning_ticket_.n_prunable == 60
    instance = LotteryTicketClassifier(small_net(module=FixedWidth()), target_sparsity=0.5,
                                       ticket_init="reinit", random_state=0).fit(X, y)
    assert instance.score(X, y) > 0.8


def test_default_estimators_need_no_arguments(cancer, regression):
    X, y = cancer
    clf = LotteryTicketClassifier().fit(X, y)
    assert clf.winning_ticket_.sparsity == pytest.approx(0.8, abs=1e-3)
    assert clf.score(X, y) > 0.9
    X, y = regression
    assert LotteryTicketRegressor().fit(X, y).score(X, y) > 0.5


# --- scikit-learn conventions ---------------------------------------------------------


def test_nested_params_clone_and_grid_search_in_a_pipeline(cancer):
    X, y = cancer
    clf = LotteryTicketClassifier(small_net(), random_state=0)
    assert clf.get_params()["net__module__hidden_units"] == (16,)
    clf.set_params(net__module__hidden_units=(8,), net__lr=0.02)
    assert clf.net.module__hidden_units == (8,) and clf.net.lr == 0.02
    assert clone(clf).get_params()["net__module__hidden_units"] == (8,)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), clf.set_params(net__max_epochs=2, prune_fraction=0.5)),
        {"lotteryticketclassifier__target_sparsity": [0.5, 0.8],
         "lotteryticketclassifier__net__module__hidden_units": [(8,), (8, 4)]},
        cv=2,
    ).fit(X, y)
    best = search.best_estimator_[-1]
    assert best.winning_ticket_.sparsity == pytest.approx(
        search.best_params_["lotteryticketclassifier__target_sparsity"], abs=1e-2)
    assert clf.net.max_epochs == 2  # the search did not change the original


def test_pickle_round_trip_gives_identical_predictions(cancer):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(), prune_fraction=0.5, target_sparsity=0.5,
                                  random_state=0).fit(X, y)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict_proba(X), est.predict_proba(X))
    assert isinstance(restored.winning_ticket_, Ticket)
    restored.prune(X, y)  # masks are data, not hooks: they survive pickling
    values = prunable_values(restored)
    for name, mask in restored.winning_ticket_.masks.items():
        assert np.all(values[name][~mask] == 0)


def test_ticket_str_lists_few_survivors_and_counts_many(cancer):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(max_epochs=1), prune_fraction=0.6,
                                  target_sparsity=None, min_weights_per_layer=2,
                                  random_state=0).fit(X, y)
    text = str(est.winning_ticket_)
    assert "hidden_0.weight (16, 30): 2 of 480 active" in text
    for name, mask in est.winning_ticket_.masks.items():
        for index in zip(*np.nonzero(mask), strict=True):
            value = est.winning_ticket_.weights[name][index]
            assert f"[{index[0]},{index[1]}]: {value:.6g}" in text
    assert est.winning_ticket_.layer_sparsity()["hidden_0.weight"] == pytest.approx(478 / 480)


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize("params, match", [
    ({"prune_fraction": 0.0}, "prune_fraction"),
    ({"prune_fraction": 1.0}, "prune_fraction"),
    ({"target_sparsity": 1.0}, "target_sparsity"),
    ({"target_sparsity": -0.1}, "target_sparsity"),
    ({"scope": "layer"}, "scope"),
    ({"ticket_init": "random"}, "ticket_init"),
    ({"min_weights_per_layer": 0}, "min_weights_per_layer"),
    ({"rewind_step": -1}, "rewind_step"),
    ({"net": NeuralNetClassifier}, "net"),
    ({"net": "mlp"}, "net"),
    ({"layer_prune_fractions": {"output.weight": 1.5}}, "layer_prune_fractions"),
])
def test_bad_parameters_raise_naming_the_parameter(cancer, params, match):
    X, y = cancer
    with pytest.raises((ValueError, TypeError), match=match):
        LotteryTicketClassifier(**{"net": small_net(), **params}).fit(X, y)


def test_a_net_of_the_wrong_kind_is_rejected(cancer, regression):
    X, y = cancer
    with pytest.raises(TypeError, match="cannot wrap a NeuralNetRegressor"):
        LotteryTicketClassifier(small_net(NeuralNetRegressor)).fit(X, y)
    X, y = regression
    with pytest.raises(TypeError, match="cannot wrap a NeuralNetClassifier"):
        LotteryTicketRegressor(small_net()).fit(X, y)


def test_bad_data_raises_clear_errors(cancer):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(), target_sparsity=0.5, random_state=0)
    with pytest.raises(NotFittedError):
        est.predict(X)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad, y)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        est.fit(bad, y)
    with pytest.raises(ValueError, match="0 sample"):
        est.fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="2D array"):
        est.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="continuous"):
        est.fit(X, np.linspace(0, 1, len(y)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        est.fit(X, np.zeros(len(y)))
    est.fit(X, y)
    with pytest.raises(ValueError, match="30 features"):
        est.predict(X[:, :5])


def test_load_state_copies_by_value():
    module = nn.Linear(3, 2)
    snapshot = {name: t.detach().numpy().copy() for name, t in module.state_dict().items()}
    load_state(module, snapshot)
    with torch.no_grad():
        module.weight.add_(1.0)
    assert not np.allclose(module.weight.detach().numpy(), snapshot["weight"])


def test_the_ticket_holds_the_whole_start_state(cancer):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(), prune_fraction=0.5, target_sparsity=0.5,
                                  random_state=0).fit(X, y)
    ticket = est.winning_ticket_
    state = est.net_.module_.state_dict()
    assert set(ticket.weights) == set(state) > set(ticket.masks)
    # Rewound to theta_0: biases as drawn, weights as drawn where they survive.
    dense = LotteryTicketClassifier(small_net(), max_rounds=0, random_state=0).fit(X, y)
    theta_0 = dense.winning_ticket_.weights
    assert set(theta_0) == set(state)
    for name, value in ticket.weights.items():
        expected = theta_0[name] * ticket.masks[name] if name in ticket.masks else theta_0[name]
        np.testing.assert_array_equal(value, expected)
    assert not np.array_equal(ticket.weights["output.bias"], state["output.bias"].numpy())
