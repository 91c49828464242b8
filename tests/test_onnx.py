"""ONNX export: pipelines ending in a skticket estimator become one ONNX graph."""

import copy
import functools
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_regression
from sklearn.metrics import log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

REASON = "needs the onnx extra: pip install 'skticket[onnx]' (skl2onnx, onnx, onnxruntime)"
skl2onnx = pytest.importorskip("skl2onnx", reason=REASON)
ort = pytest.importorskip("onnxruntime", reason=REASON)
pytest.importorskip("onnx", reason=REASON)

import skticket.onnx  # noqa: E402  (registers the converters)
from skticket import (  # noqa: E402
    MLP,
    CompactClassifier,
    CompactRegressor,
    LotteryTicketClassifier,
    LotteryTicketRegressor,
)
from skticket._activations import ACTIVATIONS as TABLE  # noqa: E402
from skticket._compact import compact_module  # noqa: E402
from skticket._targets import RegressionTarget  # noqa: E402

ATOL = 1e-5
ROOT = Path(__file__).resolve().parents[1]


def run(onx, X):
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def gemm_weights(onx):
    """Shapes of the weight matrices the graph's Gemm nodes multiply with."""
    inits = {i.name: tuple(i.dims) for i in onx.graph.initializer}
    return [inits[n.input[1]] for n in onx.graph.node if n.op_type == "Gemm"]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y


def classifier_net(**kwargs):
    return NeuralNetClassifier(MLP, module__hidden_units=(64, 64), max_epochs=4, lr=0.01,
                               batch_size=128, optimizer=torch.optim.Adam, train_split=None,
                               verbose=0, **kwargs)


@pytest.fixture(scope="module", params=["nll", "cross_entropy"])
def classifier_pipe(request, digits):
    """NLLLoss: the module ends in a softmax; CrossEntropyLoss: the module emits
    logits and the net's predict nonlinearity is a softmax."""
    X, y = digits
    kwargs = {"criterion": nn.CrossEntropyLoss} if request.param == "cross_entropy" else {}
    clf = LotteryTicketClassifier(classifier_net(**kwargs), prune_fraction=0.7,
                                  target_sparsity=0.95, random_state=0)
    return make_pipeline(StandardScaler(), clf).fit(X[:1200], y[:1200])


def test_classifier_pipeline_is_one_graph_matching_predictions(classifier_pipe, digits):
    X, _ = digits
    onx = skl2onnx.to_onnx(classifier_pipe, X[:1], options={"zipmap": False})
    ops = [n.op_type for n in onx.graph.node]
    assert ops[0] == "Scaler" and "ZipMap" not in ops
    labels, proba = run(onx, X)
    np.testing.assert_array_equal(labels, classifier_pipe.predict(X))
    np.testing.assert_allclose(proba, classifier_pipe.predict_proba(X), rtol=0, atol=ATOL)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=0, atol=ATOL)
    # The compacted layers, not the dense 64-64 ones: dead units are gone.
    widths = classifier_pipe[-1].compact().module_.widths
    assert gemm_weights(onx) == [(widths[k + 1], widths[k]) for k in range(len(widths) - 1)]
    assert all(w < 64 for w in widths[1:-1])


def test_probability_rows_sum_to_one_in_the_graphs_float_type(classifier_pipe, digits):
    # A float64 graph computes in float64: its rows sum to 1 to float64 rounding, as
    # predict_proba's do, and log_loss takes them without its "do not sum to one"
    # warning. A float32 graph's probabilities are float32 (skl2onnx's convention, and
    # ZipMap takes float only): they sum to 1 to float32 rounding, which log_loss
    # accepts of a float32 array; no renormalization in float32 could make them sum to
    # 1 in float64 (three thirds in float32 sum to 1 + 3e-8).
    X, y = digits
    X64 = X.astype(np.float64)
    _, proba64 = run(skl2onnx.to_onnx(classifier_pipe, X64[:1], options={"zipmap": False}), X64)
    assert proba64.dtype == np.float64
    np.testing.assert_allclose(proba64.sum(axis=1), 1, rtol=0, atol=1e-14)
    np.testing.assert_allclose(proba64, classifier_pipe.predict_proba(X64), rtol=0, atol=ATOL)
    _, proba32 = run(skl2onnx.to_onnx(classifier_pipe, X[:1], options={"zipmap": False}), X)
    assert proba32.dtype == np.float32
    np.testing.assert_allclose(proba32.sum(axis=1), 1, rtol=0,
                               atol=10 * np.finfo(np.float32).eps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_loss(y, proba64, labels=classifier_pipe.classes_)
        log_loss(y, proba32, labels=classifier_pipe.classes_)


def test_classifier_zipmap_by_default(classifier_pipe, digits):
    X, _ = digits
    onx = skl2onnx.to_onnx(classifier_pipe, X[:1])
    assert [o.name for o in onx.graph.output] == ["output_label", "output_probability"]
    labels, dicts = run(onx, X[:50])
    classes = classifier_pipe.classes_
    proba = np.array([[row[c] for c in classes] for row in dicts])
    np.testing.assert_array_equal(labels, classifier_pipe.predict(X[:50]))
    np.testing.assert_allclose(proba, classifier_pipe.predict_proba(X[:50]), rtol=0, atol=ATOL)


def test_string_labels(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])[y]
    clf = LotteryTicketClassifier(classifier_net(), prune_fraction=0.5, max_rounds=1,
                                  random_state=0)
    pipe = make_pipeline(StandardScaler(), clf).fit(X[:600], names[:600])
    labels, _ = run(skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False}), X)
    assert labels.dtype == object
    np.testing.assert_array_equal(labels, pipe.predict(X))


@pytest.mark.parametrize("n_targets", [1, 2])
def test_regressor_pipeline_matches(n_targets):
    X, y = make_regression(n_samples=400, n_features=8, n_targets=n_targets, random_state=0)
    X = X.astype(np.float32)
    net = NeuralNetRegressor(MLP, module__hidden_units=(32, 32), module__activation="tanh",
                             max_epochs=10, lr=0.01, optimizer=torch.optim.Adam,
                             train_split=None, verbose=0)
    reg = LotteryTicketRegressor(net, prune_fraction=0.6, target_sparsity=0.9, random_state=0)
    pipe = make_pipeline(StandardScaler(), reg).fit(X, y / 100)
    onx = skl2onnx.to_onnx(pipe, X[:1])
    (out,) = run(onx, X)
    assert out.shape == (len(X), n_targets)
    np.testing.assert_allclose(out.reshape(pipe.predict(X).shape), pipe.predict(X),
                               rtol=0, atol=ATOL)


def test_compact_predictors_convert(classifier_pipe, digits):
    X, _ = digits
    scaled = classifier_pipe[0].transform(X).astype(np.float32)
    # Every layer CSR: the graph holds them as dense matrices of the compact shape.
    compact = classifier_pipe[-1].compact(sparse_threshold=0.0)
    assert all(layer.is_sparse for layer in compact.module_.linears)
    onx = skl2onnx.to_onnx(compact, scaled[:1], options={"zipmap": False})
    labels, proba = run(onx, scaled)
    np.testing.assert_array_equal(labels, compact.predict(scaled))
    np.testing.assert_allclose(proba, compact.predict_proba(scaled), rtol=0, atol=ATOL)
    widths = compact.module_.widths
    assert gemm_weights(onx)[0] == (widths[1], widths[0])
    # A ZipMap by default, as for any skl2onnx classifier.
    assert "ZipMap" in [n.op_type for n in skl2onnx.to_onnx(compact, scaled[:1]).graph.node]


def test_compact_regressor_converts():
    X, y = make_regression(n_samples=300, n_features=6, random_state=1)
    X = X.astype(np.float32)
    reg = LotteryTicketRegressor(prune_fraction=0.7, target_sparsity=0.9,
                                 random_state=0).fit(X, y / 100)
    compact = reg.compact()
    (out,) = run(skl2onnx.to_onnx(compact, X[:1]), X)
    np.testing.assert_allclose(out.ravel(), compact.predict(X), rtol=0, atol=ATOL)
    np.testing.assert_allclose(out.ravel(), reg.predict(X), rtol=0, atol=ATOL)


def test_graph_is_smaller_than_the_dense_nets(classifier_pipe, digits):
    X, _ = digits
    est = classifier_pipe[-1]
    sparse_size = len(skl2onnx.to_onnx(est, X[:1], options={"zipmap": False})
                      .SerializeToString())
    # The same net with no weight pruned: nothing to remove, every layer full size.
    dense_module = copy.deepcopy(est.net_.module_)
    with torch.no_grad():
        for p in dense_module.parameters():
            p.add_(0.01)
    dense = CompactClassifier(compact_module(dense_module, sparse_threshold=1.0),
                              target=est.compact().target, n_features_in=est.n_features_in_,
                              nonlinearity=est.compact().nonlinearity)
    assert dense.module_.widths == [64, 64, 64, 10]
    dense_size = len(skl2onnx.to_onnx(dense, X[:1], options={"zipmap": False})
                     .SerializeToString())
    assert sparse_size < dense_size


# Settings away from the defaults (and those a module needs), so that each one's
# conversion is checked; every other module of the table with its defaults.
SETTINGS = {
    nn.LeakyReLU: [dict(negative_slope=0.2)], nn.ELU: [dict(alpha=0.5)],
    nn.CELU: [dict(alpha=0.7)], nn.GELU: [{}, dict(approximate="tanh")],
    nn.Softplus: [dict(beta=2.0, threshold=3.0)], nn.Hardtanh: [dict(min_val=-0.5, max_val=0.7)],
    nn.Softshrink: [dict(lambd=0.3)], nn.Hardshrink: [dict(lambd=0.3)],
    nn.Threshold: [dict(threshold=0.1, value=-1.0)], nn.Dropout: [dict(p=0.5)],
}
ACTIVATIONS = [entry.module(**settings) for entry in TABLE if entry.elementwise
               for settings in SETTINGS.get(entry.module, [{}])]
TAILS = [entry.module(dim=dim) for entry in TABLE if not entry.elementwise for dim in (1, -1)]


def test_every_module_of_the_table_converts():
    assert set(skticket.onnx.SUPPORTED_MODULES) == {entry.module for entry in TABLE}
    assert {type(m) for m in ACTIVATIONS + TAILS} == set(skticket.onnx.SUPPORTED_MODULES)


def random_compact_regressor(activation, *, prefix=(), tail=(), nonlinearity=None, seed=0):
    torch.manual_seed(seed)
    module = nn.Sequential(*prefix, nn.Linear(6, 16), activation, nn.Linear(16, 12),
                           copy.deepcopy(activation), nn.Linear(12, 3), *tail).eval()
    with torch.no_grad():
        for layer in (module[len(prefix)], module[len(prefix) + 2]):
            # Weights large enough to reach each activation's thresholds, and
            # some units with no inputs (folded into a bias) or no outputs.
            layer.weight.mul_(4)
            layer.weight[:3] = 0
            layer.weight[:, -2:] = 0
    # Three targets as the net gives them: no scaling, 2-D.
    target = RegressionTarget(estimator_name="test", default_net=False)
    target.fit_transform(np.zeros((2, 3)))
    return CompactRegressor(compact_module(module), target=target, n_features_in=6,
                            nonlinearity=nonlinearity)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda m: repr(m))
def test_every_activation_compact_takes(activation):
    X = np.random.default_rng(0).standard_normal((500, 6)).astype(np.float32)
    predictor = random_compact_regressor(activation)
    (out,) = run(skl2onnx.to_onnx(predictor, X[:1]), X)
    np.testing.assert_allclose(out, predictor.predict(X), rtol=0, atol=ATOL)


@pytest.mark.parametrize("tail", [*TAILS, nn.Sigmoid()], ids=repr)
def test_modules_after_the_last_layer(tail):
    X = np.random.default_rng(1).standard_normal((200, 6)).astype(np.float32)
    predictor = random_compact_regressor(nn.ReLU(), tail=[tail])
    (out,) = run(skl2onnx.to_onnx(predictor, X[:1]), X)
    np.testing.assert_allclose(out, predictor.predict(X), rtol=0, atol=ATOL)


def test_non_mlp_module_is_a_clear_error(digits):
    X, y = digits

    class TwoPaths(nn.Module):
        def __init__(self, n_features, n_outputs):
            super().__init__()
            self.a = nn.Linear(n_features, n_outputs)
            self.b = nn.Linear(n_features, n_outputs)

        def forward(self, X):
            return torch.softmax(self.a(X) + self.b(X), dim=-1)

    net = NeuralNetClassifier(TwoPaths, max_epochs=1, train_split=None, verbose=0)
    pipe = make_pipeline(StandardScaler(), LotteryTicketClassifier(
        net, max_rounds=1, random_state=0)).fit(X[:300], y[:300])
    with pytest.raises(TypeError, match=r"skticket\.onnx cannot convert this "
                                        r"LotteryTicketClassifier: compact\(\) cannot rebuild "
                                        r"a TwoPaths: it is not an nn\.Sequential"):
        skl2onnx.to_onnx(pipe, X[:1])


def test_unsupported_modules_around_the_layers_are_named():
    X = np.zeros((2, 6), dtype=np.float32)
    predictor = random_compact_regressor(nn.ReLU(), prefix=[nn.BatchNorm1d(6).eval()])
    with pytest.raises(TypeError, match="cannot convert the BatchNorm1d before the first "
                                        r"linear layer \(prefix\[0\]\)"):
        skl2onnx.to_onnx(predictor, X)
    predictor = random_compact_regressor(nn.ReLU(), tail=[nn.Softmax(dim=0)])
    with pytest.raises(TypeError, match=r"Softmax after the last linear layer.*dim=0"):
        skl2onnx.to_onnx(predictor, X)
    predictor = random_compact_regressor(nn.ReLU(), nonlinearity=lambda t: t * 2)
    with pytest.raises(TypeError, match="cannot convert the net's predict_nonlinearity"):
        skl2onnx.to_onnx(predictor, X)


def test_old_opset_is_refused(classifier_pipe, digits):
    X, _ = digits
    with pytest.raises(RuntimeError, match="needs target_opset >= 13, got 12"):
        skl2onnx.to_onnx(classifier_pipe, X[:1], target_opset=12)


def test_import_without_the_extra_names_it():
    script = "import sys; sys.modules['skl2onnx'] = None; import skticket.onnx"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT),
                                                         os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, cwd=ROOT)
    assert result.returncode != 0
    assert 'pip install "skticket[onnx]"' in result.stderr


@pytest.mark.parametrize("nonlinearity", [
    None, functools.partial(torch.softmax, dim=1), functools.partial(torch.log_softmax, dim=-1),
    torch.sigmoid, nn.Softmax(dim=-1)], ids=repr)
def test_predict_nonlinearities_convert(nonlinearity):
    X = np.random.default_rng(2).standard_normal((200, 6)).astype(np.float32)
    predictor = random_compact_regressor(nn.ReLU(), nonlinearity=nonlinearity)
    (out,) = run(skl2onnx.to_onnx(predictor, X[:1]), X)
    np.testing.assert_allclose(out, predictor.predict(X), rtol=0, atol=ATOL)
