"""How the estimators predict: each row independent of the others, through the
compacted net when the module is MLP-like, with a copy that follows the module."""

import functools
import gc
import weakref

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.utils import _identity
from torch import nn

from skticket import MLP, LotteryTicketClassifier, LotteryTicketRegressor
from skticket._compact import (
    BATCH_SIZE,
    CompactForward,
    _csr,
    _step,
    compact_module,
)


def small_net(net_class=NeuralNetClassifier, **params):
    defaults = dict(module=MLP, module__hidden_units=(16, 16), optimizer=torch.optim.Adam,
                    lr=0.01, max_epochs=2, batch_size=64, train_split=None, verbose=0)
    return net_class(**{**defaults, **params})


class OwnInference(NeuralNetClassifier):
    """A net with its own inference step: predictions must go through it."""

    def infer(self, x, **fit_params):
        return super().infer(x, **fit_params) * 1.0


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=9000, n_features=8, random_state=0)
    return X.astype(np.float32), y


# Each kind exercises another mix of steps: row-wise CSR products, dense products
# and activations in fixed blocks, a skorch nonlinearity, a tail in blocks, and
# skorch's own forward.
KINDS = {
    "sparse relu": dict(target_sparsity=0.95),
    "dense layers": dict(target_sparsity=0.2),
    "tanh": dict(net=dict(module__activation="tanh")),
    "cross-entropy": dict(net=dict(criterion=nn.CrossEntropyLoss)),
    "skorch's forward": dict(net=dict(net_class=OwnInference)),
    "regressor, 2 targets, logistic output": dict(
        net=dict(net_class=NeuralNetRegressor, module__output_activation="logistic")),
    "regressor, 1 target": dict(net=dict(net_class=NeuralNetRegressor)),
}


def fitted(kind, X, y):
    params = dict(KINDS[kind])
    net = small_net(**params.pop("net", {}))
    params = {"prune_fraction": 0.6, "target_sparsity": 0.9, "random_state": 0, **params}
    if isinstance(net, NeuralNetRegressor):
        target = X[:, :2] @ np.array([[1.0, 0.5], [-1.0, 2.0]])
        target = target if "2 targets" in kind else target[:, 0]
        if "logistic" in kind:
            target = 1 / (1 + np.exp(-target))
        return LotteryTicketRegressor(net, **params).fit(X[:1500], target[:1500])
    return LotteryTicketClassifier(net, **params).fit(X[:1500], y[:1500])


def methods_of(est):
    if isinstance(est, LotteryTicketClassifier):
        return [est.predict_proba, est.predict]
    return [est.predict]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_rows_prediction_does_not_depend_on_the_other_rows(data, kind, threads):
    X, y = data
    est = fitted(kind, X, y)
    assert len(X) > 2 * BATCH_SIZE  # several passes, each of several blocks
    order = np.random.default_rng(0).permutation(len(X))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for method in methods_of(est):
            whole = method(X)
            np.testing.assert_array_equal(method(X[order]), whole[order])
            for start, stop in [(5, 8), (0, 17), (1000, 1300), (4090, 4100), (0, 4097)]:
                np.testing.assert_array_equal(method(X[start:stop]), whole[start:stop])
            for row in (0, 1, 255, 4096, 8999):
                np.testing.assert_array_equal(method(X[row:row + 1]), whole[row:row + 1])
    finally:
        torch.set_num_threads(before)
    # The same numbers, to float32 rounding, as skorch's own predict.
    skorch_path = (est.net_.predict_proba(X) if isinstance(est, LotteryTicketClassifier)
                   else est.net_.predict(X).reshape(est.predict(X).shape))
    estimator_path = methods_of(est)[0](X)
    if isinstance(est, LotteryTicketRegressor) and est.target_scale_ is not None:
        estimator_path = (estimator_path - est.target_mean_.ravel()) / est.target_scale_.ravel()
    np.testing.assert_allclose(estimator_path, skorch_path, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["sparse relu", "dense layers", "tanh", "regressor, 1 target"])
def test_the_estimator_predicts_what_its_compact_predictor_does(data, kind):
    X, y = data
    est = fitted(kind, X, y)
    compact = est.compact()
    if isinstance(est, LotteryTicketClassifier):
        np.testing.assert_array_equal(compact.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(compact.predict(X), est.predict(X))


def test_predictions_follow_changes_to_the_module(data):
    X, y = data
    est = fitted("sparse relu", X, y)
    module = est.net_.module_
    before = est.predict_proba(X)

    with torch.no_grad():  # in place: the parameter's version moves
        module.output.weight.mul_(2.0)
    doubled = est.predict_proba(X)
    assert not np.allclose(doubled, before)
    np.testing.assert_allclose(doubled, est.net_.predict_proba(X), rtol=1e-5, atol=1e-6)

    module.activation_0 = nn.Tanh()  # a replaced submodule
    np.testing.assert_allclose(est.predict_proba(X), est.net_.predict_proba(X),
                               rtol=1e-5, atol=1e-6)

    module.activation_0 = nn.LeakyReLU(0.0)
    relu = est.predict_proba(X)
    module.activation_0.negative_slope = 0.5  # a setting changed in place
    assert not np.allclose(est.predict_proba(X), relu)
    np.testing.assert_allclose(est.predict_proba(X), est.net_.predict_proba(X),
                               rtol=1e-5, atol=1e-6)

    leaky = est.predict_proba(X)
    # A replaced parameter (one class's bias raised: softmax ignores a common shift).
    module.output.bias = nn.Parameter(module.output.bias.detach() + torch.tensor([1.0, 0.0]))
    assert not np.allclose(est.predict_proba(X), leaky)
    np.testing.assert_allclose(est.predict_proba(X), est.net_.predict_proba(X),
                               rtol=1e-5, atol=1e-6)

    calls = []
    handle = module.register_forward_hook(lambda *args: calls.append(1))
    hooked = est.predict_proba(X[:10])
    assert calls  # a hooked module runs its own forward
    handle.remove()
    calls.clear()
    np.testing.assert_allclose(est.predict_proba(X[:10]), hooked, rtol=1e-5, atol=1e-6)
    assert not calls


def test_a_predicting_estimator_is_not_kept_alive(data):
    X, y = data
    est = fitted("sparse relu", X, y)
    est.predict(X[:3])
    module = weakref.ref(est.net_.module_)
    del est
    gc.collect()
    assert module() is None


def test_the_global_random_state_is_untouched_by_every_path(data):
    X, y = data
    for kind in ("sparse relu", "tanh", "skorch's forward"):
        est = fitted(kind, X, y)
        state = torch.get_rng_state()
        est.predict(X[:100])
        assert torch.equal(torch.get_rng_state(), state)


# --- the premises: what the row-wise steps rely on ----------------------------------------


@pytest.mark.parametrize("threads", [1, 2])
def test_csr_products_and_softmax_compute_each_column_on_its_own(threads):
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(76, 64, generator=gen) * (torch.rand(76, 64, generator=gen) < 0.1)
    bias = torch.randn(76, 1, generator=gen)
    h = torch.randn(64, 3000, generator=gen)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        csr = _csr(weight)
        full = torch.addmm(bias, csr, h)
        logits = full.T.contiguous()
        probs = torch.softmax(logits, dim=-1)
        for n in [*range(1, 40), 255, 256, 1000, 2999]:
            assert torch.equal(torch.addmm(bias, csr, h[:, :n].contiguous()), full[:, :n]), n
            assert torch.equal(torch.softmax(logits[:n], dim=-1), probs[:n]), n
    finally:
        torch.set_num_threads(before)


def test_which_steps_see_a_whole_pass():
    class OwnReLU(nn.ReLU):
        def forward(self, x):
            return x.exp()

    rowwise = [nn.ReLU(), nn.LeakyReLU(0.1), nn.ReLU6(), nn.Hardtanh(-2, 2), nn.Identity(),
               nn.Dropout(0.5).eval(), nn.Softmax(dim=-1), nn.Softmax(dim=1),
               nn.LogSoftmax(dim=-1)]
    blocked = [nn.Tanh(), nn.Sigmoid(), nn.GELU(), nn.Softplus(), OwnReLU(), nn.Softmax(dim=0)]
    assert all(_step(m).rowwise and not _step(m).draws for m in rowwise)
    assert not any(_step(m).rowwise for m in blocked)
    # Known functions draw nothing; anything else might (the random state is restored).
    assert [_step(m).draws for m in blocked] == [False] * 4 + [True, False]
    assert _step(nn.Dropout(0.5)).draws  # in training mode
    assert _step(_identity) == (_identity, True, False)
    softmax = functools.partial(torch.softmax, dim=-1)
    assert _step(softmax) == (softmax, True, False)
    assert _step(functools.partial(torch.softmax, dim=0)).draws
    assert not _step(torch.sigmoid).rowwise
    assert not _step(lambda x: x).rowwise


class Draws(nn.Module):
    """A module that draws from torch's global generator (and discards it)."""

    def forward(self, x):
        return x + 0 * torch.rand(x.shape)


def test_prefix_and_tail_modules_of_a_compacted_net_keep_rows_apart():
    gen = torch.Generator().manual_seed(0)
    module = nn.Sequential(nn.Tanh(), nn.Linear(12, 40), nn.ReLU(), nn.Linear(40, 3),
                           nn.Sigmoid(), Draws())
    with torch.no_grad():
        for layer in (module[1], module[3]):
            layer.weight.mul_(torch.rand(layer.weight.shape, generator=gen) < 0.1)
    forward = CompactForward(compact_module(module))
    X = torch.randn(2000, 12, generator=gen) * 3
    with torch.inference_mode():
        whole = forward(X, rows_per_pass=512)
        np.testing.assert_allclose(whole, module(X), rtol=1e-5, atol=1e-6)
        assert torch.equal(forward(X, rows_per_pass=64), whole)
        for start, stop in [(0, 1), (3, 5), (100, 400), (1999, 2000)]:
            assert torch.equal(forward(X[start:stop]), whole[start:stop])
        X_before, state = X.clone(), torch.get_rng_state()
        forward(X)
        assert torch.equal(X, X_before)  # the prefix never works on the caller's rows
        assert torch.equal(torch.get_rng_state(), state)
