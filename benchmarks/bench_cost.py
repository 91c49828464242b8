"""What a zero-configuration ticket costs: its fit time against one scikit-learn MLP fit.

``LotteryTicketClassifier(target_sparsity=0.9, random_state=0)`` (the
regressor for diabetes, on the raw target) against ``MLPClassifier`` /
``MLPRegressor`` with scikit-learn's defaults and ``random_state=0``, on
standardized iris, wine, breast cancer, digits and diabetes, side by side in
one process, the two sides' fits alternating: the ticket on one torch
thread, the MLP on one BLAS thread (``threadpoolctl``). The MLP's time is
the best of three fits, the ticket's the median of ``--repeats`` fits (after
one untimed fit: the first torch optimizer of a process imports
``torch._dynamo``, once). Both fit the whole
data set. Targets: median ratio over the five sets <= 20, none above 25.

    python benchmarks/bench_cost.py
    python benchmarks/bench_cost.py --datasets iris digits --repeats 1
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from _common import TABULAR, add_common_args, median, print_header, table
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

from skticket import LotteryTicketClassifier, LotteryTicketRegressor

# The real-table issue's bounds for the default net chosen there: a larger net may cost
# more per step, and must pay for it in accuracy (bench_real_tables.py).
MEDIAN_TARGET, MAX_TARGET = 20.0, 25.0

def fit_seconds(model, X, y) -> tuple[float, object]:
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return time.perf_counter() - tic, model

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.set_defaults(repeats=3)
    parser.add_argument("--datasets", nargs="+", choices=list(TABULAR), default=list(TABULAR))
    args = parser.parse_args()
    torch.set_num_threads(1)
    print_header("Zero configuration: the 90% ticket's fit against one scikit-learn MLP fit")
    blas = sorted({f"{p['internal_api']} {p.get('version')}" for p in threadpool_info()
                   if p["user_api"] == "blas"})
    print(f"torch threads: 1; the MLP's BLAS ({', '.join(blas)}) limited to 1 thread\n")
    warm_X, warm_y = load_iris(return_X_y=True)
    LotteryTicketClassifier(target_sparsity=0.5, random_state=0).set_params(
        net__max_epochs=1).fit(StandardScaler().fit_transform(warm_X), warm_y)

    rows, ratios = [], []
    for name in args.datasets:
        load, task = TABULAR[name]
        X, y = load(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        if task == "classification":
            ticket = LotteryTicketClassifier(target_sparsity=0.9, random_state=0)
            mlp = MLPClassifier(random_state=0)
        else:
            ticket = LotteryTicketRegressor(target_sparsity=0.9, random_state=0)
            mlp = MLPRegressor(random_state=0)
        # Alternating sides, so that a slow minute of a shared machine falls on both.
        mlp_runs, ticket_runs = [], []
        for r in range(max(3, args.repeats)):
            for side in (("mlp", "ticket") if r % 2 == 0 else ("ticket", "mlp")):
                if side == "mlp" and len(mlp_runs) < 3:
                    with threadpool_limits(limits=1, user_api="blas"):
                        mlp_runs.append(fit_seconds(mlp, X, y))
                elif side == "ticket" and len(ticket_runs) < args.repeats:
                    ticket_runs.append(fit_seconds(ticket, X, y))
        mlp_s = min(s for s, _ in mlp_runs)
        ticket_s = median([s for s, _ in ticket_runs])
        fitted = ticket_runs[-1][1]
        epochs = [record["epochs"] for record in fitted.rounds_]
        ratio = ticket_s / mlp_s
        ratios.append(ratio)
        rows.append([name, len(X), fitted.net_.batch_size, f"{ticket_s:.2f}", f"{mlp_s:.3f}",
                     f"{ratio:.1f}", len(epochs), sum(epochs),
                     f"{sum(epochs) / len(epochs):.0f}", mlp_runs[0][1].n_iter_,
                     f"{fitted.score(X, y):.3f}", f"{mlp_runs[0][1].score(X, y):.3f}"])
        print(f"{name}: done", flush=True)
    print()
    print(table(["data set", "rows", "ticket batch", "ticket fit s", "MLP fit s (best of 3)",
                 "ratio", "trainings", "epochs in all", "epochs per training", "MLP epochs",
                 "ticket train score", "MLP train score"], rows))
    print(f"\nmedian ratio {np.median(ratios):.1f} (target <= {MEDIAN_TARGET:.0f}), "
          f"largest {max(ratios):.1f} (target <= {MAX_TARGET:.0f})")

if __name__ == "__main__":
    main()
