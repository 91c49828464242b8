"""The main job in under a minute: a 90%-sparse ticket, against the dense net and
scikit-learn's MLP.

On ``load_breast_cancer`` (a fixed 75/25 split, inputs standardized), three
models with their defaults: a lottery ticket (``LotteryTicketClassifier(
target_sparsity=0.9)``, iterative magnitude pruning of the default net), the
same net trained dense (``max_rounds=0``) and ``MLPClassifier``. Each line
prints the test accuracy, the share of weights the model uses and the fit time.

Run:  python examples/quickstart.py
"""

from __future__ import annotations

import time
import warnings

from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skticket import LotteryTicketClassifier


def main(net_params: dict | None = None) -> list[dict]:
    """Fit and score the three models; print one line each and return them.

    ``net_params`` (such as ``{"net__max_epochs": 5}``) tune the default net
    of both skticket models.
    """
    X_train, X_test, y_train, y_test = train_test_split(
        *load_breast_cancer(return_X_y=True), random_state=0)
    models = {
        "lottery ticket (90% sparse)": LotteryTicketClassifier(target_sparsity=0.9,
                                                              random_state=0),
        "same net, dense": LotteryTicketClassifier(max_rounds=0, random_state=0),
        "scikit-learn MLPClassifier": MLPClassifier(random_state=0),
    }
    rows = []
    for name, estimator in models.items():
        if isinstance(estimator, LotteryTicketClassifier) and net_params:
            estimator.set_params(**net_params)
        model = make_pipeline(StandardScaler(), estimator)
        tic = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        seconds = time.perf_counter() - tic
        if isinstance(estimator, LotteryTicketClassifier):
            ticket = estimator.winning_ticket_
            used = f"{ticket.n_active:,} of {ticket.n_prunable:,} weights"
        else:
            n_weights = sum(w.size for w in estimator.coefs_)
            used = f"{n_weights:,} of {n_weights:,} weights"
        row = {"model": name, "accuracy": model.score(X_test, y_test), "weights": used,
               "seconds": seconds}
        rows.append(row)
        print(f"{name:<30} test accuracy {row['accuracy']:.3f}   {used:<22} "
              f"fit {seconds:5.1f} s")
    return rows


if __name__ == "__main__":
    import torch

    # Small nets: one thread trains them faster than several threads contending for
    # the cores (on a busy machine, many times faster).
    torch.set_num_threads(1)
    main()
