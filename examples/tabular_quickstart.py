"""Lottery tickets on tabular data, tuned like any scikit-learn estimator.

For ``load_breast_cancer`` (classification, accuracy) and ``load_diabetes``
(regression, R^2): a Pipeline of StandardScaler and a lottery-ticket estimator
with its default net (two hidden layers of 256 units, each training stopped by
10% held-out rows), tuned by GridSearchCV over ``prune_fraction`` and
``target_sparsity``. The best ticket's sparsity and test score are printed next
to the same net trained dense (``max_rounds=0``) and next to scikit-learn's
``MLPClassifier`` / ``MLPRegressor`` (100 hidden units) on the same split. The lottery-ticket regressor takes the raw target (its
default net standardizes it for training); scikit-learn's MLP is given its best
setup, a ``TransformedTargetRegressor`` that standardizes the target.

Run:  python examples/tabular_quickstart.py
"""

from __future__ import annotations

import warnings

import torch
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skticket import LotteryTicketClassifier, LotteryTicketRegressor

DATASETS = {
    "breast_cancer": (load_breast_cancer, "classification", "accuracy"),
    "diabetes": (load_diabetes, "regression", "R^2"),
}


def _models(task: str, random_state: int, net_params: dict):
    """The ticket pipeline, its grid-parameter prefix, the dense net and sklearn's MLP."""
    if task == "classification":
        def ticket(**params):
            return make_pipeline(StandardScaler(), LotteryTicketClassifier(
                random_state=random_state, **params).set_params(**net_params))
        mlp = make_pipeline(StandardScaler(), MLPClassifier(max_iter=1000,
                                                            random_state=random_state))
        return ticket(), "lotteryticketclassifier__", ticket(max_rounds=0), mlp

    def ticket(**params):
        return make_pipeline(StandardScaler(), LotteryTicketRegressor(
            random_state=random_state, **params).set_params(**net_params))
    mlp = TransformedTargetRegressor(
        make_pipeline(StandardScaler(), MLPRegressor(max_iter=1000, random_state=random_state)),
        transformer=StandardScaler())
    return ticket(), "lotteryticketregressor__", ticket(max_rounds=0), mlp


def _final_step(model):
    pipeline = model.regressor_ if isinstance(model, TransformedTargetRegressor) else model
    return pipeline[-1]


def run_dataset(name: str, prune_fractions=(0.2, 0.5), target_sparsities=(0.5, 0.8, 0.95),
                cv: int = 3, random_state: int = 0, net_params: dict | None = None) -> dict:
    """Grid-search a ticket on one dataset; score it, the dense net and sklearn's MLP.

    ``net_params`` (``{"net__max_epochs": 20}``, say) tune the default net; the
    example itself sets none.
    """
    loader, task, metric = DATASETS[name]
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=random_state,
        stratify=y if task == "classification" else None)
    ticket, prefix, dense, mlp = _models(task, random_state, net_params or {})
    search = GridSearchCV(ticket, {f"{prefix}prune_fraction": list(prune_fractions),
                                   f"{prefix}target_sparsity": list(target_sparsities)}, cv=cv)
    search.fit(X_train, y_train)
    dense.fit(X_train, y_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X_train, y_train)
    best = _final_step(search.best_estimator_)
    return {
        "dataset": name,
        "metric": metric,
        "best_params": {key.removeprefix(prefix): value
                        for key, value in search.best_params_.items()},
        "cv_score": float(search.best_score_),
        "ticket_sparsity": best.winning_ticket_.sparsity,
        "ticket_weights": best.winning_ticket_.n_active,
        "dense_weights": best.winning_ticket_.n_prunable,
        "mlp_weights": sum(coef.size for coef in _final_step(mlp).coefs_),
        "scores": {
            "winning ticket": float(search.score(X_test, y_test)),
            "dense net": float(dense.score(X_test, y_test)),
            "sklearn MLP": float(mlp.score(X_test, y_test)),
        },
    }


def main(datasets=tuple(DATASETS), prune_fractions=(0.2, 0.5),
         target_sparsities=(0.5, 0.8, 0.95), cv: int = 3, random_state: int = 0,
         verbose: bool = True, net_params: dict | None = None) -> list[dict]:
    """Run every dataset; print one table each when ``verbose``."""
    results = []
    for name in datasets:
        result = run_dataset(name, prune_fractions, target_sparsities, cv, random_state,
                             net_params)
        results.append(result)
        if verbose:
            _report(result, cv)
    return results


def _report(result: dict, cv: int) -> None:
    params = ", ".join(f"{key}={value}" for key, value in result["best_params"].items())
    print(f"{result['dataset']}: best of the grid by {cv}-fold CV: {params} "
          f"(CV {result['metric']} {result['cv_score']:.3f})")
    rows = [
        ("winning ticket", f"{result['ticket_weights']} of {result['dense_weights']} "
                           f"({100 * (1 - result['ticket_sparsity']):.1f}%)"),
        ("dense net", f"{result['dense_weights']} (100%)"),
        ("sklearn MLP", f"{result['mlp_weights']}"),
    ]
    print(f"  {'model':<16} {'weights':<22} test {result['metric']}")
    for model, weights in rows:
        print(f"  {model:<16} {weights:<22} {result['scores'][model]:.3f}")
    print()


if __name__ == "__main__":
    # The nets are small: one thread per process trains them faster than
    # several threads contending for the cores.
    torch.set_num_threads(1)
    main()
