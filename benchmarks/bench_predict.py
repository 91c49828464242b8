"""Predict time of a fitted ticket against the alternatives, side by side in one process.

load_digits standardized, the default estimator (one hidden layer of 100) at
``target_sparsity=0.9`` against scikit-learn's ``MLPClassifier`` (100 hidden
units). On 10,000 rows (digits tiled) and on one row, medians over repeats,
sides alternating:

- the estimator's ``predict``, ``predict_proba`` and ``score`` (in float64:
  on 10,000 rows through the net's compacted copy, made on each call; on one
  row through the layers as they are);
- skorch's own ``net_.predict`` on the same trained net (a DataLoader fetching
  rows one at a time: the estimator's path before the blocks);
- ``compact().predict``;
- ``MLPClassifier.predict``;
- onnxruntime on the pipeline's ONNX graph, if the ``onnx`` extra is installed.

Ratios are to ``MLPClassifier.predict`` on the same rows: for each repeat, a
side's time per call over the MLP's in the same repeat, then the median over
repeats (machine load that drifts between repeats falls on both alike).
skorch's own path makes one call per repeat (it is 40 times slower), the
others ``--calls``.

    python benchmarks/bench_predict.py --threads 1
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from _common import (
    add_common_args,
    interleaved,
    median,
    paired_ratio,
    print_header,
    setup,
    table,
)
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from skticket import LotteryTicketClassifier


def onnx_predictor(est, X):
    try:
        import onnxruntime as ort
        import skl2onnx

        import skticket.onnx  # noqa: F401  (registers the converters)
    except ImportError:
        return None
    graph = skl2onnx.to_onnx(est, X[:1], options={id(est): {"zipmap": False}})
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(graph.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return lambda rows: session.run(None, {"X": rows})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=10,
                        help="calls on all rows per repeat and side")
    parser.add_argument("--one-row-calls", type=int, default=300)
    parser.set_defaults(repeats=15)
    args = parser.parse_args()
    setup(args)
    print_header("Predict time: estimator, skorch, compact(), MLPClassifier, onnxruntime")

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    est = LotteryTicketClassifier(target_sparsity=0.9, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier(hidden_layer_sizes=(100,), random_state=0).fit(X, y)
    compact = est.compact()
    onnx = onnx_predictor(est, X)

    X_rows = np.tile(X, (-(-args.rows // len(X)), 1))[:args.rows]
    y_rows = np.tile(y, -(-args.rows // len(y)))[:args.rows]
    np.testing.assert_array_equal(est.predict(X_rows), est.net_.predict(X_rows))

    rows = []
    for n, calls in [(args.rows, args.calls), (1, args.one_row_calls)]:
        Xn, yn = X_rows[:n], y_rows[:n]

        def repeat(fn, calls=calls):
            return lambda: [fn() for _ in range(calls)]

        sides = {
            "estimator.predict": (lambda Xn=Xn: est.predict(Xn), calls),
            "estimator.predict_proba": (lambda Xn=Xn: est.predict_proba(Xn), calls),
            "estimator.score": (lambda Xn=Xn, yn=yn: est.score(Xn, yn), calls),
            "skorch net_.predict": (lambda Xn=Xn: est.net_.predict(Xn), 1 if n > 1 else calls),
            "compact().predict": (lambda Xn=Xn: compact.predict(Xn), calls),
            "MLPClassifier.predict": (lambda Xn=Xn: mlp.predict(Xn), calls),
        }
        if onnx is not None:
            sides["onnxruntime (estimator's graph)"] = (lambda Xn=Xn: onnx(Xn), calls)
        wall = interleaved({name: repeat(fn, k) for name, (fn, k) in sides.items()},
                           repeats=args.repeats)
        per_call = {name: [t / k for t in wall[name]] for name, (_, k) in sides.items()}
        reference = per_call["MLPClassifier.predict"]
        for name in sides:
            rows.append([f"{n:,}", name, f"{1e3 * median(per_call[name]):.3f}",
                         f"{paired_ratio(per_call[name], reference):.2f}"])
    print(table(["rows", "side", "ms per call", "/ MLPClassifier.predict"], rows))


if __name__ == "__main__":
    main()
