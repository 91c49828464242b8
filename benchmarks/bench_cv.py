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

Beside the time, the work each side trained (``_common.counted_trainings``:
every training of the fit, read from its net's history): the trainings, their
epochs summed, the rows trained (every row of every training batch of every
epoch of every training, a stacked member's padding rows not among them) and,
apart, the held-out rows the trainings' stopping rule scored (a forward pass
only; not in the rows trained). The grid's rounds restored from ``memory``
are not trained and not counted. Two columns follow from them:

- ``rows trained / one fit's``: the side's rows trained over the one fit's.
  On hardware where a training step's time is its arithmetic (the default
  net's matrix products near the core's peak: ``bench_stacking.py --parts
  kernels step`` shows whether they are), this ratio is the least the CV path
  can cost relative to one fit, however its trainings are grouped (stacked,
  one at a time, in threads): grouping saves per-step overhead, not
  arithmetic.
- ``s per 1,000 rows trained``: the side's fit seconds over its rows trained,
  in thousands; equal across sides when time follows the arithmetic.

A closing line gives the median over the data sets of the CV path's time
over one fit's and of its rows trained over one fit's.

``--n-jobs N`` gives the CV path ``n_jobs=N``: its folds, and the search on
all rows, run in N worker processes (joblib's default backend; each worker's
torch takes ``cpu_count() // N`` threads), and the refit takes that search's
trainings. Trainings in workers are not counted: the CV path's rows columns
then read ``-``.

    python benchmarks/bench_cv.py --threads 1
    python benchmarks/bench_cv.py --threads 1 --datasets wine
    python benchmarks/bench_cv.py --n-jobs 2 --datasets digits
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _common import TABULAR, counted_trainings, median, print_header, setup, table
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skticket import LotteryTicketClassifier, LotteryTicketClassifierCV

DATASETS = ("wine", "breast_cancer", "digits")
GRID = [0.5, 0.8, 0.9, 0.95]


def run_side(side: str, X_train, y_train, X_test, y_test, folds: int, n_jobs: int = 1
             ) -> dict:
    with tempfile.TemporaryDirectory() as memory:
        if side == "CV path":
            model = make_pipeline(StandardScaler(), LotteryTicketClassifierCV(
                target_sparsity=0.9, cv=folds, random_state=0, n_jobs=n_jobs))
        elif side == "one fit":
            model = make_pipeline(StandardScaler(),
                                  LotteryTicketClassifier(target_sparsity=0.9, random_state=0))
        else:
            model = GridSearchCV(make_pipeline(StandardScaler(), LotteryTicketClassifier(
                random_state=0, memory=memory)),
                {"lotteryticketclassifier__target_sparsity": GRID}, cv=folds)
        with counted_trainings() as work:
            start = time.perf_counter()
            model.fit(X_train, y_train)
            seconds = time.perf_counter() - start
        test = float(model.score(X_test, y_test))
    if side == "CV path":
        est = model[-1]
        return dict(seconds=seconds, sparsity=est.sparsity_, cv_score=est.best_score_,
                    test=test, levels=len(est.cv_results_["sparsity"]), work=work)
    if side == "one fit":
        # Every training of one fit is a round it records: a count that misses a
        # training (one that went around the wrapped name) shows here.
        recorded = sum(record["epochs"] for record in model[-1].rounds_)
        if (len(model[-1].rounds_), recorded) != (work.trainings, work.epochs):
            raise RuntimeError(f"counted {work.trainings} trainings of {work.epochs} epochs; "
                               f"the fit records {len(model[-1].rounds_)} of {recorded}")
        return dict(seconds=seconds, sparsity=model[-1].winning_ticket_.sparsity,
                    cv_score=None, test=test, work=work)
    return dict(seconds=seconds,
                sparsity=model.best_params_["lotteryticketclassifier__target_sparsity"],
                cv_score=model.best_score_, test=test, work=work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads(N); default: torch's own choice")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="the CV path's n_jobs (worker processes; default 1)")
    args = parser.parse_args()
    setup(args)
    print_header("The cross-validated path against one fit and a grid over target_sparsity")
    sides = ["CV path", "one fit", "grid + memory"]
    rows, counts, ratios = [], [], []
    for i, name in enumerate(args.datasets):
        load, _ = TABULAR[name]
        X, y = load(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                            random_state=0)
        order = sides if i % 2 == 0 else sides[::-1]
        results = {side: run_side(side, X_train, y_train, X_test, y_test, args.folds,
                                  args.n_jobs if side == "CV path" else 1)
                   for side in order}
        cv, one = results["CV path"], results["one fit"]
        for side in sides:
            r = results[side]
            work = r["work"]
            # Trainings in worker processes are not counted.
            counted = side != "CV path" or args.n_jobs == 1
            rows.append([name, side, f"{r['seconds']:.1f}", f"{r['sparsity']:.4f}",
                         "-" if r["cv_score"] is None else f"{r['cv_score']:.4f}",
                         f"{r['test']:.4f}",
                         f"{cv['seconds'] / r['seconds']:.2f}",
                         f"{work.rows / one['work'].rows:.2f}" if counted else "-",
                         f"{1e3 * r['seconds'] / work.rows:.4f}" if counted else "-"])
            counts.append([name, side, work.trainings, work.epochs, f"{work.rows:,}",
                           f"{work.held_out_rows:,}", work.diverged] if counted
                          else [name, side, "-", "-", "-", "-", "-"])
        ratios.append((cv["seconds"] / one["seconds"],
                       cv["work"].rows / one["work"].rows if args.n_jobs == 1 else None))
        print(f"{name}: done ({cv['levels']} levels on the CV path)", flush=True)
    print()
    print(table(["data set", "side", "fit s", "sparsity chosen", "CV accuracy",
                 "test accuracy", "CV path s / side s", "rows trained / one fit's",
                 "s per 1,000 rows trained"], rows))
    print(f"\n{args.folds} folds; one run per side; the grid's CV accuracy is its best "
          "candidate's mean, the CV path's the chosen level's.\n")
    print(table(["data set", "side", "trainings", "epochs (summed)", "rows trained",
                 "held-out rows scored (not trained)", "diverged"], counts))
    print(f"\nCV path / one fit, median over {len(ratios)} data set(s): "
          f"time {median([wall for wall, _ in ratios]):.2f}x"
          + ("" if args.n_jobs != 1 else
             f", rows trained {median([work for _, work in ratios]):.2f}x "
             "(the least the time can be where a step's time is its arithmetic)") + ".")


if __name__ == "__main__":
    main()
