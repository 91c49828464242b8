"""How the default ``EarlyBird(tolerance=...)`` was chosen.

``search=EarlyBird()`` draws the ticket's mask (at ``target_sparsity``) after
every epoch of the dense training and stops that training once the newest mask
is within ``tolerance`` of each of the ``window`` masks
before it (distance: the share of surviving weights that changed); the ticket
is then rewound and trained once. A loose tolerance stops early but may take a
mask that has not settled; a tight one may never stop and then costs a whole
dense training.

For each data set, target sparsity, window, tolerance and seed this fits an
early-bird search, and IMP at the same target, and prints the epoch at which
the dense training stopped and the test accuracy of both tickets. The
recommended tolerance is the largest (so the earliest stopping) whose mean
test accuracy is within 1 point of IMP's at every data set and sparsity.

- digits: LeNet-300-100 as in ``lenet_digits.py`` (Adam 1.2e-3, batches of 60,
  20% of each hidden layer and 10% of the output layer per IMP round, 30
  epochs per training), without a validation split or early stopping, so that
  every training runs its 30 epochs and only the early-bird rule stops one;
  stratified 70/30 split.
- breast_cancer: the default net's class with 100 hidden units at lr 0.01,
  every row training (each training runs until its training loss stops
  improving, at most 200 epochs), IMP at 20% a round, after a StandardScaler;
  stratified 75/25 split.

Next to the stop epoch the table gives the length of IMP's dense training.

Run:  python examples/calibrate_early_bird.py     (about 8 min on 2 cores)
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier

from skticket import MLP, EarlyBird, LotteryTicketClassifier

DATASETS = ("digits", "breast_cancer")


def load(name: str, n_train: int | None = None):
    """A fixed stratified train/test split; the first ``n_train`` training rows if given."""
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X, test_size = (X / 16.0).astype(np.float32), 0.3
    else:
        X, y = load_breast_cancer(return_X_y=True)
        test_size = 0.25
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=0)
    return X_train[:n_train], X_test, y_train[:n_train], y_test


def make_model(name: str, seed: int, epochs: int = 30, hidden_units=(300, 100), **params):
    """The estimator (or pipeline) of ``name`` with the search parameters ``params``."""
    if name == "digits":
        net = NeuralNetClassifier(MLP, module__hidden_units=hidden_units,
                                  optimizer=torch.optim.Adam, lr=1.2e-3, batch_size=60,
                                  max_epochs=epochs, train_split=None, verbose=0)
        return LotteryTicketClassifier(net, prune_fraction=0.2,
                                       layer_prune_fractions={"output.weight": 0.1},
                                       random_state=seed, **params)
    # The tabular net the user guide's figures were measured with: 100 hidden units at lr
    # 0.01, every row training, IMP at 20% a round.
    ticket = LotteryTicketClassifier(random_state=seed, **{"prune_fraction": 0.2, **params}).set_params(
        net__module__hidden_units=(100,), net__lr=0.01, net__train_split=None)
    return make_pipeline(StandardScaler(), ticket)


def _estimator(model):
    return model[-1] if hasattr(model, "steps") else model


def run(datasets=DATASETS, sparsities=(0.8, 0.95), tolerances=(0.02, 0.05, 0.1, 0.2),
        windows=(5,), seeds=(0, 1, 2), epochs: int = 30, hidden_units=(300, 100),
        n_train: int | None = None) -> list[dict]:
    """One row per fit: IMP (``tolerance=None``) and each early-bird setting."""
    rows = []
    for name in datasets:
        X_train, X_test, y_train, y_test = load(name, n_train)
        for sparsity in sparsities:
            for seed in seeds:
                settings = [(None, None)] + [(w, t) for w in windows for t in tolerances]
                for window, tolerance in settings:
                    params = {"target_sparsity": sparsity}
                    if tolerance is not None:
                        params.update(search=EarlyBird(window=window, tolerance=tolerance))
                    model = make_model(name, seed, epochs, hidden_units, **params)
                    model.fit(X_train, y_train)
                    dense = _estimator(model).rounds_[0]
                    rows.append({
                        "dataset": name, "sparsity": sparsity, "seed": seed,
                        "window": window, "tolerance": tolerance,
                        "stop_epoch": dense.get("ticket_epoch", dense["epochs"]),
                        "dense_epochs": dense["epochs"],
                        "settled": dense.get("masks_settled"),
                        "accuracy": float(model.score(X_test, y_test)),
                        "ticket_sparsity": _estimator(model).winning_ticket_.sparsity,
                    })
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Per data set, sparsity and early-bird setting: means over the seeds, next to IMP's."""
    summary = []
    keys = sorted({(r["dataset"], r["sparsity"], r["window"], r["tolerance"])
                   for r in rows if r["tolerance"] is not None},
                  key=lambda k: (DATASETS.index(k[0]) if k[0] in DATASETS else 0, *k[1:]))
    for name, sparsity, window, tolerance in keys:
        imp = [r for r in rows if (r["dataset"], r["sparsity"]) == (name, sparsity)
               and r["tolerance"] is None]
        eb = [r for r in rows if (r["dataset"], r["sparsity"], r["window"], r["tolerance"])
              == (name, sparsity, window, tolerance)]
        epochs = [r["stop_epoch"] for r in eb]
        summary.append({
            "dataset": name, "sparsity": sparsity, "window": window, "tolerance": tolerance,
            "stop_epoch": float(np.mean(epochs)), "stop_min": min(epochs),
            "stop_max": max(epochs), "settled": sum(bool(r["settled"]) for r in eb),
            "n_seeds": len(eb),
            "accuracy": float(np.mean([r["accuracy"] for r in eb])),
            "accuracy_std": float(np.std([r["accuracy"] for r in eb])),
            "imp_dense_epochs": float(np.mean([r["dense_epochs"] for r in imp])),
            "imp_accuracy": float(np.mean([r["accuracy"] for r in imp])),
            "imp_accuracy_std": float(np.std([r["accuracy"] for r in imp])),
        })
    return summary


def recommend(summary: list[dict], window: int = 5, max_drop: float = 0.01) -> float | None:
    """The largest tolerance whose mean accuracy is within ``max_drop`` of IMP's everywhere."""
    fine = []
    for tolerance in sorted({row["tolerance"] for row in summary if row["window"] == window}):
        rows = [r for r in summary if (r["window"], r["tolerance"]) == (window, tolerance)]
        if all(r["accuracy"] >= r["imp_accuracy"] - max_drop for r in rows):
            fine.append(tolerance)
    return max(fine, default=None)


def main(datasets=DATASETS, sparsities=(0.8, 0.95), tolerances=(0.02, 0.05, 0.1, 0.2),
         windows=(5,), seeds=(0, 1, 2), epochs: int = 30, hidden_units=(300, 100),
         n_train: int | None = None, verbose: bool = True) -> dict:
    """Run the calibration; print the table and the recommended tolerance per window."""
    rows = run(datasets, sparsities, tolerances, windows, seeds, epochs, hidden_units, n_train)
    summary = summarize(rows)
    picks = {window: recommend(summary, window) for window in windows}
    if verbose:
        _report(summary, picks, len(seeds))
    return {"rows": rows, "summary": summary, "recommended": picks}


def _report(summary, picks, n_seeds) -> None:
    print(f"Early-bird tickets against IMP: test accuracy (%), mean ± std over {n_seeds} "
          "seeds; epoch at which the dense training stopped, mean (min-max), and the "
          "epochs of IMP's dense training")
    print(f"{'dataset':<14} {'sparsity':>8} {'window':>6} {'tol':>5} {'stop epoch':>15} "
          f"{'of':>5} {'settled':>7} {'early-bird':>13} {'IMP':>13} {'diff':>6}")
    for r in summary:
        stop = f"{r['stop_epoch']:.1f} ({r['stop_min']}-{r['stop_max']})"
        diff = 100 * (r["accuracy"] - r["imp_accuracy"])
        print(f"{r['dataset']:<14} {r['sparsity']:>8.2f} {r['window']:>6} "
              f"{r['tolerance']:>5.2f} {stop:>15} {r['imp_dense_epochs']:>5.1f} "
              f"{r['settled']:>4}/{r['n_seeds']} "
              f"{100 * r['accuracy']:6.2f} ± {100 * r['accuracy_std']:4.2f} "
              f"{100 * r['imp_accuracy']:6.2f} ± {100 * r['imp_accuracy_std']:4.2f} "
              f"{diff:+6.2f}")
    for window, tolerance in picks.items():
        print(f"window {window}: largest tolerance within 1 point of IMP everywhere: "
              f"{'none' if tolerance is None else tolerance}")


if __name__ == "__main__":
    # Small nets: one thread per process trains them faster than several
    # threads contending for the cores.
    torch.set_num_threads(1)
    main(windows=(3, 5, 10))
