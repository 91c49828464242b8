"""Shared pieces of the benchmark scripts: data, nets, interleaved timing, tables.

Every comparison runs both sides in one process, alternating which goes
first (A B B A A B ...), so that load from other processes on a shared
machine falls on both sides alike; results are medians over repeats.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import zoom
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
)
from skorch import NeuralNetClassifier
from torch import nn

from skticket import MLP, LotteryTicketClassifier

# The two nets of the issue: a small tabular MLP and LeNet-300-100.
NETS = {
    "mlp": dict(hidden=(256, 256), batch_size=128, epochs=4,
                label="MLP 30-256-256-2, batch 128"),
    "lenet": dict(hidden=(300, 100), batch_size=60, epochs=3,
                  label="LeNet-300-100 (784-300-100-10), batch 60"),
}

#: scikit-learn's bundled tabular data sets the zero-configuration benchmarks use:
#: name -> (loader, task).
TABULAR = {
    "iris": (load_iris, "classification"),
    "wine": (load_wine, "classification"),
    "breast_cancer": (load_breast_cancer, "classification"),
    "digits": (load_digits, "classification"),
    "diabetes": (load_diabetes, "regression"),
}


def add_common_args(parser: argparse.ArgumentParser, *, repeats: int = 5) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads(N); default: torch's own choice")
    parser.add_argument("--repeats", type=int, default=repeats,
                        help="timed repeats of each side (after one warm-up)")


def serving_ticket_estimator(epochs: int, prune_fraction: float, memory=None):
    """The serving benchmarks' estimator (bench_compact, bench_onnx): IMP with local
    pruning to a 95%-sparse ticket of a 64-512-512-10 MLP for load_digits."""
    net = NeuralNetClassifier(
        MLP, module__hidden_units=(512, 512), criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam, lr=1e-3, batch_size=128, max_epochs=epochs,
        train_split=None, verbose=0,
    )
    return LotteryTicketClassifier(net, prune_fraction=prune_fraction, target_sparsity=0.95,
                                   scope="local", random_state=0, memory=memory)


def setup(args) -> None:
    if args.threads is not None:
        torch.set_num_threads(args.threads)


def rss_kib() -> int:
    """The process's current resident set size in KiB, from /proc (Linux); 0 elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        return 0


def machine_line() -> str:
    return (f"torch {torch.__version__}, torch.get_num_threads()={torch.get_num_threads()}, "
            f"os.cpu_count()={os.cpu_count()}, Python {platform.python_version()}, "
            f"{platform.machine()}")


def print_header(title: str) -> None:
    print(f"## {title}\n")
    print(f"command: `python {' '.join(sys.argv)}`  ")
    print(f"machine: {machine_line()}  ")
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"load average at start (1, 5, 15 min): {load}")
    except OSError:
        pass
    print()


def mlp_data(n_samples: int = 4000, random_state: int = 0):
    """30 features, 2 classes: the small tabular MLP's data."""
    X, y = make_classification(n_samples=n_samples, n_features=30, n_informative=12,
                               n_redundant=6, random_state=random_state)
    return X.astype(np.float32), y.astype(np.int64)


def lenet_data():
    """load_digits upsampled from 8x8 to 28x28 (784 pixels in [0, 1]), 10 classes.

    MNIST's shape without a download: 1797 images, 30 batches of 60 an epoch.
    """
    digits = load_digits()
    up = zoom(digits.images / 16.0, (1, 3.5, 3.5), order=1)  # bilinear, 8 -> 28
    X = np.clip(up, 0, 1).reshape(len(up), 28 * 28).astype(np.float32)
    return X, digits.target.astype(np.int64)


def net_data(name: str):
    return mlp_data() if name == "mlp" else lenet_data()


def make_net(name: str, X, y, *, epochs: int | None = None, lr: float = 1e-3,
             optimizer=torch.optim.Adam, **params) -> NeuralNetClassifier:
    """The skorch net both sides train: sized in full, so that the estimator
    and the plain fits build exactly the same module."""
    cfg = NETS[name]
    return NeuralNetClassifier(
        MLP, module__n_features=X.shape[1], module__n_outputs=int(y.max()) + 1,
        module__hidden_units=cfg["hidden"], criterion=nn.CrossEntropyLoss,
        optimizer=optimizer, lr=lr, batch_size=cfg["batch_size"],
        max_epochs=cfg["epochs"] if epochs is None else epochs,
        # Shuffled, as IMP trains (skorch's own default keeps the data order).
        iterator_train__shuffle=True, train_split=None, verbose=0, **params,
    )


def interleaved(sides: dict[str, Callable[[], object]], repeats: int,
                warmup: int = 1) -> dict[str, list[float]]:
    """Wall seconds of each side per repeat, sides alternating order each repeat.

    Process CPU seconds go under ``"<side> cpu"``: on a machine shared with
    other jobs they vary far less than wall time when torch runs one thread.
    """
    names = list(sides)
    for _ in range(warmup):
        for name in names:
            sides[name]()
    times: dict[str, list[float]] = {key: [] for name in names for key in (name, f"{name} cpu")}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            tic, cpu = time.perf_counter(), time.process_time()
            sides[name]()
            times[name].append(time.perf_counter() - tic)
            times[f"{name} cpu"].append(time.process_time() - cpu)
    return times


def interleaved_wall_cpu(sides: dict[str, Callable[[], object]], repeats: int,
                         warmup: int = 1) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """:func:`interleaved`, its wall and CPU seconds returned as two dicts by side."""
    times = interleaved(sides, repeats, warmup)
    return ({name: times[name] for name in sides},
            {name: times[f"{name} cpu"] for name in sides})


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over repeats of a/b, each pair timed back to back."""
    return median([x / y for x, y in zip(a, b, strict=True)])


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


@contextlib.contextmanager
def timed_calls(parts: Sequence[tuple[object, str, str]]) -> Iterator[tuple[Counter, Counter]]:
    """Time every call of each ``(owner, attribute, label)`` while the block runs.

    Yields two Counters by label, seconds and calls. Each attribute of a class
    or module is wrapped with a timer and put back as it was afterwards
    (an inherited method is removed again rather than copied onto the owner).
    A timer costs well under a microsecond a call.
    """
    seconds, calls = Counter(), Counter()
    patched = []
    for owner, attr, label in parts:
        original = getattr(owner, attr)
        patched.append((owner, attr, vars(owner).get(attr)))

        def timer(*args, _f=original, _label=label, **kwargs):
            tic = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                seconds[_label] += time.perf_counter() - tic
                calls[_label] += 1

        setattr(owner, attr, functools.wraps(original)(timer))
    try:
        yield seconds, calls
    finally:
        for owner, attr, own in reversed(patched):
            if own is None:
                delattr(owner, attr)
            else:
                setattr(owner, attr, own)


@dataclass
class TrainingWork:
    """What the trainings of a block of code trained, read from their nets' histories.

    ``rows`` counts the rows of every training batch of every epoch of every
    training (each row once per epoch it was trained in; a stacked member's
    padding rows are not in its history), ``held_out_rows`` the rows its
    held-out passes scored (a forward pass only, not training), ``epochs``
    the epochs summed over the trainings.
    """

    trainings: int = 0
    epochs: int = 0
    rows: int = 0
    held_out_rows: int = 0
    diverged: int = 0

    def add(self, result: object) -> None:
        history = getattr(getattr(result, "net", None), "history", None)
        if history is None:  # a diverged member comes back as its error, no net
            self.diverged += 1
            return
        self.trainings += 1
        self.epochs += len(history)
        for epoch in history:
            for batch in epoch["batches"]:
                self.rows += int(batch.get("train_batch_size", 0))
                self.held_out_rows += int(batch.get("valid_batch_size", 0))


@contextlib.contextmanager
def counted_trainings() -> Iterator[TrainingWork]:
    """Count what every training started while the block runs trains (:class:`TrainingWork`).

    Every training of a fit goes through ``train_members`` (a session's
    rounds, looked up in ``skticket._session``; ``run_training``, looked up
    in ``skticket._stacking``), which trains what cannot be stacked through
    ``train_alone`` and returns it with the rest; both names are wrapped for
    the block and put back after. Rounds restored from ``memory`` do not
    reach ``train_members`` and are not counted: only what is trained is.
    """
    import skticket._session as session_module
    import skticket._stacking as stacking_module

    work = TrainingWork()
    original = stacking_module.train_members
    depth = 0

    @functools.wraps(original)
    def counting(*args, **kwargs):
        nonlocal depth
        depth += 1
        try:
            results = original(*args, **kwargs)
        finally:
            depth -= 1
        if depth == 0:  # a call inside a counted call is in its results already
            for result in results:
                work.add(result)
        return results

    owners = [session_module, stacking_module]
    saved = [owner.train_members for owner in owners]
    for owner in owners:
        owner.train_members = counting
    try:
        yield work
    finally:
        for owner, value in zip(owners, saved, strict=True):
            owner.train_members = value
