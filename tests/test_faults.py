"""When things go wrong: Ctrl-C, divergence, every skorch setting, prune() after
set_params, a broken or stale cache, failed fits. (Batch-independent predictions:
test_predict.py.)"""

import importlib.util
import pathlib
import pickle
import signal
import sys
import warnings

import joblib
import numpy as np
import pytest
import torch
from helpers import breast_cancer, small_net
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.exceptions import NotFittedError
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback, Checkpoint, EarlyStopping, LRScheduler
from skorch.dataset import ValidSplit
from torch import nn

from skticket import MLP, LotteryTicketClassifier, LotteryTicketRegressor
from skticket.exceptions import (
    FitInterruptedWarning,
    TrainingDivergedError,
    TrainingDivergedWarning,
    TrainingInterrupted,
)


@pytest.fixture(scope="module")
def cancer():
    return breast_cancer(rows=240)


def estimator(net=None, **params):
    params = {"prune_fraction": 0.5, "target_sparsity": 0.875, "random_state": 0, **params}
    return LotteryTicketClassifier(small_net() if net is None else net, **params)


def assert_masks_hold(est):
    params = dict(est.net_.module_.named_parameters())
    for name, mask in est.winning_ticket_.masks.items():
        assert np.all(params[name].detach().numpy()[~mask] == 0), name


def assert_same_ticket(a, b, X):
    for name, mask in a.winning_ticket_.masks.items():
        np.testing.assert_array_equal(mask, b.winning_ticket_.masks[name])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


class TrainingCounter:
    """Counts the trainings started in this process (cache hits start none)."""

    trainings = 0


class InRound(Callback):
    """Does ``action`` in the ``round``-th training of the process, after epoch ``epoch``.

    The counter is a class attribute: the net's callbacks are deep-copied for
    every round, a class is not.
    """

    def __init__(self, round, action, epoch=2):
        self.round = round
        self.action = action
        self.epoch = epoch

    def on_train_begin(self, net, **kwargs):
        TrainingCounter.trainings += 1

    def on_epoch_end(self, net, **kwargs):
        if TrainingCounter.trainings == self.round + 1 and len(net.history) == self.epoch:
            self.action(net)


def ctrl_c(net):
    signal.raise_signal(signal.SIGINT)


def poison(net):
    with torch.no_grad():
        next(net.module_.parameters()).fill_(float("nan"))


@pytest.fixture(autouse=True)
def fresh_counter():
    TrainingCounter.trainings = 0


@pytest.fixture(autouse=True)
def pythons_sigint_handler():
    """Ctrl-C as an interactive Python gets it: Python's own SIGINT handler.

    A process started in the background by a non-interactive shell (``cmd &``)
    inherits SIGINT ignored, and skticket defers to whatever handler the process
    has (an ignored SIGINT never reaches a training): these tests install
    Python's own, as an interactive session has it.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def net_with(action, round):
    return small_net(callbacks=[("in_round", InRound(round, action))])


# --- Ctrl-C --------------------------------------------------------------------------


def test_ctrl_c_in_a_later_round_keeps_the_last_completed_round(cancer, tmp_path):
    X, y = cancer
    est = estimator(net_with(ctrl_c, round=2), memory=tmp_path)
    with pytest.warns(FitInterruptedWarning, match=r"interrupted \(Ctrl-C\) in round 2"):
        est.fit(X, y)
    assert [r["round"] for r in est.rounds_] == [0, 1]
    assert est.winning_ticket_.round == 1
    assert_masks_hold(est)
    # The winning ticket is round 1 with its trained net: what a 1-round fit gives.
    one_round = estimator(net_with(ctrl_c, round=99), max_rounds=1).fit(X, y)
    assert_same_ticket(est, one_round, X)
    assert est.score(X, y) == one_round.score(X, y)

    # prune() goes on from there, exactly as the uninterrupted search would have.
    TrainingCounter.trainings = 0
    est.prune(X, y)
    assert [r["round"] for r in est.rounds_] == [0, 1, 2]
    assert not est.rounds_[2]["cached"]  # the interrupted round was never stored
    two_rounds = estimator(net_with(ctrl_c, round=99), max_rounds=2).fit(X, y)
    assert_same_ticket(est, two_rounds, X)


def test_the_interrupted_round_is_not_stored_in_memory(cancer, tmp_path):
    X, y = cancer
    with pytest.warns(FitInterruptedWarning):
        estimator(net_with(ctrl_c, round=2), memory=tmp_path).fit(X, y)
    TrainingCounter.trainings = -100  # the same net, whose callback now does nothing
    again = estimator(net_with(ctrl_c, round=2), memory=tmp_path).fit(X, y)
    assert [r["cached"] for r in again.rounds_] == [True, True, False, False]
    assert TrainingCounter.trainings == -100 + 2


def test_ctrl_c_in_the_dense_round_propagates_and_leaves_the_estimator_unfitted(cancer):
    X, y = cancer
    est = estimator(net_with(ctrl_c, round=0))
    with pytest.raises(KeyboardInterrupt) as caught:
        est.fit(X, y)
    assert isinstance(caught.value, TrainingInterrupted)
    with pytest.raises(NotFittedError):
        est.predict(X)
    assert not hasattr(est, "classes_") and not hasattr(est, "n_features_in_")


def test_ctrl_c_in_the_dense_round_of_a_refit_keeps_the_previous_fit(cancer):
    X, y = cancer
    est = estimator(net_with(ctrl_c, round=99)).fit(X, y)
    before = est.predict_proba(X)
    rounds, ticket = est.rounds_, est.winning_ticket_
    TrainingCounter.trainings = 0
    est.set_params(net=net_with(ctrl_c, round=0), target_sparsity=0.5)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X[:, :10], y)
    assert est.n_features_in_ == 30
    assert est.rounds_ is rounds and est.winning_ticket_ is ticket
    np.testing.assert_array_equal(est.predict_proba(X), before)


def test_a_callback_ending_training_early_is_not_an_interrupt(cancer):
    X, y = cancer

    def stop(net):
        raise KeyboardInterrupt  # what skorch's own EarlyStopping does

    net = small_net(max_epochs=10, callbacks=[("stop", InRound(1, stop, epoch=2))])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitInterruptedWarning)
        est = estimator(net).fit(X, y)
    assert [r["epochs"] for r in est.rounds_] == [10, 2, 10, 10]
    assert est.winning_ticket_.sparsity == 0.875


def test_a_ctrl_c_outside_any_fit_still_raises_keyboard_interrupt(cancer):
    # The handler installed for a training is removed afterwards. The test runs its
    # own fit: alone, or first in the run, it would otherwise check a handler that no
    # fit ever touched.
    X, y = cancer
    before = signal.getsignal(signal.SIGINT)
    during = []
    record = InRound(1, lambda net: during.append(signal.getsignal(signal.SIGINT)), epoch=1)
    estimator(small_net(callbacks=[("record", record)]), max_rounds=1).fit(X, y)
    assert len(during) == 1 and during[0] is not before, "no handler of the fit's own"
    assert signal.getsignal(signal.SIGINT) is before is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


# --- divergence ------------------------------------------------------------------------


def test_a_diverging_dense_round_is_an_error_naming_the_optimizer(tmp_path):
    X, y = load_diabetes(return_X_y=True)  # the raw target, 25 to 346
    # (With ReLU the same steps leave a dead net with a finite, constant loss instead.)
    net = NeuralNetRegressor(MLP, module__activation="tanh", optimizer=torch.optim.SGD,
                             lr=1.0, max_epochs=10, train_split=None, verbose=0)
    est = LotteryTicketRegressor(net, max_rounds=0, random_state=0, memory=tmp_path)
    with pytest.raises(TrainingDivergedError,
                       match=r"round 0: training produced non-finite values .*SGD with lr=1\.0"):
        est.fit(X, y)
    assert isinstance(TrainingDivergedError(), ValueError)
    with pytest.raises(NotFittedError):
        est.predict(X)
    assert not hasattr(est, "n_outputs_")
    # Nothing was stored: every entry directory holds no output.
    assert not list(pathlib.Path(tmp_path).rglob("output.pkl"))


def test_a_round_diverging_later_stops_the_search_and_keeps_what_was_found(cancer, tmp_path):
    X, y = cancer
    est = estimator(net_with(poison, round=2), memory=tmp_path)
    with pytest.warns(TrainingDivergedWarning, match=r"round 2: training produced non-finite"
                      r".*winning ticket is round 1"):
        est.fit(X, y)
    assert [r["round"] for r in est.rounds_] == [0, 1]
    assert est.winning_ticket_.round == 1
    assert np.all(np.isfinite(est.predict_proba(X)))
    one_round = estimator(net_with(poison, round=99), max_rounds=1).fit(X, y)
    assert_same_ticket(est, one_round, X)
    # The diverged round was not stored: a clean fit trains it.
    TrainingCounter.trainings = -100  # the same net, whose callback now does nothing
    again = estimator(net_with(poison, round=2), memory=tmp_path).fit(X, y)
    assert [r["cached"] for r in again.rounds_] == [True, True, False, False]


def test_weights_that_diverge_under_a_finite_loss_are_caught(cancer):
    X, y = cancer

    def poison_at_the_end(net):
        poison(net)

    # The weights break after the last epoch's loss was recorded.
    net = small_net(callbacks=[("in_round", InRound(0, poison_at_the_end, epoch=4))])
    with pytest.raises(TrainingDivergedError, match=r"round 0: .*hidden_0.weight holds non-"):
        estimator(net).fit(X, y)


# --- every skorch setting ----------------------------------------------------------------


class Module(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(30, 16)
        self.output = nn.Linear(16, 2)

    def forward(self, X):
        return self.output(torch.relu(self.hidden(X)))


def seeded_module() -> Module:
    """A Module drawn from seed 0, whatever the global generator went through before:
    a fit starts from a module instance's own weights, so they must not depend on
    which tests were collected or ran first."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return Module()


@pytest.mark.parametrize("settings", [
    {"callbacks": "disable"},
    {"callbacks": [EarlyStopping(monitor="train_loss", patience=1, threshold=0.5)],
     "max_epochs": 20},
    {"callbacks": [LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=1,
                               gamma=0.5)]},
    {"train_split": ValidSplit(5, stratified=True)},
    {"iterator_train__shuffle": True},
    {"module": seeded_module(), "criterion": nn.CrossEntropyLoss()},
    {"criterion": nn.NLLLoss()},
], ids=["callbacks-disable", "early-stopping", "lr-scheduler", "valid-split", "shuffle",
        "module-instance", "criterion-instance"])
def test_every_skorch_setting_trains_with_masks_held(cancer, settings):
    X, y = cancer
    est = estimator(small_net(**settings)).fit(X, y)
    assert [round(r["sparsity"], 3) for r in est.rounds_] == [0.0, 0.5, 0.75, 0.875]
    assert all(np.isfinite(r["train_loss"]) for r in est.rounds_)
    assert_masks_hold(est)
    assert est.score(X, y) > 0.8
    if "early-stopping" in str(settings.get("callbacks")).lower():
        assert any(r["epochs"] < 20 for r in est.rounds_)


def test_callbacks_disable_runs_no_skorch_callback_but_the_masks(cancer):
    X, y = cancer
    est = estimator(small_net(callbacks="disable")).fit(X, y)
    names = [name for name, _ in est.net_.callbacks_]
    assert names == ["skticket_masks"]
    # The training loss is the mean over each epoch's batches, as skorch's would be.
    history = est.net_.history
    batches = history[-1, "batches"]
    expected = np.average([b["train_loss"] for b in batches],
                          weights=[b["train_batch_size"] for b in batches])
    assert est.rounds_[-1]["train_loss"] == pytest.approx(expected)


def test_a_checkpoint_callback_writes_every_round(cancer, tmp_path):
    X, y = cancer
    checkpoint = Checkpoint(monitor="train_loss_best", dirname=str(tmp_path / "ckpt"))
    est = estimator(small_net(callbacks=[checkpoint])).fit(X, y)
    assert (tmp_path / "ckpt" / "params.pt").exists()
    assert_masks_hold(est)


# --- prune() reads its parameters at prune time -------------------------------------------


@pytest.fixture(scope="module")
def fitted(cancer):
    X, y = cancer
    return LotteryTicketClassifier(small_net(module__hidden_units=(16, 8)), prune_fraction=0.5,
                                   target_sparsity=0.5, random_state=0).fit(X, y)


def test_prune_reads_the_pruning_parameters_when_it_runs(fitted, cancer):
    X, y = cancer
    est = clone(fitted).fit(X, y)
    est.set_params(prune_fraction=0.25, layer_prune_fractions={"output.weight": 0.75},
                   ticket_init="reinit")
    before = est.winning_ticket_.layer_sparsity()
    est.prune(X, y)
    after = est.winning_ticket_.layer_sparsity()
    assert after["hidden_0.weight"] == pytest.approx(1 - 0.5 * 0.75, abs=0.01)
    assert after["output.weight"] == pytest.approx(1 - (1 - before["output.weight"]) * 0.25,
                                                   abs=0.02)
    assert est.winning_ticket_.init == "reinit"

    local, pooled = clone(fitted).fit(X, y), clone(fitted).fit(X, y)
    local.set_params(min_weights_per_layer=6, prune_fraction=0.9).prune(X, y)
    pooled.set_params(scope="global", min_weights_per_layer=6, prune_fraction=0.9).prune(X, y)
    for est in (local, pooled):
        assert int(est.winning_ticket_.masks["output.weight"].sum()) == 6  # 8 left, floor 6
        assert est.winning_ticket_.n_active < fitted.winning_ticket_.n_active * 0.15
    assert (local.winning_ticket_.layer_sparsity()
            != pooled.winning_ticket_.layer_sparsity())


@pytest.mark.parametrize("change, name", [
    ({"net__lr": 0.02}, "net__lr"),
    ({"net__module__hidden_units": (16, 4)}, "net__module__hidden_units"),
    ({"net": small_net(module__hidden_units=(16, 8), max_epochs=5)}, "net__max_epochs"),
    ({"net": small_net(NeuralNetRegressor, module__hidden_units=(16, 8))}, "net"),
    ({"prunable": ["hidden_0.weight"]}, "prunable"),
    ({"rewind_step": 3}, "rewind_step"),
    ({"random_state": 1}, "random_state"),
])
def test_prune_refuses_a_changed_starting_point(fitted, cancer, change, name):
    X, y = cancer
    est = pickle.loads(pickle.dumps(fitted))
    rounds = est.rounds_
    est.set_params(**change)
    with pytest.raises(ValueError, match=rf"^{name} changed since fit.*Call fit again"):
        est.prune(X, y)
    assert est.rounds_ is rounds


def test_prune_accepts_an_equal_net(fitted, cancer):
    X, y = cancer
    est = pickle.loads(pickle.dumps(fitted))
    est.set_params(net=clone(est.net))
    est.prune(X, y)
    assert len(est.rounds_) == len(fitted.rounds_) + 1


# --- cache hygiene -------------------------------------------------------------------------



def test_a_truncated_cache_entry_is_a_miss(cancer, tmp_path, training_calls):
    X, y = cancer
    first = estimator(memory=str(tmp_path)).fit(X, y)
    outputs = list(tmp_path.rglob("output.pkl"))
    assert len(outputs) == 4
    for output in outputs:
        output.write_bytes(output.read_bytes()[:50])
    training_calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joblib says that it could not load them
        second = estimator(memory=str(tmp_path)).fit(X, y)
    assert len(training_calls) == 4
    assert_same_ticket(first, second, X)
    training_calls.clear()
    third = estimator(memory=str(tmp_path)).fit(X, y)  # rewritten: hits again
    assert training_calls == [] and all(r["cached"] for r in third.rounds_)


@pytest.mark.parametrize("breakage", ["missing state", "nan weights", "not a dict"])
def test_a_cache_entry_that_is_no_round_is_trained_again(cancer, tmp_path, training_calls,
                                                        breakage):
    X, y = cancer
    first = estimator(memory=tmp_path).fit(X, y)
    for output in tmp_path.rglob("output.pkl"):
        payload = joblib.load(output)
        if breakage == "missing state":
            del payload["state"]
        elif breakage == "nan weights":
            payload["state"] = {k: np.full_like(v, np.nan) for k, v in payload["state"].items()}
        else:
            payload = [1, 2, 3]
        joblib.dump(payload, output)
    training_calls.clear()
    with pytest.warns(UserWarning, match="stored round in memory is broken"):
        second = estimator(memory=tmp_path).fit(X, y)
    assert len(training_calls) == 4
    assert_same_ticket(first, second, X)
    training_calls.clear()
    estimator(memory=tmp_path).fit(X, y)
    assert training_calls == []


_MODULE_SOURCE = '''
import torch
from torch import nn


class EditedNet(nn.Module):
    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.hidden = nn.Linear(n_features, 16)
        self.output = nn.Linear(16, n_outputs)

    def forward(self, X):
        return torch.softmax(self.output({activation}(self.hidden(X))), dim=-1)
'''


def load_user_module(path, activation):
    path.write_text(_MODULE_SOURCE.format(activation=activation))
    spec = importlib.util.spec_from_file_location("user_nets", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["user_nets"] = module
    spec.loader.exec_module(module)
    return module.EditedNet


def test_editing_the_users_module_class_misses_the_cache(cancer, tmp_path, training_calls):
    X, y = cancer
    source = tmp_path / "user_nets.py"
    try:
        net_class = load_user_module(source, "torch.relu")
        make = lambda cls: LotteryTicketClassifier(  # noqa: E731
            small_net(module=cls, max_epochs=3, batch_size=128),
            prune_fraction=0.5, target_sparsity=0.5, random_state=0, memory=tmp_path)
        relu = make(net_class).fit(X, y)
        training_calls.clear()
        make(load_user_module(source, "torch.relu")).fit(X, y)  # same source: hits
        assert training_calls == []
        edited = make(load_user_module(source, "torch.tanh")).fit(X, y)  # edited forward
        assert len(training_calls) == 2
        assert not np.array_equal(edited.predict_proba(X), relu.predict_proba(X))
    finally:
        sys.modules.pop("user_nets", None)


@pytest.mark.parametrize("as_path", [True, False])
def test_memory_takes_a_path(cancer, tmp_path, training_calls, as_path):
    X, y = cancer
    location = tmp_path / "rounds"
    memory = location if as_path else joblib.Memory(location, verbose=0)
    estimator(memory=memory).fit(X, y)
    assert len(list(location.rglob("output.pkl"))) == 4
    training_calls.clear()
    again = estimator(memory=memory).fit(X, y)
    assert training_calls == [] and all(r["cached"] for r in again.rounds_)


# --- a failed fit leaves everything as it was ---------------------------------------------


def test_a_fit_failing_after_target_encoding_leaves_no_fitted_attribute(cancer):
    X, y = cancer
    est = estimator()
    with pytest.raises(ValueError, match="at least 2 classes"):
        est.fit(X, np.zeros(len(X)))
    assert not hasattr(est, "classes_")
    with pytest.raises(NotFittedError):
        est.predict(X)
    est.fit(X, y)
    classes, proba = est.classes_, est.predict_proba(X)
    with pytest.raises(ValueError, match="at least 2 classes"):
        est.fit(X[:, :5], np.zeros(len(X)))
    assert est.classes_ is classes and est.n_features_in_ == 30
    np.testing.assert_array_equal(est.predict_proba(X), proba)


class DoubleNet(MLP):
    """A module whose constructor changes global torch settings (and breaks the fit)."""

    def __init__(self, n_features, n_outputs, hidden_units=(16,)):
        torch.set_default_dtype(torch.float64)
        torch.set_num_threads(2)
        super().__init__(n_features, n_outputs, hidden_units)


@pytest.mark.parametrize("failure", ["global settings", "divergence", "ctrl-c"])
def test_a_failed_fit_leaves_the_global_state_as_found(cancer, failure):
    X, y = cancer
    if failure == "global settings":
        # A float64 net on float32 data.
        net, error = small_net(module=DoubleNet, module__hidden_units=(16,)), Exception
    elif failure == "divergence":
        net, error = net_with(poison, round=0), TrainingDivergedError
    else:
        net, error = net_with(ctrl_c, round=0), KeyboardInterrupt
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    torch_state = torch.get_rng_state()
    numpy_state = np.random.get_state()  # noqa: NPY002
    with pytest.raises(error):
        estimator(net).fit(X, y)
    assert torch.get_num_threads() == threads
    assert torch.get_default_dtype() == dtype
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1])
    assert after[2:] == numpy_state[2:]
