"""scikit-learn's own estimator checks, run on both estimators with fast parameters."""

from helpers import small_net
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch import NeuralNetClassifier, NeuralNetRegressor

from skticket import (
    DefaultClassifierNet,
    DefaultRegressorNet,
    LotteryTicketClassifier,
    LotteryTicketClassifierCV,
    LotteryTicketRegressor,
    LotteryTicketRegressorCV,
)


def _fast(net_class, **net_params):
    return small_net(net_class, module__hidden_units=(32,), lr=0.02, max_epochs=25,
                     **net_params)


FAST_ESTIMATORS = [
    cls(_fast(net_class), prune_fraction=0.5, target_sparsity=0.5, random_state=0,
        search=search)
    for search in ("imp", "early_bird", "snip", "gradual", "sparse_momentum", "rigl",
                   "supermask")
    for cls, net_class in ((LotteryTicketClassifier, NeuralNetClassifier),
                           (LotteryTicketRegressor, NeuralNetRegressor))
] + [
    # The default nets: the classifier's declares multilabel targets (a net of one's
    # own with skorch's default NLLLoss cannot take them), so the multilabel checks run.
    cls(default_net(max_epochs=10, lr=0.02), prune_fraction=0.5, target_sparsity=0.5,
        random_state=0, search=search)
    for search in ("imp",)
    for cls, default_net in ((LotteryTicketClassifier, DefaultClassifierNet),
                             (LotteryTicketRegressor, DefaultRegressorNet))
] + [
    # The CV estimators: two folds of the path, then the refit.
    cls(_fast(net_class), prune_fraction=0.5, target_sparsity=0.5, random_state=0, cv=2)
    for cls, net_class in ((LotteryTicketClassifierCV, NeuralNetClassifier),
                           (LotteryTicketRegressorCV, NeuralNetRegressor))
]

# Every check that cannot apply, with its reason; the rest must pass.
# check_methods_subset_invariance passes since a row's prediction does not depend on
# the other rows: these MLPs predict in float64 from their float32 weights, so a row's
# outputs agree to about 1e-12 relative whatever the batch, far below the check's rtol
# (skticket/_predict.py); check_sample_weights_invariance passes by construction for
# uniform weights (they train as None). The checks that call partial_fit
# (check_estimators_partial_fit_n_features, check_n_features_in_after_fitting,
# check_dataframe_column_names_consistency, check_fit_score_takes_y,
# check_param_validation) pass on the plain estimators, whatever their search; the CV
# estimators have no partial_fit.
_REPEATED_ROWS = (
    "A weight of 2 and a repeated row give the same loss, not the same training: "
    "mini-batch training sees the repeated row as a row of its own, so the batches, and "
    "every step after the first, differ. Even where the data fits one batch, the "
    "training's float32 sums (the loss and its gradients) differ in the last bits, so the "
    "trained weights, and the float64 predictions computed from them, differ by about "
    "1e-7 relative, the check's rtol."
)
# The regressor with a skorch NeuralNetRegressor of its own passes both checks here (its
# predictions within 2.6e-8 to 6.5e-8 relative, every search; the classifiers do not, nor
# does the default regressor net, whose target standardization ignores sample_weight, so
# that a weighted fit's target mean is not its repeated fit's), but
# only by float32 luck: under ATEN_CPU_CAPABILITY=default (torch's unvectorized kernels) the
# same fits differ by up to 1.7e-7 (imp, early_bird) and 1.5e-7 (sparse_momentum) and fail.
# The expected failures stay, non-strict, for every estimator.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    name: {"check_sample_weight_equivalence_on_dense_data": _REPEATED_ROWS,
           "check_sample_weight_equivalence_on_sparse_data": _REPEATED_ROWS}
    for name in ("LotteryTicketClassifier", "LotteryTicketRegressor",
                 "LotteryTicketClassifierCV", "LotteryTicketRegressorCV")
}


_UNTRAINED_WEIGHTS = (
    "A supermask never trains the weights: the regressor's output is the net's random "
    "weights at torch's default initialisation (uniform within 1/sqrt(fan_in)) under a "
    "learned mask, and no mask of them reaches the scale of the target: R^2 stays below "
    "the check's 0.5 (0.20 on 200 standardized diabetes rows with the same net). A "
    "classifier is scored by its largest output, which the scale does not limit."
)
SUPERMASK_REGRESSOR_FAILED_CHECKS = {
    name: _UNTRAINED_WEIGHTS
    for name in ("check_regressors_train", "check_regressors_train(readonly_memmap=True)",
                 "check_regressors_train(readonly_memmap=True,X_dtype=float32)")
}


def expected_failed_checks(estimator):
    """The checks ``estimator`` is expected to fail, with their reasons (test_search's
    estimator checks use them too)."""
    expected = dict(EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {}))
    if (isinstance(estimator, LotteryTicketRegressor)
            and getattr(estimator, "search", None) == "supermask"):
        expected.update(SUPERMASK_REGRESSOR_FAILED_CHECKS)
    return expected


@parametrize_with_checks(FAST_ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
