"""Row invariance of both estimators' predictions, in a process of its own.

Run by tests/test_invariance.py with instruction-set limits
(``MKL_ENABLE_INSTRUCTIONS``, ``ATEN_CPU_CAPABILITY``) in the environment, set
before torch is imported, so that other kernels than the machine's default
run. Fits small tickets once (a classifier and a regressor at 0.9 and 0.95
sparsity) and checks, with one and two torch threads, that the rows of
``X[start:start + n]`` come out as in one call on all of X (labels identical,
probabilities equal to 1e-12 relative, values to 1e-12 of their target's
scale), for n = 1..64 at several
starts, around the row count from which the net is compacted first, and at
the boundaries of passes. Prints one JSON line (what ran, the largest relative
difference seen, any rows that differed) and exits 1 if a row differed.
"""

import json
import os
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits, make_regression
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

from skticket import MLP, LotteryTicketClassifier, LotteryTicketRegressor
from skticket._compact import BATCH_SIZE
from skticket._predict import COMPACT_MIN_ROWS

RTOL = 1e-12


def net(net_class, **params):
    defaults = dict(module=MLP, module__hidden_units=(64,), optimizer=torch.optim.Adam, lr=0.01,
                    max_epochs=2, batch_size=128, train_split=None, verbose=0)
    return net_class(**{**defaults, **params})


def fitted():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    Xr, yr = make_regression(n_samples=800, n_features=64, n_informative=16, n_targets=8,
                             random_state=0)
    Xr, yr = Xr.astype(np.float32), yr / 100
    common = dict(prune_fraction=0.7, random_state=0)
    estimators = {
        # NLLLoss: the module ends in a softmax.
        "classifier 0.9": LotteryTicketClassifier(net(NeuralNetClassifier), target_sparsity=0.9,
                                                  **common).fit(X, y),
        # CrossEntropyLoss: skorch's softmax nonlinearity.
        "classifier 0.95": LotteryTicketClassifier(
            net(NeuralNetClassifier, criterion=nn.CrossEntropyLoss), target_sparsity=0.95,
            **common).fit(X, y),
        # Two hidden layers, so that CSR products stay after compaction: one
        # target (CSR then dense products), and eight with tanh (all CSR).
        "regressor 0.9": LotteryTicketRegressor(
            net(NeuralNetRegressor, module__hidden_units=(64, 64)), target_sparsity=0.9,
            **common).fit(Xr, yr[:, 0]),
        "regressor 0.95": LotteryTicketRegressor(
            net(NeuralNetRegressor, module__hidden_units=(64, 64), module__activation="tanh"),
            target_sparsity=0.95, **common).fit(Xr, yr),
    }
    rows = {"classifier": np.tile(X, (5, 1))[:2 * BATCH_SIZE + 300],
            "regressor": np.tile(Xr, (11, 1))[:2 * BATCH_SIZE + 300]}
    # The checks below are meant to meet CSR products: fail loudly if compaction left none.
    kinds = {name: [layer.is_sparse for layer in est.compact().module_.linears]
             for name, est in estimators.items()}
    assert all(any(sparse) for sparse in kinds.values()), kinds
    return estimators, rows


def slices(threads):
    """(start, stop) of the calls checked against the whole one: with one thread n =
    1..64 from the start, from an odd offset and across the first pass boundary;
    with two, n = 1..64 from the start; and with both, calls just below and from
    COMPACT_MIN_ROWS rows (the layers as they are, the compacted copy) and pass
    boundaries."""
    starts = (0, 7, BATCH_SIZE - 32) if threads == 1 else (0,)
    for n in range(1, 65):
        for start in starts:
            yield start, start + n
    for start, stop in [(0, BATCH_SIZE - 1), (0, BATCH_SIZE), (0, BATCH_SIZE + 1),
                        (BATCH_SIZE - 1, BATCH_SIZE + 1), (1000, 1300), (250, 260), (15, 17),
                        (5, COMPACT_MIN_ROWS + 4), (5, COMPACT_MIN_ROWS + 5),
                        (BATCH_SIZE + 5, 2 * BATCH_SIZE + 7)]:
        yield start, stop


def relative_difference(part, whole, scale):
    """The largest ``|part - whole| / max(|whole|, scale)`` (0 where they are equal)."""
    diff = np.abs(part - whole)
    size = np.maximum(np.abs(whole), scale)
    return float(np.max(np.where(diff > 0, diff / np.where(size > 0, size, 1.0), 0.0),
                        initial=0.0))


def main():
    estimators, rows = fitted()
    failures, largest, compared = [], 0.0, 0
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, est in estimators.items():
            X = rows[name.split()[0]]
            classifier = isinstance(est, LotteryTicketClassifier)
            values = est.predict_proba if classifier else est.predict
            whole = values(X)
            labels = est.predict(X) if classifier else None
            # Probabilities each on its own; a regressor's values against their target's
            # scale (a value near zero is a difference of larger terms, each rounded).
            scale = 0.0 if classifier else np.abs(whole).max(axis=0)
            order = np.random.default_rng(0).permutation(len(X))
            calls = [(f"{start}:{stop}", slice(start, stop)) for start, stop in slices(threads)]
            for where, index in [*calls, ("permuted", order)]:
                difference = relative_difference(values(X[index]), whole[index], scale)
                largest, compared = max(largest, difference), compared + 1
                same_labels = labels is None or np.array_equal(est.predict(X[index]),
                                                               labels[index])
                if difference > RTOL or not same_labels:
                    failures.append([name, threads, where, difference, same_labels])
    print(json.dumps({
        "capability": torch.backends.cpu.get_cpu_capability(),
        "MKL_ENABLE_INSTRUCTIONS": os.environ.get("MKL_ENABLE_INSTRUCTIONS"),
        "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY"),
        "compared": compared,
        "largest_relative_difference": largest,
        "failures": failures[:20],
        "n_failures": len(failures),
    }))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
