"""What a fit reports: nothing, a progress bar, or skorch's epochs too; log records always."""

import logging
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier

from skticket import MLP, LotteryTicketClassifier, ticket_curve


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def estimator(verbose, **params):
    net = NeuralNetClassifier(MLP, module__hidden_units=(8,), optimizer=torch.optim.Adam,
                              lr=0.02, max_epochs=3, train_split=None, verbose=0)
    return LotteryTicketClassifier(net, prune_fraction=0.5, target_sparsity=0.875,
                                   random_state=0, verbose=verbose, **params)


def test_verbose_0_prints_nothing_and_logs_every_round(iris, capsys, caplog):
    X, y = iris
    with caplog.at_level(logging.INFO, logger="skticket"):
        estimator(0).fit(X, y)
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    lines = [r.getMessage() for r in caplog.records if r.name == "skticket"]
    assert [line.split(":")[0] for line in lines] == [
        f"LotteryTicketClassifier round {k}" for k in range(4)]
    assert "sparsity 0.8750" in lines[-1] and "train loss" in lines[-1]


def test_verbose_1_shows_one_bar_over_the_rounds(iris, capsys):
    X, y = iris
    est = estimator(1, score_tolerance=1.0).fit(X, y)
    out, err = capsys.readouterr()
    assert out == ""  # no epoch table
    final = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "LotteryTicketClassifier" in final and "4/4" in final  # total known in advance
    assert "sparsity=0.875" in final and "loss=" in final and "valid=" in final
    # Nothing that cannot be pickled stays on the estimator.
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(X), est.predict(X))


def test_verbose_2_adds_skorchs_epoch_table_for_each_round(iris, capsys):
    X, y = iris
    estimator(2).fit(X, y)
    out, err = capsys.readouterr()
    assert out.count("train_loss") == 4  # one table header per round
    assert "4/4" in err


def test_printing_does_not_change_the_rounds_cache_key(iris, tmp_path):
    X, y = iris
    estimator(0, memory=tmp_path).fit(X, y)
    loud = estimator(2, memory=tmp_path).fit(X, y)
    assert all(r["cached"] for r in loud.rounds_)


def test_ticket_curve_shows_a_bar_over_repeats_and_rounds(iris, capsys):
    X, y = iris
    ticket_curve(estimator(0), X[::2], y[::2], X[1::2], y[1::2], n_repeats=2, verbose=1,
                 tickets=("rewind",), as_frame=False)
    final = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith("ticket_curve") and "8/8" in final


def test_ticket_curve_in_parallel_equals_one_job(iris):
    X, y = iris
    one = ticket_curve(estimator(0), X[::2], y[::2], X[1::2], y[1::2], n_repeats=2,
                       as_frame=False, return_tickets=True)
    two = ticket_curve(estimator(0), X[::2], y[::2], X[1::2], y[1::2], n_repeats=2,
                       as_frame=False, return_tickets=True, n_jobs=2)
    assert one[0] == two[0]
    assert one[1] == two[1]
