"""Part 2: skticket against IMP written the way PyTorch documents it.

The reference loop: ``torch.nn.utils.prune.l1_unstructured`` on each layer
(``--scope local``) or ``prune.global_unstructured`` over all of them
(``--scope global``), rewinding by copying theta_0 into ``weight_orig`` and
the biases, a fresh optimizer per round, a plain PyTorch training loop over a
``DataLoader``, and ``prune.remove`` at the end. Same module class, data,
epochs, optimizer, batch size, rounds and seed as the skticket fit. Both sides
prune ``ceil(fraction * surviving)`` weights per layer (per pool under global
scope) each round (an int ``amount``, which torch's pruning takes as a count
of the surviving weights); the zero weights of every round's trained net are
counted on both sides and printed. Target: skticket's time <= 0.8x the
reference's.

    python benchmarks/bench_reference.py
    python benchmarks/bench_reference.py --nets lenet --scopes global
"""

from __future__ import annotations

import argparse
import math

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
)
from sklearn.base import clone
from skorch.callbacks import Callback
from torch import nn
from torch.nn.utils import prune
from torch.utils.data import DataLoader, TensorDataset

from skticket import MLP, LotteryTicketClassifier


def _effective_weight(layer: nn.Linear) -> torch.Tensor:
    # After the last optimizer step the pruned module's ``weight`` attribute
    # still holds the value the pre-hook computed before that step, so the
    # trained weight is recomputed from weight_orig and the mask.
    if prune.is_pruned(layer):
        return layer.weight_orig.detach() * layer.weight_mask
    return layer.weight.detach()


def reference_imp(X, y, name: str, *, epochs: int, rounds: int, fraction: float,
                  lr: float, seed: int, scope: str, zero_counts: list | None = None):
    """IMP with torch.nn.utils.prune; returns the final (pruned, unhooked) module."""
    torch.manual_seed(seed)
    cfg = NETS[name]
    model = MLP(X.shape[1], int(y.max()) + 1, hidden_units=cfg["hidden"])
    layers = {layer_name: m for layer_name, m in model.named_modules()
              if isinstance(m, nn.Linear)}
    theta_0 = {key: value.detach().clone() for key, value in model.state_dict().items()}
    loader = DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
                        batch_size=cfg["batch_size"], shuffle=True)
    criterion = nn.CrossEntropyLoss()
    for round_index in range(rounds + 1):
        if round_index > 0:
            trained = {layer_name: _effective_weight(m) for layer_name, m in layers.items()}
            if scope == "local":
                for layer_name, m in layers.items():
                    alive = int(torch.count_nonzero(m.weight_mask)) if prune.is_pruned(m) \
                        else m.weight.numel()
                    prune.l1_unstructured(m, "weight", amount=math.ceil(fraction * alive),
                                          importance_scores=trained[layer_name])
            else:
                alive = sum(int(torch.count_nonzero(m.weight_mask)) if prune.is_pruned(m)
                            else m.weight.numel() for m in layers.values())
                prune.global_unstructured(
                    [(m, "weight") for m in layers.values()],
                    pruning_method=prune.L1Unstructured, amount=math.ceil(fraction * alive),
                    importance_scores={(m, "weight"): trained[layer_name]
                                       for layer_name, m in layers.items()})
            # Rewind the survivors (and the biases) to theta_0 by value.
            with torch.no_grad():
                for layer_name, m in layers.items():
                    m.weight_orig.copy_(theta_0[f"{layer_name}.weight"])
                    m.bias.copy_(theta_0[f"{layer_name}.bias"])
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(epochs):
            for xb, yb in loader:
                optimizer.zero_grad()
                loss = criterion(model(xb), yb)
                loss.backward()
                optimizer.step()
        if zero_counts is not None:
            zero_counts.append([int((_effective_weight(m) == 0).sum()) for m in layers.values()])
    for m in layers.values():
        prune.remove(m, "weight")
    return model


# clone() rebuilds callbacks from their parameters (copying a list given as
# one), so the counts go to a module-level list.
_ZERO_COUNTS: list[list[int]] = []


class _CountZeros(Callback):
    """Appends the zero count of every Linear weight when a training ends."""

    def on_train_end(self, net, X=None, y=None, **kwargs) -> None:
        _ZERO_COUNTS.append([int((m.weight == 0).sum()) for m in net.module_.modules()
                             if isinstance(m, nn.Linear)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--scopes", nargs="+", choices=["local", "global"],
                        default=["local", "global"])
    parser.add_argument("--rounds", type=int, default=11,
                        help="pruning rounds (11 at 0.2: about 91%% sparse)")
    parser.add_argument("--prune-fraction", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup(args)
    print_header("Part 2: skticket vs IMP with torch.nn.utils.prune")

    rows, checks = [], []
    for name in args.nets:
        X, y = net_data(name)
        net = make_net(name, X, y, epochs=args.epochs, lr=args.lr)
        epochs = net.max_epochs
        for scope in args.scopes:
            est = LotteryTicketClassifier(net, prune_fraction=args.prune_fraction,
                                          target_sparsity=None, max_rounds=args.rounds,
                                          scope=scope, random_state=args.seed)

            # Sparsity per round, counted as zero weights of each round's trained net.
            theirs = []
            _ZERO_COUNTS.clear()
            counted = clone(est).set_params(net__callbacks=[("count", _CountZeros())])
            counted.fit(X, y)
            ours = list(_ZERO_COUNTS)
            reference_imp(X, y, name, epochs=epochs, rounds=args.rounds,
                          fraction=args.prune_fraction, lr=args.lr, seed=args.seed,
                          scope=scope, zero_counts=theirs)
            n_weights = sum(m.weight.numel() for m in counted.net_.module_.modules()
                            if isinstance(m, nn.Linear))
            for r, (a, b) in enumerate(zip(ours, theirs, strict=True)):
                # Per layer under local scope; under global scope the split over
                # the layers follows each side's own trained weights.
                same = a == b if scope == "local" else sum(a) == sum(b)
                checks.append((name, scope, r, " / ".join(map(str, a)), " / ".join(map(str, b)),
                               sum(a), sum(b), f"{sum(a) / n_weights:.4f}",
                               f"{sum(b) / n_weights:.4f}", "yes" if same else "NO"))

            def skticket_fit(est=est, X=X, y=y):
                clone(est).fit(X, y)

            def reference_fit(X=X, y=y, name=name, epochs=epochs, scope=scope):
                reference_imp(X, y, name, epochs=epochs, rounds=args.rounds,
                              fraction=args.prune_fraction, lr=args.lr, seed=args.seed,
                              scope=scope)

            times = interleaved({"skticket": skticket_fit, "reference": reference_fit},
                                args.repeats)
            a, b = times["skticket"], times["reference"]
            print(f"{name}, {scope}: skticket {[round(t, 2) for t in a]} s, "
                  f"reference {[round(t, 2) for t in b]} s")
            rows.append((NETS[name]["label"], epochs, args.rounds, scope, median(a), median(b),
                         median(a) / median(b), paired_ratio(a, b),
                         paired_ratio(times["skticket cpu"], times["reference cpu"])))
    print()
    print(table(["net", "epochs", "rounds", "scope", "skticket fit s", "reference s",
                 "ratio of medians", "median paired ratio", "median paired ratio, CPU time"],
                rows))
    print()
    print("Target: skticket / reference <= 0.8. Adam (lr 1e-3) on both sides.\n")
    print("Zero weights after each round's training, skticket vs reference (per layer: "
          "first hidden / second hidden / output):\n")
    print(table(["net", "scope", "round", "skticket zeros per layer",
                 "reference zeros per layer", "skticket zeros", "reference zeros",
                 "skticket sparsity", "reference sparsity", "same"], checks))
    print()
    if not all(row[-1] == "yes" for row in checks):
        raise SystemExit("the two loops disagree on the sparsity of some round")


if __name__ == "__main__":
    main()
