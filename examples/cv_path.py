"""The sparsity path, cross-validated: how sparse can the ticket be?

A Pipeline of StandardScaler and :class:`~skticket.LotteryTicketClassifierCV`
(the default net, IMP at half the weights a round, to 99.8% sparsity) on
``load_breast_cancer``: every one of 5 folds runs the search on its training
rows and scores every round on its held-out rows; the one-standard-error rule
picks the sparsest round whose mean accuracy is within one standard error of
the best, and the search runs on all training rows up to it. The path table
(``cv_results_``), the chosen and the best level, and the refit's accuracy on a
held-out test split are printed; :class:`~skticket.TicketPathDisplay` draws the
path to ``docs/cv_path.png``.

Run:  python examples/cv_path.py      (about 30 s on 2 cores)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skticket import LotteryTicketClassifierCV, TicketPathDisplay

PNG = Path(__file__).resolve().parent.parent / "docs" / "cv_path.png"


def main(target_sparsity: float = 0.998, cv: int = 5, random_state: int = 0,
         net_params: dict | None = None, png: Path | None = PNG,
         verbose: bool = True) -> dict:
    """Cross-validate the path, print the table and the choice, draw the display."""
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=random_state)
    model = make_pipeline(StandardScaler(), LotteryTicketClassifierCV(
        prune_fraction=0.5, target_sparsity=target_sparsity, cv=cv,
        random_state=random_state).set_params(**(net_params or {})))
    model.fit(X_train, y_train)
    est = model[-1]
    results = est.cv_results_
    # The best level: the highest mean, the sparsest of ties (as select="best" picks).
    best = int(np.flatnonzero(results["rank_test_score"] == 1)[-1])
    summary = {
        "cv_results": results,
        "chosen": est.best_index_,
        "best": best,
        "sparsity": est.sparsity_,
        "n_active": est.winning_ticket_.n_active,
        "n_prunable": est.winning_ticket_.n_prunable,
        "test_accuracy": float(model.score(X_test, y_test)),
    }
    if verbose:
        _report(summary, est.n_splits_)
    if png is not None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6.4, 4.2), layout="constrained")
        display = TicketPathDisplay.from_estimator(est, ax=figure.subplots(),
                                                   x="weights_kept", score_name="accuracy")
        display.ax_.set_title(f"breast cancer: {cv}-fold CV of the IMP path")
        figure.savefig(png, dpi=100)
        summary["png"] = png
    return summary


def _report(summary: dict, n_splits: int) -> None:
    results = summary["cv_results"]
    print(f"{n_splits}-fold CV of the path (mean and standard error of the test accuracy):")
    print(f"{'level':>5} {'sparsity':>9} {'weights':>8} {'mean':>7} {'s.e.':>7} {'rank':>5}")
    for i, sparsity in enumerate(results["sparsity"]):
        mark = {summary["chosen"]: "  <- chosen (1-SE)"}.get(i, "")
        if i == summary["best"] and i != summary["chosen"]:
            mark = "  <- best"
        elif i == summary["best"]:
            mark += ", best"
        error = results["std_test_score"][i] / math.sqrt(n_splits)
        print(f"{i:>5} {sparsity:>9.4f} {results['n_active'][i]:>8} "
              f"{results['mean_test_score'][i]:>7.4f} {error:>7.4f} "
              f"{results['rank_test_score'][i]:>5}{mark}")
    print(f"refit on all training rows up to sparsity {summary['sparsity']:.4f}: "
          f"{summary['n_active']} of {summary['n_prunable']} weights; "
          f"test accuracy {summary['test_accuracy']:.4f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
