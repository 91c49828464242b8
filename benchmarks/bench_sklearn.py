"""skticket against scikit-learn's MLPClassifier / MLPRegressor: score and fit time.

All models with their defaults, in a StandardScaler pipeline; the diabetes
target is standardized too (TransformedTargetRegressor), as both MLPs train
best on a unit-scale target. Each repeat draws another train/test split
(75/25, stratified for classification) and fits every model on it, in
alternating order; fit times are medians, test scores mean +- std over the
splits. skticket's default searches a ticket of 80% sparsity (the dense
round and 8 pruning rounds of 20%); "skticket, dense round only"
(``max_rounds=0``) is the same net trained once, for scale.

    python benchmarks/bench_sklearn.py
    python benchmarks/bench_sklearn.py --datasets digits --repeats 3
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import add_common_args, median, print_header, setup, table
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skticket import LotteryTicketClassifier, LotteryTicketRegressor

DATASETS = {
    "digits": (load_digits, "classification"),
    "breast_cancer": (load_breast_cancer, "classification"),
    "diabetes": (load_diabetes, "regression"),
}


def models(task: str, seed: int) -> dict:
    def scaled(estimator):
        pipe = make_pipeline(StandardScaler(), estimator)
        if task == "regression":
            return TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler())
        return pipe

    if task == "classification":
        return {
            "sklearn MLPClassifier": scaled(MLPClassifier(random_state=seed)),
            "skticket, dense round only": scaled(
                LotteryTicketClassifier(max_rounds=0, random_state=seed)),
            "skticket (80% sparse ticket)": scaled(LotteryTicketClassifier(random_state=seed)),
        }
    return {
        "sklearn MLPRegressor": scaled(MLPRegressor(random_state=seed)),
        "skticket, dense round only": scaled(
            LotteryTicketRegressor(max_rounds=0, random_state=seed)),
        "skticket (80% sparse ticket)": scaled(LotteryTicketRegressor(random_state=seed)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS),
                        choices=list(DATASETS))
    args = parser.parse_args()
    setup(args)
    print_header("skticket vs scikit-learn's MLPs")
    # sklearn's MLPs stop at max_iter=200 on some splits without converging;
    # the defaults are what is compared.
    warnings.simplefilter("ignore", ConvergenceWarning)

    rows = []
    for name in args.datasets:
        loader, task = DATASETS[name]
        X, y = loader(return_X_y=True)
        names = list(models(task, 0))
        seconds = {m: [] for m in names}
        scores = {m: [] for m in names}
        for r in range(args.repeats):
            X_train, X_test, y_train, y_test = train_test_split(
                X, y, test_size=0.25, random_state=r,
                stratify=y if task == "classification" else None)
            built = models(task, r)
            order = names if r % 2 == 0 else names[::-1]
            for m in order:
                est = clone(built[m])
                tic = time.perf_counter()
                est.fit(X_train, y_train)
                seconds[m].append(time.perf_counter() - tic)
                scores[m].append(est.score(X_test, y_test))
        metric = "accuracy" if task == "classification" else "R^2"
        base = median(seconds[names[0]])
        for m in names:
            rows.append((name, f"{len(X)} x {X.shape[1]}", m, metric,
                         f"{np.mean(scores[m]):.3f} +- {np.std(scores[m]):.3f}",
                         median(seconds[m]), median(seconds[m]) / base))
    print(table(["dataset", "rows x features", "model", "test metric",
                 f"test score (mean +- std, {args.repeats} splits)", "fit s (median)",
                 "fit time / sklearn's"], rows))
    print()


if __name__ == "__main__":
    main()
