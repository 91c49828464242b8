"""Every core of one machine: a 12-candidate GridSearchCV, serial and in parallel.

``GridSearchCV`` over ``prune_fraction`` in [0.2, 0.5, 0.8] x ``target_sparsity``
in [0.5, 0.8, 0.9, 0.95] (12 candidates, cv=3: 204 trainings; ``refit=False``, so
that only the parallel part, the search, is timed), on the small tabular MLP
(30-256-256-2, batch 128, Adam) with the same folds on every side:

- ``n_jobs=1`` with torch's default thread count, and with one torch thread;
- ``n_jobs=2``: joblib's default (loky) backend, 2 worker processes, each of
  which joblib starts with ``cpu_count() // 2`` torch threads;
- ``n_jobs=2`` on joblib's threading backend: skticket runs the fits of one
  process one at a time (they share torch's global generator), so the scores
  equal ``n_jobs=1`` and the time does not drop;
- ``n_jobs=2`` on the threading backend with one torch thread;
- Dask: ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``
  through ``joblib.parallel_config(backend="dask")`` (needs the dask extra),
  once with ``MALLOC_TRIM_THRESHOLD_`` unset in the workers, as the user guide
  (docs/guide/performance.rst) advises, and once as Dask starts them by default: its nannies set it to
  65536, which also fixes glibc's mmap threshold at 128 KiB, so that every
  activation of a 128 x 256 batch is mapped and faulted in afresh.

The worker pools are started, and torch imported in every worker, before any
timing (the start-up times are printed apart): a user pays them once per
session, not once per search. Sides alternate order each repeat; times are
medians. On a shared machine, the last column says how many CPU seconds
processes outside this benchmark took while each side ran (with psutil): a
side that ran beside other work shows it there. Target: both parallel runs at least 1.7x faster than ``n_jobs=1``, with
identical ``cv_results_`` scores.

    python benchmarks/bench_parallel.py
    python benchmarks/bench_parallel.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import joblib
import numpy as np
import torch
from _common import add_common_args, interleaved, median, mlp_data, print_header, setup, table
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from torch import nn

from skticket import MLP, LotteryTicketClassifier

GRID = {"prune_fraction": [0.2, 0.5, 0.8], "target_sparsity": [0.5, 0.8, 0.9, 0.95]}


def _import_in_worker() -> int:
    import skticket  # noqa: F401  (imports torch and skorch)
    time.sleep(0.5)  # long enough that every worker gets one of these
    return os.getpid()


def _cpu_seconds() -> tuple[float, float] | None:
    """Busy CPU seconds of the whole machine, and of this process and its children.

    Their difference over a run is what other work took from the cores (``None``
    without psutil, which the dask extra installs).
    """
    try:
        import psutil
    except ImportError:
        return None
    total = psutil.cpu_times()
    busy = sum(total) - total.idle - getattr(total, "iowait", 0.0)
    own = 0.0
    me = psutil.Process()
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:  # a process that ended meanwhile
            continue
        own += times.user + times.system
    return busy, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=1)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per round")
    args = parser.parse_args()
    setup(args)
    print_header("Every core of one machine: a 12-candidate GridSearchCV in parallel")

    X, y = mlp_data(args.samples)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    net = NeuralNetClassifier(
        MLP, module__hidden_units=(256, 256), criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam, lr=1e-3, batch_size=128, max_epochs=args.epochs,
        iterator_train__shuffle=True, train_split=None, verbose=0)
    clf = LotteryTicketClassifier(net, random_state=0)
    cv = KFold(3, shuffle=True, random_state=0)
    default_threads = torch.get_num_threads()
    print(f"data: {X.shape[0]} x {X.shape[1]}, 2 classes; net: 30-256-256-2, batch 128, "
          f"{args.epochs} epochs per round, Adam; grid {GRID}; cv=3, refit=False\n")

    scores: dict[str, np.ndarray] = {}
    others: dict[str, list[float]] = {}
    fit_seconds: dict[str, list[float]] = {}

    sides: dict[str, Callable[[], None]] = {}  # the table's label -> one timed search
    names: dict[str, str] = {}  # the table's label -> the key of its results

    def add_side(label: str, name: str, n_jobs: int, backend: str | None = None,
                 threads: int | None = None, **backend_params) -> None:
        def run():
            start = _cpu_seconds()
            before = torch.get_num_threads()
            if threads is not None:
                torch.set_num_threads(threads)
            try:
                with joblib.parallel_config(backend=backend or "loky", **backend_params):
                    grid = GridSearchCV(clf, GRID, cv=cv, n_jobs=n_jobs, refit=False).fit(X, y)
            finally:
                torch.set_num_threads(before)
            scores[name] = np.array([grid.cv_results_[f"split{i}_test_score"] for i in range(3)])
            # The fits' own seconds, wherever they ran: the work a side did,
            # against which its wall time shows how well the cores were used.
            fit_seconds.setdefault(name, []).append(3 * float(grid.cv_results_["mean_fit_time"].sum()))
            end = _cpu_seconds()
            if start is not None and end is not None:
                others.setdefault(name, []).append(
                    max(0.0, (end[0] - start[0]) - (end[1] - start[1])))
        sides[label] = run
        names[label] = name

    add_side(f"n_jobs=1, {default_threads} torch threads", "serial", 1)
    add_side("n_jobs=1, 1 torch thread", "serial, 1 thread", 1, threads=1)
    add_side("n_jobs=2 (loky processes)", "loky", 2, backend="loky")
    add_side("n_jobs=2 (threading backend)", "threading", 2, backend="threading")
    add_side("n_jobs=2 (threading backend), 1 torch thread", "threading, 1 thread", 2,
             backend="threading", threads=1)

    tic = time.perf_counter()
    pids = joblib.Parallel(n_jobs=2)(joblib.delayed(_import_in_worker)() for _ in range(2))
    print(f"start-up, not timed below: 2 loky workers importing skticket: "
          f"{time.perf_counter() - tic:.1f} s ({len(set(pids))} processes)")

    clusters = []
    try:
        import dask
        import distributed
    except ImportError:
        print("Dask: not installed (pip install -e \".[dask]\"), its rows are left out")
    else:
        trim_unset = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
        # The cluster without the variable first: a nanny sets the variables it
        # passes on in its own process's environment too, where the workers of a
        # cluster started later would inherit them.
        for label, config in [("MALLOC_TRIM_THRESHOLD_ unset", trim_unset),
                              ("Dask's defaults", {})]:
            tic = time.perf_counter()
            with dask.config.set(config):
                cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                                   processes=True, dashboard_address=None)
            client = distributed.Client(cluster, set_as_default=False)
            clusters.append((client, cluster))
            client.run(_import_in_worker)
            found = set(client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values())
            print(f"start-up, not timed below: LocalCluster of 2 single-threaded worker "
                  f"processes ({label}; MALLOC_TRIM_THRESHOLD_ in the workers: {found}) "
                  f"importing skticket: {time.perf_counter() - tic:.1f} s")
            add_side(f"Dask LocalCluster, 2 workers x 1 thread ({label})", f"dask, {label}", -1,
                     backend="dask", client=client)
        # Both clusters stay up through every side: an idle one (scheduler and
        # workers) takes about 0.15 of a core for heartbeats, the same for every side.
    print()

    try:
        times = interleaved(sides, repeats=args.repeats, warmup=0)
    finally:
        for client, cluster in clusters:
            client.close()
            cluster.close()

    serial = median(times[f"n_jobs=1, {default_threads} torch threads"])
    serial_one = median(times["n_jobs=1, 1 torch thread"])
    rows = []
    for side in sides:
        wall = median(times[side])
        same = np.array_equal(scores[names[side]], scores["serial"])
        other = (f"{median(others[names[side]]):.1f}" if names[side] in others
                 else "n/a (no psutil)")
        rows.append([side, wall, f"{serial / wall:.2f}x", f"{serial_one / wall:.2f}x",
                     "yes" if same else "NO", f"{median(fit_seconds[names[side]]):.1f}", other])
    print(table(["search", "wall s (median)", f"speed-up vs n_jobs=1 ({default_threads} threads)",
                 "speed-up vs n_jobs=1 (1 thread)", "split scores identical to n_jobs=1",
                 "seconds of the 36 fits, summed (median)",
                 "CPU s other processes took meanwhile (median)"], rows))
    print(f"\nmean_test_score: {np.round(scores['serial'].mean(axis=0), 4).tolist()}")
    print(f"repeats: {args.repeats}; torch.get_num_threads() in this process: "
          f"{torch.get_num_threads()}")
    # Two busy workers make a load of about 2 on their own: much more means
    # that other work shared the cores during the run.
    print("load average at the end (1, 5, 15 min): "
          + ", ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
