"""A digest of what every search fits: two trees that print the same lines fit the same.

For a change that must not change behaviour (a rename, a refactor): run it on
the tree before and after, and compare the output. Each line names a fit and
hashes, bit for bit, the winning ticket (masks and start weights), the trained
module's state, ``predict``, the ``rounds_`` records (without their times),
``predict_proba``, ``compact().predict`` and, for the classifier's searches,
``feature_importances_``. The fits cover every search for both estimators,
the baselines, sample weights with ``prune()``, a given ticket, late
resetting with ``score_tolerance``, multilabel targets, ``memory`` and
``ticket_curve``. One torch thread; about 10 s.

    python benchmarks/behaviour_digest.py > after.txt
    git stash; python benchmarks/behaviour_digest.py > before.txt; git stash pop
    diff before.txt after.txt
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings

import numpy as np
import torch
from sklearn.datasets import load_diabetes, load_iris, make_multilabel_classification
from sklearn.preprocessing import StandardScaler

from skticket import LotteryTicketClassifier, LotteryTicketRegressor, ticket_curve
from skticket._search import SEARCHES

UNTIMED = ("seconds", "cached")  # what differs between two runs of the same fit
# The training hooks' own summaries (rewind points, drawn masks): what the fits
# record of them is in the records' other keys, and the tickets and weights.
UNDIGESTED = (*UNTIMED, "hook_summaries")


def digest(*values) -> str:
    hasher = hashlib.sha256()
    for value in values:
        hasher.update(value if isinstance(value, bytes)
                      else np.ascontiguousarray(np.asarray(value)).tobytes())
    return hasher.hexdigest()[:12]


def ticket_digest(ticket) -> str:
    return digest(*(ticket.masks[name] for name in sorted(ticket.masks)),
                  *(ticket.weights[name] for name in sorted(ticket.weights)))


def records_digest(records) -> str:
    return digest(repr([{k: v for k, v in r.items() if k not in UNDIGESTED}
                        for r in records]).encode())


def line(name: str, est, X, *extra: str) -> str:
    state = est.net_.module_.state_dict()
    parts = [name, ticket_digest(est.winning_ticket_),
             digest(*(state[key].detach().cpu().numpy() for key in sorted(state))),
             digest(est.predict(X)), records_digest(est.rounds_)]
    if hasattr(est, "predict_proba"):
        parts.append(digest(est.predict_proba(X)))
    parts.append(digest(est.compact().predict(X)))
    return " ".join([*parts, *extra])


def main() -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    X_c, y_c = load_iris(return_X_y=True)
    X_c = StandardScaler().fit_transform(X_c)
    X_r, y_r = load_diabetes(return_X_y=True)
    X_r = StandardScaler().fit_transform(X_r)
    X_m, Y_m = make_multilabel_classification(n_samples=200, n_features=8, n_classes=3,
                                              random_state=0)
    X_m = StandardScaler().fit_transform(X_m)
    weight = np.random.default_rng(0).uniform(0.2, 2.0, len(y_c))

    for search in SEARCHES:
        params = dict(search=search, target_sparsity=0.8, random_state=0)
        clf = LotteryTicketClassifier(**params).set_params(net__max_epochs=12).fit(X_c, y_c)
        print(line(f"classifier {search}", clf, X_c, digest(clf.feature_importances_)))
        reg = LotteryTicketRegressor(**params).set_params(net__max_epochs=12).fit(X_r, y_r)
        print(line(f"regressor {search}", reg, X_r))

    clf = LotteryTicketClassifier(target_sparsity=0.6, random_state=1, ticket_init="permute")
    clf.set_params(net__max_epochs=8).fit(X_c, y_c, sample_weight=weight)
    clf.prune(X_c, y_c, sample_weight=weight)
    print(line("classifier permute, weighted, prune()", clf, X_c))
    reg = LotteryTicketRegressor(target_sparsity=0.6, random_state=1, ticket_init="reinit",
                                 scope="local").set_params(net__max_epochs=8).fit(X_r, y_r)
    print(line("regressor reinit, local", reg, X_r))
    given = LotteryTicketRegressor(ticket=reg.winning_ticket_, random_state=1)
    print(line("regressor given ticket", given.set_params(net__max_epochs=8).fit(X_r, y_r),
               X_r))
    clf = LotteryTicketClassifier(target_sparsity=0.7, random_state=2, rewind_step=5,
                                  score_tolerance=0.5).set_params(net__max_epochs=8)
    print(line("classifier late reset, tolerance", clf.fit(X_c, y_c), X_c))
    multilabel = LotteryTicketClassifier(target_sparsity=0.7, random_state=0)
    print(line("classifier multilabel", multilabel.set_params(net__max_epochs=8).fit(X_m, Y_m),
               X_m))
    with tempfile.TemporaryDirectory() as location:
        cached = LotteryTicketClassifier(target_sparsity=0.7, random_state=0, memory=location)
        cached.set_params(net__max_epochs=8).fit(X_c, y_c)
        first = ticket_digest(cached.winning_ticket_)
        print(line("classifier memory, refit from the cache", cached.fit(X_c, y_c), X_c, first))
    curve = ticket_curve(
        LotteryTicketClassifier(target_sparsity=0.6, random_state=0).set_params(
            net__max_epochs=5),
        X_c[::2], y_c[::2], X_c[1::2], y_c[1::2], n_repeats=2, random_state=0, as_frame=False)
    print("ticket_curve", records_digest(curve))


if __name__ == "__main__":
    main()
