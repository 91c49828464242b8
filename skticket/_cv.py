"""LotteryTicketClassifierCV and LotteryTicketRegressorCV: the whole sparsity path,
cross-validated in one fit.

Each fold runs the path the plain estimator runs on the fold's training rows
(:class:`~skticket._path.SearchPath`, opened with the full data's classes) and
scores every level on the fold's held-out rows; the level is chosen by the
one-standard-error rule (or the best mean), and the plain estimator's path is
run again on all rows up to it: ``LassoCV`` beside ``lasso_path``. The two
estimators differ only as the plain ones do (their target encoding, their
score), through the plain class each names.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from joblib import Memory, Parallel, delayed, effective_n_jobs
from scipy.stats import rankdata
from sklearn.base import clone, is_classifier
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import check_cv
from skorch import NeuralNet
from torch import nn

from ._compat import StrOptions, fit_context
from ._docstring import Substitution
from ._estimators import (
    SHARED_DOCS,
    BaseLotteryTicket,
    LotteryTicketClassifier,
    LotteryTicketRegressor,
    all_or_nothing,
    check_net_params,
    checked_sample_weight,
    resolved_search,
    validated_fit_data,
)
from ._progress import RoundProgress
from ._rng import preserved_global_state
from ._search import IMP, Search
from ._session import lockstep, with_trainings
from ._ticket import Ticket

__all__ = ["LotteryTicketClassifierCV", "LotteryTicketRegressorCV", "best_level",
           "one_standard_error"]

#: The parameters the CV estimators add to the plain ones.
_CV_PARAMS = ("cv", "scoring", "select", "n_jobs")

_CV_DOCS = {
    **SHARED_DOCS,
    "cv_parameters": """    cv : int, cross-validation generator or iterable, default=5
        The folds, as scikit-learn's CV estimators take them (``check_cv``):
        an int is the number of folds of a ``StratifiedKFold`` for the
        classifier (a ``KFold`` for multilabel targets and for the
        regressor), without shuffling; or a splitter, or an iterable of
        ``(train, test)`` index arrays. At least 2 folds.
    scoring : str, callable or None, default=None
        What a level is scored by on a fold's held-out rows: ``None``, the
        estimator's own ``score`` (accuracy, R^2); a scikit-learn scoring
        name (``"balanced_accuracy"``, ``"neg_log_loss"``) or a scorer
        ``scorer(estimator, X, y)``. Greater is better. With
        ``sample_weight`` the held-out rows' weights are passed to it.
    select : {"1se", "best"}, default="1se"
        How the level is chosen from ``cv_results_``. ``"best"``: the level
        of the highest mean test score (the sparsest of ties). ``"1se"``: the
        sparsest level whose mean test score is at least the best mean less
        the best level's standard error, ``std_test_score[best] /
        sqrt(n_splits_)`` (glmnet's ``lambda.1se``): as sparse as the data
        cannot tell apart from the best.
    n_jobs : int or None, default=None
        Folds run in parallel through joblib (``-1``: all cores); for IMP
        with an int ``random_state``, the search on all rows too, as one more
        task whose trainings the refit takes (it trains nothing of its own).
        Every fold's seeds come from ``random_state``, whatever ``n_jobs``.
        With ``n_jobs=1`` and an int ``random_state`` the folds and that
        search train as one stack instead, each training equal to its
        training alone to float32 rounding: the scores of ``n_jobs=1`` and
        of more jobs can part where that rounding flips a tie between two
        weights' magnitudes or the convergence rule's test (on digits, a
        held-out row or two of a fold).""",
    "cv_attributes": """    cv_results_ : dict of ndarray
        One entry per level of the path, the dense level first, shaped as
        ``GridSearchCV`` shapes it (``pandas.DataFrame(cv_results_)`` is the
        path table): ``"sparsity"`` and ``"n_active"`` (the level's prunable
        weights that are zero, as a share, and that are left),
        ``"split{k}_test_score"`` for each fold k, ``"mean_test_score"``,
        ``"std_test_score"`` (over the folds, unweighted, as ``GridSearchCV``),
        ``"rank_test_score"``, and ``"mean_fit_time"``, ``"std_fit_time"``
        (the training seconds of the fold's path up to the level; a
        training stacked with others counts its share of the stack), ``"mean_score_time"``,
        ``"std_score_time"``.
    best_index_ : int
        The chosen level's index in ``cv_results_``.
    best_score_ : float
        Its mean test score.
    sparsity_ : float
        The chosen level: the refit's ticket has this sparsity.
    n_splits_ : int
        Number of folds.""",
}


@dataclass
class _FoldPath:
    """One fold's path scored: per level, the weights left, the test score, the
    seconds the path took up to it and the seconds scoring took."""

    n_active: list[int]
    scores: list[float]
    fit_times: list[float]
    score_times: list[float]


def _score_level(scorer: Callable, estimator: BaseLotteryTicket, X, y, weights,
                 scoring, fold: int, n_active: int) -> tuple[float, float]:
    """The scorer's value of one level on a fold's held-out rows, and the seconds it took.

    A scorer that raises or gives a non-finite value is an error naming
    ``scoring``: a level scored NaN could be neither ranked nor chosen.
    """
    start = time.perf_counter()
    try:
        score = (scorer(estimator, X, y) if weights is None
                 else scorer(estimator, X, y, sample_weight=weights))
    except Exception as error:
        raise ValueError(f"scoring={scoring!r} failed on fold {fold} at the level of "
                         f"{n_active} weights: {error}") from error
    if not np.isfinite(score):
        raise ValueError(f"scoring={scoring!r} gave {score!r} on fold {fold} at the level of "
                         f"{n_active} weights; it must give a finite number.")
    return float(score), time.perf_counter() - start


def _fold_path(plain: BaseLotteryTicket, X, y, sample_weight: np.ndarray | None,
               train: np.ndarray, test: np.ndarray, *, fold: int, n_splits: int,
               classes: np.ndarray | None, scorer: Callable, scoring,
               levels: list[int] | None, n_prunable: int) -> _FoldPath:
    """Run ``plain``'s path on the fold's training rows and score every level on its test rows.

    ``levels`` is None for IMP, whose rounds are the levels; for another search,
    the weights left at each level IMP's rule visits, each trained as that search
    trains to it (the dense level by IMP's dense round alone).
    """
    w_train = None if sample_weight is None else sample_weight[train]
    w_test = None if sample_weight is None else sample_weight[test]
    X_train, y_train, X_test, y_test = X[train], y[train], X[test], y[test]
    desc = f"{type(plain).__name__} fold {fold + 1}/{n_splits}"
    result = _FoldPath([], [], [], [])

    def scored(point, seconds: float) -> None:
        n_active = point.record["n_active"]
        score, score_time = _score_level(scorer, point.estimator, X_test, y_test, w_test,
                                         scoring, fold, n_active)
        result.n_active.append(n_active)
        result.scores.append(score)
        result.fit_times.append(seconds)
        result.score_times.append(score_time)

    # The levels are scored once the fold's trainings are done: in lockstep (the folds'
    # rounds trained as one stack) a fold is run again for each round it trains, and
    # only its last run scores. A level's fit time is the training time of its path's
    # rounds (a stacked training's share of its stack).
    if levels is None:
        path = clone(plain)._open_path(X_train, y_train, w_train, classes=classes)
        points = list(path)
        with RoundProgress(plain.verbose, path.planned_rounds, desc) as bar:
            seconds = 0.0
            for point in points:
                bar.round_done(point.record)
                seconds += point.record["seconds"]
                scored(point, seconds)
        return result
    ends = []
    for index, n_active in enumerate(levels):
        level = (clone(plain).set_params(search="imp", max_rounds=0) if index == 0 else
                 clone(plain).set_params(target_sparsity=1 - n_active / n_prunable))
        points = list(level._open_path(X_train, y_train, w_train, classes=classes))
        ends.append((points[-1], sum(point.record["seconds"] for point in points)))
    with RoundProgress(plain.verbose, len(levels), desc) as bar:
        for last, seconds in ends:
            bar.round_done(last.record)
            scored(last, seconds)
    return result


def one_standard_error(mean: np.ndarray, std: np.ndarray, n_splits: int) -> int:
    """The sparsest level (the last index) whose mean score is within one standard error
    of the best's: ``mean >= mean[best] - std[best] / sqrt(n_splits)``.

    Examples
    --------
    >>> one_standard_error(np.array([0.90, 0.92, 0.91, 0.85]), np.array([0.02] * 4), 4)
    2
    """
    best = best_level(mean)
    threshold = mean[best] - std[best] / math.sqrt(n_splits)
    return int(np.flatnonzero(mean >= threshold)[-1])


def best_level(mean: np.ndarray) -> int:
    """The level of the highest mean score; of ties, the sparsest (the last index)."""
    return int(np.flatnonzero(mean == mean.max())[-1])


class BaseLotteryTicketCV(BaseLotteryTicket):
    """Shared machinery of the two CV estimators; use one of them."""

    _parameter_constraints: dict = {
        **BaseLotteryTicket._parameter_constraints,
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "select": [StrOptions({"1se", "best"})],
        "n_jobs": [Integral, None],
    }

    #: The plain estimator whose path each fold runs and the refit is.
    _plain_type: type[BaseLotteryTicket]
    # No partial_fit: the folds and the refit need all the rows at once.
    _has_partial_fit = False

    def __init__(
        self,
        net: NeuralNet | None = None,
        *,
        prune_fraction: float = 0.5,
        target_sparsity: float | None = 0.8,
        max_rounds: int | None = None,
        scope: str = "local",
        layer_prune_fractions: dict[str, float] | None = None,
        min_weights_per_layer: int = 1,
        prune_criterion: str = "large_final",
        rewind_step: int = 0,
        ticket_init: str = "rewind",
        score_tolerance: float | None = None,
        validation_fraction: float = 0.1,
        prunable: Iterable[str] | Callable[[str, nn.Parameter], bool] | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        memory: str | os.PathLike | Memory | None = None,
        search: str | Search = "imp",
        ticket: Ticket | None = None,
        cv=5,
        scoring: str | Callable | None = None,
        select: str = "1se",
        n_jobs: int | None = None,
    ) -> None:
        super().__init__(
            net, prune_fraction=prune_fraction, target_sparsity=target_sparsity,
            max_rounds=max_rounds, scope=scope, layer_prune_fractions=layer_prune_fractions,
            min_weights_per_layer=min_weights_per_layer, prune_criterion=prune_criterion,
            rewind_step=rewind_step,
            ticket_init=ticket_init, score_tolerance=score_tolerance,
            validation_fraction=validation_fraction, prunable=prunable,
            random_state=random_state, verbose=verbose, memory=memory, search=search,
            ticket=ticket)
        self.cv = cv
        self.scoring = scoring
        self.select = select
        self.n_jobs = n_jobs

    def _plain(self, **changed) -> BaseLotteryTicket:
        """The plain estimator of this one's parameters (``changed`` set)."""
        params = {name: value for name, value in self.get_params(deep=False).items()
                  if name not in _CV_PARAMS}
        return self._plain_type(**{**params, **changed})

    def _check_path_params(self) -> None:
        # The held-out rule of score_tolerance would end each fold's path where its own
        # split says, at a level of its own; cross-validation is the held-out rule here.
        if self.score_tolerance is not None:
            raise ValueError(
                f"score_tolerance={self.score_tolerance!r}: {type(self).__name__} chooses the "
                "level by cross-validation (select), over every level up to "
                "target_sparsity; leave score_tolerance None.")
        if self.ticket is not None:
            raise ValueError(f"ticket is set: a given ticket trains once, at its own "
                             f"sparsity, with no path for {type(self).__name__} to "
                             "cross-validate; fit the plain estimator.")

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Cross-validate the search's sparsity path, choose a level and refit up to it.

        Each fold runs the plain estimator's search on its training rows (with
        the full data's classes) and scores every level on its test rows; the
        level ``select`` picks from ``cv_results_`` is ``sparsity_``, and the
        plain estimator's search then runs on all rows up to it, its fitted
        attributes becoming this estimator's. A fit that raises leaves the
        estimator as it found it.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values (a label indicator matrix for multilabel targets).
        sample_weight : float or array-like of shape (n_samples,), default=None
            Per-sample weights: every training of every fold and of the refit
            uses those of its rows, and each fold's test rows are scored with
            theirs. Reaches the estimator through a ``Pipeline`` and, with
            metadata routing, through ``set_fit_request(sample_weight=True)``.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        ValueError
            ``score_tolerance`` or ``ticket`` is set, the search cannot reach
            ``target_sparsity`` (every layer at ``min_weights_per_layer``
            first), or the scorer fails or gives a non-finite score.
        """
        with all_or_nothing(self), preserved_global_state(self._device()):
            self._check_path_params()
            check_net_params(self)
            X_all, y_all = validated_fit_data(self, X, y, reset=True)
            weights = checked_sample_weight(sample_weight, X_all.shape[0])
            cv = check_cv(self.cv, y_all, classifier=is_classifier(self))
            scorer = check_scoring(self, scoring=self.scoring)
            splits = list(cv.split(X_all, y_all))
            if len(splits) < 2:
                raise ValueError(f"cv={self.cv!r} gives {len(splits)} split; cross-validation "
                                 "needs at least 2.")
            plain = self._plain()
            # Sizing the net and planning the path on all rows trains nothing: the
            # classes every fold encodes over, and the levels the search will visit.
            path = clone(plain)._open_path(X_all, y_all, weights)
            classes = path.fitted.get("classes_")
            is_path = isinstance(resolved_search(plain), IMP)
            if not is_path:
                # The levels lead to target_sparsity: the search's own error without one.
                path.run.target_n_active()
            levels = IMP().planned_active(path.run)
            self._check_reached(levels, path.run.n_prunable)
            path_levels = None if is_path else levels
            fold_paths = [functools.partial(
                _fold_path, plain, X_all, y_all, weights, train, test, fold=k,
                n_splits=len(splits), classes=classes, scorer=scorer, scoring=self.scoring,
                levels=path_levels, n_prunable=path.run.n_prunable)
                for k, (train, test) in enumerate(splits)]
            chosen_level = {}

            def refitted(folds: list[_FoldPath]) -> BaseLotteryTicket:
                # The level chosen from the folds' scores, fit on all rows.
                results = _cv_results(folds[:len(fold_paths)], path.run.n_prunable)
                chosen = (one_standard_error(results["mean_test_score"],
                                             results["std_test_score"], len(splits))
                          if self.select == "1se" else best_level(results["mean_test_score"]))
                chosen_level.update(results=results, index=chosen)
                refit = self._refit_estimator(plain, chosen, levels, path.run.n_prunable)
                return refit.fit(X, y, sample_weight=sample_weight)

            def full_path() -> None:
                list(clone(plain)._open_path(X_all, y_all, weights))

            # An IMP path's refit is a prefix of the search on all rows, whatever level
            # is chosen: with fixed seeds (an int random_state) that search runs beside
            # the folds, and the refit finds its trainings done.
            seeds_fixed = isinstance(self.random_state, Integral)
            beside = is_path and seeds_fixed
            if effective_n_jobs(self.n_jobs) == 1 and seeds_fixed:
                # Every fold's round r as one stack, the full-data path one more member
                # (lockstep runs a fold again for each round: its seeds must be fixed).
                *_, refit = lockstep([*fold_paths, *([full_path] if beside else [])],
                                     then=refitted)
            else:
                # The folds over the workers, and the full-data path as one more task (the
                # first: the longest tasks first leave the shortest tail): its trainings
                # come back with it, and the refit here trains nothing.
                tasks = [*([functools.partial(with_trainings, full_path)] if beside else []),
                         *fold_paths]
                done = Parallel(n_jobs=self.n_jobs)(delayed(task)() for task in tasks)
                if beside:
                    _, trained = done.pop(0)
                    refit, = lockstep([lambda: refitted(done)], trained=trained)
                else:
                    refit = refitted(done)
            results, chosen = chosen_level["results"], chosen_level["index"]
            # The refit's fitted attributes (public and private: what predict, prune()
            # and compact() read) are this estimator's.
            self._set_fitted({name: value for name, value in vars(refit).items()
                              if name.endswith("_") and not name.startswith("__")})
            self.cv_results_ = results
            self.best_index_ = chosen
            self.best_score_ = float(results["mean_test_score"][chosen])
            self.sparsity_ = float(results["sparsity"][chosen])
            self.n_splits_ = len(splits)
        return self

    def _check_reached(self, levels: list[int], n_prunable: int) -> None:
        if self.target_sparsity is None or self.max_rounds is not None:
            return
        reached = 1 - levels[-1] / n_prunable
        if reached < self.target_sparsity - 0.5 / n_prunable:
            raise ValueError(
                f"target_sparsity={self.target_sparsity!r} cannot be reached: with "
                f"min_weights_per_layer={self.min_weights_per_layer} every layer is at its "
                f"floor at sparsity {reached:.4f}. Lower target_sparsity or "
                "min_weights_per_layer.")

    def _refit_estimator(self, plain: BaseLotteryTicket, chosen: int, levels: list[int],
                         n_prunable: int) -> BaseLotteryTicket:
        """The plain estimator whose fit on all rows ends at the chosen level."""
        if isinstance(resolved_search(plain), IMP):
            return clone(plain).set_params(max_rounds=chosen)
        if chosen == 0:
            return clone(plain).set_params(search="imp", max_rounds=0)
        return clone(plain).set_params(target_sparsity=1 - levels[chosen] / n_prunable)


def _cv_results(folds: list[_FoldPath], n_prunable: int) -> dict[str, np.ndarray]:
    """``cv_results_`` from the folds' scored paths, which must visit the same levels."""
    n_active = folds[0].n_active
    for k, fold in enumerate(folds[1:], start=1):
        if fold.n_active != n_active:
            raise ValueError(
                f"Fold {k}'s path visits the levels {fold.n_active} (weights left), fold 0's "
                f"{n_active}: the levels differ between folds (scope='global' with floors "
                "that bind on some folds). Use scope='local' or a lower "
                "min_weights_per_layer.")
    scores = np.array([fold.scores for fold in folds])
    fit_times = np.array([fold.fit_times for fold in folds])
    score_times = np.array([fold.score_times for fold in folds])
    mean, std = scores.mean(axis=0), scores.std(axis=0)
    results = {
        "sparsity": 1 - np.array(n_active) / n_prunable,
        "n_active": np.array(n_active),
        "mean_fit_time": fit_times.mean(axis=0), "std_fit_time": fit_times.std(axis=0),
        "mean_score_time": score_times.mean(axis=0),
        "std_score_time": score_times.std(axis=0),
    }
    for k in range(len(folds)):
        results[f"split{k}_test_score"] = scores[k]
    results["mean_test_score"] = mean
    results["std_test_score"] = std
    results["rank_test_score"] = rankdata(-mean, method="min").astype(np.int32)
    return results


@Substitution(**_CV_DOCS)
class LotteryTicketClassifierCV(BaseLotteryTicketCV, LotteryTicketClassifier):
    """A lottery-ticket classifier whose sparsity is chosen by cross-validating the path.

    Every fold runs the search :class:`LotteryTicketClassifier` runs, with the
    same parameters, on its training rows, and every level of the path (each
    IMP round; for the other searches, the levels IMP's rule visits on its way
    to ``target_sparsity``, each trained as that search trains to it) is scored
    on the fold's test rows. A fold's score at a level is what
    ``LotteryTicketClassifier(**same_params).fit(X[train], y[train])`` scores
    when its search ends at that level. ``select`` picks the level from the
    mean scores, and the plain estimator's search runs on all rows up to it:
    the fitted estimator is that refit (``predict``, ``prune()``,
    ``compact()``, ...). ``LassoCV`` does the same for a regularization path.
    Cross-validation needs all the rows at once: unlike the plain estimator,
    it has no ``partial_fit`` (``prune()`` and ``partial_fit`` of a plain
    estimator built with the chosen ``target_sparsity`` serve a stream).

    Parameters
    ----------
    net : skorch NeuralNetClassifier or NeuralNet, default=None
        The unfitted net to prune, as for :class:`LotteryTicketClassifier`.
%(parameters_before_score_tolerance)s
    score_tolerance : None, default=None
        Must be None: cross-validation replaces the plain estimator's held-out
        rule, and every fold's path runs to ``target_sparsity``.
%(parameters_after_score_tolerance)s
%(class_weight)s
        ``"balanced"`` is counted on each fold's training rows, and on all
        rows for the refit; the folds' test rows are scored with
        ``sample_weight`` alone, as ``GridSearchCV`` scores them.
%(cv_parameters)s

    Attributes
    ----------
%(cv_attributes)s
    winning_ticket_ : Ticket
        The refit's winning ticket, at ``sparsity_``.
    net_ : skorch NeuralNetClassifier
        The refit's trained net.
%(rounds_)s
    classes_ : ndarray of shape (n_classes,)
        The class labels; for multilabel targets, the label indices.
%(fitted_attributes)s

    See Also
    --------
    LotteryTicketClassifier : One search, at ``target_sparsity``.
    TicketPathDisplay : Plots ``cv_results_``.
    ticket_path : The path of one search.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skticket import LotteryTicketClassifierCV
    >>> X, y = load_iris(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> clf = LotteryTicketClassifierCV(target_sparsity=0.75, cv=3, random_state=0)
    >>> clf = clf.set_params(net__max_epochs=5, net__module__hidden_units=(16,)).fit(X, y)
    >>> clf.cv_results_["sparsity"].tolist()
    [0.0, 0.5, 0.75]
    >>> clf.winning_ticket_.sparsity == clf.sparsity_
    True
    """

    _plain_type = LotteryTicketClassifier

    _parameter_constraints: dict = {
        **BaseLotteryTicketCV._parameter_constraints,
        **LotteryTicketClassifier._parameter_constraints,
    }

    def __init__(
        self,
        net: NeuralNet | None = None,
        *,
        prune_fraction: float = 0.5,
        target_sparsity: float | None = 0.8,
        max_rounds: int | None = None,
        scope: str = "local",
        layer_prune_fractions: dict[str, float] | None = None,
        min_weights_per_layer: int = 1,
        prune_criterion: str = "large_final",
        rewind_step: int = 0,
        ticket_init: str = "rewind",
        score_tolerance: float | None = None,
        validation_fraction: float = 0.1,
        prunable: Iterable[str] | Callable[[str, nn.Parameter], bool] | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        memory: str | os.PathLike | Memory | None = None,
        search: str | Search = "imp",
        ticket: Ticket | None = None,
        class_weight: dict | list[dict] | str | None = None,
        cv=5,
        scoring: str | Callable | None = None,
        select: str = "1se",
        n_jobs: int | None = None,
    ) -> None:
        super().__init__(
            net, prune_fraction=prune_fraction, target_sparsity=target_sparsity,
            max_rounds=max_rounds, scope=scope, layer_prune_fractions=layer_prune_fractions,
            min_weights_per_layer=min_weights_per_layer, prune_criterion=prune_criterion,
            rewind_step=rewind_step,
            ticket_init=ticket_init, score_tolerance=score_tolerance,
            validation_fraction=validation_fraction, prunable=prunable,
            random_state=random_state, verbose=verbose, memory=memory, search=search,
            ticket=ticket, cv=cv, scoring=scoring, select=select, n_jobs=n_jobs)
        self.class_weight = class_weight


@Substitution(**_CV_DOCS)
class LotteryTicketRegressorCV(BaseLotteryTicketCV, LotteryTicketRegressor):
    """A lottery-ticket regressor whose sparsity is chosen by cross-validating the path.

    As :class:`LotteryTicketClassifierCV`, for :class:`LotteryTicketRegressor`:
    every fold runs its search on its training rows, every level is scored on
    the fold's test rows (R^2 by default), ``select`` picks the level and the
    search runs on all rows up to it. It has no ``partial_fit``.

    Parameters
    ----------
    net : skorch NeuralNetRegressor or NeuralNet, default=None
        The unfitted net to prune, as for :class:`LotteryTicketRegressor`.
%(parameters_before_score_tolerance)s
    score_tolerance : None, default=None
        Must be None: cross-validation replaces the plain estimator's held-out
        rule, and every fold's path runs to ``target_sparsity``.
%(parameters_after_score_tolerance)s
%(cv_parameters)s

    Attributes
    ----------
%(cv_attributes)s
    winning_ticket_ : Ticket
        The refit's winning ticket, at ``sparsity_``.
    net_ : skorch NeuralNetRegressor
        The refit's trained net.
%(rounds_)s
    n_outputs_ : int
        Number of targets.
    target_mean_, target_scale_ : ndarray of shape (n_outputs_,) or None
        As for :class:`LotteryTicketRegressor`.
%(fitted_attributes)s

    See Also
    --------
    LotteryTicketRegressor : One search, at ``target_sparsity``.
    LotteryTicketClassifierCV : The same for classification.
    TicketPathDisplay : Plots ``cv_results_``.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from skticket import LotteryTicketRegressorCV
    >>> X, y = make_regression(n_samples=120, n_features=4, noise=0.1, random_state=0)
    >>> reg = LotteryTicketRegressorCV(target_sparsity=0.5, cv=3, random_state=0)
    >>> reg = reg.set_params(net__max_epochs=5).fit(X, y / 100)
    >>> reg.cv_results_["sparsity"].tolist()
    [0.0, 0.5]
    """

    _plain_type = LotteryTicketRegressor
