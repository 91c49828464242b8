"""Cheap tickets: early-bird, SNIP, one-training searches and a ticket carried to new data,
against IMP.

Iterative magnitude pruning (IMP) trains the net once per round: 15 trainings
to reach 95% sparsity at 20% per round. This example measures what the cheaper
searches of the estimators' ``search`` parameter give up for their speed:

- ``imp``: IMP to the target sparsity (the reference);
- ``early_bird``: draws the ticket's mask after every epoch of the dense
  training, stops that training once the mask settles (window 5, tolerance
  ``EARLY_BIRD_TOLERANCE``, chosen by ``calibrate_early_bird.py``), and trains
  the ticket once;
- ``snip``: prunes at initialization by |w * dL/dw| on one batch, trains once;
- ``snip + permute``: the SNIP mask shuffled within each layer, fresh weights
  (the control that Frankle et al., ICLR 2021, found to match prune-at-init
  methods); the fit trains the SNIP ticket, then the permuted one;
- ``one-shot``: one round of magnitude pruning straight to the target
  (``max_rounds=1, prune_fraction=target``);
- ``imp + reinit``: IMP's mask with fresh weights (IMP, then one more training);
- ``gradual``, ``sparse_momentum``, ``rigl``: one training whose mask moves
  (``GradualPruning()``, ``SparseMomentum()``, ``RigL()`` at their defaults,
  laid out on the training's length); ``... x2``: the same with twice the
  epochs (the tabular default net: at most 400 instead of 200);
- ``dense``: the net unpruned (``max_rounds=0``), one training.

On ``load_digits`` (LeNet-300-100 as in ``lenet_digits.py``: Adam 1.2e-3,
batches of 60, 30 epochs per training, 20% of each hidden layer and 10% of the
output layer per IMP round; no validation split, so every training runs its 30
epochs), ``load_breast_cancer`` and ``load_diabetes`` (R^2), at 80%, 90% and
95% sparsity, with 3 seeds on a fixed train/test split: test score, fit time and
epochs trained, mean ± std. The tabular data sets get the default net's class
with 100 hidden units at lr 0.01, every row training (``TABULAR_NET``; each
training runs until its training loss stops improving, at most 200 epochs),
IMP at 20% a round, after a StandardScaler; for diabetes the default
net standardizes the target itself, as in ``tabular_quickstart.py``. One-shot
pruning on digits prunes every layer at the same rate (with the output layer's
10% it could not reach the target in one round).

Transfer: a ticket found by IMP on digits 0-4 is trained (``ticket=``) on
digits 5-9, against IMP run on 5-9 directly and the same ticket's mask with
fresh weights (``ticket_init="reinit"``).

Fit times are wall-clock seconds of ``fit`` (no ``memory``: every round is
trained), torch on one thread; "epochs" counts every epoch the fit trained (on
the tabular data sets a training's length is decided by its convergence, so
fit times there follow the epochs). The early-bird line gives, per seed, the
epoch at which its dense training stopped and how many of those stops were
the mask settling (the others: the training ended first). The run ends with
the targets: early-bird in at most a third of IMP's fit time on digits with
mean test accuracy within 1 point of IMP's; SNIP in at most 1.3x the time of
one dense training; on digits at 90% and 95%, a one-training search within 0.5
points of IMP's mean test accuracy in at most a quarter of its fit time (the
line names the best-scoring one within that time, or the best one if none is).

Run:  python examples/cheap_tickets.py      (about 18 min on 2 cores)
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier

from skticket import (
    MLP,
    SNIP,
    EarlyBird,
    GradualPruning,
    LotteryTicketClassifier,
    LotteryTicketRegressor,
    RigL,
    SparseMomentum,
)

#: Chosen by examples/calibrate_early_bird.py (window 5).
EARLY_BIRD_TOLERANCE = 0.02
EARLY_BIRD_WINDOW = 5

DATASETS = ("digits", "breast_cancer", "diabetes")
METRICS = {"digits": "accuracy", "breast_cancer": "accuracy", "diabetes": "R^2"}


#: The one-training searches, at their defaults.
SPARSE_TRAININGS = {"gradual": GradualPruning, "sparse_momentum": SparseMomentum, "rigl": RigL}


def method_params(method: str, target: float) -> dict:
    """The estimator parameters of ``method`` at target sparsity ``target``
    (``epochs_factor``: the net trains that many times its epochs)."""
    name, _, longer = method.partition(" x")
    if name in SPARSE_TRAININGS:
        return {"target_sparsity": target, "search": SPARSE_TRAININGS[name](),
                "epochs_factor": int(longer or 1)}
    return {
        "dense": {"max_rounds": 0},
        "imp": {"target_sparsity": target},
        "early_bird": {"target_sparsity": target,
                       "search": EarlyBird(window=EARLY_BIRD_WINDOW,
                                           tolerance=EARLY_BIRD_TOLERANCE)},
        "snip": {"target_sparsity": target, "search": SNIP()},
        "snip + permute": {"target_sparsity": target, "search": SNIP(),
                           "ticket_init": "permute"},
        "one-shot": {"target_sparsity": target, "max_rounds": 1, "prune_fraction": target,
                     "layer_prune_fractions": None},
        "imp + reinit": {"target_sparsity": target, "ticket_init": "reinit"},
    }[method]


METHODS = ("dense", "imp", "early_bird", "snip", "snip + permute", "one-shot", "imp + reinit",
           "gradual", "sparse_momentum", "rigl", "gradual x2", "sparse_momentum x2", "rigl x2")
#: The methods that train one net, once.
ONE_TRAINING = tuple(m for m in METHODS if m.partition(" x")[0] in SPARSE_TRAININGS)


def load(name: str, n_train: int | None = None):
    """A fixed train/test split (stratified for classes); the first ``n_train`` training rows."""
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X, test_size = (X / 16.0).astype(np.float32), 0.3
    elif name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
        test_size = 0.25
    else:
        X, y = load_diabetes(return_X_y=True)
        test_size = 0.25
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=0,
        stratify=None if name == "diabetes" else y)
    return X_train[:n_train], X_test, y_train[:n_train], y_test


#: The tabular data sets' net: the default net's class with one hidden layer of 100
#: units at lr 0.01, trained on every row (no held-out stopping rows), IMP at 20% a
#: round; the user guide's figures (docs/examples/) were measured with it.
TABULAR_NET = {"net__module__hidden_units": (100,), "net__lr": 0.01, "net__train_split": None}


def make_model(name: str, seed: int, epochs: int = 30, hidden_units=(300, 100),
               net_params: dict | None = None, epochs_factor: int = 1, **params):
    """The model of data set ``name``: the estimator, in a pipeline for tabular data.

    ``epochs`` and ``hidden_units`` size the digits net; ``net_params`` (such as
    ``{"net__max_epochs": 20}``) tune the tabular data sets' net (:data:`TABULAR_NET`);
    ``epochs_factor`` multiplies the epochs of either (the default net's at
    most 200).
    """
    if name == "digits":
        net = NeuralNetClassifier(MLP, module__hidden_units=hidden_units,
                                  optimizer=torch.optim.Adam, lr=1.2e-3, batch_size=60,
                                  max_epochs=epochs * epochs_factor, train_split=None,
                                  verbose=0)
        params = {"prune_fraction": 0.2, "layer_prune_fractions": {"output.weight": 0.1},
                  **params}
        return LotteryTicketClassifier(net, random_state=seed, **params)
    kind = LotteryTicketClassifier if name == "breast_cancer" else LotteryTicketRegressor
    net_params = {**TABULAR_NET, **(net_params or {})}
    if epochs_factor != 1:
        net_params["net__max_epochs"] = epochs_factor * net_params.get("net__max_epochs", 200)
    ticket_estimator = kind(random_state=seed, **{"prune_fraction": 0.2, **params}).set_params(
        **net_params)
    return make_pipeline(StandardScaler(), ticket_estimator)


def estimator(model):
    """The lottery-ticket estimator inside a fitted model."""
    return model[-1] if hasattr(model, "steps") else model


def timed_fit(model, X, y) -> tuple[object, float]:
    start = time.perf_counter()
    model.fit(X, y)
    return model, time.perf_counter() - start


def _row(model, seconds, X_test, y_test, **fields) -> dict:
    found = estimator(model)
    first = found.rounds_[0]
    baseline = int(found.ticket is None and found.ticket_init != "rewind")
    return {**fields, "score": float(model.score(X_test, y_test)), "seconds": seconds,
            "sparsity": found.winning_ticket_.sparsity,
            "n_active": found.winning_ticket_.n_active,
            "n_prunable": found.winning_ticket_.n_prunable,
            # A baseline ticket (reinit, permute) of a search is one more training,
            # which rounds_ does not list: its epochs are those of net_.
            "trainings": len(found.rounds_) + baseline,
            "epochs": sum(r["epochs"] for r in found.rounds_)
                      + baseline * len(found.net_.history),
            "stop_epoch": first.get("ticket_epoch"), "settled": first.get("masks_settled")}


def run_dataset(name: str, model, sparsities, seeds, n_train) -> list[dict]:
    """One row per (method, target, seed) fit; ``model(name, seed, **params)`` builds each."""
    X_train, X_test, y_train, y_test = load(name, n_train)
    # Untimed: the first fit of a process pays for lazy initialization.
    model(name, 0, max_rounds=0).fit(X_train, y_train)
    rows = []
    for seed in seeds:
        for method in METHODS:
            for target in [None] if method == "dense" else sparsities:
                fitted, seconds = timed_fit(model(name, seed, **method_params(method, target)),
                                            X_train, y_train)
                rows.append(_row(fitted, seconds, X_test, y_test, dataset=name, method=method,
                                 target=0.0 if target is None else target, seed=seed))
    return rows


def run_transfer(model, sparsities, seeds, n_train) -> list[dict]:
    """IMP on digits 0-4; its ticket trained on 5-9, against IMP (and dense) on 5-9."""
    X_train, X_test, y_train, y_test = load("digits", n_train)
    low, high = y_train < 5, y_train >= 5
    low_test, high_test = y_test < 5, y_test >= 5
    rows = []

    def fit(seed, method, target, rows_, test, **params):
        fitted, seconds = timed_fit(model("digits", seed, **params),
                                    X_train[rows_], y_train[rows_])
        rows.append(_row(fitted, seconds, X_test[test], y_test[test], dataset="digits 5-9",
                         method=method, target=target, seed=seed))
        return fitted

    for seed in seeds:
        fit(seed, "dense on 5-9", 0.0, high, high_test, max_rounds=0)
        for target in sparsities:
            source = fit(seed, "IMP on 0-4 (scored on 0-4)", target, low, low_test,
                         target_sparsity=target)
            fit(seed, "IMP on 5-9", target, high, high_test, target_sparsity=target)
            for init in ("rewind", "reinit"):
                fit(seed, f"ticket from 0-4 ({init})", target, high, high_test,
                    ticket=source.winning_ticket_, ticket_init=init)
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and std over the seeds, per (data set, method, target), in the order run."""
    keys = list(dict.fromkeys((r["dataset"], r["method"], r["target"]) for r in rows))
    by_method = sorted(keys, key=lambda k: [m for _, m, _ in keys].index(k[1]))
    summary = []
    for key in by_method:
        group = [r for r in rows if (r["dataset"], r["method"], r["target"]) == key]
        scores = [r["score"] for r in group]
        seconds = [r["seconds"] for r in group]
        summary.append({
            "dataset": key[0], "method": key[1], "target": key[2],
            "sparsity": group[0]["sparsity"], "n_active": group[0]["n_active"],
            "n_prunable": group[0]["n_prunable"], "n_seeds": len(group),
            "score": float(np.mean(scores)), "score_std": float(np.std(scores)),
            "seconds": float(np.mean(seconds)), "seconds_std": float(np.std(seconds)),
            "trainings": float(np.mean([r["trainings"] for r in group])),
            "epochs": float(np.mean([r["epochs"] for r in group])),
            "stop_epochs": [r["stop_epoch"] for r in group],
            "settled": sum(bool(r["settled"]) for r in group),
        })
    return summary


def check_targets(summary: list[dict]) -> list[dict]:
    """The example's targets, each with its numbers and whether it was met."""
    def get(dataset, method, target):
        return next(r for r in summary if (r["dataset"], r["method"], r["target"])
                    == (dataset, method, target))

    checks = []
    for r in summary:
        if r["dataset"] == "digits" and r["method"] == "early_bird":
            imp = get("digits", "imp", r["target"])
            ratio = r["seconds"] / imp["seconds"]
            diff = 100 * (r["score"] - imp["score"])
            checks.append({
                "target": f"digits {r['target']:.2f}: early_bird fit time <= 1/3 of IMP's",
                "value": f"{r['seconds']:.2f} s vs {imp['seconds']:.2f} s ({ratio:.3f}x)",
                "met": ratio <= 1 / 3})
            checks.append({
                "target": f"digits {r['target']:.2f}: early_bird accuracy within 1 point "
                          "of IMP's",
                "value": f"{100 * r['score']:.2f}% vs {100 * imp['score']:.2f}% "
                         f"({diff:+.2f} points)",
                "met": diff >= -1})
        if r["dataset"] == "digits" and r["method"] == "imp" and r["target"] >= 0.9:
            ones = [get("digits", m, r["target"]) for m in ONE_TRAINING
                    if any(x["method"] == m for x in summary)]
            if ones:
                best = max(ones, key=lambda x: (x["seconds"] <= r["seconds"] / 4, x["score"]))
                ratio = best["seconds"] / r["seconds"]
                diff = 100 * (best["score"] - r["score"])
                checks.append({
                    "target": f"digits {r['target']:.2f}: a one-training search within 0.5 "
                              "points of IMP's accuracy in <= 1/4 of its fit time",
                    "value": f"best {best['method']}: {100 * best['score']:.2f}% vs "
                             f"{100 * r['score']:.2f}% ({diff:+.2f} points), "
                             f"{best['seconds']:.2f} s vs {r['seconds']:.2f} s "
                             f"({ratio:.3f}x)",
                    "met": diff >= -0.5 and ratio <= 0.25})
        if r["method"] == "snip":
            dense = get(r["dataset"], "dense", 0.0)
            ratio = r["seconds"] / dense["seconds"]
            checks.append({
                "target": f"{r['dataset']} {r['target']:.2f}: snip fit time <= 1.3x dense",
                "value": f"{r['seconds']:.2f} s vs {dense['seconds']:.2f} s ({ratio:.2f}x)",
                "met": ratio <= 1.3})
    return checks


def main(datasets=DATASETS, sparsities=(0.8, 0.9, 0.95), seeds=(0, 1, 2), epochs: int = 30,
         hidden_units=(300, 100), n_train: int | None = None, net_params: dict | None = None,
         transfer: bool = True, verbose: bool = True) -> dict:
    """Run every data set and the transfer; print the tables when ``verbose``.

    ``epochs`` and ``hidden_units`` size the digits net, ``net_params`` tune
    the tabular data sets' default net (the example sets none), and ``n_train``
    keeps the first rows of each training split.
    """
    model = partial(make_model, epochs=epochs, hidden_units=hidden_units,
                    net_params=net_params)
    results = {}
    for name in datasets:
        results[name] = summarize(run_dataset(name, model, sparsities, seeds, n_train))
        if verbose:
            _report(name, results[name], len(seeds), hidden_units, epochs)
    transferred = summarize(run_transfer(model, sparsities, seeds, n_train)) if transfer else []
    if verbose and transferred:
        _report("transfer", transferred, len(seeds), hidden_units, epochs)
    checks = check_targets([row for rows in results.values() for row in rows])
    if verbose and checks:
        print("Targets:")
        for check in checks:
            print(f"  {'met   ' if check['met'] else 'MISSED'} {check['target']}: "
                  f"{check['value']}")
    return {"results": results, "transfer": transferred, "targets": checks}


def _report(name, summary, n_seeds, hidden_units, epochs) -> None:
    if name == "transfer":
        title = ("Transfer on digits: IMP's ticket from digits 0-4 trained on digits 5-9 "
                 "(test accuracy %)")
    elif name == "digits":
        title = (f"digits, LeNet-{'-'.join(map(str, hidden_units))}, {epochs} epochs per "
                 "training (test accuracy %)")
    else:
        title = f"{name}, default net (test {METRICS[name]})"
    percent = METRICS.get(name, "accuracy") == "accuracy"
    print(f"{title}: mean ± std over {n_seeds} seeds")
    print(f"  {'method':<28} {'sparsity':>8} {'score':>15} {'fit s':>14} {'trainings':>9} "
          f"{'epochs':>7}")
    scale, digits = (100, 2) if percent else (1, 3)
    for r in summary:
        score = f"{scale * r['score']:.{digits}f} ± {scale * r['score_std']:.{digits}f}"
        seconds = f"{r['seconds']:.2f} ± {r['seconds_std']:.2f}"
        print(f"  {r['method']:<28} {r['sparsity']:>8.4f} {score:>15} {seconds:>14} "
              f"{r['trainings']:>9g} {r['epochs']:>7.1f}")
    stops = [r for r in summary if r["method"] == "early_bird"]
    if stops:
        dense = next(r for r in summary if r["method"] == "dense")
        print("  early_bird stopped the dense training at epoch (per seed) "
              + "; ".join(f"{r['target']:.2f}: {r['stop_epochs']}, mask settled "
                          f"{r['settled']}/{r['n_seeds']}" for r in stops)
              + f"; the dense net alone trains {dense['epochs']:.1f} epochs (mean)")
    print()

if __name__ == "__main__":
    # Small nets: one thread per process trains them faster than several
    # threads contending for the cores.
    torch.set_num_threads(1)
    main()
