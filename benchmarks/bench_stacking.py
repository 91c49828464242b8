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
  run): on a CPU the batched product is not cheaper.
- every side is also checked to give the same result: the largest weight
  difference between a stacked member and its training alone, and the
  largest score difference between the two curves.

Wall and process CPU seconds are reported (on a machine shared with other
jobs the CPU seconds vary less); each side is timed ``--repeats`` times,
alternating order, after one warm-up.

    python benchmarks/bench_stacking.py --threads 1
    python benchmarks/bench_stacking.py --threads 1 --parts table --ks 1 5
"""

from __future__ import annotations

import argparse

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


def specs(net_name: str, k: int) -> list[TrainingSpec]:
    load, hidden, batch_size, held_out, epochs, _ = NETS[net_name]
    X, y = load()
    params = dict(module__n_features=X.shape[1], module__n_outputs=int(y.max()) + 1,
                  module__output_activation="softmax", module__hidden_units=hidden,
                  max_epochs=epochs, batch_size=batch_size, callbacks__converged=None,
                  iterator_train__shuffle=True)
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


def table_rows(ks, repeats: int) -> list:
    rows = []
    for net_name in NETS:
        for k in ks:
            members = specs(net_name, k)
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


def curve_rows(repeats: int) -> list:
    X, y = breast_cancer()
    split = int(0.75 * len(y))
    estimator = LotteryTicketClassifier(target_sparsity=0.9, random_state=0).set_params(
        net__max_epochs=40)
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


def kernel_rows(k: int = 5) -> list:
    """Forward and backward of the default net's and LeNet's layers: k members as one
    batched product (what a stack runs) against k products of one member each (what k
    trainings alone run); the least process CPU time of 5 runs of 40 steps."""
    import time

    def least_cpu(step):
        for _ in range(5):
            step()
        runs = []
        for _ in range(5):
            tic = time.process_time()
            for _ in range(40):
                step()
            runs.append((time.process_time() - tic) / 40)
        return min(runs)

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
        rows.append((label, k, 1e3 * one, 1e3 * many, one / many))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=3)
    parser.add_argument("--parts", nargs="+", choices=["table", "curve", "kernels"],
                        default=["table", "curve", "kernels"])
    parser.add_argument("--ks", nargs="+", type=int, default=[1, 2, 5, 10])
    args = parser.parse_args()
    setup(args)
    print_header("Many trainings as one: k stacked members against k trainings alone")
    if "table" in args.parts:
        rows = table_rows(args.ks, args.repeats)
        print()
        print(table(["net, data", "k", "stacked s", "one at a time s",
                     "stacked / one at a time (wall)", "(cpu)",
                     "largest weight difference"], rows))
        print()
    if "curve" in args.parts:
        rows = curve_rows(args.repeats)
        print()
        print(table(["what", "stacked s", "one at a time s", "stacked / one at a time (wall)",
                     "(cpu)", "largest score difference"], rows))
        print("\nTarget: ticket_curve at most 0.5x.\n")
    if "kernels" in args.parts:
        print(table(["layers", "k", "batched product ms (fwd+bwd)",
                     "k products ms (fwd+bwd)", "batched / k products"], kernel_rows()))
        print()


if __name__ == "__main__":
    main()
