"""The cross-validated path against one fit and against a grid search over target_sparsity.

On wine, breast cancer and digits (25% held out for testing, stratified, seed
0), each inside ``make_pipeline(StandardScaler(), ...)`` with the default net
and ``random_state=0``, torch on one thread:

- ``CV path``: ``LotteryTicketClassifierCV(target_sparsity=0.9, cv=5)``, the
  whole IMP path to 90% cross-validated in one fit (5 folds x 5 levels), the
  level chosen by the one-standard-error rule, then the refit up to it;
- ``one fit``: the zero-configuration ``LotteryTicketClassifier(target_sparsity=0.9)``;
- ``grid + memory``: ``GridSearchCV(cv=5)`` over ``target_sparsity`` in
  [0.5, 0.8, 0.9, 0.95] with ``memory`` (a fresh directory per run, so the
  rounds the candidates share are trained once per fold, as the README shows).

Both searches use the same folds (``cv=5``: an unshuffled ``StratifiedKFold``).
Reported: wall seconds of ``fit`` (one run each, sides alternating order from
data set to data set), the sparsity chosen, its cross-validated accuracy, and
the refit's test accuracy; the CV path's time against the other two.

    python benchmarks/bench_cv.py --threads 1
    python benchmarks/bench_cv.py --threads 1 --datasets wine
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _common import TABULAR, print_header, setup, table
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skticket import LotteryTicketClassifier, LotteryTicketClassifierCV

DATASETS = ("wine", "breast_cancer", "digits")
GRID = [0.5, 0.8, 0.9, 0.95]


def run_side(side: str, X_train, y_train, X_test, y_test, folds: int) -> dict:
    with tempfile.TemporaryDirectory() as memory:
        if side == "CV path":
            model = make_pipeline(StandardScaler(), LotteryTicketClassifierCV(
                target_sparsity=0.9, cv=folds, random_state=0))
        elif side == "one fit":
            model = make_pipeline(StandardScaler(),
                                  LotteryTicketClassifier(target_sparsity=0.9, random_state=0))
        else:
            model = GridSearchCV(make_pipeline(StandardScaler(), LotteryTicketClassifier(
                random_state=0, memory=memory)),
                {"lotteryticketclassifier__target_sparsity": GRID}, cv=folds)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        test = float(model.score(X_test, y_test))
    if side == "CV path":
        est = model[-1]
        return dict(seconds=seconds, sparsity=est.sparsity_, cv_score=est.best_score_,
                    test=test, levels=len(est.cv_results_["sparsity"]))
    if side == "one fit":
        return dict(seconds=seconds, sparsity=model[-1].winning_ticket_.sparsity,
                    cv_score=None, test=test)
    return dict(seconds=seconds,
                sparsity=model.best_params_["lotteryticketclassifier__target_sparsity"],
                cv_score=model.best_score_, test=test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads(N); default: torch's own choice")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    setup(args)
    print_header("The cross-validated path against one fit and a grid over target_sparsity")
    sides = ["CV path", "one fit", "grid + memory"]
    rows = []
    for i, name in enumerate(args.datasets):
        load, _ = TABULAR[name]
        X, y = load(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                            random_state=0)
        order = sides if i % 2 == 0 else sides[::-1]
        results = {side: run_side(side, X_train, y_train, X_test, y_test, args.folds)
                   for side in order}
        cv = results["CV path"]
        for side in sides:
            r = results[side]
            rows.append([name, side, f"{r['seconds']:.1f}", f"{r['sparsity']:.4f}",
                         "-" if r["cv_score"] is None else f"{r['cv_score']:.4f}",
                         f"{r['test']:.4f}",
                         f"{cv['seconds'] / r['seconds']:.2f}"])
        print(f"{name}: done ({cv['levels']} levels on the CV path)", flush=True)
    print()
    print(table(["data set", "side", "fit s", "sparsity chosen", "CV accuracy",
                 "test accuracy", "CV path s / side s"], rows))
    print(f"\n{args.folds} folds; one run per side; the grid's CV accuracy is its best "
          "candidate's mean, the CV path's the chosen level's.")


if __name__ == "__main__":
    main()
