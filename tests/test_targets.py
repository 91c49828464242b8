"""What a target is to the net (skticket._targets), and the net sized from the data
(skticket._nets.sized_net): the one place the two estimators differ."""

import pathlib
import re

import numpy as np
import pytest
import torch
from sklearn.preprocessing import LabelEncoder, StandardScaler
from skorch import NeuralNetClassifier, NeuralNetRegressor

from skticket import (
    MLP,
    DefaultClassifierNet,
    DefaultRegressorNet,
    LotteryTicketClassifier,
    LotteryTicketRegressor,
)
from skticket._nets import sized_net
from skticket._targets import ClassLabels, RegressionTarget, TargetScaling

ROOT = pathlib.Path(__file__).resolve().parents[1]


def labels(default_net=True):
    return ClassLabels(estimator_name="Estimator", default_net=default_net)


def regression(default_net=True):
    return RegressionTarget(estimator_name="Estimator", default_net=default_net)


@pytest.mark.parametrize("y", [np.array(["b", "a", "c", "a"]), np.array([3, 1, 3, 2]),
                               np.array([True, False, True]),
                               np.array(["b", "a", "b"], dtype=object)])
def test_labels_are_encoded_as_scikit_learns_label_encoder_does(y):
    target = labels()
    encoded = target.fit_transform(y)
    expected = LabelEncoder().fit(y)
    np.testing.assert_array_equal(target.classes_, expected.classes_)
    assert target.classes_.dtype == expected.classes_.dtype
    np.testing.assert_array_equal(encoded, expected.transform(y))
    assert encoded.dtype == np.int64 and target.n_outputs == len(expected.classes_)
    np.testing.assert_array_equal(target.transform(y[::-1]), encoded[::-1])
    # The net's outputs decode to the labels of their largest column.
    outputs = np.eye(len(target.classes_))[encoded]
    np.testing.assert_array_equal(target.decode(outputs), y)
    assert target.score(encoded, outputs) == 1.0
    assert target.fitted_attributes().keys() == {"classes_"}


def test_labels_refuse_what_fit_did_not_see():
    target = labels()
    target.fit_transform(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels not seen in fit: \[7\]"):
        target.transform(np.array([0, 7]))
    with pytest.raises(ValueError, match="1-D labels"):
        target.transform(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        labels().fit_transform(np.array([4, 4]))


def test_a_label_indicator_matrix_is_one_output_per_label():
    Y = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0]], dtype=np.int32)
    target = labels()
    encoded = target.fit_transform(Y)
    assert target.multilabel_ and target.n_outputs == 3 and encoded.dtype == np.float32
    np.testing.assert_array_equal(target.classes_, [0, 1, 2])
    proba = np.array([[0.9, 0.5, 0.7], [0.1, 0.2, 0.6], [0.8, 0.6, 0.4]])
    # 1 above 0.5, exactly 0.5 is not; the labels' own dtype.
    decoded = target.decode(proba)
    np.testing.assert_array_equal(decoded, Y)
    assert decoded.dtype == np.int32
    assert target.score(encoded, proba) == 1.0
    # Subset accuracy: reversed, only the middle row keeps all its labels right.
    assert target.score(encoded, proba[::-1]) == pytest.approx(1 / 3)
    assert target.stratify(encoded) is None
    with pytest.raises(ValueError, match="indicator matrix of 3 columns"):
        target.transform(Y[:, :2])


def test_the_multilabel_loss_is_decided_by_the_target():
    target = labels()
    target.fit_transform(np.array([[1, 0], [0, 1], [1, 1]]))
    net = target.net(None)
    assert isinstance(net, DefaultClassifierNet) and net.criterion is torch.nn.BCEWithLogitsLoss
    assert net.predict_nonlinearity is torch.sigmoid
    assert target.module_defaults(net) == {}  # no softmax over independent labels
    own = labels(default_net=False)
    own.fit_transform(np.array([[1, 0], [0, 1], [1, 1]]))
    with pytest.raises(ValueError, match="criterion is NLLLoss"):
        own.net(NeuralNetClassifier(MLP))
    single = labels()
    single.fit_transform(np.array([0, 1, 1]))
    given = NeuralNetClassifier(MLP)
    assert single.net(given) is not given  # a clone, never the user's object
    assert single.module_defaults(given) == {"output_activation": "softmax"}


@pytest.mark.parametrize("target, wrong", [(labels(), NeuralNetRegressor(MLP)),
                                           (regression(), NeuralNetClassifier(MLP))])
def test_a_net_of_the_other_kind_is_refused(target, wrong):
    with pytest.raises(TypeError, match=f"Estimator cannot wrap a {type(wrong).__name__}"):
        target.net(wrong)


def test_the_regression_target_is_standardized_as_standard_scaler_does():
    rng = np.random.default_rng(0)
    y = rng.normal(150.0, 60.0, size=(200, 2))
    target = regression()
    encoded = target.fit_transform(y)
    scaler = StandardScaler().fit(y)
    np.testing.assert_array_equal(target.scaling_.offset, scaler.mean_)
    np.testing.assert_array_equal(target.scaling_.scale, scaler.scale_)
    np.testing.assert_array_equal(encoded, scaler.transform(y).astype(np.float32))
    np.testing.assert_allclose(target.decode(encoded.astype(np.float64)), y, rtol=1e-6)
    attributes = target.fitted_attributes()
    assert attributes["n_outputs_"] == 2
    np.testing.assert_array_equal(attributes["target_mean_"], scaler.mean_)
    with pytest.raises(ValueError, match=r"fit saw 2 target\(s\)"):
        target.transform(y[:, 0])


def test_a_users_net_trains_on_the_target_as_given_in_two_dimensions():
    target = regression(default_net=False)
    y = np.array([1.0, 250.0, 3.0])
    encoded = target.fit_transform(y)
    assert target.scaling_ is None and target.fitted_attributes()["target_scale_"] is None
    np.testing.assert_array_equal(encoded, y[:, None].astype(np.float32))
    assert target.decode(np.array([[2.0], [5.0]])).shape == (2,)  # 1-D as fit saw it


def test_a_constant_target_is_shifted_not_scaled():
    scaling = TargetScaling.of(np.full((5, 1), 7.0))
    assert scaling.scale.tolist() == [1.0] and scaling.offset.tolist() == [7.0]


def test_sized_net_fills_in_only_what_the_module_takes_and_the_user_left_unset():
    net = sized_net(DefaultRegressorNet(), 1000, 8, 3)
    params = net.get_params()
    assert (params["module__n_features"], params["module__n_outputs"]) == (8, 3)
    assert params["batch_size"] == 200  # "auto": min(200, rows)
    set_by_user = sized_net(NeuralNetClassifier(MLP, module__n_outputs=5, batch_size=16),
                            50, 4, 2, output_activation="softmax")
    params = set_by_user.get_params()
    assert params["module__n_outputs"] == 5 and params["batch_size"] == 16
    assert params["module__output_activation"] == "softmax"
    # A module that takes no such parameter gets none; an instance is used as it is.
    linear = sized_net(NeuralNetClassifier(torch.nn.Linear), 10, 4, 2, output_activation="x")
    assert not any(name.startswith("module__") for name in linear.get_params())
    instance = sized_net(NeuralNetClassifier(MLP(n_features=4, n_outputs=2)), 10, 4, 2)
    assert "module__n_features" not in instance.get_params()


def test_the_estimators_differ_only_in_their_target_and_compact_predictor():
    code = (ROOT / "skticket" / "_estimators.py").read_text()
    assert not re.search(r"isinstance\((self|est), (ClassifierMixin|RegressorMixin)", code)
    for cls in (LotteryTicketClassifier, LotteryTicketRegressor):
        private = {name for name in vars(cls) if name.startswith("_") and not name.startswith("__")}
        # (_abc_impl is ABCMeta's own bookkeeping; the classifier's _parameter_constraints
        # add its one parameter of its own, class_weight.)
        assert private <= {"_target_type", "_compact_type", "_multilabel_", "_abc_impl",
                           "_parameter_constraints"}, private
