"""The private parts of dependencies that skticket's prediction path still reads.

None of torch, skorch or skl2onnx has a public way to ask these questions;
each is read in one place (named below), and each test here fails with a
message saying what changed and where to look when a release changes it.
"""

import functools
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

from skticket import MLP
from skticket._activations import as_module, is_identity, predict_nonlinearity
from skticket._predict import has_forward_hooks

ROOT = Path(__file__).resolve().parents[1]


def initialized(net_class=NeuralNetClassifier, **params):
    return net_class(MLP, module__n_features=4, module__n_outputs=3, **params).initialize()


@pytest.mark.parametrize("params, expected", [
    (dict(), "identity"),  # NLLLoss: the module emits probabilities
    (dict(predict_nonlinearity=None), "identity"),
    (dict(criterion=nn.CrossEntropyLoss), "softmax"),
    (dict(net_class=NeuralNetRegressor), "identity"),
])
def test_skorch_resolves_the_predict_nonlinearity_as_skticket_reads_it(params, expected):
    # skticket._activations.predict_nonlinearity calls NeuralNet._get_predict_nonlinearity
    # and recognises skorch.utils._identity.
    net = initialized(**params)
    assert hasattr(net, "_get_predict_nonlinearity"), (
        "skorch no longer has NeuralNet._get_predict_nonlinearity: update "
        "skticket._activations.predict_nonlinearity")
    function = predict_nonlinearity(net)
    if expected == "identity":
        assert function is None, (
            f"skorch's identity is no longer skorch.utils._identity (got {function!r}): update "
            "skticket._activations._SKORCH_IDENTITY")
    else:
        assert isinstance(as_module(function), nn.Softmax), (
            f"skorch's 'auto' nonlinearity after CrossEntropyLoss is now {function!r}: add it "
            "to skticket._activations.as_module")
    # What predict_proba applies, whichever it is.
    X = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)
    with torch.no_grad():
        raw = net.module_(torch.from_numpy(X))
        ours = raw if function is None else function(raw)
    np.testing.assert_allclose(net.predict_proba(X), ours.numpy(), rtol=1e-6, atol=1e-7)


def test_a_users_nonlinearity_is_returned_as_it_is():
    square = functools.partial(torch.pow, exponent=2)
    assert predict_nonlinearity(initialized(predict_nonlinearity=square)) is square
    with pytest.raises(Exception, match="not initialized"):
        predict_nonlinearity(NeuralNetClassifier(MLP, module__n_features=4,
                                                 module__n_outputs=3))


def test_skorchs_identity_is_recognised():
    net = initialized(predict_nonlinearity=None)
    assert is_identity(net._get_predict_nonlinearity()), (
        "skorch's predict nonlinearity for None is no longer skorch.utils._identity: update "
        "skticket._activations._SKORCH_IDENTITY")


def test_torch_still_keeps_forward_hooks_where_skticket_reads_them():
    # skticket._predict.has_forward_hooks reads Module._forward_hooks and
    # Module._forward_pre_hooks.
    message = ("torch no longer keeps a module's forward hooks in _forward_hooks / "
               "_forward_pre_hooks: update skticket._predict.has_forward_hooks")
    module = nn.Linear(3, 2)
    assert not has_forward_hooks(module), message
    handle = module.register_forward_hook(lambda *args: None)
    assert has_forward_hooks(module), message
    handle.remove()
    assert not has_forward_hooks(module), message
    handle = module.register_forward_pre_hook(lambda *args: None)
    assert has_forward_hooks(module), message
    handle.remove()
    module.register_forward_hook(lambda *args, **kwargs: None, with_kwargs=True)
    assert has_forward_hooks(module), message


def test_the_prediction_path_reads_no_other_private_name_of_a_dependency():
    # The isolated places above are the only ones; anything else is public API.
    allowed = {
        "_activations.py": {"_get_predict_nonlinearity", "skorch.utils import _identity"},
        "_predict.py": {"._forward_hooks", "._forward_pre_hooks"},
    }
    private = re.compile(r"(\.(_forward_hooks|_forward_pre_hooks|_backward_hooks|_parameters|"
                         r"_buffers|_modules|_version|_get_predict_nonlinearity)\b)|"
                         r"(skorch\.utils import _\w+)|(skl2onnx\._\w+)|"
                         r"(torch\.nn\.modules\.\w+\._)")
    for name in ("_activations.py", "_compact.py", "_predict.py", "onnx.py"):
        code = "\n".join(line for line in (ROOT / "skticket" / name).read_text().splitlines()
                         if not line.lstrip().startswith("#"))
        found = {match.group(0) for match in private.finditer(code)}
        extra = {f for f in found if not any(a in f or f in a for a in allowed.get(name, ()))}
        assert not extra, f"skticket/{name} reads private names of a dependency: {extra}"


def test_compact_classifiers_are_classifiers_for_skl2onnx():
    # skticket.onnx relies on skl2onnx's own classifier parser (ZipMap and all),
    # which it applies to ClassifierMixin subclasses registered with a zipmap option.
    from sklearn.base import ClassifierMixin

    from skticket import CompactClassifier

    assert issubclass(CompactClassifier, ClassifierMixin)
