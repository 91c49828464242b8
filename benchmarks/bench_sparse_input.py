"""Peak memory of a fit and a prediction on a large sparse X, against its dense size.

A 100,000 x 10,000 CSR matrix with 0.1% non-zeros (float32: about 12 MB as
CSR, 4 GB dense) is fitted (the dense round and one pruning round, one epoch
each, 32 hidden units) and predicted in full. Each side runs in a fresh
subprocess: the peak resident set size (``ru_maxrss``) above the process's size
once everything is imported and the data is built, against the size of the
dense equivalent. Batches are densified as they are used, so the peak follows
the batch (200 rows x 10,000 = 8 MB) and the prediction blocks (4,096 rows =
160 MB), not the matrix.

    python benchmarks/bench_sparse_input.py
    python benchmarks/bench_sparse_input.py --rows 20000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _common import print_header, rss_kib, table

_HERE = os.path.dirname(os.path.abspath(__file__))




def child(rows: int, features: int, density: float, threads: int | None) -> None:
    import resource
    import time

    import numpy as np
    import scipy.sparse as sp
    import torch

    from skticket import LotteryTicketClassifier

    if threads is not None:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    X = sp.random(rows, features, density=density, format="csr", dtype=np.float32,
                  random_state=rng)
    y = np.asarray(X[:, : features // 100].sum(axis=1)).ravel() > 0
    est = LotteryTicketClassifier(target_sparsity=0.5, prune_fraction=0.5, max_rounds=1,
                                  random_state=0)
    est.set_params(net__max_epochs=1, net__module__hidden_units=(32,))
    # Lazy imports and torch's start-up are part of the baseline.
    est.fit(X[:256], y[:256])
    before = rss_kib()
    tic = time.perf_counter()
    est.fit(X, y)
    fit_seconds = time.perf_counter() - tic
    tic = time.perf_counter()
    predicted = est.predict(X)
    predict_seconds = time.perf_counter() - tic
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "peak_above_start_mib": (peak - before) / 1024,
        "csr_mib": (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20,
        "dense_mib": rows * features * 4 / 2**20,
        "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
        "predicted_rows": len(predicted),
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=10_000)
    parser.add_argument("--density", type=float, default=0.001)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.rows, args.features, args.density, args.threads)
        return
    print_header("Sparse X: peak memory of a fit and a prediction against the dense size")
    command = [sys.executable, os.path.join(_HERE, __file__), "--child", "--rows",
               str(args.rows), "--features", str(args.features), "--density",
               str(args.density)]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=_HERE)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(table(
        ["X", "CSR size", "dense size", "peak RSS above start", "peak / dense", "fit s",
         "predict s"],
        [[f"{args.rows:,} x {args.features:,}, {100 * args.density:g}% non-zero",
          f"{result['csr_mib']:.1f} MiB", f"{result['dense_mib']:,.0f} MiB",
          f"{result['peak_above_start_mib']:.1f} MiB",
          f"{result['peak_above_start_mib'] / result['dense_mib']:.4f}",
          f"{result['fit_seconds']:.1f}", f"{result['predict_seconds']:.1f}"]]))


if __name__ == "__main__":
    main()
