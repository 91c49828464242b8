"""Part 1: an IMP fit with k pruning rounds against k+1 plain skorch fits.

A fit with k pruning rounds trains k+1 times; this times it against k+1 plain
``fit`` calls of the same skorch net on the same data for the same epochs,
side by side in one process, sides alternating, medians over repeats.
Target: ratio <= 1.05. With Adam, part of any gap is not skticket's: see
``--profile``, which also times every step of the fit outside skorch's
training loop, and the per-round training times.

    python benchmarks/bench_training.py                 # both nets, Adam and SGD
    python benchmarks/bench_training.py --nets lenet --optimizers adam --repeats 7
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import (
    NETS,
    add_common_args,
    interleaved,
    make_net,
    median,
    net_data,
    paired_ratio,
    print_header,
    setup,
    table,
    timed_calls,
)
from sklearn.base import clone
from skorch import NeuralNet

import skticket._search as search
import skticket._session as session
import skticket._training as training
from skticket import LotteryTicketClassifier

OPTIMIZERS = {
    "adam": dict(optimizer=torch.optim.Adam, lr=1e-3),
    "sgd": dict(optimizer=torch.optim.SGD, lr=0.05, optimizer__momentum=0.9,
                optimizer__weight_decay=1e-4),
}
OPTIMIZER_LABELS = {"adam": "Adam 1e-3", "sgd": "SGD 0.05, momentum 0.9, wd 1e-4"}


def estimator(net, args) -> LotteryTicketClassifier:
    return LotteryTicketClassifier(net, prune_fraction=args.prune_fraction,
                                   target_sparsity=args.target_sparsity, random_state=0)


# Where a fit's time goes: (owner, attribute, label), timed for one fit.
_TIMED = [
    (session, "run_training", "run_training (whole round)"),
    (NeuralNet, "partial_fit", "  skorch's training loop (partial_fit)"),
    (training.ApplyMasks, "apply", "    mask multiply after each step (ApplyMasks.apply)"),
    (NeuralNet, "initialize", "  skorch initialize() (module, optimizer, callbacks)"),
    (training, "load_state", "  start weights into the module (load_state)"),
    (training.ApplyMasks, "on_train_begin", "  masks to tensors (ApplyMasks.on_train_begin)"),
    (search, "magnitude_prune", "ranking and new masks (magnitude_prune)"),
    (search, "rewound_weights", "rewound start state (rewound_weights)"),
    (search, "prunable_weights", "trained weights copy (prunable_weights)"),
    (session, "initialized_net", "theta_0 net (initialized_net, once)"),
]


def profile(name: str, opt: str, args) -> None:
    X, y = net_data(name)
    net = make_net(name, X, y, epochs=args.epochs, **OPTIMIZERS[opt])
    est = estimator(net, args)
    clone(est).fit(X, y)  # warm-up
    with timed_calls(_TIMED) as (seconds, calls):
        tic = time.perf_counter()
        fitted = clone(est).fit(X, y)
        total = time.perf_counter() - tic
    plain = []
    for _ in range(len(fitted.rounds_)):
        tic = time.perf_counter()
        clone(net).fit(X, y)
        plain.append(time.perf_counter() - tic)
    outside = total - seconds["run_training (whole round)"]
    rows = [("whole fit", 1, 1e3 * total, 100.0)]
    rows += [(label, calls[label], 1e3 * seconds[label], 100 * seconds[label] / total)
             for _, _, label in _TIMED]
    rows.append(("everything outside run_training", "", 1e3 * outside, 100 * outside / total))
    rows.append((f"{len(plain)} plain skorch fits, for comparison", len(plain),
                 1e3 * sum(plain), 100 * sum(plain) / total))
    print(f"### Where one fit's time goes: {NETS[name]['label']}, {OPTIMIZER_LABELS[opt]}, "
          f"{len(fitted.rounds_)} trainings\n")
    print(table(["part", "calls", "ms", "% of fit"], rows))
    print()
    per_round = [f"{1e3 * r['seconds']:.0f}" for r in fitted.rounds_]
    print(f"training time per round, ms (sparsity 0 to {fitted.rounds_[-1]['sparsity']:.2f}): "
          f"{', '.join(per_round)}; plain skorch fit, median: {1e3 * median(plain):.0f} ms\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS),
                        choices=list(OPTIMIZERS))
    parser.add_argument("--prune-fraction", type=float, default=0.2)
    parser.add_argument("--target-sparsity", type=float, default=0.9,
                        help="0.2 per round to 0.9 is the issue's 11 pruning rounds")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per training (default: per net, see _common.NETS)")
    parser.add_argument("--profile", action="store_true",
                        help="also break one fit per net and optimizer down")
    args = parser.parse_args()
    setup(args)
    print_header("Part 1: IMP fit vs k+1 plain skorch fits")

    rows = []
    for name in args.nets:
        X, y = net_data(name)
        for opt in args.optimizers:
            net = make_net(name, X, y, epochs=args.epochs, **OPTIMIZERS[opt])
            est = estimator(net, args)
            trainings = len(clone(est).fit(X, y).rounds_)

            def skticket_fit(est=est, X=X, y=y):
                clone(est).fit(X, y)

            def plain_fits(net=net, X=X, y=y, n=trainings):
                for _ in range(n):
                    clone(net).fit(X, y)

            # The same dense fits fed by skticket's batch fetching: what is
            # left of the gap is the masks' and the rounds' own cost.
            fed = clone(net).set_params(iterator_train=training.batch_fetching_loader)

            def fed_fits(net=fed, X=X, y=y, n=trainings):
                for _ in range(n):
                    clone(net).fit(X, y)

            times = interleaved({"skticket": skticket_fit, "plain": plain_fits,
                                 "fed": fed_fits}, args.repeats)
            a, b, c = times["skticket"], times["plain"], times["fed"]
            print(f"{name}, {opt}: skticket {[round(t, 2) for t in a]} s, "
                  f"plain {[round(t, 2) for t in b]} s, same feed {[round(t, 2) for t in c]} s")
            rows.append((NETS[name]["label"], OPTIMIZER_LABELS[opt], net.max_epochs,
                         trainings - 1, len(X), median(a), median(b), median(a) / median(b),
                         paired_ratio(a, b),
                         paired_ratio(times["skticket cpu"], times["plain cpu"]),
                         median(c), paired_ratio(a, c)))
    print()
    print(table(["net", "optimizer", "epochs", "pruning rounds k", "rows",
                 "skticket fit s", "k+1 skorch fits s", "ratio of medians",
                 "median paired ratio", "median paired ratio, CPU time",
                 "k+1 skorch fits, batch-fetched, s", "paired ratio to those"], rows))
    print()
    print("Target: skticket fit / k+1 skorch fits <= 1.05. The last two columns feed the "
          "plain fits with skticket's batch fetching, so that their ratio isolates what the "
          "masks and the rounds cost.\n")
    if args.profile:
        for name in args.nets:
            for opt in args.optimizers:
                profile(name, opt, args)


if __name__ == "__main__":
    main()
