"""Cost per epoch of one pruning round against the floor: a bare torch loop.

A round trains through skticket's one training path
(:func:`skticket._training.run_training`: a stack of one,
:func:`skticket._stacking.train_members`). The floor trains the same
module from the same start weights on the same data, in the same batch order
(the same ``RandomSampler`` draws), with the same optimizer hyperparameters on
torch's fastest kernels for them (``fused=True``), the same loss, and the
masks re-applied after every step; nothing else. Both sides train a 90% ticket
(a random mask per layer, the output layer's too) for a fixed number of
epochs, with the convergence rule switched off so that they do the same work;
one torch thread. Each pair is also checked to end at the same weights (the
largest difference is printed): the floor computes what the round computes.

Target: round / floor <= 1.10 per epoch. ``--profile`` breaks one round's
epoch down into its parts (forward and loss, backward, optimizer step, data
loading, the stacked loop's own per-step and per-epoch work).

    python benchmarks/bench_step.py
    python benchmarks/bench_step.py --cases digits lenet --optimizers sgd --profile
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import (
    add_common_args,
    lenet_data,
    median,
    paired_ratio,
    print_header,
    table,
    timed_calls,
)
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNet
from torch.utils.data import BatchSampler, RandomSampler

import skticket._stacking as stacking
from skticket import MLP, DefaultClassifierNet
from skticket._rng import seeded
from skticket._training import TrainingSpec, initial_state, load_state, run_training


def _standardized(load):
    X, y = load(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y.astype(np.int64)


# data, hidden layers, batch size (None: the default net's), epochs per timing
CASES = {
    "iris": (lambda: _standardized(load_iris), (100,), None, 200),
    "breast_cancer": (lambda: _standardized(load_breast_cancer), (100,), None, 100),
    "digits": (lambda: _standardized(load_digits), (100,), None, 30),
    "lenet": (lenet_data, (300, 100), 60, 4),
}
CASE_LABELS = {"iris": "default net, iris", "breast_cancer": "default net, breast cancer",
               "digits": "default net, digits", "lenet": "LeNet-300-100, digits 28x28"}
OPTIMIZERS = {
    "adam": dict(optimizer=torch.optim.Adam, lr=0.01),
    "sgd": dict(optimizer=torch.optim.SGD, lr=0.05, optimizer__momentum=0.9),
}
OPTIMIZER_LABELS = {"adam": "Adam 0.01", "sgd": "SGD 0.05, momentum 0.9"}
SPARSITY = 0.9


def template(case: str, opt: str, X, y) -> NeuralNet:
    """The default classifier net, sized as the estimator sizes it."""
    _, hidden, batch_size, epochs = CASES[case]
    net = DefaultClassifierNet(module__n_features=X.shape[1], module__n_outputs=int(y.max()) + 1,
                               module__output_activation="softmax",
                               module__hidden_units=hidden, max_epochs=epochs,
                               callbacks__converged=None, iterator_train__shuffle=True,
                               # Every row trains, as in the floor: the default nets'
                               # held-out rows would be a tenth less training and a
                               # held-out pass per epoch the floor does not do.
                               train_split=None, **OPTIMIZERS[opt])
    if batch_size is not None:
        net.set_params(batch_size=batch_size)
    elif net.batch_size == "auto":
        net.set_params(batch_size=min(200, len(X)))
    return net


def random_masks(state, names, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.random(state[name].shape) >= SPARSITY for name in names}


def floor_loop(spec: TrainingSpec):
    """The bare loop: what the round computes, and nothing else."""
    net = spec.template
    hyper = {k[len("optimizer__"):]: v for k, v in net.get_params(deep=False).items()
             if k.startswith("optimizer__")}
    X, y = torch.as_tensor(spec.X), torch.as_tensor(spec.y)
    eps = torch.finfo(torch.float32).eps
    with seeded(spec.seed, "cpu"):
        # Built under the seed, as skorch's initialize() builds it: the draws
        # of its initialisation come before the loader's, on both sides.
        module = MLP(**{k[len("module__"):]: v for k, v in net.get_params(deep=False).items()
                        if k.startswith("module__")})
        load_state(module, spec.start)
        params = dict(module.named_parameters())
        pairs = [(params[name].detach(), torch.as_tensor(mask, dtype=torch.float32))
                 for name, mask in spec.masks.items()]
        optimizer = net.optimizer(module.parameters(), lr=net.lr, fused=True, **hyper)
        for param, mask in pairs:
            param.mul_(mask)
        module.train()
        for _ in range(net.max_epochs):
            # The batches skorch's loader draws, without the loader: its
            # iterator draws a base seed, then the RandomSampler its own.
            torch.empty((), dtype=torch.int64).random_()
            for rows in BatchSampler(RandomSampler(range(len(X))), net.batch_size, False):
                rows = torch.as_tensor(rows)
                optimizer.zero_grad()
                X_batch, y_batch = X.index_select(0, rows), y.index_select(0, rows)
                loss = torch.nn.functional.nll_loss(torch.log(module(X_batch) + eps), y_batch)
                loss.backward()
                optimizer.step()
                for param, mask in pairs:
                    param.mul_(mask)
                loss.item()
    return module


def make_spec(case: str, opt: str) -> TrainingSpec:
    X, y = CASES[case][0]()
    net = template(case, opt, X, y)
    start = initial_state(net, 0)
    names = [name for name in start if name.endswith("weight")]
    masks = random_masks(start, names)
    start = {name: value * masks[name] if name in masks else value
             for name, value in start.items()}
    return TrainingSpec(template=net, X=X, y=y, start=start, masks=masks, seed=1)


def timed_pair(spec: TrainingSpec, repeats: int):
    sides = {"round": lambda: run_training(spec), "floor": lambda: floor_loop(spec)}
    for side in sides.values():  # warm-up
        side()
    times = {name: [] for name in sides}
    for r in range(repeats):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            tic = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - tic)
    trained = run_training(spec).net.module_.state_dict()
    floor = floor_loop(spec).state_dict()
    gap = max(float((trained[k] - floor[k]).abs().max()) for k in floor)
    return times, gap


# (owner, attribute, part): timers wrapped around one round's training, a stack of one
# (skticket._stacking).
def _profiled_parts():
    return [
        (stacking, "train_members", "whole training"),
        (stacking._Stack, "train_pass", "training passes"),
        (stacking._Stack, "valid_pass", "held-out passes"),
        (stacking._Stack, "plan", "batch plans"),
        (stacking._Stack, "batch", "data loading"),
        (stacking._Stack, "losses", "forward and loss"),
        (torch.Tensor, "backward", "backward"),
        (stacking._MemberOptimizer, "step", "optimizer step"),
    ]


def profile(case: str, opt: str) -> list:
    spec = make_spec(case, opt)
    run_training(spec)
    with timed_calls(_profiled_parts()) as (seconds, calls):
        result = run_training(spec)
    epochs = len(result.net.history)
    per = {label: 1e3 * s / epochs for label, s in seconds.items()}
    known = (per["forward and loss"] + per["backward"] + per["optimizer step"]
             + per["data loading"] + per["batch plans"])
    passes = per["training passes"] + per["held-out passes"]
    batches = calls["optimizer step"] // epochs
    # forward and loss, data loading and the plans count the held-out passes too.
    parts = [("forward and loss", per["forward and loss"]), ("backward", per["backward"]),
             ("optimizer step", per["optimizer step"]), ("data loading", per["data loading"]),
             ("batch plans (each epoch's order, padding, weights)", per["batch plans"]),
             ("the loop's own (zeroing, masks, loss records)", passes - known),
             ("per epoch and training (histories, the rule, building the nets)",
              per["whole training"] - passes)]
    total = per["whole training"]
    return [(CASE_LABELS[case], OPTIMIZER_LABELS[opt], batches, label, ms, 100 * ms / total)
            for label, ms in parts] + [(CASE_LABELS[case], OPTIMIZER_LABELS[opt], batches,
                                        "whole epoch", total, 100.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--optimizers", nargs="+", choices=list(OPTIMIZERS),
                        default=list(OPTIMIZERS))
    parser.add_argument("--profile", action="store_true",
                        help="also break one round's epoch down into its parts")
    args = parser.parse_args()
    torch.set_num_threads(1 if args.threads is None else args.threads)
    print_header("Cost per epoch: a pruning round against the bare torch loop")
    rows = []
    for case in args.cases:
        for opt in args.optimizers:
            spec = make_spec(case, opt)
            times, gap = timed_pair(spec, args.repeats)
            epochs = spec.template.max_epochs
            rows.append((CASE_LABELS[case], OPTIMIZER_LABELS[opt], spec.template.batch_size,
                         epochs, 1e3 * median(times["round"]) / epochs,
                         1e3 * median(times["floor"]) / epochs,
                         paired_ratio(times["round"], times["floor"]), f"{gap:.1e}"))
            print(f"{case}, {opt}: done", flush=True)
    print()
    print(table(["net, data", "optimizer", "batch", "epochs", "round ms/epoch",
                 "floor ms/epoch", "round / floor (median paired)",
                 "largest weight difference"], rows))
    print("\nTarget: round / floor <= 1.10.\n")
    if args.profile:
        prof = []
        for case in args.cases:
            for opt in args.optimizers:
                prof += profile(case, opt)
        print("### Where a round's epoch goes\n")
        print(table(["net, data", "optimizer", "batches per epoch", "part", "ms per epoch",
                     "% of the epoch"], prof))
        print()


if __name__ == "__main__":
    main()
