"""Part 3: a grid over target_sparsity with and without ``memory``.

``GridSearchCV`` over ``target_sparsity`` in [0.5, 0.8, 0.9, 0.95] (p = 0.2,
local pruning) against the single sparsest candidate, [0.95], with the same
folds, both with ``refit=False`` so that only the search is timed. Without
memory every candidate trains its own trajectory (5 + 9 + 12 + 15 = 41 rounds
per fold against 15); with memory the trajectories share every round but the
last of each candidate (18 rounds per fold). Every memory run starts from an
empty cache directory. Target: grid with memory <= 1.3x the single candidate.

Sides alternate order each repeat; ratios are medians of per-repeat ratios.
The rounds each side trains are counted in this process (``--n-jobs 1`` only),
and the cached and uncached grids' scores are checked to be identical.

    python benchmarks/bench_cache.py
    python benchmarks/bench_cache.py --n-jobs 2 --repeats 3
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import numpy as np
import torch
from _common import add_common_args, median, paired_ratio, print_header, setup, table
from _common import interleaved_wall_cpu as interleaved
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from torch import nn

import skticket._session as session_module
from skticket import MLP, LotteryTicketClassifier
from skticket._cache import training_key
from skticket._training import TrainingSpec

GRID = [0.5, 0.8, 0.9, 0.95]


def mlp_data(n_samples: int):
    """30 features, 2 classes (the small tabular MLP of the other benchmarks)."""
    X, y = make_classification(n_samples=n_samples, n_features=30, n_informative=12,
                               n_redundant=6, random_state=0)
    return StandardScaler().fit_transform(X).astype(np.float32), y.astype(np.int64)


def mlp_net(epochs: int) -> NeuralNetClassifier:
    """30-256-256-2, batch 128, Adam."""
    return NeuralNetClassifier(
        MLP, module__hidden_units=(256, 256), criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam, lr=1e-3, batch_size=128, max_epochs=epochs,
        train_split=None, verbose=0,
    )


class Counter:
    """Counts calls into run_training made in this process (cache hits make none)."""

    def __init__(self) -> None:
        self.calls = 0
        self.real = session_module.run_training

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.real(*args, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=3)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=4, help="epochs per round")
    args = parser.parse_args()
    setup(args)
    print_header("memory: one pruning path for a grid over target_sparsity")

    X, y = mlp_data(args.samples)
    net = mlp_net(args.epochs)
    print(f"data: {X.shape[0]} x {X.shape[1]}, 2 classes; net: 30-256-256-2, batch "
          f"{net.batch_size}, {net.max_epochs} epochs per round, Adam; prune_fraction=0.2, "
          f"local; cv={args.cv}, n_jobs={args.n_jobs}, refit=False\n")

    def estimator(memory=None):
        return LotteryTicketClassifier(net, prune_fraction=0.2, random_state=0, memory=memory)

    counter = Counter()
    session_module.run_training = counter
    counts: dict[str, list[int]] = {}
    scores: dict[str, np.ndarray] = {}
    dirs: list[str] = []

    def search(name, candidates, memory: bool):
        def run():
            location = tempfile.mkdtemp(prefix="skticket-bench-") if memory else None
            if location:
                dirs.append(location)
            before = counter.calls
            grid = GridSearchCV(estimator(location), {"target_sparsity": candidates},
                                cv=args.cv, n_jobs=args.n_jobs, refit=False).fit(X, y)
            counts.setdefault(name, []).append(counter.calls - before)
            scores[name] = grid.cv_results_["mean_test_score"]
        return run

    sides = {
        "single candidate [0.95]": search("single candidate [0.95]", [0.95], memory=False),
        "grid, no memory": search("grid, no memory", GRID, memory=False),
        "grid, memory": search("grid, memory", GRID, memory=True),
    }
    # Warm-up: imports, allocator, thread pools; not timed.
    estimator().set_params(target_sparsity=0.5).fit(X[:200], y[:200])
    try:
        times, cpu = interleaved(sides, repeats=args.repeats, warmup=0)
    finally:
        for location in dirs:
            shutil.rmtree(location, ignore_errors=True)
        session_module.run_training = counter.real

    single, single_cpu = times["single candidate [0.95]"], cpu["single candidate [0.95]"]
    rows = []
    for name, t in times.items():
        trained = "n/a (workers)" if args.n_jobs != 1 else str(counts[name][0])
        cpu_ratio = "n/a (workers)" if args.n_jobs != 1 else paired_ratio(cpu[name], single_cpu)
        rows.append([name, median(t), paired_ratio(t, single), cpu_ratio, trained])
    print(table(["search", "wall s (median)", "x single (wall)", "x single (cpu)",
                 "rounds trained"], rows))
    same = np.array_equal(scores["grid, memory"], scores["grid, no memory"])
    print(f"\nmean_test_score identical with and without memory: {same} "
          f"({np.round(scores['grid, memory'], 4).tolist()})")

    # What a hit costs beyond the lookup: the key of one round, hashed here.
    est = estimator().set_params(max_rounds=0)
    X_fold, y_fold = X[: len(X) * (args.cv - 1) // args.cv], y[: len(y) * (args.cv - 1) // args.cv]
    est.fit(X_fold, y_fold)
    spec = TrainingSpec(est._session_.template, X_fold, y_fold,
                        start=est._search_progress_.rewind_point, masks=est._search_progress_.masks,
                        seed=0)
    tic = time.perf_counter()
    n = 20
    for _ in range(n):
        training_key(spec)
    hashing = (time.perf_counter() - tic) / n
    training = est.rounds_[0]["seconds"]
    print(f"hashing one round's key: {1e3 * hashing:.2f} ms; training one round: "
          f"{1e3 * training:.0f} ms ({100 * hashing / training:.2f}%)")
    print(f"torch.get_num_threads()={torch.get_num_threads()}")


if __name__ == "__main__":
    main()
