"""ticket_curve, summarize_ticket_curve and plot_ticket_curve."""

import sys

import matplotlib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_iris, make_regression
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier, NeuralNetRegressor

import skticket._session
from skticket import (
    MLP,
    LotteryTicketClassifier,
    LotteryTicketRegressor,
    plot_ticket_curve,
    summarize_ticket_curve,
    ticket_curve,
)

matplotlib.use("Agg")
pd = pytest.importorskip("pandas")


def _iris():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    return X[::2], y[::2], X[1::2], y[1::2]


def _classifier(**params):
    net = NeuralNetClassifier(MLP, module__hidden_units=(8,), optimizer=torch.optim.Adam,
                              lr=0.05, max_epochs=4, batch_size=32, train_split=None, verbose=0)
    # Layers of 32 and 24 weights: rounds at sparsity 0.5, then exactly 0.75.
    params = {"prune_fraction": 0.5, "target_sparsity": 0.75, "random_state": 0, **params}
    return LotteryTicketClassifier(net, **params)


@pytest.fixture(scope="module")
def iris_curve():
    X_train, y_train, X_test, y_test = _iris()
    curve, tickets = ticket_curve(_classifier(), X_train, y_train, X_test, y_test,
                                  n_repeats=2, return_tickets=True)
    return curve, tickets


def test_one_row_per_round_kind_and_repeat(iris_curve):
    curve, tickets = iris_curve
    assert isinstance(curve, pd.DataFrame)
    expected = {(repeat, 0, "dense") for repeat in range(2)} | {
        (repeat, r, kind) for repeat in range(2) for r in (1, 2)
        for kind in ("rewind", "reinit", "permute")
    }
    keys = list(zip(curve["repeat"], curve["round"], curve["ticket"], strict=True))
    assert len(keys) == len(set(keys)) == len(expected)
    assert set(keys) == expected
    assert len(tickets) == len(curve)
    # The rounds land on the sparsities the pruning schedule gives, for every kind.
    for r, expected_sparsity in [(0, 0.0), (1, 0.5), (2, 0.75)]:
        rows = curve[curve["round"] == r]
        np.testing.assert_allclose(rows["sparsity"], expected_sparsity)
        np.testing.assert_allclose(rows["weights_remaining"], 1 - expected_sparsity)
        assert set(rows["n_active"]) == {round(56 * (1 - expected_sparsity))}
    assert curve["accepted"].all()
    assert curve["score"].between(0, 1).all()
    # Each repeat is its own search.
    assert curve.groupby("repeat")["random_state"].nunique().eq(1).all()
    assert curve["random_state"].nunique() == 2


def test_tickets_match_their_rows(iris_curve):
    curve, tickets = iris_curve
    for (_, row), ticket in zip(curve.iterrows(), tickets, strict=True):
        assert ticket.n_active == row["n_active"]
        assert ticket.round == row["round"]
        assert ticket.init == ("rewind" if row["ticket"] == "dense" else row["ticket"])
    by_key = {(row["repeat"], row["round"], row["ticket"]): ticket
              for (_, row), ticket in zip(curve.iterrows(), tickets, strict=True)}
    rewind, reinit, permute = (by_key[(0, 2, kind)] for kind in ("rewind", "reinit", "permute"))
    for name, mask in rewind.masks.items():
        # reinit: the same mask, other weights; permute: other positions, same count.
        np.testing.assert_array_equal(reinit.masks[name], mask)
        assert not np.array_equal(reinit.weights[name][mask], rewind.weights[name][mask])
        assert permute.masks[name].sum() == mask.sum()
    assert any(not np.array_equal(permute.masks[n], m) for n, m in rewind.masks.items())


def test_a_repeat_is_what_fit_does_with_its_seed(iris_curve):
    curve, tickets = iris_curve
    X_train, y_train, X_test, y_test = _iris()
    row = curve[(curve["repeat"] == 1) & (curve["round"] == 2) & (curve["ticket"] == "rewind")]
    ticket = tickets[row.index[0]]
    fitted = clone(_classifier()).set_params(random_state=int(row["random_state"].iloc[0]))
    fitted.fit(X_train, y_train)
    for name, mask in fitted.winning_ticket_.masks.items():
        np.testing.assert_array_equal(ticket.masks[name], mask)
    assert fitted.score(X_test, y_test) == pytest.approx(row["score"].iloc[0])


def test_metric_sees_the_users_labels():
    X_train, y_train, X_test, y_test = _iris()
    names = np.array(["setosa", "versicolor", "virginica"])
    seen = []

    def metric(y_true, y_pred):
        seen.append(set(np.unique(y_pred)))
        return accuracy_score(y_true, y_pred)

    est = _classifier(target_sparsity=0.5)
    by_metric = ticket_curve(est, X_train, names[y_train], X_test, names[y_test],
                             n_repeats=1, metric=metric, as_frame=False)
    default = ticket_curve(est, X_train, names[y_train], X_test, names[y_test],
                           n_repeats=1, as_frame=False)
    assert seen and all(labels <= set(names) for labels in seen)
    assert [row["score"] for row in by_metric] == [row["score"] for row in default]


def test_regressor_default_score_is_r2_and_metric_sees_1d_target():
    X, y = make_regression(n_samples=120, n_features=4, noise=1.0, random_state=0)
    y = y / np.std(y)
    net = NeuralNetRegressor(MLP, module__hidden_units=(8,), optimizer=torch.optim.Adam,
                             lr=0.05, max_epochs=5, batch_size=32, train_split=None, verbose=0)
    est = LotteryTicketRegressor(net, prune_fraction=0.5, max_rounds=1, random_state=0)
    shapes = []

    def metric(y_true, y_pred):
        shapes.append(y_pred.shape)
        return r2_score(y_true, y_pred)

    curve = ticket_curve(est, X[:80], y[:80], X[80:], y[80:], tickets=["rewind"],
                         n_repeats=1, metric=metric, as_frame=False)
    default = ticket_curve(est, X[:80], y[:80], X[80:], y[80:], tickets=["rewind"],
                           n_repeats=1, as_frame=False)
    assert [(row["round"], row["ticket"]) for row in curve] == [(0, "dense"), (1, "rewind")]
    assert set(shapes) == {(40,)}
    # The default score is the estimator's own, R^2 of predict: the metric's, exactly.
    assert [row["score"] for row in curve] == [row["score"] for row in default]
    fitted = clone(est).set_params(random_state=curve[0]["random_state"]).fit(X[:80], y[:80])
    assert fitted.score(X[80:], y[80:]) == curve[-1]["score"]


def test_tickets_subset_and_bad_arguments():
    X_train, y_train, X_test, y_test = _iris()
    est = _classifier(target_sparsity=0.5)
    curve = ticket_curve(est, X_train, y_train, X_test, y_test, tickets="reinit",
                         n_repeats=1, as_frame=False)
    assert [(row["round"], row["ticket"]) for row in curve] == [(0, "dense"), (1, "reinit")]
    with pytest.raises(ValueError, match="tickets"):
        ticket_curve(est, X_train, y_train, X_test, y_test, tickets=("rewind", "lucky"))
    with pytest.raises(ValueError, match="tickets"):
        ticket_curve(est, X_train, y_train, X_test, y_test, tickets=())
    with pytest.raises(ValueError, match="n_repeats"):
        ticket_curve(est, X_train, y_train, X_test, y_test, n_repeats=0)
    with pytest.raises(TypeError, match="LotteryTicketClassifier"):
        ticket_curve(StandardScaler(), X_train, y_train, X_test, y_test)


@pytest.mark.parametrize("change, message", [
    (lambda X, y: (X[:, :3], y), "X_test has 3 features, but X_train has 4"),
    (lambda X, y: (np.where(X == X[0, 0], np.nan, X), y), "X_test"),
    (lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
])
def test_bad_test_data_is_refused_before_anything_trains(monkeypatch, change, message):
    X_train, y_train, X_test, y_test = _iris()
    trainings = []
    monkeypatch.setattr(skticket._session, "train_members",
                        lambda specs, **kwargs: trainings.extend(specs))
    with pytest.raises(ValueError, match=message):
        ticket_curve(_classifier(), X_train, y_train, *change(X_test, y_test))
    assert trainings == []


def test_summary_is_mean_and_spread_over_repeats(iris_curve):
    curve, _ = iris_curve
    summary = summarize_ticket_curve(curve)
    assert isinstance(summary, pd.DataFrame)
    assert len(summary) == 1 + 2 * 3
    assert list(summary["round"]) == sorted(summary["round"])
    for _, row in summary.iterrows():
        scores = curve[(curve["round"] == row["round"]) & (curve["ticket"] == row["ticket"])]
        scores = scores["score"].to_numpy()
        assert row["n_repeats"] == len(scores) == 2
        assert row["mean"] == pytest.approx(scores.mean())
        assert row["std"] == pytest.approx(scores.std(ddof=1))
        assert (row["min"], row["max"]) == (scores.min(), scores.max())
    # A list of records gives the same numbers as the DataFrame.
    records = summarize_ticket_curve(curve.to_dict(orient="records"), as_frame=False)
    assert isinstance(records, list)
    np.testing.assert_allclose([r["mean"] for r in records], summary["mean"])


def test_records_without_pandas(monkeypatch):
    rows = [{"repeat": 0, "round": 0, "ticket": "dense", "sparsity": 0.0,
             "weights_remaining": 1.0, "n_active": 4, "score": 0.5, "accepted": True}]
    monkeypatch.setitem(sys.modules, "pandas", None)
    summary = summarize_ticket_curve(rows)
    assert isinstance(summary, list) and summary[0]["mean"] == 0.5
    assert np.isnan(summary[0]["std"])
    with pytest.raises(ImportError, match=r"skticket\[report\]"):
        summarize_ticket_curve(rows, as_frame=True)


def test_plot_draws_on_agg(iris_curve):
    from matplotlib.figure import Figure

    curve, _ = iris_curve
    fig = Figure()
    ax = fig.subplots()
    assert plot_ticket_curve(curve, ax=ax, ylabel="accuracy", title="iris") is ax
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["dense net", "winning ticket (rewind)", "random reinit",
                      "random permute + reinit"]
    assert ax.get_xscale() == "log"
    left, right = ax.get_xlim()
    assert left > 100 and right < 25  # dense on the left, sparse on the right
    np.testing.assert_allclose(sorted(ax.get_lines()[1].get_xdata()), [25, 50])
    summary = summarize_ticket_curve(curve, as_frame=False)
    dense_mean = next(r["mean"] for r in summary if r["ticket"] == "dense")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), dense_mean)
    assert ax.get_ylabel() == "accuracy" and ax.get_title() == "iris"
    fig.canvas.draw()  # renders without a display

    # Without an ax, a new figure (pyplot, Agg here) is made.
    import matplotlib.pyplot as plt

    ax = plot_ticket_curve(curve.to_dict(orient="records"))
    assert ax.get_xscale() == "log"
    plt.close(ax.figure)


def test_plot_errors(monkeypatch):
    with pytest.raises(ValueError, match="empty"):
        plot_ticket_curve([])
    for module in ("matplotlib", "matplotlib.ticker", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r"skticket\[plot\]"):
        plot_ticket_curve([])


def test_the_curve_follows_the_estimators_search():
    X, y = load_iris(return_X_y=True)
    net = NeuralNetClassifier(MLP, module__hidden_units=(16,), max_epochs=5, lr=0.02,
                              optimizer=torch.optim.Adam, train_split=None, verbose=0)
    est = LotteryTicketClassifier(net, target_sparsity=0.75, random_state=0, search="snip")
    curve = ticket_curve(est, X[::2], y[::2], X[1::2], y[1::2], n_repeats=1,
                         tickets=("rewind", "permute"), as_frame=False)
    # SNIP trains no dense net: one round, its ticket and its permuted control.
    assert [(row["round"], row["ticket"]) for row in curve] == [(1, "rewind"), (1, "permute")]
    assert all(row["sparsity"] == 0.75 for row in curve)


def test_the_curve_drives_search_objects_as_fit_does():
    from skticket import EarlyBird

    X, y = load_iris(return_X_y=True)
    net = NeuralNetClassifier(MLP, module__hidden_units=(16,), max_epochs=6, lr=0.02,
                              optimizer=torch.optim.Adam, train_split=None, verbose=0)
    est = LotteryTicketClassifier(net, target_sparsity=0.75, random_state=0,
                                  search=EarlyBird(window=1, tolerance=1.0))
    curve, tickets = ticket_curve(est, X[::2], y[::2], X[1::2], y[1::2], n_repeats=1,
                                  tickets=("rewind",), as_frame=False, return_tickets=True)
    assert [(row["round"], row["ticket"]) for row in curve] == [(0, "dense"), (1, "rewind")]
    # The repeat's seed fits exactly that search: the same ticket.
    fitted = clone(est).set_params(random_state=curve[0]["random_state"]).fit(X[::2], y[::2])
    assert fitted.rounds_[0]["epochs"] == 2  # the loose tolerance stopped it, as in the curve
    for name, mask in fitted.winning_ticket_.masks.items():
        np.testing.assert_array_equal(tickets[1].masks[name], mask)
    assert curve[1]["score"] == fitted.score(X[1::2], y[1::2])
    assert est.search.get_params() == {"window": 1, "tolerance": 1.0}  # untouched


def test_the_curve_calls_no_private_method_of_the_estimator():
    import pathlib
    import re

    code = (pathlib.Path(__file__).resolve().parents[1] / "skticket" / "_curves.py").read_text()
    assert not re.findall(r"\b(est|estimator)\._\w+", code)
    assert "ticket_path(" in code and ".estimator, X_test, y_test)" in code
