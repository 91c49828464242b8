"""Zero configuration against scikit-learn's MLPs: 5-fold cross-validated score and fit time.

The estimators with nothing set but ``target_sparsity=0.9`` and
``random_state=0``, inside ``make_pipeline(StandardScaler(), ...)``, the
regressor on the raw target; against ``MLPClassifier(max_iter=1000)`` and
``MLPRegressor(max_iter=1000)`` given its best setup (inside
``TransformedTargetRegressor`` with a ``StandardScaler`` on the target), each
with ``random_state=0``. Accuracy for iris, wine, breast cancer and digits,
R^2 for diabetes; the same 5 folds (``KFold(5, shuffle=True,
random_state=0)``, stratified for the classifiers) for both sides. Target:
the ticket's mean score >= the MLP's - 0.005 on each set.

    python benchmarks/bench_defaults.py
    python benchmarks/bench_defaults.py --datasets iris wine
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import TABULAR, add_common_args, print_header, setup, table
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skticket import LotteryTicketClassifier, LotteryTicketRegressor

TOLERANCE = 0.005

def models(task: str):
    if task == "classification":
        return (make_pipeline(StandardScaler(),
                              LotteryTicketClassifier(target_sparsity=0.9, random_state=0)),
                make_pipeline(StandardScaler(), MLPClassifier(max_iter=1000, random_state=0)),
                StratifiedKFold(5, shuffle=True, random_state=0))
    return (make_pipeline(StandardScaler(),
                          LotteryTicketRegressor(target_sparsity=0.9, random_state=0)),
            TransformedTargetRegressor(
                make_pipeline(StandardScaler(), MLPRegressor(max_iter=1000, random_state=0)),
                transformer=StandardScaler()),
            KFold(5, shuffle=True, random_state=0))

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--datasets", nargs="+", choices=list(TABULAR), default=list(TABULAR))
    args = parser.parse_args()
    setup(args)
    print_header("Zero configuration: the 90% ticket against scikit-learn's MLP, 5-fold CV")
    rows = []
    for name in args.datasets:
        load, task = TABULAR[name]
        X, y = load(return_X_y=True)
        ticket, mlp, folds = models(task)
        results = {}
        for side, model in (("ticket", ticket), ("mlp", mlp)):
            tic = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                cv = cross_validate(model, X, y, cv=folds)
            results[side] = (cv["test_score"], time.perf_counter() - tic)
        (ticket_scores, ticket_s), (mlp_scores, mlp_s) = results["ticket"], results["mlp"]
        gap = ticket_scores.mean() - mlp_scores.mean()
        rows.append([name, "R^2" if task == "regression" else "accuracy",
                     f"{ticket_scores.mean():.3f} ± {ticket_scores.std():.3f}",
                     f"{mlp_scores.mean():.3f} ± {mlp_scores.std():.3f}", f"{gap:+.3f}",
                     "yes" if gap >= -TOLERANCE else f"no (by {-gap - TOLERANCE:.3f})",
                     f"{ticket_s:.1f}", f"{mlp_s:.1f}"])
        print(f"{name}: done", flush=True)
    print()
    print(table(["data set", "score", "90% ticket (zero config)", "scikit-learn MLP",
                 "ticket - MLP", f"met (>= -{TOLERANCE})", "ticket fit s (5 folds)",
                 "MLP fit s (5 folds)"], rows))
    print(f"\nmean over the 5 folds ± their standard deviation; {np.__name__} "
          f"{np.__version__}")

if __name__ == "__main__":
    main()
