"""The private names of dependencies that skticket still needs (skticket/_compat.py).

Each test checks one of them against the installed versions and fails with a
message saying what changed and where to look; the last ones check that no
other module of skticket reaches a private name of a dependency.
"""

import ast
import functools
from numbers import Real
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import InvalidParameterError
from skorch import NeuralNet, NeuralNetClassifier, NeuralNetRegressor
from torch import nn
from torch.utils.data import DataLoader

from skticket import MLP, DefaultClassifierNet, DefaultRegressorNet
from skticket._activations import as_module, is_identity, predict_nonlinearity
from skticket._compat import (
    SKORCH_IDENTITY,
    Interval,
    StrOptions,
    dataloader_order,
    fit_context,
    has_forward_hooks,
    resolved_predict_nonlinearity,
    validate_parameter_constraints,
    validate_params,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "skticket"
DEPENDENCIES = {"numpy", "scipy", "torch", "skorch", "sklearn", "joblib", "safetensors",
                "onnx", "onnxruntime", "skl2onnx"}


def initialized(net_class=NeuralNetClassifier, **params):
    return net_class(MLP, module__n_features=4, module__n_outputs=3, **params).initialize()


# --- skorch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("params, expected", [
    (dict(), "identity"),  # NLLLoss: the module emits probabilities
    (dict(predict_nonlinearity=None), "identity"),
    (dict(criterion=nn.CrossEntropyLoss), "softmax"),
    (dict(net_class=NeuralNetRegressor), "identity"),
])
def test_skorch_resolves_the_predict_nonlinearity_as_skticket_reads_it(params, expected):
    net = initialized(**params)
    assert hasattr(net, "_get_predict_nonlinearity"), (
        "skorch no longer has NeuralNet._get_predict_nonlinearity: update "
        "skticket._compat.resolved_predict_nonlinearity")
    function = predict_nonlinearity(net)
    if expected == "identity":
        assert function is None, (
            f"skorch's identity is no longer skorch.utils._identity (got {function!r}): update "
            "skticket._compat.SKORCH_IDENTITY")
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
    assert SKORCH_IDENTITY is not None, (
        "skorch.utils._identity is gone: find what skorch applies for "
        "predict_nonlinearity=None and update skticket._compat.SKORCH_IDENTITY")
    function = resolved_predict_nonlinearity(initialized(predict_nonlinearity=None))
    assert function is SKORCH_IDENTITY and is_identity(function), (
        f"skorch's predict nonlinearity for None is now {function!r}, not "
        "skorch.utils._identity: update skticket._compat.SKORCH_IDENTITY")


@pytest.mark.parametrize("net_class", [DefaultClassifierNet, DefaultRegressorNet])
def test_skorch_reads_the_default_nets_callbacks_where_skticket_changes_them(net_class):
    message = ("skorch no longer reads a net's default callbacks from the property "
               "NeuralNet._default_callbacks: update skticket._compat.ChangedDefaultCallbacks")
    assert isinstance(getattr(NeuralNet, "_default_callbacks", None), property), message
    names = [name for name, _ in net_class().get_default_callbacks()]
    assert "converged" in names and "valid_acc" not in names, message
    # get_params (clone, grid searches) reads the property too.
    params = net_class().get_params(deep=True)
    assert "callbacks__converged__patience" in params, message
    assert "callbacks__valid_acc" not in params, message


# --- scikit-learn ---------------------------------------------------------------------------


class Constrained(BaseEstimator):
    _parameter_constraints = {"rate": [Interval(Real, 0, 1, closed="neither")],
                              "kind": [StrOptions({"a", "b"})]}

    def __init__(self, *, rate=0.5, kind="a"):
        self.rate = rate
        self.kind = kind

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        self.fitted_ = True
        return self


@pytest.mark.parametrize("params, bad", [(dict(rate=1.5), "rate"), (dict(kind="c"), "kind")])
def test_scikit_learn_validates_parameter_constraints_as_skticket_declares_them(params, bad):
    message = ("scikit-learn no longer validates _parameter_constraints through "
               "sklearn.base._fit_context / BaseEstimator._validate_params with "
               "sklearn.utils._param_validation's Interval and StrOptions: update "
               "skticket._compat (fit_context, validate_params)")
    for check in (lambda est: est.fit(), validate_params):
        with pytest.raises(InvalidParameterError, match=f"'{bad}' parameter"):
            check(Constrained(**params))
    assert Constrained().fit().fitted_, message
    validate_params(Constrained(rate=0.25, kind="b"))  # valid: no error


def test_scikit_learn_validates_a_dict_of_constraints_under_the_names_given():
    message = ("scikit-learn's sklearn.utils._param_validation.validate_parameter_constraints "
               "no longer checks a dict of constraints naming the parameter and the caller: "
               "update skticket._compat and skticket._nets.validate_net_params")
    constraints = {"net__lr": [Interval(Real, 0, None, closed="neither")]}
    with pytest.raises(InvalidParameterError,
                       match="'net__lr' parameter of Caller must be a float") as raised:
        validate_parameter_constraints(constraints, {"net__lr": 0}, caller_name="Caller")
    assert isinstance(raised.value, (ValueError, TypeError)), message
    validate_parameter_constraints(constraints, {"net__lr": 0.5}, caller_name="Caller")


# --- torch ----------------------------------------------------------------------------------


def test_torch_still_keeps_forward_hooks_where_skticket_reads_them():
    message = ("torch no longer keeps a module's forward hooks in _forward_hooks / "
               "_forward_pre_hooks: update skticket._compat.has_forward_hooks")
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


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("n", [1, 7, 300])
def test_a_dataloader_draws_its_order_as_skticket_draws_it(n, shuffle):
    message = ("torch's DataLoader no longer draws a pass's order from the global generator "
               "as skticket._compat.dataloader_order repeats it (a base seed, then the "
               "RandomSampler's seed): update it, or training through "
               "skticket._training.Batches differs from skorch's")
    torch.manual_seed(123)
    loaded = torch.cat(list(DataLoader(torch.arange(n), batch_size=4, shuffle=shuffle)))
    after_loader = torch.get_rng_state()
    torch.manual_seed(123)
    ours = dataloader_order(n, shuffle)
    assert torch.equal(loaded, ours), message
    assert torch.equal(torch.get_rng_state(), after_loader), message


@pytest.mark.parametrize("shuffle", [True, False])
def test_dataloader_order_from_a_generator_is_the_global_draw(shuffle):
    # A stacked member draws its order from a generator of its own holding the
    # global state of its solo training (skticket._stacking).
    torch.manual_seed(7)
    state = torch.get_rng_state()
    from_global = [dataloader_order(50, shuffle) for _ in range(3)]
    generator = torch.Generator()
    generator.set_state(state)
    torch.manual_seed(999)
    global_state = torch.get_rng_state()
    from_generator = [dataloader_order(50, shuffle, generator) for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(from_global, from_generator, strict=True))
    # The global generator was not drawn from.
    assert torch.equal(torch.get_rng_state(), global_state)


# --- skl2onnx -------------------------------------------------------------------------------


def test_compact_classifiers_are_classifiers_for_skl2onnx():
    # skticket.onnx relies on skl2onnx's own classifier parser (ZipMap and all),
    # which it applies to ClassifierMixin subclasses registered with a zipmap option.
    from sklearn.base import ClassifierMixin

    from skticket import CompactClassifier

    assert issubclass(CompactClassifier, ClassifierMixin)


# --- nowhere else ---------------------------------------------------------------------------


def private_imports(tree: ast.Module) -> list[str]:
    """The private names of dependencies a module imports: ``from x import _y``,
    ``import x._y``, ``from x._y import z``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            names = []
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            names = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            if module.split(".")[0] not in DEPENDENCIES:
                continue
            parts = module.split(".")
            if any(part.startswith("_") for part in parts):
                found.append(f"line {node.lineno}: {module}")
            found.extend(f"line {node.lineno}: {module}.{name}" for name in names
                         if name.startswith("_") and not name.startswith("__"))
    return found


def skticket_names() -> set[str]:
    """Every name skticket itself defines or assigns (functions, classes, attributes,
    names set by string)."""
    names = set()
    for path in PACKAGE.glob("*.py"):
        if path.name == "_compat.py":
            continue  # what it defines stands for a dependency's private name (_default_callbacks)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and node.value.isidentifier()):
                names.add(node.value)  # set by name: setattr, fitted attributes from a dict
    return names


def foreign_private_attributes(tree: ast.Module, ours: set[str]) -> list[str]:
    """``obj._name`` reads of a private name that skticket does not define: a
    dependency's."""
    return [f"line {node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr.startswith("_")
            and not node.attr.startswith("__") and node.attr not in ours]


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda path: path.name)
def test_only_compat_reaches_private_names_of_dependencies(path):
    if path.name == "_compat.py":
        pytest.skip("the one place for them")
    tree = ast.parse(path.read_text())
    found = private_imports(tree) + foreign_private_attributes(tree, skticket_names())
    assert not found, (
        f"skticket/{path.name} reaches private names of a dependency: {found}. Go through "
        "skticket/_compat.py (a re-export or a small wrapper, with why there is no public way) "
        "and add a check to tests/test_compat.py.")


def test_the_scan_finds_private_names():
    # The check above can fail: each form it looks for is found.
    code = ("from sklearn.base import _fit_context\nimport torch.nn.modules._functions\n"
            "from sklearn.utils._param_validation import Interval\n"
            "net._get_predict_nonlinearity()\n")
    tree = ast.parse(code)
    assert len(private_imports(tree)) == 3
    assert foreign_private_attributes(tree, skticket_names()) == [
        "line 4: net._get_predict_nonlinearity"]
