"""LotteryTicketClassifier and LotteryTicketRegressor: iterative magnitude pruning
as scikit-learn estimators around skorch nets."""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
import warnings
from abc import ABCMeta
from collections.abc import Callable, Iterable, Iterator
from numbers import Integral, Number, Real

import numpy as np
from joblib import Memory
from numpy.typing import ArrayLike
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.sparsefuncs import mean_variance_axis
from sklearn.utils.validation import check_array, check_is_fitted, check_memory, validate_data
from skorch import NeuralNet
from torch import nn

from ._compact import (
    BATCH_SIZE,
    CSR_MIN_SPARSITY,
    CompactClassifier,
    CompactRegressor,
    compact_module,
    refuse_beyond_float32,
)
from ._compat import HasMethods, Interval, StrOptions, fit_context
from ._docstring import Substitution
from ._importance import InputImportancesMixin
from ._nets import AUTO_BATCH_ROWS, sized_net, validate_net_params
from ._partial import (
    PARTIAL_FIT_DOCS,
    carried_optimizer_state,
    checked_classes,
    continued_attributes,
    refuse_balanced_class_weight,
    start_round,
    train_epoch,
)
from ._path import SearchPath, TicketPathPoint, fitted_attributes, kept_attributes, trained_as
from ._predict import predict_nonlinearity, predict_outputs
from ._progress import RoundProgress
from ._pruning import PRUNE_CRITERIA, checked_layer_fractions
from ._rng import draw_seeds, preserved_global_state
from ._search import (
    SEARCHES,
    GivenTicket,
    PruningRule,
    Search,
    SearchProgress,
    SearchRun,
    prune_once,
)
from ._session import Data, Round, Session, check_start_point, start_point
from ._targets import (
    ClassLabels,
    ClassPredictions,
    RegressionTarget,
    TargetEncoding,
    TargetPredictions,
    is_criterion,
)
from ._ticket import TICKET_KINDS, Ticket
from .exceptions import (
    FitInterruptedWarning,
    InputScaleWarning,
    TrainingDivergedError,
    TrainingDivergedWarning,
)

__all__ = ["BaseLotteryTicket", "LotteryTicketClassifier", "LotteryTicketRegressor"]

def _as_net_input(X):
    """X as the net takes it: float32, and writable (torch warns on read-only
    arrays, such as pandas' copy-on-write views and memory maps); a sparse X as
    float32 CSR, never densified whole (batches are, as they are used). A value a
    float32 cannot hold is refused by name (:func:`~skticket._compact.refuse_beyond_float32`)."""
    refuse_beyond_float32(X)
    if issparse(X):
        return X.tocsr().astype(np.float32, copy=False)
    return np.require(X, dtype=np.float32, requirements="W")


@contextlib.contextmanager
def all_or_nothing(estimator: BaseEstimator) -> Iterator[None]:
    """Undo every attribute a failed ``fit`` or ``prune`` set or replaced.

    A fit that raises (bad input, a diverged dense round, a Ctrl-C before any
    round completed) must not leave ``classes_`` or ``n_features_in_`` behind,
    which scikit-learn would take for a fitted estimator; a fitted one keeps its
    previous fit whole. ``fit`` only ever rebinds attributes, so a shallow copy
    of them is the state to go back to.
    """
    saved = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        raise


def checked_sample_weight(sample_weight, n_samples: int) -> np.ndarray | None:
    """``sample_weight`` as float64 of shape (n_samples,) with mean 1, or None for no weights.

    A number is a weight for every sample. Uniform weights are None: a
    weighted mean with equal weights is the plain mean, and None trains
    exactly as no weights do (same kernels, same ``memory`` key). Other
    weights are rescaled to mean 1: the loss does not depend on their scale,
    and so ``w * 1e-50`` and ``w * 1e37`` train as ``w`` does.

    Raises
    ------
    ValueError
        Not one finite, non-negative number per sample, or all zero.
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, Number):
        # A number weighs every sample alike, as scikit-learn's _check_sample_weight reads it.
        sample_weight = np.full(n_samples, sample_weight, dtype=np.float64)
    weight = check_array(sample_weight, ensure_2d=False, dtype=np.float64,
                         input_name="sample_weight")
    if weight.shape != (n_samples,):
        raise ValueError(f"sample_weight has shape {weight.shape}; X has {n_samples} samples, "
                         f"so it must be ({n_samples},).")
    if np.any(weight < 0):
        raise ValueError(f"sample_weight holds negative values (the smallest is "
                         f"{weight.min():g}); weights must be >= 0.")
    if not weight.any():
        raise ValueError("sample_weight is zero for every sample: nothing to train on.")
    if np.all(weight == weight[0]):
        return None
    # Unit mean before the weights meet float32 (the per-batch loss casts them):
    # sum(w_i * loss_i) / sum(w_i) does not change with the weights' scale, and
    # weights of 1e-50 would be zeros in float32, of 1e37 overflow its sums. The
    # largest first, so that the mean of huge weights cannot overflow float64.
    weight = weight / weight.max()
    return weight / weight.mean()


#: Feature scales (standard deviation, or distance of the mean from 0) this many
#: times apart, or this far from 1, slow a default net down or stall it.
_SCALE_RATIO = 100.0


def _warn_if_unscaled(X: np.ndarray, stacklevel: int) -> None:
    """Warn when the features' scales differ by orders of magnitude (default net only).

    Gradient steps of one learning rate cannot suit weights of features on
    scales a hundred times apart; scikit-learn's MLP documents the same need.
    """
    if issparse(X):
        mean, variance = mean_variance_axis(X.astype(np.float64), axis=0)
        std = np.sqrt(variance)
    else:
        mean, std = X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64)
    scale = np.maximum(std, np.abs(mean))
    scale = scale[std > 0]
    if len(scale) == 0:
        return
    if scale.max() / scale.min() > _SCALE_RATIO or scale.max() > _SCALE_RATIO:
        what = ("differ by orders of magnitude" if scale.max() / scale.min() > _SCALE_RATIO
                else f"are far from 1 (over {_SCALE_RATIO:g})")
        warnings.warn(
            f"The features' scales {what} (from {scale.min():.3g} to {scale.max():.3g}); "
            "the default net trains poorly on such inputs. Standardize them, e.g. "
            "make_pipeline(StandardScaler(), estimator).",
            InputScaleWarning, stacklevel=stacklevel,
        )


def _held_out_score(target: TargetEncoding, net: NeuralNet, X, y,
                    sample_weight: np.ndarray | None = None) -> float:
    """A trained net's score on ``X`` against the encoded target ``y``: what a search's
    held-out rows are scored with."""
    return float(target.score(y, predict_outputs(net, X), sample_weight))


#: Parameter and attribute documentation both estimators share, written once
#: (filled into their docstrings by Substitution).
SHARED_DOCS = {
    # The names ``search`` takes: SEARCHES' keys, rendered rather than restated.
    "search_names": "{" + ", ".join(f'"{name}"' for name in SEARCHES) + "}",
    "parameters_before_score_tolerance": """    prune_fraction : float, default=0.5
        Share of each layer's surviving weights removed per round (of the
        pooled weights under ``scope="global"``): after k rounds ``(1-p)^k``
        remain, so 90% sparsity takes 4 rounds (0.2, Frankle & Carbin's rate,
        takes 11, at about the same accuracy on the real-table benchmark:
        see the user guide's "Defaults" page). ``prune_fraction=target_sparsity,
        max_rounds=1`` is one-shot pruning.
    target_sparsity : float or None, default=0.8
        Stop once this share of the prunable weights is zero. The last round
        removes exactly the weights that bring the sparsity to the target (to
        the nearest weight), spread over the layers in proportion to what each
        would lose at the full rate. ``None``: no sparsity target.
    max_rounds : int or None, default=None
        At most this many pruning rounds (0 trains the dense net only).
    scope : {"local", "global"}, default="local"
        ``"local"`` prunes each layer at its own rate; ``"global"`` ranks all
        prunable weights by one magnitude threshold.
    layer_prune_fractions : dict of str to float, default=None
        Per-parameter overrides of ``prune_fraction``, e.g.
        ``{"output.weight": 0.1}``. Under global scope these layers are pruned
        at their own rate, outside the global pool.
    min_weights_per_layer : int, default=1
        No layer is ever pruned below this many weights, under either scope;
        when every layer is at its floor the search stops.
    prune_criterion : {"large_final", "magnitude_increase", "movement", \
            "large_final_same_sign"}, default="large_final"
        What the surviving weights of a trained ticket are ranked by, the
        lowest pruned (Zhou et al., 2019): ``"large_final"`` their final
        magnitude ``|w_f|`` (Frankle & Carbin's rule); ``"magnitude_increase"``
        ``|w_f| - |w_i|``; ``"movement"`` ``|w_f - w_i|``;
        ``"large_final_same_sign"`` ``|w_f|`` among the weights whose sign at
        the end is the sign of ``w_i``, every weight whose sign flipped (or
        that started or ended at exactly 0) pruned before them, the smallest
        ``|w_f|`` first. ``w_i`` is the ticket's rewind point (theta_0, or the
        weights at ``rewind_step``): where the training that produced ``w_f``
        started, and where the next ticket starts again. IMP, early-bird and
        ``prune()`` use it, with the same rates, scopes and floors; SNIP and
        the one-training searches rank scores of their own and refuse any
        other value.
    rewind_step : int, default=0
        0 rewinds survivors to their initial values theta_0; k > 0 rewinds to
        the weights after k optimizer steps of the dense training (late
        resetting), a snapshot taken once and used by every round.
    ticket_init : {"rewind", "reinit", "permute", "sign"}, default="rewind"
        What the returned ticket trains from. ``"rewind"``: the winning ticket
        itself. ``"reinit"``: the winning mask with freshly drawn weights.
        ``"permute"``: each layer's mask shuffled over its whole matrix, with
        fresh weights. ``"sign"`` (Zhou et al., 2019): each survivor starts at
        the sign of its rewound value times its layer's initializer standard
        deviation (for :class:`~skticket.MLP` given as a class, as the
        default nets give it, torch's ``nn.Linear`` rule: U(-b, b) with ``b =
        1/sqrt(fan_in)``, standard deviation ``b/sqrt(3)``; for a module of
        one's own, the standard deviation of theta_0's values in that
        layer); a survivor whose rewound value is exactly 0 has no sign and
        stays 0; biases start as rewound. The mask search is the same in all
        four.""",
    "class_weight": """    class_weight : dict, list of dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``
        (scikit-learn's ``compute_sample_weight``): a dict maps a label to its
        weight (for a label indicator matrix, a list of one dict per label,
        each ``{0: w0, 1: w1}``); ``"balanced"`` weighs each class by
        ``n_samples / (n_classes * count)``, counted on the rows given to
        ``fit`` or ``prune`` (a fold's training rows in a grid search or in
        cross-validation). Every search, SNIP's sensitivities and the
        held-out score of ``score_tolerance`` use them, and they are part of
        the ``memory`` key, as sample weights are.""",
    "parameters_after_score_tolerance": """    validation_fraction : float, default=0.1
        Share of the training data held out when ``score_tolerance`` is set,
        to score the rounds (rounded up to whole rows, as
        ``train_test_split`` rounds it; both parts need a row). A
        classifier's split is stratified where it can be; with a class of
        one member, or more classes than either part has rows, it is a plain
        shuffled split, as ``MLPClassifier``'s held-out split of several
        classes is. The default net holds out rows of its own (its
        ``train_split``), from the rows it trains on, to decide when each
        training stops.
    prunable : list of str, callable or None, default=None
        Which parameters to prune. ``None``: the weight of every ``nn.Linear``
        and convolution (never biases or norm layers). A list names parameters;
        a callable ``(name, parameter) -> bool`` selects them.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, data order, the validation split and the
        baselines. With an int, two fits give identical masks and predictions
        on CPU. The global torch and numpy random states are left untouched.
    verbose : int, default=0
        0: silent (every round is still logged at INFO on the ``skticket``
        logger). 1: a progress bar over the rounds on stderr, its postfix the
        sparsity, training loss and held-out score of the round just trained.
        2: also skorch's table of epochs for every round.
    memory : str, pathlib.Path, joblib.Memory or None, default=None
        Where to keep trained rounds: a directory or a ``joblib.Memory``
        (scikit-learn's ``Pipeline(memory=...)`` idiom). A round is stored
        under a hash of everything that decides it (the net and all its
        parameters, the training data, the start weights, the masks, the
        round's seed), so a fit reuses every round already trained for the
        same data, net, pruning parameters and ``random_state`` and trains
        only the rounds it is missing: a ``GridSearchCV`` over
        ``target_sparsity`` trains the shared part of the trajectories once
        per fold. Results are identical to an uncached fit. Safe with
        ``n_jobs > 1`` (two processes may both train a missing round). Nothing
        is stored when ``random_state`` is None. ``None``: no caching.
    search : Search or %(search_names)s, default="imp"
        How the ticket is found: a search object, with its own parameters,
        or the name of one, which means its class with the defaults.
        :class:`~skticket.IMP` (``"imp"``): iterative magnitude pruning, as
        above. :class:`~skticket.EarlyBird` (``"early_bird"``; parameters
        ``window``, ``tolerance``): the dense training stops as soon as the
        ticket's mask, drawn after every epoch at ``target_sparsity`` with
        the per-layer sparsities IMP would reach, settles (You et al., 2020);
        the ticket is then rewound and trained once.
        :class:`~skticket.SNIP` (``"snip"``; parameter ``batches``): pruned at
        initialization by connection sensitivity ``|w * dL/dw|`` (Lee et al.,
        2019); no dense training, the ticket trained once. Both one-shot
        searches need ``target_sparsity``; ``ticket_init`` composes with all
        three (``search="snip", ticket_init="permute"`` is the random control
        with SNIP's per-layer densities, Frankle et al., 2021). Three searches
        train one net, once, and move its mask while it trains (nothing is
        retrained; ``net_`` is that sparse net):
        :class:`~skticket.GradualPruning` (``"gradual"``; ``start``, ``end``,
        ``frequency``) prunes from the dense start on a cubic schedule (Zhu &
        Gupta, 2017); :class:`~skticket.SparseMomentum`
        (``"sparse_momentum"``; ``drop_fraction``) and :class:`~skticket.RigL`
        (``"rigl"``; ``drop_fraction``, ``update_every``, ``end``) start at
        ``target_sparsity`` with a random mask and move weights to where the
        momentum (Dettmers & Zettlemoyer, 2019) or the gradient (Evci et al.,
        2020) is largest. They need ``target_sparsity`` too.
        :class:`~skticket.Supermask` (``"supermask"``; ``lr``) never trains
        the weights: it learns a mask over theta_0 by edge-popup (Ramanujan
        et al., 2020), and ``net_`` predicts with the untrained weights under
        it; it needs ``target_sparsity``. A search's
        parameters are the estimator's ``search__*``, listed by
        ``get_params(deep=True)``, set by ``set_params`` and gridable
        (``{"search__tolerance": [0.02, 0.1]}``), as ``net__*`` are; a
        subclass of :class:`~skticket.Search` is a search of your own.
    ticket : Ticket or None, default=None
        A ticket to train on this data instead of searching (transfer), for
        example another estimator's ``winning_ticket_``: ``fit`` trains its
        masks once, from its own start weights with ``ticket_init="rewind"``
        (the ticket must then hold the net's whole start state) or from fresh
        ones with ``"reinit"`` / ``"permute"``. A ticket whose names or shapes
        do not fit the sized net is refused with a ``ValueError`` naming the
        first mismatch. ``search`` is not used.""",
    "search_attributes": """    Attributes
    ----------
    winning_ticket_ : Ticket
        The mask and the start state (every parameter and buffer of the module)
        the returned net trained from.
    net_ : skorch NeuralNet
        The trained net of the winning ticket (or of its baseline): a fitted
        clone of ``net`` (of the default net for ``None``).
%(rounds_)s""",
    "rounds_": """    rounds_ : list of dict
        One record per trained round, with keys ``round``, ``sparsity``,
        ``n_active``, ``train_loss``, ``valid_score``, ``epochs``, ``seconds``,
        ``cached`` and ``hook_summaries`` (what each training hook of the
        round recorded, in order). ``cached`` is True for a round read from
        ``memory`` instead of trained; its ``seconds`` is then the time its training took
        when it ran, so that records do not depend on the cache. What a round
        is depends on the search: for ``"imp"``, round 0 is the dense net and
        round k the ticket after k pruning rounds; for ``"early_bird"``, round
        0 is the (early-stopped) dense training, whose record adds
        ``ticket_epoch``, ``mask_distances`` and ``masks_settled``, and round 1
        the ticket; for ``"snip"``, round 1 is the ticket (nothing dense is
        trained); for ``"gradual"``, ``"sparse_momentum"`` and ``"rigl"``,
        round 1 is the one training, its record adds ``mask_updates`` (per
        update: ``step``, ``n_active``, ``regrown``, ``densities``), and its
        sparsity is that of the mask the training ended with; for
        ``"supermask"``, round 1 is the one training of the mask, its record
        adds ``mask_changes`` (per epoch, the share of the mask it changed); for a given
        ``ticket``, the one round carries the ticket's own round number.
        ``winning_ticket_.round`` is the round of the ticket.""",
    "fitted_attributes": """    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, when ``X`` has string column names.
    feature_importances_ : ndarray of shape (n_features_in_,)
        Per input, its share of the ticket's surviving first-layer weight
        magnitude (exactly 0 for an input the ticket no longer reads), for
        ``SelectFromModel``; see the property's own docstring for what it is
        and is not.
    used_features_ : ndarray of str
        The names of the inputs the ticket still reads.""",
}


class _StandInParams:
    """``get_params``/``set_params`` for the two parameters whose value stands in for an
    object: ``net=None`` for the default net, and a search's name for its class with the
    defaults. Their parameters are listed, set and searched over as ``net__*`` and
    ``search__*``, as a given object's are."""

    _target_type: type[TargetEncoding]

    def get_params(self, deep: bool = True) -> dict:
        """Parameters of this estimator; with ``deep``, those of its net as ``net__*`` and of
        its search as ``search__*``.

        With ``net=None`` the ``net__*`` entries are those of the default net
        (:class:`~skticket.DefaultClassifierNet` or
        :class:`~skticket.DefaultRegressorNet`), so that they can be listed,
        set and searched over like a given net's. Likewise a search given by
        name lists the parameters of its class's defaults as ``search__*``
        (``search="early_bird"``: ``search__window``, ``search__tolerance``).
        """
        params = super().get_params(deep=deep)
        if deep and self.net is None:
            params.update({f"net__{name}": value for name, value
                           in self._target_type.default_net_class().get_params(deep=True).items()})
        if deep and isinstance(self.search, str) and self.search in SEARCHES:
            params.update({f"search__{name}": value for name, value
                           in SEARCHES[self.search]().get_params(deep=True).items()})
        return params

    def set_params(self, **params):
        """Set parameters; ``net__*`` on the default net first makes it this estimator's own,
        and ``search__*`` on a search given by name makes it an object.

        ``net=None`` stays the default until a ``net__*`` parameter is set: the
        default net is then built, for this estimator alone (a default object
        shared between estimators would change for all of them), and set. A
        search named by a string (``search="early_bird"``) becomes its class
        with the defaults (``EarlyBird()``) when a ``search__*`` parameter is
        set, and that is set.
        """
        if self.net is None and "net" not in params and any(
                name.startswith("net__") for name in params):
            self.net = self._target_type.default_net_class()
        if any(name.startswith("search__") for name in params):
            search = params.get("search", self.search)
            if isinstance(search, str) and search in SEARCHES:
                if "search" in params:
                    params["search"] = SEARCHES[search]()
                else:
                    self.search = SEARCHES[search]()
        return super().set_params(**params)


class BaseLotteryTicket(_StandInParams, InputImportancesMixin, BaseEstimator,
                        metaclass=ABCMeta):
    """Shared machinery of the two estimators; use one of them."""

    _parameter_constraints: dict = {
        "net": [None, NeuralNet],
        "prune_fraction": [Interval(Real, 0, 1, closed="neither")],
        "target_sparsity": [None, Interval(Real, 0, 1, closed="left")],
        "max_rounds": [None, Interval(Integral, 0, None, closed="left")],
        "scope": [StrOptions({"local", "global"})],
        "layer_prune_fractions": [None, dict],
        "min_weights_per_layer": [Interval(Integral, 1, None, closed="left")],
        "prune_criterion": [StrOptions(set(PRUNE_CRITERIA))],
        "rewind_step": [Interval(Integral, 0, None, closed="left")],
        "ticket_init": [StrOptions(set(TICKET_KINDS))],
        "score_tolerance": [None, Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "prunable": [None, list, tuple, callable],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "search": [StrOptions(set(SEARCHES)), Search],
        "ticket": [None, Ticket],
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
    ) -> None:
        self.net = net
        self.prune_fraction = prune_fraction
        self.target_sparsity = target_sparsity
        self.max_rounds = max_rounds
        self.scope = scope
        self.layer_prune_fractions = layer_prune_fractions
        self.min_weights_per_layer = min_weights_per_layer
        self.prune_criterion = prune_criterion
        self.rewind_step = rewind_step
        self.ticket_init = ticket_init
        self.score_tolerance = score_tolerance
        self.validation_fraction = validation_fraction
        self.prunable = prunable
        self.random_state = random_state
        self.verbose = verbose
        self.memory = memory
        self.search = search
        self.ticket = ticket

    # What differs between the two estimators: what their target is to the net (the
    # default net, encoding and decoding, the score), and their compact predictor.
    _target_type: type[TargetEncoding]
    _compact_type: type[CompactClassifier | CompactRegressor]

    # partial_fit is there unless a subclass says otherwise (the CV estimators, whose
    # folds need all the rows at once).
    _has_partial_fit = True

    def _uses_default_net(self) -> bool:
        return self.net is None or isinstance(self.net, self._target_type.default_net_class)

    def _open_path(self, X, y, sample_weight, *, classes: np.ndarray | None = None
                   ) -> SearchPath:
        """Validate and encode the data and open the path of the search the parameters
        pick, untrained: where ``fit`` and :func:`~skticket.ticket_path` start.

        ``classes`` (a classifier's) encodes ``y`` over these labels rather than
        those ``y`` holds: a cross-validation fold's path is opened with the full
        data's classes.

        scikit-learn's ``validate_data`` sets ``n_features_in_`` (and
        ``feature_names_in_``) on this estimator; everything else the data give
        (the target encoding, the sized net, the seeds) is in the path, for its
        points' estimators and ``fit`` to set.
        """
        with preserved_global_state(self._device()):
            X, y, sample_weight, target = _encoded_fit_data(self, X, y, sample_weight, classes)
            search = resolved_search(self)
            seeds = draw_seeds(self.random_state)
            prunable = _pruned_names(self)
            data = _split(self, X, y, seeds, sample_weight, target)
            session = Session(_template(self, target, data.X_train), data, seeds,
                              prunable=prunable, memory=_round_memory(self),
                              scorer=functools.partial(_held_out_score, target),
                              verbose=self.verbose)
            run = SearchRun(search, session, _pruning_rule(self, session.prunable))
        validated = {name: getattr(self, name) for name in ("n_features_in_", "feature_names_in_")
                     if hasattr(self, name)}
        fitted = {"_target_": target, **target.fitted_attributes(), **validated,
                  "_start_point_": self._start_point()}
        return SearchPath(self, run, fitted, self._device())

    def _start_point(self) -> dict[str, str]:
        return start_point(self.net, self.prunable, self.rewind_step, self.random_state)

    def _set_fitted(self, attributes: dict) -> None:
        for name, value in attributes.items():
            setattr(self, name, value)

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Find the winning ticket by the chosen ``search`` (or train the given ``ticket``).

        With ``search="imp"``, round 0 trains the dense net and each later round
        prunes, rewinds the survivors and trains the ticket, until
        ``target_sparsity``, ``max_rounds``, ``score_tolerance`` or
        ``min_weights_per_layer`` stops it; the ``search`` parameter describes
        the others.

        A search can also end early, keeping what it found (see Warns): the
        winning ticket is then the last round that completed, ``rounds_`` lists
        the completed rounds, and ``prune()`` goes on from there. Before the
        dense round completes there is nothing to keep (see Raises). A fit that
        raises leaves the estimator as it found it (unfitted, or with its
        previous fit), and the global random states, torch's thread count and
        default dtype as they were. Neither an interrupted nor a diverged round
        is ever stored in ``memory``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. A sparse matrix (any scipy format; kept as CSR) is
            never densified whole: each batch is, as it is used. The net
            computes in float32: a value beyond its range (``|x| > 3.4e38``)
            is refused, here and in ``predict``; rescale such features first.
        y : {array-like, sparse matrix} of shape (n_samples,) or (n_samples, n_targets)
            Target values: class labels, or a label indicator matrix
            (multilabel, dense or sparse) for the classifier; one or several
            targets for the regressor.
        sample_weight : float or array-like of shape (n_samples,), default=None
            Per-sample weights (a number: the same for every sample): every
            training's loss is the weighted mean of the per-sample losses over
            each batch, ``sum(w_i * loss_i) / sum(w_i)`` (scikit-learn's MLP
            rule), whatever the search; SNIP's sensitivities and the held-out
            score of ``score_tolerance`` use them too, and they are part of
            the ``memory`` key. Uniform weights train exactly as ``None``;
            others are rescaled to mean 1 in float64 first, so any positive
            multiple of ``w`` (``w * 1e-50``, ``w * 1e37``) trains as ``w``.
            The net's criterion must have a ``reduction`` (all of torch's
            losses do), and its data pipeline be skorch's own. Reaches the
            estimator through a ``Pipeline``
            (``lotteryticketclassifier__sample_weight=w``) and, with
            metadata routing, through ``set_fit_request(sample_weight=True)``.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        skticket.exceptions.TrainingDivergedError
            A ``ValueError``: the dense round's training loss or weights are not
            finite (the message names the optimizer and learning rate).
        KeyboardInterrupt
            A Ctrl-C before the dense round completed.

        Warns
        -----
        skticket.exceptions.FitInterruptedWarning
            A Ctrl-C ended the search after round 0.
        skticket.exceptions.TrainingDivergedWarning
            A pruning round diverged; the search stopped before it.
        """
        with all_or_nothing(self), preserved_global_state(self._device()):
            path = self._open_path(X, y, sample_weight)
            last = _walked(path, self.verbose, type(self).__name__)
            self._set_fitted(fitted_attributes(last))
        return self

    def _device(self) -> str:
        return "cpu" if self.net is None else self.net.device

    @fit_context(prefer_skip_nested_validation=True)
    def prune(self, X, y, sample_weight=None):
        """One more pruning round from the winning ticket's trained net.

        Prunes ``prune_fraction`` of the surviving weights (``min_weights_per_layer``
        still holds; ``target_sparsity``, ``max_rounds`` and ``score_tolerance`` do
        not apply), rewinds the survivors, trains the new ticket (and its baseline,
        if ``ticket_init`` asks for one), and updates ``winning_ticket_``, ``net_``
        and ``rounds_``. The pruning parameters (``prune_fraction``, ``scope``,
        ``layer_prune_fractions``, ``min_weights_per_layer``, ``prune_criterion``,
        ``ticket_init``) are read now, so ``set_params`` between rounds applies. The parameters
        that decide where the search started (``net`` and every ``net__*``,
        ``prunable``, ``rewind_step``, ``random_state``) must be as they were at
        ``fit``; otherwise a ``ValueError`` names the first that changed. If the
        round fails (a Ctrl-C, a divergence), the estimator keeps its previous
        state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, with the features seen in ``fit``.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values.
        sample_weight : float or array-like of shape (n_samples,), default=None
            Per-sample weights, as in :meth:`fit`.

        Returns
        -------
        self : object
            The estimator, one round sparser.
        """
        check_is_fitted(self)
        with all_or_nothing(self), preserved_global_state(self._device()):
            session, progress, trained = _next_round(self, X, y, sample_weight)
            if trained is None:
                warnings.warn(
                    "Every pruned layer is at min_weights_per_layer; prune() removed nothing.",
                    UserWarning, stacklevel=3,
                )
                return self
            with RoundProgress(self.verbose, 1, type(self).__name__) as bar:
                bar.round_done(trained.record)
            kept = trained_as(session, trained, self.ticket_init)
            self._set_fitted(kept_attributes(session, progress, kept,
                                             [*self.rounds_, trained.record]))
        return self

    def _partial_fit(self, X, y, sample_weight, classes: np.ndarray | None = None):
        """Both estimators' ``partial_fit`` (see theirs), ``classes`` checked."""
        refuse_balanced_class_weight(getattr(self, "class_weight", None))
        with all_or_nothing(self), preserved_global_state(self._device()):
            if hasattr(self, "_session_"):
                self._set_fitted(_next_epoch(self, X, y, sample_weight))
            else:
                self._set_fitted(_first_epoch(self, X, y, sample_weight, classes))
        return self

    def compact(self, *, sparse_threshold: float = CSR_MIN_SPARSITY,
                batch_size: int = BATCH_SIZE) -> CompactClassifier | CompactRegressor:
        """The fitted ticket as a smaller network, for fast prediction.

        The ticket's trained net rebuilt without its pruned weights: hidden
        units with no incoming weights are folded into the next layer's bias,
        units with no outgoing weights are dropped, and each layer still sparser
        than ``sparse_threshold`` multiplies with a CSR matrix. Predictions equal
        the estimator's to float64 rounding: both compute in float64. Needs an
        MLP-like module: an ``nn.Sequential`` (such as :class:`skticket.MLP`) of
        ``nn.Linear`` layers with elementwise activations between them.

        Parameters
        ----------
        sparse_threshold : float, default=skticket._compact.CSR_MIN_SPARSITY
            Layers with a larger share of zero weights (after compaction) use a
            CSR matmul, the others a dense one; the default is the crossover
            measured on a 2-core CPU. 1.0 keeps every layer dense.
        batch_size : int, default=2048
            Rows per forward pass of the compact network: small enough that
            sparse products work in cache. Only speed and memory depend on it
            (the predictions only to float64 rounding).

        Returns
        -------
        CompactClassifier or CompactRegressor
            With the estimator's ``predict`` (and ``predict_proba`` for the
            classifier); its network, on the CPU, is ``module_``.

        Raises
        ------
        TypeError
            If the net's module is not MLP-like.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from skticket import LotteryTicketClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = LotteryTicketClassifier(prune_fraction=0.7, target_sparsity=0.9, random_state=0)
        >>> small = clf.set_params(net__module__hidden_units=(32,), net__max_epochs=10).fit(
        ...     X, y).compact()
        >>> small.module_.widths[1] < 32  # hidden units left of the 32
        True
        >>> bool(np.allclose(small.predict_proba(X), clf.predict_proba(X), atol=1e-5))
        True
        """
        check_is_fitted(self)
        if not (isinstance(batch_size, Integral) and batch_size >= 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        module = compact_module(self.net_.module_, self.winning_ticket_.masks,
                                sparse_threshold=sparse_threshold)
        return self._compact_type(module, target=self._target_,
                                  n_features_in=self.n_features_in_,
                                  nonlinearity=predict_nonlinearity(self.net_),
                                  batch_size=int(batch_size))

    def _outputs(self, X) -> np.ndarray:
        """The trained net's outputs for ``X`` (checked, and the estimator fitted), in float64,
        each row independent of the others in the call."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64],
                          accept_sparse="csr")
        return predict_outputs(self.net_, _as_net_input(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True
        return tags


# --- what fit and prune are made of: functions of an estimator's parameters and the data ---


def _offers_partial_fit(est: BaseLotteryTicket) -> bool:
    """Whether ``est`` has ``partial_fit`` (scikit-learn's ``available_if``)."""
    return est._has_partial_fit


def check_net_params(est: BaseLotteryTicket) -> None:
    """The net's own settings, checked before the data and any training: a bad one
    is named as the user set it (``net__lr``); see
    :func:`~skticket._nets.validate_net_params`."""
    if est.net is not None:  # the default net's defaults are valid
        validate_net_params(est.net, default=est._uses_default_net(), prefix="net__",
                            caller=type(est).__name__)


def _encoded_fit_data(est: BaseLotteryTicket, X, y, sample_weight, classes: np.ndarray | None,
                      *, stacklevel: int = 6):
    """What a fit starts from: the net's settings checked, ``X`` and ``y`` validated (which
    sets ``n_features_in_``), the training weights, and the target encoding learned from
    ``y`` (over ``classes`` when given): ``(X, y encoded, weight, target)``.

    ``stacklevel`` is the input-scale warning's (:func:`_warn_if_unscaled`): the default
    names the caller of ``fit`` (through _open_path, fit and scikit-learn's _fit_context)."""
    check_net_params(est)
    default_net = est._uses_default_net()
    X, y = validated_fit_data(est, X, y, reset=True)
    sample_weight = _training_weight(est, sample_weight, y, X.shape[0])
    if default_net:
        _warn_if_unscaled(X, stacklevel)
    target = est._target_type(estimator_name=type(est).__name__, default_net=default_net)
    y = target.fit_transform(y, classes=classes)
    return X, y, sample_weight, target


def _pruned_names(est: BaseLotteryTicket):
    """``prunable`` as the session takes it: a given ticket says itself which weights are
    pruned (its names are checked against the net by the search)."""
    if est.ticket is None:
        return est.prunable
    return lambda name, _, masks=est.ticket.masks: name in masks


def _training_weight(est: BaseLotteryTicket, sample_weight, y, n_samples: int) -> np.ndarray | None:
    """The weights the rows train and are scored with (checked, mean 1), or None.

    A classifier's ``class_weight`` multiplies ``sample_weight``, as in
    scikit-learn's classifiers: ``"balanced"`` is counted on the rows given
    (a fold's own in a grid search). The regressor has no such parameter.
    """
    given = checked_sample_weight(sample_weight, n_samples)  # checked by name first
    class_weight = getattr(est, "class_weight", None)
    if class_weight is None:
        return given
    weight = compute_sample_weight(class_weight, y.toarray() if issparse(y) else y)
    return checked_sample_weight(weight if given is None else weight * given, n_samples)


def validated_fit_data(est: BaseLotteryTicket, X, y, *, reset: bool):
    """``X`` as the net takes it, and ``y`` checked (scikit-learn's ``validate_data``,
    which with ``reset`` sets ``n_features_in_`` on ``est``)."""
    X, y = validate_data(
        est, X, y, reset=reset, dtype=[np.float32, np.float64], accept_sparse="csr",
        # The classifier checks a 2-D y itself: a label indicator matrix, or refused.
        multi_output=True, y_numeric=est._target_type.y_numeric,
    )
    return _as_net_input(X), y


def _walked(path: SearchPath, verbose: int, name: str) -> TicketPathPoint:
    """Train the path's rounds, with a progress bar: its last point.

    A Ctrl-C or a divergence after a round was accepted ends the search with a
    warning, keeping that round; before, there is nothing to keep and it propagates.
    """
    last = None
    try:
        with RoundProgress(verbose, path.planned_rounds, name) as bar:
            for point in path:
                bar.round_done(point.record)
                last = point
    except (KeyboardInterrupt, TrainingDivergedError) as stop:
        if last is None or last.winning_round is None:  # not even the dense round completed
            raise
        # stacklevel 4: the caller of fit (through fit and scikit-learn's _fit_context).
        if isinstance(stop, KeyboardInterrupt):
            warnings.warn(
                f"fit was interrupted (Ctrl-C) in round {path.run.progress.next_round}. The "
                f"winning ticket is round {last.winning_round}, the last round that "
                "completed; prune() goes on from there.", FitInterruptedWarning, stacklevel=4)
        else:
            warnings.warn(
                f"{stop} The search stopped there; the winning ticket is round "
                f"{last.winning_round}, the last round whose training stayed finite.",
                TrainingDivergedWarning, stacklevel=4)
    if last is None:
        raise ValueError(f"The search {path.run.search!r} trained no round.")
    return last


def _next_round(est: BaseLotteryTicket, X, y, sample_weight
                ) -> tuple[Session, SearchProgress, Round | None]:
    """One more pruning round of ``est``'s search, trained on the data: the session on
    that data, the search's progress (a copy: the fitted one stays as it is unless
    the round completes) and the round (None when every pruned layer is at its
    floor)."""
    check_start_point(est._start_point_, est._start_point())
    X, y = validated_fit_data(est, X, y, reset=False)
    sample_weight = _training_weight(est, sample_weight, y, X.shape[0])
    target = est._target_
    y = target.transform(y)
    session = est._session_.attached(
        _split(est, X, y, est._session_.seeds, sample_weight, target),
        memory=_round_memory(est), scorer=functools.partial(_held_out_score, target))
    progress = copy.copy(est._search_progress_)
    return session, progress, prune_once(session, _pruning_rule(est, session.prunable), progress)


def _first_epoch(est: BaseLotteryTicket, X, y, sample_weight,
                 classes: np.ndarray | None) -> dict:
    """``partial_fit`` on an unfitted estimator: the fitted attributes of the search's first
    round (the dense net, or the given ticket) trained one epoch on the data
    (:func:`~skticket._partial.start_round`)."""
    # The warning's stacklevel: partial_fit's caller, through _partial_fit and this.
    X, y, sample_weight, target = _encoded_fit_data(est, X, y, sample_weight, classes,
                                                    stacklevel=7)
    template = _template(est, target, X)
    net = est.net if est.net is not None else target.default_net_class()
    if isinstance(net.batch_size, str) and net.batch_size == "auto":
        # "auto" is min(200, rows) of each call: batches of 200 rows cut any call's rows
        # as that does, and prune() then batches its data as fit would.
        template.set_params(batch_size=AUTO_BATCH_ROWS)
    session = Session(template, Data(X, y, w_train=sample_weight), draw_seeds(est.random_state),
                      prunable=_pruned_names(est))
    trained, progress = start_round(session, _pruning_rule(est, session.prunable),
                                    ticket=est.ticket, ticket_init=est.ticket_init)
    return {"_target_": target, **target.fitted_attributes(), "_start_point_": est._start_point(),
            **kept_attributes(session, progress, trained, [trained.record])}


def _next_epoch(est: BaseLotteryTicket, X, y, sample_weight) -> dict:
    """``partial_fit`` on a fitted estimator: the fitted attributes after one more epoch of
    its ticket on the data (:func:`~skticket._partial.train_epoch`)."""
    check_start_point(est._start_point_, est._start_point(), method="partial_fit")
    X, y = validated_fit_data(est, X, y, reset=False)
    sample_weight = _training_weight(est, sample_weight, y, X.shape[0])
    y = est._target_.transform(y)
    session = est._session_
    ticket = est.winning_ticket_
    result = train_epoch(session, Data(X, y, w_train=sample_weight), est.net_, ticket.masks,
                         ticket.round, optimizer_state=carried_optimizer_state(est.net_))
    return continued_attributes(est.rounds_, est._search_progress_, ticket.round, session,
                                result)


def resolved_search(est: BaseLotteryTicket) -> Search:
    """The search object the parameters pick, a copy the fit may not change: a given
    ``ticket`` is a :class:`~skticket._search.GivenTicket`; a name, its class with the
    defaults."""
    if est.ticket is not None:
        return GivenTicket(ticket=est.ticket, init=est.ticket_init)
    if isinstance(est.search, str):
        return SEARCHES[est.search]()
    return clone(est.search)


def _template(est: BaseLotteryTicket, target: TargetEncoding, X: np.ndarray) -> NeuralNet:
    """An unfitted clone of ``net`` (or the default net) sized from the training data."""
    net = target.net(est.net)
    net = sized_net(net, *X.shape, target.n_outputs, **target.module_defaults(net))
    if est.verbose >= 2 and not net.verbose:
        net.set_params(verbose=1)  # skorch's table of epochs, for every round
    return net


def _split(est: BaseLotteryTicket, X, y, seeds: dict[str, int],
           sample_weight: np.ndarray | None, target: TargetEncoding) -> Data:
    """The training data, with ``validation_fraction`` held out when ``score_tolerance``
    scores the rounds."""
    if est.score_tolerance is None:
        return Data(X, y, w_train=sample_weight)
    n_rows = X.shape[0]
    # train_test_split's sizes: the held-out part rounded up.
    n_held_out = math.ceil(est.validation_fraction * n_rows)
    if not 0 < n_held_out < n_rows:
        raise ValueError(
            f"score_tolerance scores the rounds on validation_fraction="
            f"{est.validation_fraction:g} of the {n_rows} samples: {n_held_out} held out, "
            f"{n_rows - n_held_out} to train on. Both need at least one; change "
            "validation_fraction, or set score_tolerance=None.")
    stratify = target.stratify(y)
    if stratify is not None:
        _, counts = np.unique(stratify, return_counts=True)
        if counts.min() < 2 or not len(counts) <= min(n_held_out, n_rows - n_held_out):
            # A class of one member, or more classes than either part has rows:
            # no stratified split exists. A plain shuffled one, as MLPClassifier's
            # held-out split of a multiclass target is.
            stratify = None
    arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
    parts = train_test_split(*arrays, test_size=n_held_out, stratify=stratify,
                             random_state=seeds["split"])
    X_train, X_valid, y_train, y_valid = parts[:4]
    w_train, w_valid = parts[4:] if sample_weight is not None else (None, None)
    return Data(X_train, y_train, X_valid, y_valid, w_train, w_valid)


def _round_memory(est: BaseLotteryTicket) -> Memory | None:
    """Where trained rounds are kept; without a random_state no two fits share a round,
    so nothing is."""
    if est.memory is None or est.random_state is None:
        return None
    memory = est.memory
    return check_memory(os.fspath(memory) if isinstance(memory, os.PathLike) else memory)


def _pruning_rule(est: BaseLotteryTicket, prunable: list[str]) -> PruningRule:
    """The pruning parameters as they are now (``prune()`` reads them when it runs)."""
    return PruningRule(
        prune_fraction=est.prune_fraction, scope=est.scope,
        layer_fractions=checked_layer_fractions(est.layer_prune_fractions, prunable,
                                                param="layer_prune_fractions"),
        min_weights=est.min_weights_per_layer, target_sparsity=est.target_sparsity,
        max_rounds=est.max_rounds, score_tolerance=est.score_tolerance,
        rewind_step=est.rewind_step, criterion=est.prune_criterion,
    )


@Substitution(**SHARED_DOCS)
class LotteryTicketClassifier(ClassPredictions, ClassifierMixin, BaseLotteryTicket):
    """Find a winning ticket of a skorch classifier: IMP, early-bird, SNIP or sparse training.

    Parameters
    ----------
    net : skorch NeuralNetClassifier or NeuralNet, default=None
        The unfitted net to prune. Its module is sized from the data: when the
        module's constructor takes ``n_features`` / ``n_outputs`` (as
        :class:`skticket.MLP` does) and they are not set, the input width and
        the number of classes are filled in. ``None``: a
        :class:`~skticket.DefaultClassifierNet` (an :class:`MLP` trained with
        Adam until its loss on held-out rows stops improving; its docstring
        gives every setting, chosen on ``benchmarks/bench_real_tables.py``). Every
        training runs a torch optimizer on its fused (or foreach) kernels
        unless ``net__optimizer__fused`` or ``net__optimizer__foreach`` is set.
        Tune it through ``net__*`` as any net
        (``set_params(net__max_epochs=50)``, a grid over ``net__lr``): setting
        one builds the default net for this estimator, and ``net`` then holds
        it. Inputs should be standardized (``make_pipeline(StandardScaler(),
        ...)``); with the default net, features whose scales differ by orders
        of magnitude raise an :class:`~skticket.exceptions.InputScaleWarning`.
%(parameters_before_score_tolerance)s
    score_tolerance : float or None, default=None
        If set, a ``validation_fraction`` of the training data (stratified
        where it can be) is held out and scored (accuracy) after every round; the search stops once
        the score falls more than this below the dense round's, and the winning
        ticket is the sparsest round still within it.
%(parameters_after_score_tolerance)s
%(class_weight)s

%(search_attributes)s
    classes_ : ndarray of shape (n_classes,)
        The class labels; for multilabel targets, the label indices
        ``0 .. n_labels - 1``.
%(fitted_attributes)s

    See Also
    --------
    LotteryTicketRegressor : The same search for regression.
    ticket_curve : Winning against random tickets at every round of a search.

    References
    ----------
    .. [1] J. Frankle and M. Carbin, "The Lottery Ticket Hypothesis: Finding Sparse,
       Trainable Neural Networks", ICLR 2019.
    .. [2] H. You et al., "Drawing Early-Bird Tickets: Towards More Efficient Training
       of Deep Networks", ICLR 2020.
    .. [3] N. Lee, T. Ajanthan and P. Torr, "SNIP: Single-shot Network Pruning based on
       Connection Sensitivity", ICLR 2019.
    .. [4] J. Frankle et al., "Pruning Neural Networks at Initialization: Why are We
       Missing the Mark?", ICLR 2021.
    .. [5] M. Zhu and S. Gupta, "To prune, or not to prune: exploring the efficacy of
       pruning for model compression", arXiv:1710.01878, 2017.
    .. [6] T. Dettmers and L. Zettlemoyer, "Sparse Networks from Scratch: Faster Training
       without Losing Performance", arXiv:1907.04840, 2019.
    .. [7] U. Evci et al., "Rigging the Lottery: Making All Tickets Winners", ICML 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skorch import NeuralNetClassifier
    >>> from skticket import LotteryTicketClassifier, MLP
    >>> X, y = load_iris(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> net = NeuralNetClassifier(MLP, module__hidden_units=(16,), max_epochs=20, lr=0.01,
    ...                           batch_size=16,
    ...                           optimizer=torch.optim.Adam, train_split=None, verbose=0)
    >>> clf = LotteryTicketClassifier(net, prune_fraction=0.5, target_sparsity=0.75,
    ...                               random_state=0).fit(X, y)
    >>> [round(r["sparsity"], 2) for r in clf.rounds_]
    [0.0, 0.5, 0.75]
    >>> clf.winning_ticket_.n_active
    28
    >>> clf.score(X, y) > 0.9
    True
    """

    _parameter_constraints: dict = {
        **BaseLotteryTicket._parameter_constraints,
        "class_weight": [None, dict, list, StrOptions({"balanced"})],
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
        self.class_weight = class_weight


    _target_type = ClassLabels
    _compact_type = CompactClassifier

    @available_if(_offers_partial_fit)
    @Substitution(**PARTIAL_FIT_DOCS)
    @fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes: ArrayLike | None = None,
                    sample_weight: float | ArrayLike | None = None
                    ) -> LotteryTicketClassifier:
        """%(partial_fit_summary)s

        Parameters
        ----------
        %(partial_fit_X)s
        y : {array-like, sparse matrix} of shape (n_samples,) or (n_samples, n_labels)
            Class labels among ``classes``, or a label indicator matrix.
        classes : array-like of shape (n_classes,), default=None
            Every class the stream holds, e.g. ``np.unique(y_all)``: required on
            an unfitted estimator's first call (``y`` need not hold them all),
            and when given later, the classes of ``classes_``. For a label
            indicator matrix, its label indices.
        %(partial_fit_sample_weight)s
            With ``class_weight`` they are multiplied by the classes' weights;
            ``class_weight="balanced"``, which would count each call's
            classes, is refused (as ``SGDClassifier.partial_fit`` refuses it):
            give the weights of the whole stream as a dict.

        %(partial_fit_returns)s

        Raises
        ------
        ValueError
            ``classes`` missing on the first call, or not those of ``classes_``
            later; ``class_weight="balanced"``; a parameter that decides where
            the search started changed since the first call (or ``fit``); and
            whatever :meth:`fit` refuses of the data.

        See Also
        --------
        prune : Cut the ticket partial_fit trained, one round.
        fit : Find the winning ticket on all the data at once.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from sklearn.preprocessing import StandardScaler
        >>> from skticket import LotteryTicketClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> X = StandardScaler().fit_transform(X)
        >>> clf = LotteryTicketClassifier(prune_fraction=0.5, random_state=0).set_params(
        ...     net__module__hidden_units=(16,), net__max_epochs=20)
        >>> for rows in np.array_split(np.random.default_rng(0).permutation(150), 5):
        ...     clf = clf.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        >>> clf.rounds_[0]["epochs"], clf.winning_ticket_.sparsity
        (5, 0.0)
        >>> clf.prune(X, y).winning_ticket_.sparsity  # cut the net partial_fit trained
        0.5
        >>> clf.partial_fit(X, y).winning_ticket_.sparsity  # and train the ticket on
        0.5
        """
        classes = checked_classes(classes, getattr(self, "classes_", None))
        return self._partial_fit(X, y, sample_weight, classes=classes)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Multilabel targets need one logit per label: the default net switches
        # to BCEWithLogitsLoss, a net of one's own must not use NLLLoss.
        tags.classifier_tags.multi_label = self._uses_default_net() or not is_criterion(
            self.net.criterion, nn.NLLLoss)
        return tags


@Substitution(**SHARED_DOCS)
class LotteryTicketRegressor(TargetPredictions, RegressorMixin, BaseLotteryTicket):
    """Find a winning ticket of a skorch regressor: IMP, early-bird, SNIP or sparse training.

    Parameters
    ----------
    net : skorch NeuralNetRegressor or NeuralNet, default=None
        The unfitted net to prune, its module sized from the data as for
        :class:`LotteryTicketClassifier` (``n_outputs`` = number of targets).
        ``None``: a :class:`~skticket.DefaultRegressorNet` (as for
        :class:`LotteryTicketClassifier`, tunable through ``net__*``). With the
        default net the regressor trains on the target standardized per output
        (``target_mean_``, ``target_scale_``) and transforms its predictions
        back, so a raw target such as diabetes' (25 to 346) trains as well as a
        standardized one; a net of your own trains on the target as given.
%(parameters_before_score_tolerance)s
    score_tolerance : float or None, default=None
        Stop once the held-out R^2 falls more than this below the dense round's.
%(parameters_after_score_tolerance)s

%(search_attributes)s
    n_outputs_ : int
        Number of targets.
    target_mean_, target_scale_ : ndarray of shape (n_outputs_,) or None
        With the default net, the mean and standard deviation the target was
        standardized with for training (predictions are transformed back);
        None with a net of your own.
%(fitted_attributes)s

    See Also
    --------
    LotteryTicketClassifier : The same search for classification, with references.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from skticket import LotteryTicketRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=0.1, random_state=0)
    >>> reg = LotteryTicketRegressor(target_sparsity=0.5, random_state=0).fit(X, y / 100)
    >>> reg.winning_ticket_.sparsity
    0.5
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    _target_type = RegressionTarget
    _compact_type = CompactRegressor

    @available_if(_offers_partial_fit)
    @Substitution(**PARTIAL_FIT_DOCS)
    @fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight: float | ArrayLike | None = None
                    ) -> LotteryTicketRegressor:
        """%(partial_fit_summary)s

        With the default net the target is standardized by the mean and
        standard deviation of the first call's ``y`` (``target_mean_``,
        ``target_scale_``), for every later call.

        Parameters
        ----------
        %(partial_fit_X)s
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values, as many targets as in the first call.
        %(partial_fit_sample_weight)s

        %(partial_fit_returns)s

        Raises
        ------
        ValueError
            A parameter that decides where the search started changed since
            the first call (or ``fit``); whatever :meth:`fit` refuses of the data.
        TypeError
            A sparse ``y``, refused as :meth:`fit` and ``MLPRegressor`` refuse it.

        See Also
        --------
        prune : Cut the ticket partial_fit trained, one round.
        fit : Find the winning ticket on all the data at once.
        """
        return self._partial_fit(X, y, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
