"""TicketPathDisplay: what it draws from a fitted CV estimator."""

import math

import numpy as np
import pytest
from helpers import breast_cancer, small_net
from matplotlib.figure import Figure

from skticket import LotteryTicketClassifierCV, TicketPathDisplay


@pytest.fixture(scope="module")
def fitted():
    X, y = breast_cancer(rows=120)
    return LotteryTicketClassifierCV(small_net(max_epochs=3), prune_fraction=0.5,
                                     target_sparsity=0.75, cv=2, random_state=0).fit(X, y)


def test_from_estimator_draws_the_mean_one_standard_error_and_the_chosen_level(fitted):
    ax = Figure().subplots()
    display = TicketPathDisplay.from_estimator(fitted, ax=ax)
    results = fitted.cv_results_
    assert display.ax_ is ax and display.figure_ is ax.figure
    np.testing.assert_allclose(display.line_.get_xdata(), 100 * results["sparsity"])
    np.testing.assert_allclose(display.line_.get_ydata(), results["mean_test_score"])
    # The band spans one standard error either side of the mean.
    error = results["std_test_score"] / math.sqrt(2)
    band = display.errorbar_.get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose([band.min(), band.max()],
                               [(results["mean_test_score"] - error).min(),
                                (results["mean_test_score"] + error).max()])
    assert display.chosen_line_.get_xdata()[0] == 100 * fitted.sparsity_
    best = int(np.flatnonzero(results["mean_test_score"] == results["mean_test_score"].max())[-1])
    assert display.best_marker_.get_xdata()[0] == 100 * results["sparsity"][best]
    assert ax.get_ylabel() == "test score"


def test_weights_kept_on_a_log_axis_from_dense_to_sparse(fitted):
    display = TicketPathDisplay.from_estimator(fitted, ax=Figure().subplots(), x="weights_kept",
                                               score_name="accuracy")
    assert display.ax_.get_xscale() == "log"
    left, right = display.ax_.get_xlim()
    assert left > right  # dense on the left
    np.testing.assert_allclose(display.line_.get_xdata(),
                               100 * (1 - fitted.cv_results_["sparsity"]))
    assert display.ax_.get_ylabel() == "accuracy"


def test_refuses_an_unknown_axis_and_an_unfitted_estimator(fitted):
    with pytest.raises(ValueError, match="x must be one of"):
        TicketPathDisplay.from_estimator(fitted, ax=Figure().subplots(), x="density")
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        TicketPathDisplay.from_estimator(LotteryTicketClassifierCV())
