"""ONNX export: the size of the ticket's graph and onnxruntime's predict time.

A 95%-sparse ticket of a 64-512-512-10 MLP found by IMP (local pruning) on
load_digits, in ``make_pipeline(StandardScaler(), LotteryTicketClassifier)``,
exported with ``skl2onnx.to_onnx`` after ``import skticket.onnx``:

1. size: the ticket's graph (compacted layers) against the graph of the same
   pipeline with a dense net of the same architecture (the same converter on
   a copy of the trained net with no zero weight, so that nothing is removed),
   and the float32 bytes of the dense net's parameters;
2. predict time on 10,000 rows and on one row, side by side in one process,
   sides alternating, medians over repeats: onnxruntime on the ticket's graph
   and on the dense graph, the pipeline's ``predict`` (skorch), and the
   scaler followed by ``compact().predict``. onnxruntime runs as many intra-op
   threads as torch.

    python benchmarks/bench_onnx.py
    python benchmarks/bench_onnx.py --threads 1 --memory /tmp/skticket-cache
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import numpy as np
import onnxruntime as ort
import skl2onnx
import torch
from _common import interleaved_wall_cpu as interleaved
from _common import median, print_header, serving_ticket_estimator, table
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skticket.onnx  # noqa: F401  (registers the converters)
from skticket import CompactClassifier
from skticket._compact import compact_module


def fit_pipeline(args):
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    est = serving_ticket_estimator(args.epochs, args.prune_fraction, args.memory)
    pipe = make_pipeline(StandardScaler(), est)
    tic = time.perf_counter()
    pipe.fit(X, y)
    print(f"IMP fit: {len(est.rounds_)} rounds, {time.perf_counter() - tic:.1f} s; ticket "
          f"sparsity {est.winning_ticket_.sparsity:.4f}, training accuracy "
          f"{pipe.score(X, y):.3f}\n")
    return pipe, X


def dense_twin(est) -> CompactClassifier:
    """The trained net with every zero weight made nonzero: dense-shaped layers."""
    module = copy.deepcopy(est.net_.module_).cpu()
    with torch.no_grad():
        for p in module.parameters():
            p.add_((p == 0) * 1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compact = compact_module(module, sparse_threshold=1.0)
    return CompactClassifier(compact, target=est.compact().target,
                             n_features_in=est.n_features_in_,
                             nonlinearity=est.compact().nonlinearity)


def session(onx, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(onx.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads(N) and onnxruntime's intra-op threads")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per side")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--one-row-calls", type=int, default=200,
                        help="one-row predictions per timed repeat")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per IMP round")
    parser.add_argument("--prune-fraction", type=float, default=0.5)
    parser.add_argument("--memory", default=None,
                        help="a joblib cache directory for the IMP rounds")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    print_header("ONNX export of a 95%-sparse ticket: size and onnxruntime predict time")
    print(f"skl2onnx {skl2onnx.__version__}, onnxruntime {ort.__version__} "
          f"({threads} intra-op threads)\n")

    pipe, X = fit_pipeline(args)
    est = pipe[-1]
    scaler = pipe[0]
    compact = est.compact()
    dense = dense_twin(est)
    ticket_onx = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
    # A CompactClassifier is no scikit-learn estimator and cannot end a
    # Pipeline: the dense graph is the scaler's graph followed by the net's.
    dense_net_onx = skl2onnx.to_onnx(dense, X[:1], options={"zipmap": False})
    scaler_onx = skl2onnx.to_onnx(scaler, X[:1])
    dense_bytes = len(dense_net_onx.SerializeToString()) + len(scaler_onx.SerializeToString())
    ticket_bytes = len(ticket_onx.SerializeToString())
    n_dense = sum(p.numel() for p in est.net_.module_.parameters())

    print("### 1. Size\n")
    print(table(["graph", "network widths", "bytes"], [
        ["ticket pipeline (compacted layers)", " -> ".join(map(str, compact.module_.widths)),
         ticket_bytes],
        ["dense pipeline (scaler graph + dense net graph)",
         " -> ".join(map(str, dense.module_.widths)), dense_bytes],
        ["dense net's float32 parameters", "", 4 * n_dense],
    ]))
    print(f"\nticket graph / dense graph: {ticket_bytes / dense_bytes:.3f}\n")

    ticket_run = session(ticket_onx, threads)
    dense_run = session(dense_net_onx, threads)
    X_rows = np.tile(X, (-(-args.rows // len(X)), 1))[:args.rows]
    labels, proba = ticket_run.run(None, {"X": X_rows})
    assert (labels == pipe.predict(X_rows)).all()
    diff = float(np.abs(proba - pipe.predict_proba(X_rows)).max())
    print(f"onnxruntime vs pipeline: labels equal on {len(X_rows)} rows, max |proba diff| = "
          f"{diff:.1e}\n")

    rows = []
    for n, calls in [(args.rows, 1), (1, args.one_row_calls)]:
        Xn = X_rows[:n]
        scaled = scaler.transform(Xn).astype(np.float32)

        def repeat(fn, calls=calls):
            return lambda: [fn() for _ in range(calls)]

        sides = {
            "onnxruntime, ticket graph": repeat(lambda Xn=Xn: ticket_run.run(None, {"X": Xn})),
            "onnxruntime, dense net graph (scaled input)": repeat(
                lambda s=scaled: dense_run.run(None, {"X": s})),
            "pipeline.predict (skorch)": repeat(lambda Xn=Xn: pipe.predict(Xn)),
            "scaler + compact().predict": repeat(
                lambda Xn=Xn: compact.predict(scaler.transform(Xn))),
        }
        wall, _ = interleaved(sides, repeats=args.repeats)
        for name in sides:
            rows.append([f"{n:,} row{'s' if n > 1 else ''}", name,
                         1e3 * median(wall[name]) / calls])
    print("### 2. Predict time (ms per call, median of repeats)\n")
    print(table(["rows", "side", "ms per call"], rows))


if __name__ == "__main__":
    main()
