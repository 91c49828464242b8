"""The lottery-ticket paper's LeNet-300-100 experiment, on scikit-learn's digits.

Frankle & Carbin (ICLR 2019) prune LeNet-300-100 on MNIST by iterative
magnitude pruning: 20% of each hidden layer's weights and 10% of the output
layer's per round, survivors rewound to their initial values theta_0, Adam
at 1.2e-3, batches of 60, test accuracy read at the early-stopping point of a
held-out validation split. On MNIST, winning tickets match or beat the dense
net down to about 3.6% of the weights, while the same masks with fresh weights
fall below it already around 21%.

Here the same protocol runs on ``sklearn.datasets.load_digits`` (1,797 8x8
images, 30% held out for testing), with ``n_repeats`` independent searches.
Every round's winning ticket is scored next to its two random baselines (same
mask with fresh weights; mask shuffled within each layer, fresh weights). The
example prints the mean and spread of the test accuracy per round, says down
to which share of weights each kind of ticket stays within one point of the
dense net, and saves the curve as a PNG.

Run:  python examples/lenet_digits.py        (needs matplotlib: pip install -e ".[plot]")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping
from skorch.dataset import ValidSplit

from skticket import (
    MLP,
    LotteryTicketClassifier,
    plot_ticket_curve,
    summarize_ticket_curve,
    ticket_curve,
)

PNG = Path(__file__).resolve().parent.parent / "docs" / "lenet_digits.png"
KINDS = ("rewind", "reinit", "permute")


def load_data(random_state: int = 0):
    """Digits scaled to [0, 1]; a stratified 70/30 train/test split."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=random_state)


def make_estimator(hidden_units=(300, 100), epochs: int = 30, rounds: int = 18,
                   random_state: int = 0) -> LotteryTicketClassifier:
    net = NeuralNetClassifier(
        MLP,
        module__hidden_units=hidden_units,
        optimizer=torch.optim.Adam,
        lr=1.2e-3,
        max_epochs=epochs,
        batch_size=60,
        # The held-out validation split: every round trains at most `epochs`
        # epochs and keeps the weights of its lowest validation loss (the
        # paper's early-stopping point), stopping after 10 epochs without one.
        train_split=ValidSplit(0.1, stratified=True, random_state=0),
        callbacks=[("early_stopping", EarlyStopping(patience=10, load_best=True))],
        verbose=0,
    )
    return LotteryTicketClassifier(
        net,
        prune_fraction=0.2,
        layer_prune_fractions={"output.weight": 0.1},
        scope="local",
        target_sparsity=None,
        max_rounds=rounds,
        rewind_step=0,
        random_state=random_state,
    )


def stays_within(summary: list[dict], kind: str, dense: float, tolerance: float) -> float:
    """Smallest share of weights down to which ``kind``'s mean accuracy never falls
    more than ``tolerance`` below ``dense`` (1.0 if its first pruned round already does)."""
    reached = 1.0
    for row in sorted((r for r in summary if r["ticket"] == kind), key=lambda r: r["round"]):
        if row["mean"] < dense - tolerance:
            break
        reached = row["weights_remaining"]
    return reached


def main(hidden_units=(300, 100), epochs: int = 30, rounds: int = 18, n_repeats: int = 3,
         png: str | Path | None = PNG, random_state: int = 0, verbose: bool = True) -> dict:
    """Run the experiment; print the table when ``verbose``; save the plot to ``png``."""
    X_train, X_test, y_train, y_test = load_data(random_state)
    estimator = make_estimator(hidden_units, epochs, rounds, random_state)
    curve = ticket_curve(estimator, X_train, y_train, X_test, y_test, n_repeats=n_repeats,
                         as_frame=False)
    summary = summarize_ticket_curve(curve, as_frame=False)
    dense = next(row for row in summary if row["ticket"] == "dense")
    within = {kind: stays_within(summary, kind, dense["mean"], 0.01) for kind in KINDS}
    name = "LeNet-" + "-".join(str(units) for units in hidden_units)
    result = {"curve": curve, "summary": summary, "dense": dense["mean"], "within_1pt": within}
    if verbose:
        _report(summary, dense, within, name, n_repeats, epochs)
    if png is not None:
        _save_plot(curve, png, name, n_repeats)
        result["png"] = Path(png)
        if verbose:
            print(f"\nPlot saved to {_shown(png)}")
    return result


def _report(summary, dense, within, name, n_repeats, epochs) -> None:
    print(f"{name} on digits: test accuracy (%), mean ± std over {n_repeats} "
          f"repeats (min-max), at most {epochs} epochs per round")
    print(f"dense net: {100 * dense['mean']:.2f} ± {100 * np.nan_to_num(dense['std']):.2f} "
          f"({100 * dense['min']:.1f}-{100 * dense['max']:.1f})")
    by_key = {(row["round"], row["ticket"]): row for row in summary}
    rounds = sorted({row["round"] for row in summary if row["round"] > 0})
    header = f"{'round':>5} {'weights %':>9} " + " ".join(f"{kind:>25}" for kind in KINDS)
    print(header)
    for r in rounds:
        cells = []
        for kind in KINDS:
            row = by_key[(r, kind)]
            cells.append(f"{100 * row['mean']:6.2f} ± {100 * np.nan_to_num(row['std']):4.2f} "
                         f"({100 * row['min']:.1f}-{100 * row['max']:.1f})")
        weights = 100 * by_key[(r, "rewind")]["weights_remaining"]
        print(f"{r:>5} {weights:9.2f} " + " ".join(f"{cell:>25}" for cell in cells))
    best = max((row for row in summary if row["ticket"] == "rewind"), key=lambda r: r["mean"])
    print(f"\nBest winning-ticket mean: {100 * best['mean']:.2f}% at "
          f"{100 * best['weights_remaining']:.2f}% of the weights")
    print("Mean test accuracy stays within 1 point of the dense net down to:")
    for kind in KINDS:
        print(f"  {kind:<8} {100 * within[kind]:6.2f}% of the weights")


def _shown(path) -> str:
    """``path`` relative to the repository when inside it: outputs pasted in the docs
    name no directory of the machine that made them."""
    path = Path(path).resolve()
    root = Path(__file__).resolve().parents[1]
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _save_plot(curve, png, name, n_repeats) -> None:
    # A bare Figure draws without pyplot, so no display or backend is involved.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    plot_ticket_curve(curve, ax=ax, ylabel="test accuracy",
                      title=f"{name} on digits: mean and min-max of {n_repeats} repeats")
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


if __name__ == "__main__":
    # These nets are small: one thread per process trains them faster than
    # several threads contending for the cores.
    torch.set_num_threads(1)
    main()
