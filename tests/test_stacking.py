"""Many trainings as one (skticket._stacking): each member of a stack trains as alone."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from helpers import OwnSoftmaxModule, breast_cancer, small_net
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

from skticket import MLP, DefaultClassifierNet, DefaultRegressorNet
from skticket._hooks import TrainingHook
from skticket._stacking import train_members
from skticket._training import MASK_CALLBACK, TrainingSpec, initial_state, run_training, train_alone
from skticket.exceptions import TrainingDivergedError

#: The largest difference between a member's trained weights and its solo training's.
TOLERANCE = 1e-5


def random_masks(state, density, seed):
    rng = np.random.default_rng(seed)
    return {name: rng.random(value.shape) < density
            for name, value in state.items() if name.endswith("weight")}


def members(net, X, y, sizes, *, masked=(), sample_weight=None):
    """One spec per size: the first ``size`` rows of a shuffle of its own, its own
    start weights and seed; the members named in ``masked`` hold half their weights."""
    specs = []
    for m, size in enumerate(sizes):
        rows = np.random.default_rng(m).permutation(len(y))[:size]
        start = initial_state(net, m)
        masks = random_masks(start, 0.5, m) if m in masked else None
        if masks is not None:
            start = {name: value * masks[name] if name in masks else value
                     for name, value in start.items()}
        weight = None if sample_weight is None else sample_weight[rows]
        specs.append(TrainingSpec(template=net, X=X[rows], y=y[rows], start=start,
                                  masks=masks, seed=100 + m, sample_weight=weight))
    return specs


def largest_difference(solo, stacked):
    alone, together = solo.net.module_.state_dict(), stacked.net.module_.state_dict()
    assert alone.keys() == together.keys()
    return max(float((alone[name] - together[name]).abs().max()) for name in alone)


def optimizer_states(result):
    """The net's optimizer state per parameter name (torch keys it by parameter)."""
    net = result.net
    return {name: net.optimizer_.state.get(param, {})
            for name, param in net.module_.named_parameters()}


def assert_same_optimizer_state(solo, stacked):
    """The stacked member's net holds the optimizer state its training alone leaves
    (what partial_fit goes on from), to float32 rounding."""
    alone, together = optimizer_states(solo), optimizer_states(stacked)
    for name, state in alone.items():
        kept = {key for key, value in state.items() if value is not None}
        assert set(together[name]) == kept, name
        for key in kept:
            torch.testing.assert_close(together[name][key], state[key], rtol=0,
                                       atol=TOLERANCE, msg=f"{name} {key}")


def assert_as_alone(specs, results=None):
    """Each stacked member ended where its solo training ends: weights, epochs, batches,
    losses, optimizer state."""
    results = train_members(specs) if results is None else results
    for spec, stacked in zip(specs, results, strict=True):
        # Alone: skorch's own loop (run_training is itself a stack of one).
        solo = train_alone(spec)
        assert largest_difference(solo, stacked) <= TOLERANCE
        assert len(stacked.net.history) == len(solo.net.history)
        assert (stacked.net.history[:, "train_batch_count"]
                == solo.net.history[:, "train_batch_count"])
        assert stacked.train_loss == pytest.approx(solo.train_loss, rel=1e-5, abs=1e-7)
        assert_same_optimizer_state(solo, stacked)
    return results


def default_classifier(X, y, **params):
    return DefaultClassifierNet(module__n_features=X.shape[1],
                                module__n_outputs=int(y.max()) + 1,
                                module__output_activation="softmax",
                                module__hidden_units=(32, 16), batch_size=64,
                                iterator_train__shuffle=True, **params)


@pytest.mark.parametrize("optimizer", [
    dict(optimizer=torch.optim.Adam, lr=0.003),
    dict(optimizer=torch.optim.AdamW, lr=0.003, optimizer__weight_decay=0.05,
         optimizer__amsgrad=True),
    dict(optimizer=torch.optim.SGD, lr=0.05, optimizer__momentum=0.9,
         optimizer__weight_decay=1e-3),
    dict(optimizer=torch.optim.SGD, lr=0.05, optimizer__momentum=0.9,
         optimizer__nesterov=True, optimizer__foreach=True),
], ids=["adam", "adamw-amsgrad", "sgd-momentum-decay", "sgd-nesterov-foreach"])
def test_classifier_members_of_unequal_sizes_train_as_alone(optimizer):
    X, y = breast_cancer()
    net = default_classifier(X, y, max_epochs=12, **optimizer)
    # 300 and 200 rows: 5 and 3 batches of 64 (after the held-out tenth), so that the
    # small member sits out the last steps of every epoch.
    specs = members(net, X, y, [300, 200, 569], masked={1, 2})
    results = assert_as_alone(specs)
    assert [r.net.history[-1, "train_batch_count"] for r in results][:2] == [5, 3]


def test_a_step_computes_only_the_members_with_a_batch_in_it(monkeypatch):
    # Given in no order of size: the stack puts the members with most batches first,
    # so that a step the smaller ones sit out does not compute them (padded rows
    # would be arithmetic thrown away).
    import skticket._stacking as stacking

    X, y = breast_cancer()
    net = default_classifier(X, y, max_epochs=2, train_split=None)
    specs = members(net, X, y, [100, 569, 300])
    computed = []
    losses = stacking._Stack.losses

    def recording(self, step, training):
        if training:
            computed.append((len(step.data), sorted(step.active)))
        return losses(self, step, training)

    monkeypatch.setattr(stacking._Stack, "losses", recording)
    results = assert_as_alone(specs)
    batches = [r.net.history[-1, "train_batch_count"] for r in results]
    assert batches == [2, 9, 5]
    assert len(computed) == 2 * max(batches)
    assert [n for n, _ in computed] == 2 * [3, 3, 2, 2, 2, 1, 1, 1, 1]
    assert all(active == list(range(n)) for n, active in computed)


def test_regressor_members_train_as_alone_under_sgd_with_momentum_and_weight_decay():
    X, _ = breast_cancer()
    y = (X[:, :2] @ np.array([[1.0], [-0.5]], dtype=np.float32)
         + 0.1 * X[:, 2:3]).astype(np.float32)
    net = DefaultRegressorNet(module__n_features=X.shape[1], module__n_outputs=1,
                              module__hidden_units=(24,), batch_size=50, max_epochs=10,
                              optimizer=torch.optim.SGD, lr=0.01, optimizer__momentum=0.8,
                              optimizer__weight_decay=1e-3, iterator_train__shuffle=True)
    assert_as_alone(members(net, X, y, [400, 250], masked={0}))


def test_sample_weights_and_unweighted_members_train_as_alone():
    X, y = breast_cancer()
    weight = np.random.default_rng(3).uniform(0.1, 3.0, len(y)).astype(np.float32)
    net = default_classifier(X, y, max_epochs=8)
    weighted = members(net, X, y, [350, 280], sample_weight=weight)
    plain = members(net, X, y, [280])
    assert_as_alone([*weighted, *plain])


def test_sparse_inputs_train_as_alone():
    X, y = breast_cancer()
    X = np.where(np.abs(X) > 0.8, X, 0).astype(np.float32)
    net = small_net(module__n_features=30, module__n_outputs=2,
                    module__output_activation="softmax", max_epochs=5,
                    iterator_train__shuffle=True)
    specs = [TrainingSpec(template=spec.template, X=sp.csr_matrix(spec.X), y=spec.y,
                          start=spec.start, masks=spec.masks, seed=spec.seed)
             for spec in members(net, X, y, [300, 190], masked={1})]
    assert_as_alone(specs)


@pytest.mark.parametrize("optimizer", [
    dict(lr=0.002),
    dict(optimizer=torch.optim.SGD, lr=0.01, optimizer__momentum=0.9),
], ids=["adam", "sgd-momentum"])
def test_a_member_that_converges_early_keeps_its_state_while_the_others_train(optimizer):
    X, y = breast_cancer()
    # A small learning rate: the third member (a handful of rows, its loss flat by the
    # rule's threshold) stops after its patience and leaves the stack (its optimizer
    # state staying with the others' as it was), the others train on.
    net = default_classifier(X, y, max_epochs=40, callbacks__converged__patience=3,
                             callbacks__converged__threshold=0.02, **optimizer)
    specs = members(net, X, y, [500, 400, 60])
    results = assert_as_alone(specs)
    epochs = [len(result.net.history) for result in results]
    assert min(epochs) < max(epochs)


def test_a_diverging_member_is_reported_as_alone_and_the_others_go_on():
    X, _ = breast_cancer()
    y = X[:, :1].copy()
    net = DefaultRegressorNet(module__n_features=30, module__n_outputs=1,
                              module__hidden_units=(16,), batch_size=64, max_epochs=6,
                              lr=0.05, train_split=None)
    huge = y * np.float32(3e19)  # the squared error overflows float32
    specs = [TrainingSpec(template=net, X=X, y=target, start=initial_state(net, m),
                          masks=None, seed=m) for m, target in enumerate([y, huge, -y])]
    results = train_members(specs)
    assert isinstance(results[1], TrainingDivergedError)
    with pytest.raises(TrainingDivergedError) as alone:
        train_alone(specs[1])
    assert str(results[1]) == str(alone.value)
    assert_as_alone([specs[0], specs[2]], [results[0], results[2]])


def test_a_module_of_ones_own_is_stacked_through_vmap():
    X, y = breast_cancer(rows=300)
    net = small_net(module=OwnSoftmaxModule, module__n_features=30, module__n_outputs=2,
                    max_epochs=6, iterator_train__shuffle=True)
    specs = [TrainingSpec(template=net, X=X[m::2], y=y[m::2], start=initial_state(net, m),
                          masks=random_masks(initial_state(net, m), 0.7, m), seed=m)
             for m in range(2)]
    assert_as_alone(specs)


class NormedModule(nn.Module):
    """BatchNorm's running statistics are updated in place: they cannot be stacked."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(30, 8)
        self.norm = nn.BatchNorm1d(8)
        self.output = nn.Linear(8, 2)

    def forward(self, X):
        return torch.softmax(self.output(torch.relu(self.norm(self.hidden(X)))), dim=-1)


class EpochCount(TrainingHook):
    """A hook: a callback per training, which no stack can share."""

    def callback(self):
        from skorch.callbacks import Callback

        return Callback()

    def summary(self, callback):
        return None


def test_what_cannot_be_stacked_trains_alone_and_says_why(capsys):
    X, y = breast_cancer(rows=200)
    normed = small_net(module=NormedModule, max_epochs=3)
    stackable = small_net(module__n_features=30, module__n_outputs=2,
                          module__output_activation="softmax", max_epochs=3)
    specs = [
        TrainingSpec(template=normed, X=X, y=y, start=initial_state(normed, 0), masks=None,
                     seed=0),
        TrainingSpec(template=stackable, X=X, y=y, start=initial_state(stackable, 0),
                     masks=None, seed=0, hooks=(EpochCount(),)),
        TrainingSpec(template=small_net(module__n_features=30, module__n_outputs=2,
                                        module__output_activation="softmax", max_epochs=3,
                                        optimizer=torch.optim.RMSprop),
                     X=X, y=y, start=initial_state(stackable, 0), masks=None, seed=0),
    ]
    results = train_members(specs, verbose=1)
    said = capsys.readouterr().out
    assert "training 1 of 3 trains alone: its module NormedModule has buffers" in said
    # A hooked training (a search's design, not a limit of the stack) is not announced.
    assert "training 2 of 3" not in said
    assert "training 3 of 3 trains alone: its optimizer RMSprop" in said
    for spec, result in zip(specs, results, strict=True):
        # Alone, they are their solo trainings exactly.
        assert largest_difference(train_alone(spec), result) == 0
    assert train_members(specs, verbose=0) and not capsys.readouterr().out


def test_a_criterion_that_ignores_a_label_in_the_data_trains_alone(capsys):
    # NLLLoss's mean leaves the rows it ignores out; a member's mean of the losses per
    # row would count them at 0: such a training is not stacked. Two members, so that
    # a stack would take each one's mean of the losses per row.
    X, y = breast_cancer(rows=200)
    net = default_classifier(X, y, max_epochs=4, criterion__ignore_index=0)
    specs = members(net, X, y, [200, 150])
    results = train_members(specs, verbose=1)
    said = capsys.readouterr().out
    assert "training 1 of 2 trains alone: its criterion ignores the rows labelled 0" in said
    for spec, result in zip(specs, results, strict=True):
        assert largest_difference(train_alone(spec), result) == 0
    # An ignore_index no row carries (NLLLoss's default, -100) stacks.
    plain = members(default_classifier(X, y, max_epochs=4), X, y, [200, 150])
    train_members(plain, verbose=1)
    assert "trains alone" not in capsys.readouterr().out


def test_a_stack_of_one_is_its_solo_training():
    X, y = breast_cancer()
    net = default_classifier(X, y, max_epochs=15)
    spec, = members(net, X, y, [400], masked={0})
    result = run_training(spec)
    solo = train_alone(spec)
    # The same kernels on the same shapes: the same weights.
    assert largest_difference(solo, result) == 0
    assert result.net.history[-1, "train_loss"] == pytest.approx(solo.train_loss, rel=1e-6)
    # Handed back as a solo training hands it back: it predicts, with its masks held.
    assert np.array_equal(result.net.predict(X[:50]), solo.net.predict(X[:50]))
    assert dict(result.net.callbacks_).keys() == dict(solo.net.callbacks_).keys()
    # Its callbacks hold what they hold after skorch's loop: the rule's resolved
    # settings and best epoch, the masks held.
    rule, alone_rule = (dict(r.net.callbacks_)["converged"] for r in (result, solo))
    for name in ("monitor_", "load_best_", "best_epoch_", "misses_", "dynamic_threshold_"):
        assert getattr(rule, name) == pytest.approx(getattr(alone_rule, name), rel=1e-6)
    holder = dict(result.net.callbacks_)[MASK_CALLBACK]
    assert not holder.moved_ and holder.held_.keys() == spec.masks.keys()


def test_members_of_different_settings_train_in_stacks_of_their_own():
    X, y = breast_cancer(rows=300)
    fast, slow = (small_net(module__n_features=30, module__n_outputs=2,
                            module__output_activation="softmax", lr=lr,
                            iterator_train__shuffle=True) for lr in (0.01, 0.001))
    specs = [TrainingSpec(template=net, X=X, y=y, start=initial_state(net, m), masks=None,
                          seed=m) for m, net in enumerate([fast, slow, fast])]
    assert_as_alone(specs)


def test_the_stacked_gradients_stay_where_the_optimizer_reads_them(monkeypatch):
    # The optimizer holds each member's slice of the stacked gradients: autograd must
    # accumulate into them in place, never swap in a new tensor.
    from skticket import _stacking

    seen = []
    original = _stacking._MemberOptimizer.step

    def step(self, chosen):
        seen.append(all(grad.data_ptr() == whole.grad[m].data_ptr()
                        for m in chosen
                        for grad, whole in zip(self.grads[m], self.stacked, strict=True)))
        return original(self, chosen)

    monkeypatch.setattr(_stacking._MemberOptimizer, "step", step)
    X, y = breast_cancer(rows=200)
    net = small_net(module__n_features=30, module__n_outputs=2,
                    module__output_activation="softmax", max_epochs=2)
    train_members(members(net, X, y, [200, 150]))
    assert seen and all(seen)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_members_on_cuda_train_as_alone():
    X, y = breast_cancer()
    net = default_classifier(X, y, max_epochs=5, device="cuda")
    assert_as_alone(members(net, X, y, [300, 200], masked={0}))


def test_nets_that_classify_with_other_losses_stack():
    X, y = breast_cancer(rows=300)
    net = NeuralNetClassifier(MLP, module__n_features=30, module__n_outputs=2,
                              module__hidden_units=(8,), criterion=nn.CrossEntropyLoss,
                              optimizer=torch.optim.Adam, lr=0.01, max_epochs=4,
                              batch_size=40, train_split=None)
    assert_as_alone(members(net, X, y, [300, 120]))
    regressor = NeuralNetRegressor(MLP, module__n_features=30, module__n_outputs=2,
                                   module__hidden_units=(8,), criterion=nn.L1Loss,
                                   optimizer=torch.optim.Adam, lr=0.01, max_epochs=4,
                                   batch_size=40, train_split=None)
    assert_as_alone(members(regressor, X, X[:, :2].copy(), [300, 120]))


# --- the users: ticket_curve's repeats and the CV estimators' folds, in lockstep ---------


def stack_sizes(monkeypatch):
    """The number of members of each stack trained (one training's net holds its own
    masks: members must still share a stack)."""
    from skticket import _stacking

    sizes = []
    real = _stacking._train_stack
    monkeypatch.setattr(_stacking, "_train_stack",
                        lambda members: sizes.append(len(members)) or real(members))
    return sizes


def one_at_a_time(monkeypatch, module):
    """``module``'s lockstep replaced by the tasks run one after the other, each training
    alone: what the search gives without stacking."""
    import skticket._session as session_module
    from skticket._training import train_alone

    def sequential(tasks, *, then=None):
        results = [task() for task in tasks]
        return [*results, then(results)] if then is not None else results

    monkeypatch.setattr(module, "lockstep", sequential)
    monkeypatch.setattr(session_module, "train_members",
                        lambda specs, **kwargs: [train_alone(spec) for spec in specs])


def curve_classifier():
    from skticket import LotteryTicketClassifier

    net = small_net(module__hidden_units=(12,), max_epochs=4, iterator_train__shuffle=True)
    return LotteryTicketClassifier(net, prune_fraction=0.5, target_sparsity=0.75,
                                   random_state=0)


def test_ticket_curve_trains_its_repeats_and_baselines_as_stacks(monkeypatch):
    import skticket._curves as curves
    from skticket import ticket_curve

    X, y = breast_cancer(rows=200)
    args = (curve_classifier(), X[:150], y[:150], X[150:], y[150:])
    sizes = stack_sizes(monkeypatch)
    stacked = ticket_curve(*args, n_repeats=3, as_frame=False)
    # Per step: the 3 repeats' dense round, their round 1, the 2 baselines of each
    # round 1, their round 2, its baselines.
    assert sizes == [3, 3, 6, 3, 6]
    monkeypatch.undo()
    one_at_a_time(monkeypatch, curves)
    alone = ticket_curve(*args, n_repeats=3, as_frame=False)
    assert [{k: v for k, v in row.items() if k != "score"} for row in stacked] == [
        {k: v for k, v in row.items() if k != "score"} for row in alone]
    np.testing.assert_allclose([row["score"] for row in stacked],
                               [row["score"] for row in alone], atol=1e-6)


def test_cv_trains_its_folds_and_the_full_path_beside_them_and_the_refit_trains_nothing(
        monkeypatch):
    import skticket._cv as cv_module
    from skticket import LotteryTicketClassifierCV

    X, y = breast_cancer(rows=180)
    make = lambda: LotteryTicketClassifierCV(  # noqa: E731
        small_net(module__hidden_units=(12,), max_epochs=3), prune_fraction=0.5,
        target_sparsity=0.75, cv=3, random_state=0)
    sizes = stack_sizes(monkeypatch)
    stacked = make().fit(X, y)
    # 3 rounds (dense, 50%, 75%), each of 3 folds and the full-data path beside them;
    # the refit's rounds are that path's.
    assert sizes == [4, 4, 4]
    monkeypatch.undo()
    one_at_a_time(monkeypatch, cv_module)
    alone = make().fit(X, y)
    assert stacked.best_index_ == alone.best_index_
    np.testing.assert_allclose(stacked.cv_results_["mean_test_score"],
                               alone.cv_results_["mean_test_score"], atol=1e-6)
    alone_state = alone.net_.module_.state_dict()
    stacked_state = stacked.net_.module_.state_dict()
    assert max(float((alone_state[k] - stacked_state[k]).abs().max())
               for k in alone_state) <= TOLERANCE


def test_cv_on_workers_trains_the_full_path_as_a_task_and_the_refit_here_trains_nothing(
        monkeypatch):
    from skticket import LotteryTicketClassifier, LotteryTicketClassifierCV

    X, y = breast_cancer(rows=180)
    params = dict(prune_fraction=0.5, target_sparsity=0.75, random_state=0)
    net = small_net(module__hidden_units=(12,), max_epochs=3)
    # Counts the stacks trained in this process; the workers are processes of their own.
    sizes = stack_sizes(monkeypatch)
    # A score that rises with sparsity: the refit goes to the last level, all 3 rounds.
    sparsest = lambda est, X, y: est.winning_ticket_.sparsity  # noqa: E731
    parallel = LotteryTicketClassifierCV(net, cv=3, n_jobs=2, scoring=sparsest,
                                         **params).fit(X, y)
    assert parallel.best_index_ == 2 and len(parallel.rounds_) == 3
    assert sizes == []
    monkeypatch.undo()
    # The refit is the plain estimator up to the chosen level, each training its solo one.
    plain = LotteryTicketClassifier(net, max_rounds=parallel.best_index_, **params).fit(X, y)
    for name, value in plain.net_.module_.state_dict().items():
        assert torch.equal(parallel.net_.module_.state_dict()[name], value), name
    assert ([r["epochs"] for r in parallel.rounds_] == [r["epochs"] for r in plain.rounds_])
    np.testing.assert_array_equal(parallel.predict_proba(X), plain.predict_proba(X))


def test_with_trainings_runs_its_task_once_and_lockstep_finds_what_it_trained(monkeypatch):
    from skticket import LotteryTicketClassifier, ticket_path
    from skticket._session import lockstep, with_trainings

    X, y = breast_cancer(rows=120)
    est = LotteryTicketClassifier(small_net(module__hidden_units=(12,), max_epochs=2),
                                  prune_fraction=0.5, target_sparsity=0.75, random_state=0)
    runs = []

    def path():
        runs.append(1)
        return [point.record["n_active"] for point in ticket_path(est, X, y)]

    levels, trained = with_trainings(path)
    # Run once (in lockstep it would run again for each round), its 3 trainings kept.
    assert len(runs) == 1 and len(trained) == 3
    sizes = stack_sizes(monkeypatch)
    assert lockstep([path], trained=trained) == [levels]
    assert sizes == []  # every training found, none trained again


def test_memory_holds_each_member_as_its_solo_training(tmp_path):
    from joblib import Memory

    from skticket._cache import CachedTrainingResult, cached_training, cached_trainings

    memory = Memory(tmp_path, verbose=0)
    X, y = breast_cancer(rows=200)
    net = small_net(module__n_features=30, module__n_outputs=2,
                    module__output_activation="softmax", max_epochs=3,
                    iterator_train__shuffle=True)
    first, second, third = members(net, X, y, [200, 150, 120], masked={1})
    # The first alone, before any stack: stored under its solo key.
    alone = cached_training(memory, run_training, first)
    trained = []

    def counted(specs):
        trained.extend(specs)
        return train_members(specs)

    stacked = cached_trainings(memory, counted, [first, second, third])
    # The stored one is not trained again; the two others are, as one stack.
    assert trained == [second, third]
    assert isinstance(stacked[0], CachedTrainingResult)
    assert largest_difference(alone, stacked[0]) == 0
    # A member stored by the stack is what its solo training finds.
    restored = cached_training(memory, run_training, second)
    assert isinstance(restored, CachedTrainingResult)
    assert largest_difference(restored, stacked[1]) == 0
    assert largest_difference(run_training(second), restored) <= TOLERANCE


def test_lockstep_refuses_a_task_that_asks_for_other_trainings_on_each_run():
    from skticket import LotteryTicketClassifier, ticket_path
    from skticket._session import lockstep

    X, y = breast_cancer(rows=100)
    # random_state=None: every run of the task draws other seeds, so other trainings.
    estimator = LotteryTicketClassifier(
        small_net(module__hidden_units=(8,), max_epochs=2), prune_fraction=0.5,
        target_sparsity=0.5)
    with pytest.raises(RuntimeError, match="did not get further than on its last run"):
        lockstep([lambda: list(ticket_path(estimator, X, y))])


def test_cv_without_an_int_seed_trains_its_folds_one_after_the_other(monkeypatch):
    import skticket._cv as cv_module
    from skticket import LotteryTicketClassifierCV

    monkeypatch.setattr(cv_module, "lockstep", lambda *args, **kwargs: pytest.fail(
        "lockstep needs fixed seeds"))
    X, y = breast_cancer(rows=120)
    cv = LotteryTicketClassifierCV(small_net(module__hidden_units=(8,), max_epochs=2),
                                   prune_fraction=0.5, target_sparsity=0.5, cv=2).fit(X, y)
    assert cv.cv_results_["mean_test_score"].shape == (2,)
