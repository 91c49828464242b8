"""TicketPathDisplay: a cross-validated sparsity path, scikit-learn's Display convention
(``ValidationCurveDisplay``): ``from_estimator`` computes, ``plot`` draws, and the
display keeps the artists."""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._curves import PERCENT_TICKS
from ._cv import best_level

__all__ = ["TicketPathDisplay"]

_X_AXES = ("sparsity", "weights_kept")


class TicketPathDisplay:
    """Mean test score, with one standard error either side, along a cross-validated
    sparsity path; the chosen level and the best marked.

    Build it with :meth:`from_estimator` from a fitted
    :class:`LotteryTicketClassifierCV` or :class:`LotteryTicketRegressorCV`;
    the constructor takes the numbers themselves. All parameters are stored
    as attributes.

    Parameters
    ----------
    sparsity : array-like of shape (n_levels,)
        Each level's sparsity (share of the prunable weights that are zero),
        the dense level first.
    mean_test_score : array-like of shape (n_levels,)
        Each level's mean test score over the folds.
    std_error : array-like of shape (n_levels,)
        Each level's standard error, ``std_test_score / sqrt(n_splits)``.
    chosen_index : int
        The level the estimator chose (its ``best_index_``).
    best_index : int
        The level of the highest mean test score.
    score_name : str or None, default=None
        The y axis' label; None: ``"test score"``.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The mean test score.
    errorbar_ : matplotlib PolyCollection
        The band of one standard error either side.
    chosen_line_ : matplotlib Line2D
        A vertical line at the chosen level.
    best_marker_ : matplotlib Line2D
        A marker at the best level.
    ax_ : matplotlib Axes
        The axes drawn on.
    figure_ : matplotlib Figure
        The figure the axes are in.

    See Also
    --------
    LotteryTicketClassifierCV : Cross-validates the path this display plots.
    plot_ticket_curve : Winning against random tickets along a path.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from skticket import TicketPathDisplay
    >>> display = TicketPathDisplay(sparsity=[0.0, 0.5, 0.75], mean_test_score=[0.9, 0.92, 0.88],
    ...                             std_error=[0.01, 0.01, 0.02], chosen_index=1, best_index=1)
    >>> display = display.plot(ax=Figure().subplots())
    >>> display.line_.get_xdata().tolist()
    [0.0, 50.0, 75.0]
    """

    def __init__(self, *, sparsity, mean_test_score, std_error, chosen_index: int,
                 best_index: int, score_name: str | None = None) -> None:
        self.sparsity = sparsity
        self.mean_test_score = mean_test_score
        self.std_error = std_error
        self.chosen_index = chosen_index
        self.best_index = best_index
        self.score_name = score_name

    def plot(self, ax=None, *, x: str = "sparsity") -> TicketPathDisplay:
        """Draw the path.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Where to draw; None: a new figure.
        x : {"sparsity", "weights_kept"}, default="sparsity"
            The x axis: the share of the weights pruned, in percent (linear),
            or the share kept, in percent, on a log scale running from dense
            on the left to sparsest on the right.

        Returns
        -------
        display : TicketPathDisplay
            The display, with its artists.
        """
        if x not in _X_AXES:
            raise ValueError(f"x must be one of {list(_X_AXES)}, got {x!r}.")
        try:
            from matplotlib.ticker import FuncFormatter, NullFormatter
        except ImportError:
            raise ImportError("TicketPathDisplay needs matplotlib; install it with "
                              "pip install 'skticket[plot]'.") from None
        if ax is None:
            # pyplot only when asked for a new figure: it picks a GUI backend.
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6.4, 4.2))
        sparsity = np.asarray(self.sparsity, dtype=float)
        mean = np.asarray(self.mean_test_score, dtype=float)
        error = np.asarray(self.std_error, dtype=float)
        values = 100 * sparsity if x == "sparsity" else 100 * (1 - sparsity)
        (self.line_,) = ax.plot(values, mean, marker="o", markersize=3,
                                label="mean test score")
        self.errorbar_ = ax.fill_between(values, mean - error, mean + error,
                                         color=self.line_.get_color(), alpha=0.2, linewidth=0,
                                         label="one standard error")
        self.chosen_line_ = ax.axvline(values[self.chosen_index], color="0.3", linestyle="--",
                                       label=f"chosen: {100 * sparsity[self.chosen_index]:.1f}% "
                                             "sparse")
        (self.best_marker_,) = ax.plot([values[self.best_index]], [mean[self.best_index]],
                                       marker="*", markersize=12, linestyle="none",
                                       color="C3", label="best mean")
        if x == "weights_kept":
            ax.set_xscale("log")
            low = values.min()
            # Plain percentages at 1-2-5 steps; log-axis defaults would print 6x10^1.
            ax.set_xticks([tick for tick in PERCENT_TICKS if low / 1.15 <= tick <= 100])
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlim(100 * 1.15, low / 1.15)
            ax.set_xlabel("weights kept (%)")
        else:
            ax.set_xlabel("sparsity (% of prunable weights pruned)")
        ax.set_ylabel(self.score_name or "test score")
        ax.grid(True, alpha=0.3)
        ax.legend()
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, x: str = "sparsity",
                       score_name: str | None = None) -> TicketPathDisplay:
        """The display of a fitted CV estimator's path, drawn.

        Parameters
        ----------
        estimator : LotteryTicketClassifierCV or LotteryTicketRegressorCV
            Fitted.
        ax : matplotlib Axes or None, default=None
            Where to draw; None: a new figure.
        x : {"sparsity", "weights_kept"}, default="sparsity"
            The x axis, as in :meth:`plot`.
        score_name : str or None, default=None
            The y axis' label; None: the estimator's ``scoring`` if it is a
            name, else ``"test score"``.

        Returns
        -------
        display : TicketPathDisplay
        """
        check_is_fitted(estimator, "cv_results_")
        results = estimator.cv_results_
        mean = results["mean_test_score"]
        if score_name is None and isinstance(estimator.scoring, str):
            score_name = estimator.scoring
        display = cls(sparsity=results["sparsity"], mean_test_score=mean,
                      std_error=results["std_test_score"] / math.sqrt(estimator.n_splits_),
                      chosen_index=estimator.best_index_, best_index=best_level(mean),
                      score_name=score_name)
        return display.plot(ax=ax, x=x)
