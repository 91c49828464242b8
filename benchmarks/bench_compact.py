"""Part 4: compact sparse inference against the dense-shaped masked net.

Three measurements, each side by side in one process, sides alternating,
medians over repeats:

1. the crossover: one layer as a dense and as a CSR ``CompactLinear`` over
   random masks of growing sparsity, 10,000 rows in the compact predictor's
   batches, in float64 as compact networks compute; the crossover is the lowest swept sparsity from which CSR wins at
   every higher one (``skticket._compact.CSR_MIN_SPARSITY`` is set from it);
2. a 95%-sparse ticket of a 64-512-512-10 MLP found by IMP (local pruning) on
   load_digits: predicting 10,000 rows with ``compact()`` against the masked
   module (target: at least 3x faster);
3. the same MLP with random 95% masks, where fewer units die.

The masked side is the trained module itself, forward on all rows at once and
in the compact predictor's batches; the faster of the two is the baseline.
skorch's own ``predict_proba`` (its DataLoader, batches of the net's
batch_size) is timed too, to show what a user of the estimator gains.

    python benchmarks/bench_compact.py
    python benchmarks/bench_compact.py --threads 1 --memory /tmp/skticket-cache
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from _common import (
    add_common_args,
    median,
    paired_ratio,
    print_header,
    serving_ticket_estimator,
    setup,
    table,
)
from _common import interleaved_wall_cpu as interleaved
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler
from torch import nn

from skticket import MLP
from skticket._compact import BATCH_SIZE, CSR_MIN_SPARSITY, CompactLinear, compact_module

SHAPES = [(512, 512), (256, 256), (64, 512), (512, 64)]  # (in_features, out_features)
SPARSITIES = [0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99]


def batched(fn, X: torch.Tensor, batch_size: int):
    return lambda: [fn(X[i:i + batch_size]) for i in range(0, len(X), batch_size)]


def crossover(args) -> float:
    print("### 1. Crossover: one layer, dense vs CSR, random masks\n")
    print(f"{args.rows} rows in batches of {args.batch_size}, float64 in the transposed "
          "layout as in CompactMLP; times in ms, median of repeats.\n")
    gen = torch.Generator().manual_seed(0)
    rows, crossovers = [], {}
    for n_in, n_out in SHAPES:
        X = torch.randn(args.rows, n_in, generator=gen, dtype=torch.float64)
        chunks = [X[i:i + args.batch_size].T.contiguous()
                  for i in range(0, len(X), args.batch_size)]
        wins = {}
        for sparsity in SPARSITIES:
            weight = torch.randn(n_out, n_in, generator=gen, dtype=torch.float64)
            weight *= torch.rand(n_out, n_in, generator=gen) >= sparsity
            bias = torch.randn(n_out, generator=gen, dtype=torch.float64)
            dense = CompactLinear(weight, bias)
            sparse = CompactLinear(weight.to_sparse_csr(), bias)
            with torch.inference_mode():
                wall, cpu = interleaved({
                    "dense": lambda d=dense, c=chunks: [d(h) for h in c],
                    "csr": lambda s=sparse, c=chunks: [s(h) for h in c],
                }, repeats=args.repeats)
            speedup = paired_ratio(wall["dense"], wall["csr"])
            cpu_speedup = paired_ratio(cpu["dense"], cpu["csr"])
            wins[sparsity] = speedup > 1
            rows.append([f"{n_in}x{n_out}", sparsity, 1e3 * median(wall["dense"]),
                         1e3 * median(wall["csr"]), speedup, cpu_speedup])
        winning = [s for s in SPARSITIES if all(wins[t] for t in SPARSITIES if t >= s)]
        crossovers[f"{n_in}x{n_out}"] = min(winning) if winning else float("nan")
    print(table(["layer (in x out)", "sparsity", "dense ms", "csr ms", "csr speed-up (wall)",
                 "csr speed-up (cpu)"], rows))
    print()
    print(table(["layer", "CSR wins from sparsity"], list(crossovers.items())))
    worst = max(crossovers.values())
    print(f"\ncrossover (the highest over the layers): {worst}; "
          f"skticket._compact.CSR_MIN_SPARSITY = {CSR_MIN_SPARSITY}\n")
    return worst


def digits_rows(n_rows: int):
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    reps = -(-n_rows // len(X))
    return X, y, np.tile(X, (reps, 1))[:n_rows]


def compare(label: str, masked: nn.Module, predictor, X_rows: np.ndarray, args,
            estimator=None) -> list:
    """Time the masked module against the compact predictor on ``X_rows``."""
    masked = masked.eval()
    X_t = torch.from_numpy(X_rows)
    one_pass, in_batches = "masked, one pass", f"masked, batches of {args.batch_size}"
    sides = {
        one_pass: lambda: masked(X_t),
        in_batches: batched(masked, X_t, args.batch_size),
        "compact": batched(predictor.module_, X_t, args.batch_size),
    }
    with torch.inference_mode():
        wall, cpu = interleaved(sides, repeats=args.repeats)
        diff = float((masked(X_t) - predictor.module_(X_t)).abs().max())
    baseline = min((one_pass, in_batches), key=lambda k: median(wall[k]))
    speedup = paired_ratio(wall[baseline], wall["compact"])
    cpu_speedup = paired_ratio(cpu[baseline], cpu["compact"])
    vs_one_pass = paired_ratio(wall[one_pass], wall["compact"])
    print(table(["ticket", "side", "wall ms (median)", "cpu ms (median)"],
                [[label, name, 1e3 * median(wall[name]), 1e3 * median(cpu[name])]
                 for name in sides]))
    print(f"\n{label}: compact network {predictor!r}; max |compact - masked| = {diff:.1e}")
    print(f"{label}: speed-up over the masked module ({baseline}, the faster): {speedup:.2f}x "
          f"wall, {cpu_speedup:.2f}x cpu; over its one pass: {vs_one_pass:.2f}x wall")
    end_to_end = "n/a"
    if estimator is not None:
        wall, _ = interleaved({
            "estimator.predict_proba": lambda: estimator.predict_proba(X_rows),
            "compact.predict_proba": lambda: predictor.predict_proba(X_rows),
        }, repeats=args.repeats)
        ratio = paired_ratio(wall["estimator.predict_proba"], wall["compact.predict_proba"])
        end_to_end = f"{ratio:.2f}"
        print(f"{label}: estimator.predict_proba (skorch) "
              f"{1e3 * median(wall['estimator.predict_proba']):.1f} ms vs compact.predict_proba "
              f"{1e3 * median(wall['compact.predict_proba']):.1f} ms: {ratio:.2f}x")
    print()
    return [label, repr(predictor), speedup, cpu_speedup, vs_one_pass, end_to_end, f"{diff:.1e}"]


def imp_ticket(args, X_rows):
    X, y, _ = digits_rows(args.rows)
    est = serving_ticket_estimator(args.epochs, args.prune_fraction, args.memory)
    tic = time.perf_counter()
    est.fit(X, y)
    print(f"IMP fit: {len(est.rounds_)} rounds, {time.perf_counter() - tic:.1f} s "
          f"(memory={args.memory}); ticket sparsity {est.winning_ticket_.sparsity:.4f}, "
          f"training accuracy {est.score(X, y):.3f}")
    print("layer sparsity: " + ", ".join(
        f"{name} {value:.3f}" for name, value in est.winning_ticket_.layer_sparsity().items()))
    return est


def random_ticket(prune_output: bool):
    torch.manual_seed(0)
    module = MLP(n_features=64, n_outputs=10, hidden_units=(512, 512))
    rng = np.random.default_rng(0)
    masks = {name: rng.random(param.shape) >= 0.95 for name, param in module.named_parameters()
             if name.endswith("weight") and (prune_output or name != "output.weight")}
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name in masks:
                param.mul_(torch.as_tensor(masks[name]))
    return module, masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=7)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                        help="rows per pass of the compact predictor")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per IMP round")
    parser.add_argument("--prune-fraction", type=float, default=0.2)
    parser.add_argument("--memory", default=None,
                        help="cache directory for the IMP fit (reruns then skip training)")
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    setup(args)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    print_header("compact(): sparse inference vs the masked net")
    if not args.skip_sweep:
        crossover(args)

    _, _, X_rows = digits_rows(args.rows)
    summary = []
    print("### 2. IMP ticket, 95% sparse, 64-512-512-10 on load_digits\n")
    est = imp_ticket(args, X_rows)
    compact = est.compact(batch_size=args.batch_size)
    summary.append(compare("IMP ticket", est.net_.module_, compact, X_rows, args,
                           estimator=est))

    print("### 3. Random 95% masks, 64-512-512-10\n")
    for prune_output in (True, False):
        module, masks = random_ticket(prune_output)
        label = "random, all layers" if prune_output else "random, hidden layers (output dense)"
        predictor = type(compact)(compact_module(module, masks), classes=np.arange(10),
                                  n_features_in=64, nonlinearity=lambda t: t,
                                  batch_size=args.batch_size)
        summary.append(compare(label, module, predictor, X_rows, args))

    print("### Summary\n")
    print(f"Speed-ups of compact over the masked module in {args.batch_size}-row batches or "
          "in one pass, whichever is faster (wall and cpu), over its one pass (wall), and of "
          "compact.predict_proba over the estimator's (skorch) predict_proba.\n")
    print(table(["ticket", "compact network", "x masked, best", "x masked, best (cpu)",
                 "x masked, one pass", "x estimator.predict_proba", "max abs diff"], summary))


if __name__ == "__main__":
    main()
