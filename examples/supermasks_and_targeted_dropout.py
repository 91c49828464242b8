"""Supermasks and targeted dropout on digits: what a mask alone does, and training for pruning.

Two claims from the literature on what lottery tickets are made of, tried on
``sklearn.datasets.load_digits`` with LeNet-300-100 (hidden layers of 300 and
100 units, Adam at 1.2e-3, batches of 60, as ``lenet_digits.py``; 1,797 8x8
images scaled to [0, 1], a stratified 30% test split), with 2 seeds:

1. **Learned supermasks** (Ramanujan et al., CVPR 2020; Zhou et al., NeurIPS
   2019): a mask learned by edge-popup over the frozen random weights theta_0
   (``search=Supermask()``), every layer at 50% density, scores far above
   chance, near the trained net. Scored against chance (the test share of the
   most frequent class), against IMP's 50% ticket trained
   (``prune_fraction=0.5, target_sparsity=0.5``, every layer at 50%) and, for
   scale, IMP's mask on theta_0 untrained. Two initial weights theta_0: the
   module's own (torch's default for a linear layer, uniform on
   ``+-1/sqrt(fan_in)``) and Kaiming normal (std ``sqrt(2/fan_in)``, the
   paper's), each with the scores' learning rate at the net's 1.2e-3 and at
   1e-2.
2. **Targeted dropout** (Gomez et al., 2019): a net trained dense with
   targeted dropout (``net__callbacks=[TargetedDropout(...)]``; weights,
   ``rate`` 0.5, ``targeted_fraction`` 0.5 and 0.9) loses less accuracy when it
   is then pruned in one shot by magnitude, without retraining (every layer
   at the same rate, by rank), to 90% and 95% sparsity, than the same net
   trained without it.

Every training runs ``epochs`` epochs (20 by default, fewer than the 30 of
``lenet_digits.py``, to keep the run to about a minute on 2 cores) with no
validation split. Test accuracy, mean over the seeds with each seed's value.

Run:  python examples/supermasks_and_targeted_dropout.py      (about a minute on 2 cores)
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier

from skticket import MLP, LotteryTicketClassifier, Supermask, TargetedDropout

SPARSITIES = (0.9, 0.95)
DROPOUTS = {"none": None,
            "targeted 0.5": {"rate": 0.5, "targeted_fraction": 0.5},
            "targeted 0.9": {"rate": 0.5, "targeted_fraction": 0.9}}


class KaimingMLP(MLP):
    """:class:`~skticket.MLP` with its weights drawn Kaiming normal (std sqrt(2 / fan_in)),
    the initialisation edge-popup's paper reports its supermasks with."""

    def __init__(self, n_features: int, n_outputs: int, hidden_units=(100,),
                 output_activation=None) -> None:
        super().__init__(n_features, n_outputs, hidden_units,
                         output_activation=output_activation)
        for layer in self.modules():
            if isinstance(layer, torch.nn.Linear):
                torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")


INITS = {"default": MLP, "kaiming": KaimingMLP}


def load_data(random_state: int = 0):
    """Digits scaled to [0, 1]; a stratified 70/30 train/test split."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=random_state)


def lenet(module=MLP, hidden_units=(300, 100), epochs: int = 20,
          callbacks=None) -> NeuralNetClassifier:
    """LeNet-300-100 as ``lenet_digits.py`` trains it, every epoch on every training row."""
    return NeuralNetClassifier(module, module__hidden_units=hidden_units,
                               optimizer=torch.optim.Adam, lr=1.2e-3, max_epochs=epochs,
                               batch_size=60, train_split=None, callbacks=callbacks,
                               verbose=0)


def at_half(net, seed: int, **params) -> LotteryTicketClassifier:
    """Every layer at 50% density."""
    return LotteryTicketClassifier(net, prune_fraction=0.5, target_sparsity=0.5,
                                   scope="local", random_state=seed, **params)


def accuracy(net, X, y) -> float:
    return float(np.mean(net.predict(X) == y))


@torch.no_grad()
def pruned_accuracy(net, X, y, sparsity: float) -> float:
    """Test accuracy of ``net`` with every weight matrix pruned to ``sparsity`` by
    magnitude, in one shot, without retraining; the net is left as it was."""
    module = net.module_
    saved = {name: value.clone() for name, value in module.state_dict().items()}
    for layer in module.modules():
        if isinstance(layer, torch.nn.Linear):
            weight = layer.weight
            kept = weight.numel() - round(sparsity * weight.numel())
            order = torch.argsort(weight.abs().flatten(), descending=True, stable=True)
            mask = torch.zeros(weight.numel(), dtype=weight.dtype)
            mask[order[:kept]] = 1
            weight.mul_(mask.reshape(weight.shape))
    score = accuracy(net, X, y)
    module.load_state_dict(saved)
    return score


@torch.no_grad()
def untrained_accuracy(estimator, X, y) -> float:
    """Test accuracy of ``estimator``'s winning ticket at its start weights (theta_0
    under its mask), untrained."""
    net = estimator.net_
    saved = {name: value.clone() for name, value in net.module_.state_dict().items()}
    net.module_.load_state_dict({name: torch.as_tensor(value) for name, value
                                 in estimator.winning_ticket_.weights.items()})
    score = accuracy(net, X, y)
    net.module_.load_state_dict(saved)
    return score


def supermask_rows(data, seeds, hidden_units, epochs) -> list[dict]:
    X_train, X_test, y_train, y_test = data
    rows = []
    for init, module in INITS.items():
        for seed in seeds:
            net = lenet(module, hidden_units, epochs)
            imp = at_half(net, seed).fit(X_train, y_train)
            found = {"IMP 50% ticket, trained": imp.score(X_test, y_test),
                     "IMP 50% mask on theta_0, untrained": untrained_accuracy(imp, X_test,
                                                                             y_test)}
            for lr in (None, 1e-2):
                learned = at_half(net, seed, search=Supermask(lr=lr)).fit(X_train, y_train)
                name = f"learned supermask, lr {'1.2e-3 (the net)' if lr is None else lr}"
                found[name] = learned.score(X_test, y_test)
            rows += [{"init": init, "seed": seed, "method": method, "accuracy": value}
                     for method, value in found.items()]
    return rows


def dropout_rows(data, seeds, hidden_units, epochs) -> list[dict]:
    X_train, X_test, y_train, y_test = data
    rows = []
    for name, settings in DROPOUTS.items():
        for seed in seeds:
            callbacks = None if settings is None else [TargetedDropout(**settings)]
            dense = LotteryTicketClassifier(lenet(MLP, hidden_units, epochs, callbacks),
                                            max_rounds=0, random_state=seed)
            net = dense.fit(X_train, y_train).net_
            row = {"dropout": name, "seed": seed, "dense": accuracy(net, X_test, y_test)}
            row.update({s: pruned_accuracy(net, X_test, y_test, s) for s in SPARSITIES})
            rows.append(row)
    return rows


def _cell(values) -> str:
    per_seed = "/".join(f"{100 * v:.1f}" for v in values)
    return f"{100 * np.mean(values):6.2f} ({per_seed})"


def main(hidden_units=(300, 100), epochs: int = 20, seeds=(0, 1), random_state: int = 0,
         verbose: bool = True) -> dict:
    """Run both experiments; print their tables when ``verbose``."""
    data = load_data(random_state)
    y_test = data[3]
    chance = float(np.bincount(y_test).max() / len(y_test))
    supermasks = supermask_rows(data, seeds, hidden_units, epochs)
    dropouts = dropout_rows(data, seeds, hidden_units, epochs)
    result = {"chance": chance, "supermasks": supermasks, "dropouts": dropouts}
    if verbose:
        _report(result, hidden_units, epochs, seeds)
    return result


def _report(result, hidden_units, epochs, seeds) -> None:
    name = "LeNet-" + "-".join(str(units) for units in hidden_units)
    print(f"{name} on digits, {epochs} epochs a training, seeds {list(seeds)}: test accuracy (%), "
          "mean (each seed)")
    print(f"chance (most frequent test class): {100 * result['chance']:.2f}")
    print("\n1. Supermasks at 50% density (every layer), by initial weights theta_0")
    methods = list(dict.fromkeys(row["method"] for row in result["supermasks"]))
    print(f"{'':<40}" + "".join(f"{init:>22}" for init in INITS))
    for method in methods:
        cells = [_cell([r["accuracy"] for r in result["supermasks"]
                        if r["method"] == method and r["init"] == init]) for init in INITS]
        print(f"{method:<40}" + "".join(f"{cell:>22}" for cell in cells))
    print("\n2. One-shot magnitude pruning after dense training, no retraining")
    print(f"{'dropout in the dense training':<32}{'dense':>20}"
          + "".join(f"{f'pruned to {100 * s:.0f}%':>20}" for s in SPARSITIES))
    for name in DROPOUTS:
        rows = [r for r in result["dropouts"] if r["dropout"] == name]
        cells = [_cell([r[key] for r in rows]) for key in ("dense", *SPARSITIES)]
        print(f"{name:<32}" + "".join(f"{cell:>20}" for cell in cells))
    print("('targeted g': TargetedDropout(rate=0.5, targeted_fraction=g) on every layer's "
          "weights)")


if __name__ == "__main__":
    # These nets are small: one thread per process trains them faster than
    # several threads contending for the cores.
    torch.set_num_threads(1)
    main()
