"""How the estimators predict: each row independent of the others, through the
compacted net when the module is MLP-like, with a copy that follows the module."""

import functools
import gc
import itertools
import math
import weakref

import numpy as np
import pytest
import torch
from helpers import small_net
from sklearn.datasets import make_classification
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

import skticket._compact as compact_mod
from skticket import LotteryTicketClassifier, LotteryTicketRegressor
from skticket._activations import as_module
from skticket._compact import (
    BATCH_SIZE,
    KERNELS_ENV,
    CompactForward,
    _csr,
    _forward_step,
    compact_module,
    kernel_verdicts,
)


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
    net = small_net(**{"module__hidden_units": (16, 16), "max_epochs": 2, "batch_size": 64,
                       **params.pop("net", {})})
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
def test_a_rows_prediction_does_not_depend_on_the_other_rows(data, kind, threads, monkeypatch):
    X, y = data
    est = fitted(kind, X, y)
    assert len(X) > 2 * BATCH_SIZE  # several passes, each of several blocks
    order = np.random.default_rng(0).permutation(len(X))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        # Probed kernels where this machine's probe trusts them, and all in blocks
        # (what runs where the probe fails).
        for mode, method in itertools.product(["probe", "blocks"], methods_of(est)):
            monkeypatch.setenv(KERNELS_ENV, mode)
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


# --- which steps see a whole pass, and the kernel probe ------------------------------------


def test_which_steps_see_a_whole_pass():
    class OwnReLU(nn.ReLU):
        def forward(self, x):
            return x.exp()

    exact = [nn.ReLU(), nn.LeakyReLU(0.1), nn.ReLU6(), nn.Hardtanh(-2, 2), nn.Identity(),
             nn.Dropout(0.5).eval()]
    probed = [nn.Softmax(dim=-1), nn.Softmax(dim=1), nn.LogSoftmax(dim=-1),
              functools.partial(torch.softmax, dim=-1)]
    blocked = [nn.Tanh(), nn.Sigmoid(), nn.GELU(), nn.Softplus(), OwnReLU(), nn.Softmax(dim=0)]
    assert all(step.rowwise and not step.draws and step.kernel is None
               for step in map(_forward_step, exact))
    # A softmax over the features of a known width: row-wise where its probe passes.
    for m in probed:
        step = _forward_step(m, 10)
        assert not step.rowwise and not step.draws
        assert step.kernel.key == (type(as_module(m)).__name__, 10, torch.float32)
        unknown_width = _forward_step(m)
        assert unknown_width.kernel is None and not unknown_width.rowwise  # runs in blocks
    assert not any(_forward_step(m, 10).rowwise or _forward_step(m, 10).kernel for m in blocked)
    # Known functions draw nothing; anything else might (the random state is restored).
    assert [_forward_step(m).draws for m in blocked] == [False] * 4 + [True, False]
    assert _forward_step(nn.Dropout(0.5)).draws  # in training mode
    assert _forward_step(functools.partial(torch.softmax, dim=0)).kernel is None
    assert not _forward_step(torch.sigmoid).rowwise and not _forward_step(torch.sigmoid).draws
    assert not _forward_step(lambda x: x).rowwise and _forward_step(lambda x: x).draws


def mkl_like(bias, weight, h):
    """A CSR product that rounds the columns past the last whole group of 4 otherwise,
    as MKL's kernel does on AVX2 and AVX-512 Intel CPUs (here: one ulp up)."""
    out = torch.addmm(bias, weight, h)
    tail = out[:, h.shape[1] // 4 * 4:]
    tail.copy_(torch.nextafter(tail, torch.full_like(tail, math.inf)))
    return out


def sparse_module(seed=0, tail=()):
    gen = torch.Generator().manual_seed(seed)
    module = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 5), *tail)
    with torch.no_grad():
        for layer in (module[0], module[2]):
            layer.weight.mul_(torch.rand(layer.weight.shape, generator=gen) < 0.08)
    return module


@pytest.fixture
def fresh_verdicts(monkeypatch):
    """Probes run again in the test (its verdicts are dropped afterwards)."""
    monkeypatch.setattr(compact_mod, "_VERDICTS", {})
    monkeypatch.delenv(KERNELS_ENV, raising=False)
    return monkeypatch


def rows_apart(forward, X, nonlinearity=None):
    """Rows of X whose output changes when computed with others than in the whole call."""
    whole = forward(X, nonlinearity)
    bad = []
    for n in range(1, 65):
        for start in (0, 3, len(X) - n):
            if not torch.equal(forward(X[start:start + n], nonlinearity), whole[start:start + n]):
                bad.append((start, n))
    return bad


def test_the_probe_tells_a_kernel_that_rounds_by_column_count(fresh_verdicts):
    gen = torch.Generator().manual_seed(0)
    weight = _csr(torch.randn(30, 20, generator=gen) * (torch.rand(30, 20, generator=gen) < 0.1))
    bias = torch.randn(30, 1, generator=gen)
    faulty = functools.partial(mkl_like, bias, weight)
    assert not compact_mod._probe_csr(faulty, 20, torch.float32)
    # An exact step passes (a kernel computing each column on its own).
    assert compact_mod._same_for_every_count(torch.relu, torch.randn(20, 4096), dim=1)
    # A softmax that sees the other rows does not.
    assert not compact_mod._probe_rows(lambda t: t - t.mean(), 10, torch.float32)


@pytest.mark.parametrize("mode", ["probe", "blocks"])
def test_a_kernel_that_fails_its_probe_runs_in_blocks(fresh_verdicts, mode):
    # What happens on a CPU where MKL's CSR kernel depends on the number of columns:
    # the probe says so, the products run in fixed blocks, and rows stay apart.
    fresh_verdicts.setattr(compact_mod, "_sparse_addmm", mkl_like)
    fresh_verdicts.setenv(KERNELS_ENV, mode)
    forward = CompactForward(compact_module(sparse_module(), sparse_threshold=0.5))
    products = [i for i, step in enumerate(forward._steps) if step.kernel is not None]
    assert len(products) == 2  # both layers are CSR products
    X = torch.randn(600, 20, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert rows_apart(forward, X) == []
    flags = forward.row_wise()
    assert not any(flags[i] for i in products)
    verdicts = [v for key, v in kernel_verdicts().items() if key[0] == "csr"]
    assert verdicts == ([False, False] if mode == "probe" else [])


def test_trusting_a_kernel_that_fails_its_probe_breaks_rows_apart(fresh_verdicts):
    # The check above can fail: the same faulty kernel on whole passes.
    fresh_verdicts.setattr(compact_mod, "_sparse_addmm", mkl_like)
    fresh_verdicts.setenv(KERNELS_ENV, "trust")
    forward = CompactForward(compact_module(sparse_module(), sparse_threshold=0.5))
    X = torch.randn(600, 20, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert rows_apart(forward, X) != []


@pytest.mark.parametrize("mode", ["probe", "trust"])
def test_a_kernel_that_passes_its_probe_sees_whole_passes(fresh_verdicts, mode):
    # An exact stand-in for the CSR kernel (a dense product of one column at a
    # time: the same work for every column whatever the call), so that the
    # verdict is known on any machine.
    def column_by_column(bias, weight, h):
        dense = weight.to_dense()
        return torch.cat([torch.addmm(bias, dense, h[:, j:j + 1].contiguous())
                          for j in range(h.shape[1])] or [bias.new_zeros((len(bias), 0))], dim=1)

    columns = []

    def spy(bias, weight, h):
        columns.append(h.shape[1])
        return torch.addmm(bias, weight, h)

    fresh_verdicts.setattr(compact_mod, "_PROBE_COUNTS", (1, 2, 3, 5, 8, 63, 64))
    fresh_verdicts.setattr(compact_mod, "_sparse_addmm", column_by_column)
    fresh_verdicts.setenv(KERNELS_ENV, mode)
    module = sparse_module(tail=[nn.Softmax(dim=-1)])
    forward = CompactForward(compact_module(module, sparse_threshold=0.5))
    assert all(forward.row_wise())  # products, ReLU, softmax: nothing in blocks
    if mode == "probe":
        assert set(kernel_verdicts().values()) == {True}
        assert {key[0] for key in kernel_verdicts()} == {"csr", "Softmax"}
    X = torch.randn(300, 20, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        torch.testing.assert_close(forward(X), module(X), rtol=1e-5, atol=1e-6)
        fresh_verdicts.setattr(compact_mod, "_sparse_addmm", spy)
        # Built again with the spy (the probe's verdicts are kept: no probe runs).
        CompactForward(compact_module(module, sparse_threshold=0.5))(X[:1])
    assert columns == [1, 1]  # one row costs one column, no padding


def test_the_probe_runs_once_per_shape_class_and_thread_count(fresh_verdicts):
    runs = []
    real = compact_mod._probe_csr
    fresh_verdicts.setattr(compact_mod, "_probe_csr",
                           lambda product, *args: runs.append(product.args[1].shape)
                           or real(product, *args))
    X = torch.randn(50, 20)
    forwards = [CompactForward(compact_module(sparse_module(seed), sparse_threshold=0.5))
                for seed in (0, 0, 1)]
    before = torch.get_num_threads()
    try:
        with torch.inference_mode():
            for threads in (1, 1, 2):
                torch.set_num_threads(threads)
                for forward in forwards:
                    forward(X)
    finally:
        torch.set_num_threads(before)
    # One run per shape class and thread count: the two forwards of seed 0 share theirs.
    classes = {step.kernel.key for forward in forwards for step in forward._steps if step.kernel}
    assert len(classes) >= 2
    assert set(kernel_verdicts()) == {(*key, threads) for key in classes for threads in (1, 2)}
    assert len(runs) == len(kernel_verdicts())


def test_an_unknown_kernels_setting_is_refused(monkeypatch):
    monkeypatch.setenv(KERNELS_ENV, "fast")
    forward = CompactForward(compact_module(sparse_module(), sparse_threshold=0.5))
    with pytest.raises(ValueError, match="SKTICKET_KERNELS must be one of probe, blocks, trust"):
        forward(torch.randn(3, 20))


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
