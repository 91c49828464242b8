"""Training hooks: a search defined here, with in-training callbacks of its own, runs,
records and is cached without any change to the package."""

import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from helpers import breast_cancer, small_net
from skorch.callbacks import Callback

from skticket import LotteryTicketClassifier, Search, TrainingHook
from skticket._cache import content_hash, training_key
from skticket._hooks import EarlyBirdStop, LateResetCapture, MaskSchedule
from skticket._mask_schedules import GradualSchedule, MomentumRegrowth
from skticket._pruning import MagnitudeRule
from skticket._training import MASK_CALLBACK, TrainingSpec

# --- a search of one's own -------------------------------------------------------------


class BatchCounter(Callback):
    """Counts the training batches and notes each epoch's training loss."""

    def initialize(self):
        self.batches_ = 0
        self.epoch_losses_ = []
        return self

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        self.batches_ += bool(training)

    def on_epoch_end(self, net, **kwargs):
        self.epoch_losses_.append(net.history[-1, "train_loss"])


@dataclass(frozen=True)
class CountBatches(TrainingHook):
    label: str

    def callback(self):
        return BatchCounter()

    def summary(self, callback):
        return {"label": self.label, "batches": callback.batches_,
                "epoch_losses": callback.epoch_losses_}


class InputDropper(Callback):
    """After the first epoch, prunes every weight from input ``column`` of ``layer``,
    through the masks callback's ``hold``."""

    def __init__(self, layer, column):
        self.layer, self.column = layer, column

    def initialize(self):
        self.dropped_at_ = None
        return self

    def on_epoch_end(self, net, **kwargs):
        if self.dropped_at_ is None:
            holder = dict(net.callbacks_)[MASK_CALLBACK]
            masks = {name: mask.copy() for name, mask in holder.held_.items()}
            masks[self.layer][:, self.column] = False
            holder.hold(net, masks)
            self.dropped_at_ = len(net.history)


@dataclass(frozen=True)
class DropInput(TrainingHook):
    layer: str
    column: int

    def callback(self):
        return InputDropper(self.layer, self.column)

    def summary(self, callback):
        return callback.dropped_at_


class CountedDense(Search):
    """Train the dense net once, counting its batches and dropping input 0 after epoch 1."""

    _parameter_constraints: ClassVar[dict] = {"label": [str]}

    def __init__(self, *, label="a"):
        self.label = label

    def planned_rounds(self, run):
        return 1

    def rounds(self, run):
        trained = run.train(run.masks, hooks=(CountBatches(self.label),
                                              DropInput("hidden_0.weight", 0)))
        run.accept(trained)
        yield trained


@pytest.fixture(scope="module")
def cancer():
    return breast_cancer(rows=300)


def counted(memory, label="a"):
    return LotteryTicketClassifier(small_net(batch_size=64, max_epochs=3),
                                   search=CountedDense(label=label), random_state=0,
                                   memory=memory)


def test_a_search_of_ones_own_runs_records_and_is_cached(cancer, tmp_path, training_calls):
    X, y = cancer
    first = counted(tmp_path).fit(X, y)
    (record,) = first.rounds_
    history = first.net_.history
    # One summary per hook, in order, with what the callbacks saw.
    count, dropped_at = record["hook_summaries"]
    assert count["label"] == "a" and dropped_at == 1
    assert len(history) == record["epochs"] == 3
    per_epoch = history[:, "train_batch_count"]
    assert count["batches"] == sum(per_epoch) == 3 * per_epoch[0]
    assert count["epoch_losses"] == history[:, "train_loss"]
    # The masks a hook moved are the round's, and the net trains on holding them.
    assert not first.winning_ticket_.masks["hidden_0.weight"][:, 0].any()
    assert record["n_active"] == first.winning_ticket_.n_active < first.winning_ticket_.n_prunable
    assert not any(isinstance(callback, (BatchCounter, InputDropper))
                   for _, callback in first.net_.callbacks_)
    first.net_.partial_fit(X, y)
    assert np.all(first.net_.module_.hidden_0.weight.detach().numpy()[:, 0] == 0)
    assert len(training_calls) == 1

    # The same search again: a memory hit, with the summaries stored.
    training_calls.clear()
    again = counted(tmp_path).fit(X, y)
    assert training_calls == []
    assert again.rounds_[0]["cached"]
    assert again.rounds_[0]["hook_summaries"] == record["hook_summaries"]
    assert first.winning_ticket_ == again.winning_ticket_

    # Another value of the hook is another training.
    other = counted(tmp_path, label="b").fit(X, y)
    assert len(training_calls) == 1 and not other.rounds_[0]["cached"]
    assert other.rounds_[0]["hook_summaries"][0]["label"] == "b"


def test_a_round_without_hooks_records_no_summaries(cancer):
    X, y = cancer
    est = LotteryTicketClassifier(small_net(max_epochs=2), max_rounds=1, random_state=0)
    assert [r["hook_summaries"] for r in est.fit(X, y).rounds_] == [[], []]


def test_a_search_must_pass_training_hooks(cancer):
    class Careless(CountedDense):
        def rounds(self, run):
            yield run.train(run.masks, hooks=[BatchCounter()])

    with pytest.raises(TypeError, match="hooks must be TrainingHook instances, got "
                                        "BatchCounter"):
        LotteryTicketClassifier(small_net(max_epochs=1), search=Careless()).fit(*cancer)


# --- hooks are values -----------------------------------------------------------------


def built_in_hooks(layer_fraction=0.1, drop_fraction=0.5):
    magnitude = MagnitudeRule(fraction=0.2, layer_fractions={"output.weight": layer_fraction})
    return [
        LateResetCapture(step=3),
        EarlyBirdStop(target_n_active=10, magnitude=magnitude, window=2, tolerance=0.05,
                      names=("hidden_0.weight", "output.weight")),
        MaskSchedule(GradualSchedule(target_n_active=10, n_prunable=100, magnitude=magnitude)),
        MaskSchedule(MomentumRegrowth(drop_fraction=drop_fraction)),
        CountBatches("a"),
    ]


def test_hooks_are_hashable_picklable_and_equal_by_value():
    for hook, same in zip(built_in_hooks(), built_in_hooks(), strict=True):
        assert hook is not same and hook == same and hash(hook) == hash(same)
        assert pickle.loads(pickle.dumps(hook)) == hook
    assert CountBatches("a") != CountBatches("b")
    changed = built_in_hooks(layer_fraction=0.3, drop_fraction=0.4)
    assert [a != b for a, b in zip(built_in_hooks(), changed, strict=True)] == [
        False, True, True, True, False]


def spec(hooks):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    return TrainingSpec(small_net(), X, y, start={}, masks=None, seed=0, hooks=tuple(hooks))


@dataclass(frozen=True, eq=False)
class ScaleBy(TrainingHook):
    """A hook holding a numpy array (not hashable, but keyed by its values)."""

    factors: np.ndarray

    def callback(self):
        return BatchCounter()

    def summary(self, callback):
        return None


def test_the_training_key_hashes_hooks_by_content():
    factors = np.arange(4.0)
    assert training_key(spec([ScaleBy(factors)])) == training_key(spec([ScaleBy(factors.copy())]))
    assert training_key(spec([ScaleBy(factors)])) != training_key(spec([ScaleBy(factors + 1)]))
    keys = {training_key(spec(hooks)) for hooks in (built_in_hooks(), built_in_hooks())}
    assert len(keys) == 1
    assert training_key(spec(built_in_hooks(drop_fraction=0.4))) not in keys
    # The order of the hooks is the order of their summaries: another training.
    assert training_key(spec(built_in_hooks()[::-1])) not in keys


def test_a_hooks_hash_is_the_same_in_another_process():
    code = ("from test_hooks import built_in_hooks; from skticket._cache import content_hash; "
            "print(content_hash(built_in_hooks()[:4]))")
    tests = os.path.dirname(__file__)
    path = os.pathsep.join([tests, os.path.dirname(tests), os.environ.get("PYTHONPATH", "")])
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONPATH": path}).stdout
    assert printed.strip() == content_hash(built_in_hooks()[:4])
