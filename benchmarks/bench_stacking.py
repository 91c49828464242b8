"""Many trainings as one: k stacked members against k trainings one at a time.

Three measurements, torch on one thread (``--threads 1``), ``n_jobs=1``:

- ``table``: k = 1, 2, 5, 10 independent trainings of one net, each member
  its own seed, start weights and 90% random mask (the output layer's too),
  trained for a fixed number of epochs (the convergence rule off, so every
  side does the same work): as one stack (:func:`skticket._stacking.train_members`)
  against k trainings one after the other through skorch's loop
  (:func:`skticket._training.train_alone`, what every training ran before
  stacking). The default net (13-256-256-3 on wine and 30-256-256-2 on
  breast cancer, batch 200, 10% held out) and LeNet-300-100
  (784-300-100-10 on digits upsampled to 28x28, batch 60, nothing held out).
- ``curve``: ``ticket_curve`` with 3 repeats and both baselines on breast
  cancer (75% of the rows to train, the rest to score), the default
  classifier to 90% at 40 epochs, stacked (repeats in lockstep) against the
  same curve trained one training at a time through skorch's loop (the
  curve before stacking).
- ``kernels``: the arithmetic alone, forward and backward of the layers of
  both nets, k = 5 members as one batched product (``torch.baddbmm``, what a
  stack runs) against 5 products (``torch.addmm``, what 5 trainings alone
  run): on a CPU the batched product is not cheaper. Each side's achieved
  GFLOP/s, against a reference row: one large float32 ``torch.mm``
  (2048 x 2048 by 2048 x 2048, the least of 5 runs), this core's
  matrix-product peak on the benchmark's threads.
- ``step``: one full training step of the default net (30-256-256-2, Adam,
  90% random masks) on breast cancer, batch 200, through the stacked loop
  itself (:func:`skticket._stacking.train_members`: forward, loss, backward,
  the optimizer's step, the masks re-applied), k = 1 and 5 members: its
  GFLOP/s against the peak says whether a step is arithmetic-bound. The
  members train the first 400 rows, nothing held out and the convergence rule
  off, so an epoch is two full steps of 200 rows; a step's time is the
  difference between trainings of 45 and 5 epochs over the 80 steps between
  them (what a training costs once, building the stack and handing the nets
  back, cancels), the least of 5 runs of each.

Flops are counted as the products compute them, two per multiply-add: the
forward product of every layer, its weight gradient, and its input gradient
for every layer but the first (the inputs need no gradient, and neither the
benchmark's code nor the training computes one). Bias, activation, loss,
optimizer and mask work is not counted: GFLOP/s of a step are a lower bound
on the arithmetic it ran.
- every side is also checked to give the same result: the largest weight
  difference between a stacked member and its training alone, and the
  largest score difference between the two curves.

Wall and process CPU seconds are reported (on a machine shared with other
jobs the CPU seconds vary less); each side is timed ``--repeats`` times,
alternating order, after one warm-up.

    python benchmarks/bench_stacking.py --threads 1
    python benchmarks/bench_stacking.py --threads 1 --parts table --ks 1 5
    python benchmarks/bench_stacking.py --threads 1 --parts kernels step
    python benchmarks/bench_stacking.py --parts table curve --device cuda   # on a GPU
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np
import torch
from _common import (
    add_common_args,
    interleaved,
    lenet_data,
    median,
    print_header,
    setup,
    table,
)
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.preprocessing import StandardScaler

import skticket._curves as curves
import skticket._session as session_module
from skticket import DefaultClassifierNet, LotteryTicketClassifier, ticket_curve
from skticket._stacking import train_members
from skticket._training import TrainingSpec, initial_state, train_alone

SPARSITY = 0.9


def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y.astype(np.int64)


def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y.astype(np.int64)


# net -> (data, hidden layers, batch size, held out, epochs, label)
NETS = {
    "wine": (wine, (256, 256), 200, True, 60,
             "default net 13-256-256-3, wine, batch 200 (one batch an epoch)"),
    "default": (breast_cancer, (256, 256), 200, True, 20,
                "default net 30-256-256-2, breast cancer, batch 200"),
    "lenet": (lenet_data, (300, 100), 60, False, 2,
              "LeNet-300-100, digits 28x28, batch 60"),
}


def specs(net_name: str, k: int, *, epochs: int | None = None, n_rows: int | None = None,
          held_out: bool | None = None, device: str = "cpu") -> list[TrainingSpec]:
    """k members of ``net_name``'s training (``epochs``, its first ``n_rows`` rows and
    ``held_out`` in place of its own where given), on ``device``."""
    load, hidden, batch_size, net_held_out, net_epochs, _ = NETS[net_name]
    epochs = net_epochs if epochs is None else epochs
    held_out = net_held_out if held_out is None else held_out
    X, y = load()
    if n_rows is not None:
        X, y = X[:n_rows], y[:n_rows]
    params = dict(module__n_features=X.shape[1], module__n_outputs=int(y.max()) + 1,
                  module__output_activation="softmax", module__hidden_units=hidden,
                  max_epochs=epochs, batch_size=batch_size, callbacks__converged=None,
                  iterator_train__shuffle=True, device=device)
    if not held_out:
        params["train_split"] = None
    net = DefaultClassifierNet(**params)
    members = []
    for m in range(k):
        start = initial_state(net, m)
        rng = np.random.default_rng(m)
        masks = {name: rng.random(value.shape) >= SPARSITY
                 for name, value in start.items() if name.endswith("weight")}
        start = {name: value * masks[name] if name in masks else value
                 for name, value in start.items()}
        members.append(TrainingSpec(template=net, X=X, y=y, start=start, masks=masks,
                                    seed=100 + m))
    return members


def largest_difference(a, b) -> float:
    first, second = a.net.module_.state_dict(), b.net.module_.state_dict()
    return max(float((first[name] - second[name]).abs().max()) for name in first)


def table_rows(ks, repeats: int, device: str = "cpu") -> list:
    rows = []
    for net_name in NETS:
        for k in ks:
            members = specs(net_name, k, device=device)
            sides = {"stacked": lambda members=members: train_members(members),
                     "one at a time": lambda members=members: [train_alone(spec)
                                                               for spec in members]}
            times = interleaved(sides, repeats)
            gap = max(largest_difference(a, b) for a, b in
                      zip(train_members(members), sides["one at a time"](), strict=True))
            wall = {side: median(times[side]) for side in sides}
            cpu = {side: median(times[f"{side} cpu"]) for side in sides}
            rows.append((NETS[net_name][5], k, wall["stacked"], wall["one at a time"],
                         wall["stacked"] / wall["one at a time"],
                         cpu["stacked"] / cpu["one at a time"], f"{gap:.1e}"))
            print(f"{net_name}, k={k}: done", flush=True)
    return rows


def one_at_a_time():
    """The curve as it trained before stacking: each training alone, in skorch's loop."""
    def sequential(tasks, *, then=None):
        results = [task() for task in tasks]
        return [*results, then(results)] if then is not None else results

    stacked = curves.lockstep, session_module.train_members
    curves.lockstep = sequential
    session_module.train_members = lambda specs, **kwargs: [train_alone(s) for s in specs]
    return stacked


def curve_rows(repeats: int, device: str = "cpu") -> list:
    X, y = breast_cancer()
    split = int(0.75 * len(y))
    estimator = LotteryTicketClassifier(target_sparsity=0.9, random_state=0).set_params(
        net__max_epochs=40, net__device=device)
    args = (estimator, X[:split], y[:split], X[split:], y[split:])

    def alone():
        saved = one_at_a_time()
        try:
            return ticket_curve(*args, n_repeats=3, as_frame=False)
        finally:
            curves.lockstep, session_module.train_members = saved

    sides = {"stacked": lambda: ticket_curve(*args, n_repeats=3, as_frame=False),
             "one at a time": alone}
    times = interleaved(sides, repeats)
    gap = max(abs(a["score"] - b["score"])
              for a, b in zip(sides["stacked"](), alone(), strict=True))
    wall = {side: median(times[side]) for side in sides}
    cpu = {side: median(times[f"{side} cpu"]) for side in sides}
    return [("ticket_curve, 3 repeats, reinit + permute, breast cancer, to 90%",
             wall["stacked"], wall["one at a time"], wall["stacked"] / wall["one at a time"],
             cpu["stacked"] / cpu["one at a time"], f"{gap:.1e}")]


def least_cpu(step, *, calls: int = 40, runs: int = 5, warmup: int = 5) -> float:
    """The least process CPU seconds of one call of ``step``, over ``runs`` runs of
    ``calls`` calls each, after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(runs):
        tic = time.process_time()
        for _ in range(calls):
            step()
        times.append((time.process_time() - tic) / calls)
    return min(times)


def product_flops(batch: int, shapes: list[tuple[int, int]]) -> int:
    """Flops of one member's forward and backward through linear layers of ``shapes``
    ((inputs, outputs) each) on ``batch`` rows, as the products compute them: two per
    multiply-add of the forward product, the weight gradient, and the input gradient of
    every layer but the first (its inputs need none)."""
    per_layer = [2 * batch * inputs * outputs for inputs, outputs in shapes]
    return 2 * sum(per_layer) + sum(per_layer[1:])


PEAK_SIZE = 2048


@functools.cache
def matmul_peak() -> tuple[float, float]:
    """Seconds and GFLOP/s of one float32 ``torch.mm`` of two PEAK_SIZE-square matrices
    on torch's threads (the least of 5): this core's matrix-product peak."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(PEAK_SIZE, PEAK_SIZE, generator=generator) for _ in range(2))
    out = torch.empty(PEAK_SIZE, PEAK_SIZE)
    seconds = least_cpu(lambda: torch.mm(a, b, out=out), calls=1, runs=5, warmup=1)
    return seconds, 2 * PEAK_SIZE ** 3 / seconds / 1e9


def kernel_rows(k: int = 5) -> list:
    """Forward and backward of the default net's and LeNet's layers: k members as one
    batched product (what a stack runs) against k products of one member each (what k
    trainings alone run); the least process CPU time of 5 runs of 40 steps, and the
    GFLOP/s that makes; last, the reference product's row."""
    peak_seconds, peak = matmul_peak()
    rows = []
    for label, batch, shapes in [
            ("default net, breast cancer (30-256-256-2, batch 200)", 200,
             [(30, 256), (256, 256), (256, 2)]),
            ("default net, wine (13-256-256-3, batch 160)", 160,
             [(13, 256), (256, 256), (256, 3)]),
            ("LeNet-300-100 (batch 60)", 60, [(784, 300), (300, 100), (100, 10)])]:
        alone = [[(torch.randn(o, i, requires_grad=True), torch.randn(o, requires_grad=True))
                  for i, o in shapes] for _ in range(k)]
        stacked = [(torch.randn(k, o, i, requires_grad=True),
                    torch.randn(k, o, requires_grad=True)) for i, o in shapes]
        X, X_stacked = torch.randn(batch, shapes[0][0]), torch.randn(k, batch, shapes[0][0])

        def each(alone=alone, X=X):
            for layers in alone:
                hidden = X
                for j, (weight, bias) in enumerate(layers):
                    hidden = torch.addmm(bias, hidden, weight.t())
                    hidden = torch.relu(hidden) if j < len(layers) - 1 else hidden
                hidden.sum().backward()

        def together(stacked=stacked, X_stacked=X_stacked):
            hidden = X_stacked
            for j, (weight, bias) in enumerate(stacked):
                hidden = torch.baddbmm(bias.unsqueeze(1), hidden, weight.transpose(1, 2))
                hidden = torch.relu(hidden) if j < len(stacked) - 1 else hidden
            hidden.sum().backward()

        one, many = least_cpu(together), least_cpu(each)
        gflop = k * product_flops(batch, shapes) / 1e9
        rows.append((label, k, 1e3 * one, 1e3 * many, one / many, f"{gflop / one:.1f}",
                     f"{gflop / many:.1f}", f"{gflop / one / peak:.0%}",
                     f"{gflop / many / peak:.0%}"))
    rows.append((f"reference: one torch.mm, {PEAK_SIZE}x{PEAK_SIZE} by {PEAK_SIZE}x{PEAK_SIZE}, "
                 "float32 (this core's matrix-product peak)", "-", "-", 1e3 * peak_seconds,
                 "-", "-", f"{peak:.1f}", "-", "100%"))
    return rows


STEP_ROWS, STEP_EPOCHS = 400, (5, 45)


def step_rows(ks=(1, 5)) -> list:
    """One training step of the default net on breast cancer, batch 200, through the
    stacked loop, k members: seconds and GFLOP/s (see the module's docstring)."""
    _, hidden, batch_size, _, _, _ = NETS["default"]
    X, y = breast_cancer()
    shapes = list(zip((X.shape[1], *hidden), (*hidden, int(y.max()) + 1), strict=True))
    steps_per_epoch = STEP_ROWS // batch_size
    peak = matmul_peak()[1]
    rows = []
    for k in ks:
        few, many = (specs("default", k, epochs=epochs, n_rows=STEP_ROWS, held_out=False)
                     for epochs in STEP_EPOCHS)
        # Every member trained every epoch on full batches, none alone: else the
        # steps timed would not be the ones counted.
        for result in train_members(many):
            sizes = [batch["train_batch_size"] for epoch in result.net.history
                     for batch in epoch["batches"]]
            if sizes != [batch_size] * (STEP_EPOCHS[1] * steps_per_epoch):
                raise RuntimeError(f"a member trained batches of {sorted(set(sizes))} rows "
                                   f"in {len(result.net.history)} epochs")
        times = [least_cpu(lambda members=members: train_members(members), calls=1,
                           warmup=1) for members in (few, many)]
        step = (times[1] - times[0]) / ((STEP_EPOCHS[1] - STEP_EPOCHS[0]) * steps_per_epoch)
        gflop = k * product_flops(batch_size, shapes) / 1e9
        rows.append((k, batch_size, 1e3 * step, 1e3 * step / k, f"{gflop / step:.1f}",
                     f"{gflop / step / peak:.0%}"))
        print(f"step, k={k}: done", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=3)
    parser.add_argument("--parts", nargs="+", choices=["table", "curve", "kernels", "step"],
                        default=["table", "curve", "kernels", "step"])
    parser.add_argument("--ks", nargs="+", type=int, default=[1, 2, 5, 10])
    parser.add_argument("--device", default="cpu",
                        help="the torch device of the table and curve parts (e.g. cuda)")
    args = parser.parse_args()
    if args.device != "cpu" and {"kernels", "step"} & set(args.parts):
        parser.error("--device applies to the table and curve parts: kernels and step "
                     "time CPU arithmetic")
    setup(args)
    print_header("Many trainings as one: k stacked members against k trainings alone")
    if "table" in args.parts:
        rows = table_rows(args.ks, args.repeats, args.device)
        print()
        print(table(["net, data", "k", "stacked s", "one at a time s",
                     "stacked / one at a time (wall)", "(cpu)",
                     "largest weight difference"], rows))
        print()
    if "curve" in args.parts:
        rows = curve_rows(args.repeats, args.device)
        print()
        print(table(["what", "stacked s", "one at a time s", "stacked / one at a time (wall)",
                     "(cpu)", "largest score difference"], rows))
        print("\nTarget: ticket_curve at most 0.5x.\n")
    if "kernels" in args.parts:
        print(table(["layers", "k", "batched product ms (fwd+bwd)",
                     "k products ms (fwd+bwd)", "batched / k products",
                     "batched GFLOP/s", "k products GFLOP/s", "batched / peak",
                     "k products / peak"], kernel_rows()))
        print()
    if "step" in args.parts:
        rows = step_rows()
        print()
        print(table(["k", "batch (rows per member)", "ms a step", "ms a step per member",
                     "GFLOP/s", "of the peak"], rows))
        seconds, peak = matmul_peak()
        print(f"\nA step of the default net on breast cancer through the stacked loop "
              f"(forward, loss, backward, Adam, masks); peak: one {PEAK_SIZE}-square float32 "
              f"torch.mm, {1e3 * seconds:.0f} ms, {peak:.1f} GFLOP/s.\n")


if __name__ == "__main__":
    main()
