"""The sum-of-two-inputs lottery ticket.

Task: y = x0 + x1, learned by a two-layer linear net with 200 hidden units and
no bias (600 weights). The net trains on inputs drawn uniformly from [-1, 1)
and is tested on inputs from [1, 2), outside the training range, so only a net
that really computes the sum scores well. Iterative magnitude pruning removes
25% of each layer's remaining weights per round until 2 weights are left in
each layer, training 10 epochs per round and rewinding the survivors to their
values after the first optimizer step (late resetting).

Smallest possible winning tickets: one hidden unit that sees both inputs and
feeds the output (3 weights), or two hidden units, one per input, both feeding
the output (4 weights). The example prints every round's test RMSE, the
winning ticket, and the true test RMSE (over the whole test set) of four
models: the full net, the winning ticket, the winning mask with fresh weights
(reinit) and a mask shuffled over each layer's whole matrix, with fresh
weights (permute).

Run:  python examples/sum_of_two_inputs.py
"""

from __future__ import annotations

import numpy as np
import torch
from skorch import NeuralNetRegressor

from skticket import MLP, LotteryTicketRegressor, Ticket, ticket_curve


def make_data(n_train: int, n_test: int, seed: int = 0):
    """Training inputs in [-1, 1)^2, test inputs in [1, 2)^2, target x0 + x1."""
    rng = np.random.default_rng(seed)
    X_train = rng.uniform(-1.0, 1.0, size=(n_train, 2)).astype(np.float32)
    X_test = rng.uniform(1.0, 2.0, size=(n_test, 2)).astype(np.float32)
    return X_train, X_train.sum(axis=1), X_test, X_test.sum(axis=1)


def rmse(y_true, y_pred) -> float:
    """Root of the mean squared error over all samples (not of a sum of batch means)."""
    return float(np.sqrt(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2)))


def has_input_output_path(ticket: Ticket) -> bool:
    """Whether both inputs reach the output through some surviving hidden unit."""
    first = ticket.masks["hidden_0.weight"]  # (hidden, inputs)
    second = ticket.masks["output.weight"]  # (1, hidden)
    return all(np.any(first[:, i] & second[0]) for i in range(first.shape[1]))


def make_estimator(hidden_units: int = 200, epochs: int = 10,
                   random_state: int = 0) -> LotteryTicketRegressor:
    net = NeuralNetRegressor(
        MLP,
        module__hidden_units=(hidden_units,),
        module__activation="identity",
        module__bias=False,
        optimizer=torch.optim.Adam,
        lr=0.01,
        max_epochs=epochs,
        batch_size=32,
        train_split=None,
        verbose=0,
    )
    # No sparsity target: prune until every layer is at its floor of 2 weights.
    return LotteryTicketRegressor(
        net, prune_fraction=0.25, target_sparsity=None, min_weights_per_layer=2,
        scope="local", rewind_step=1, random_state=random_state,
    )


def main(n_train: int = 1024, n_test: int = 1000, hidden_units: int = 200, epochs: int = 10,
         random_state: int = 0, verbose: bool = True) -> dict:
    """Run the experiment; print the report when ``verbose``; return its figures."""
    X_train, y_train, X_test, y_test = make_data(n_train, n_test, seed=random_state)
    estimator = make_estimator(hidden_units, epochs, random_state)
    # One pruning search; every round's ticket and both baselines of its mask
    # are scored on the test set.
    curve, tickets = ticket_curve(
        estimator, X_train, y_train, X_test, y_test, n_repeats=1, metric=rmse,
        as_frame=False, return_tickets=True,
    )
    by_key = {(row["round"], row["ticket"]): (row, ticket)
              for row, ticket in zip(curve, tickets, strict=True)}
    last = max(row["round"] for row in curve)
    winning = by_key[(last, "rewind")][1]
    permuted = by_key[(last, "permute")][1]
    test_rmse = {
        "full model": by_key[(0, "dense")][0]["score"],
        "winning ticket": by_key[(last, "rewind")][0]["score"],
        "reinit ticket": by_key[(last, "reinit")][0]["score"],
        "permuted ticket": by_key[(last, "permute")][0]["score"],
    }
    result = {
        "curve": curve,
        "winning_ticket": winning,
        "permuted_ticket": permuted,
        "test_rmse": test_rmse,
        "n_weights": {"full model": by_key[(0, "dense")][0]["n_active"],
                      **{name: winning.n_active for name in list(test_rmse)[1:]}},
        "winning_path": has_input_output_path(winning),
        "permuted_path": has_input_output_path(permuted),
        "random_state": curve[0]["random_state"],
        "epochs": epochs,
    }
    if verbose:
        _report(result, last, by_key)
    return result


def _report(result: dict, last: int, by_key: dict) -> None:
    print(f"Test RMSE on x in [1, 2)^2 after each round ({result['epochs']} epochs per round):")
    print(f"{'round':>5} {'sparsity':>9} {'weights':>7} {'winning':>10} {'reinit':>10} "
          f"{'permuted':>10}")
    for r in range(last + 1):
        if r == 0:
            row = by_key[(0, "dense")][0]
            scores = [row["score"], None, None]
        else:
            row = by_key[(r, "rewind")][0]
            scores = [by_key[(r, kind)][0]["score"] for kind in ("rewind", "reinit", "permute")]
        cells = " ".join("         -" if s is None else f"{s:10.3g}" for s in scores)
        print(f"{r:>5} {100 * row['sparsity']:8.2f}% {row['n_active']:>7} {cells}")
    print()
    print("Winning ticket (weights shown are those it trains from):")
    print(result["winning_ticket"])
    print()
    print("Permuted ticket (mask shuffled over each whole layer, fresh weights):")
    print(result["permuted_ticket"])
    print()
    print("True test RMSE (root of the mean over all test samples):")
    for name, value in result["test_rmse"].items():
        print(f"  {name:<16} {result['n_weights'][name]:>4} weights  RMSE {value:.3g}")
    print()
    print("Winning ticket connects both inputs to the output:",
          "yes" if result["winning_path"] else "no")
    print("Permuted ticket connects both inputs to the output:",
          "yes" if result["permuted_path"] else "no")
    print(f"(LotteryTicketRegressor(..., random_state={result['random_state']}).fit(X, y) "
          "finds the same winning ticket.)")


if __name__ == "__main__":
    # The net is tiny: one thread per process trains it faster than several
    # threads contending for the cores.
    torch.set_num_threads(1)
    main()
