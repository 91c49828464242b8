"""ONNX export: skl2onnx converters for the estimators and their compact predictors.

Importing this module registers converters with skl2onnx (the optional extra
``pip install "skticket[onnx]"``), after which ``skl2onnx.to_onnx`` converts
a fitted :class:`~skticket.LotteryTicketClassifier` or
:class:`~skticket.LotteryTicketRegressor`, alone or as the last step of a
scikit-learn pipeline, into one ONNX graph, and also a
:class:`~skticket.CompactClassifier` or :class:`~skticket.CompactRegressor`.

The graph carries the compacted network (:meth:`compact`): dead hidden units
are gone and every layer is one ``Gemm`` with a dense initializer of the
compacted shape (onnxruntime would load sparse initializers as dense anyway),
followed by the module's activations and the net's predict nonlinearity
(the softmax skorch applies after ``CrossEntropyLoss``, say). The module
must be MLP-like, as for ``compact()``; modules before the first and after
the last linear layer must be among those listed in ``SUPPORTED_MODULES``.

Classifiers follow skl2onnx's convention: outputs ``label`` and
``probabilities``, the latter wrapped in a ZipMap (a list of dicts) unless
the option ``zipmap`` is ``False``. Regressors output ``variable`` of shape
``(n_samples, n_outputs)``.

The graph computes in the float type of its input. Converted with a float64
sample (``to_onnx(est, X[:1].astype(np.float64), options={"zipmap": False})``;
ZipMap takes float32 only), it computes in float64 and its probability rows
sum to 1 to float64 rounding, as ``predict_proba``'s do. A float32 graph's
probabilities are float32 and sum to 1 to float32 rounding: scikit-learn's
``log_loss`` takes them as they are, but not cast to float64, and no
renormalization in float32 can fix that (three thirds in float32 sum to
1 + 3e-8 in float64).

Examples
--------
>>> import numpy as np, onnxruntime, skl2onnx
>>> from sklearn.datasets import load_iris
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from skticket import LotteryTicketClassifier
>>> import skticket.onnx  # registers the converters
>>> X, y = load_iris(return_X_y=True)
>>> X = X.astype(np.float32)
>>> pipe = make_pipeline(StandardScaler(), LotteryTicketClassifier(
...     target_sparsity=0.9, prune_fraction=0.7, random_state=0)).fit(X, y)
>>> onx = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
>>> session = onnxruntime.InferenceSession(onx.SerializeToString(),
...                                        providers=["CPUExecutionProvider"])
>>> labels, proba = session.run(None, {"X": X})
>>> bool((labels == pipe.predict(X)).all())
True
>>> bool(np.allclose(proba, pipe.predict_proba(X), atol=1e-5))
True
"""

from __future__ import annotations

import numpy as np
from torch import nn

try:
    from onnx import TensorProto, numpy_helper
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
        guess_tensor_type,
    )
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "skticket.onnx needs skl2onnx, onnx and onnxruntime: pip install \"skticket[onnx]\""
    ) from exc

from ._activations import ACTIVATIONS, as_module, entry_of, is_identity
from ._compact import CompactClassifier, CompactMLP, CompactRegressor
from ._estimators import LotteryTicketClassifier, LotteryTicketRegressor

__all__ = ["MIN_OPSET", "SUPPORTED_MODULES", "register"]

#: The lowest ONNX opset the converters emit for (``Softmax`` over one axis).
MIN_OPSET = 13

_CLASSIFIER_ALIAS = "SkticketClassifier"
_REGRESSOR_ALIAS = "SkticketRegressor"


# --- one torch module -> ONNX nodes ------------------------------------------------------


class _Graph:
    """Adds nodes and constants to the skl2onnx container under unique names."""

    def __init__(self, scope, container, dtype: np.dtype) -> None:
        self.scope, self.container, self.dtype = scope, container, np.dtype(dtype)

    def node(self, op_type: str, inputs: list[str], **attrs) -> str:
        out = self.scope.get_unique_variable_name(op_type.lower())
        self.container.add_node(op_type, inputs, [out],
                                name=self.scope.get_unique_operator_name(op_type), **attrs)
        return out

    def const(self, value, dtype=None) -> str:
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self.scope.get_unique_variable_name("init")
        if array.dtype == object:
            # String labels: ONNX string tensors hold a list of bytes, no raw data.
            self.container.add_initializer(name, TensorProto.STRING, list(array.shape),
                                           [str(s).encode("utf-8") for s in array.ravel()])
            return name
        tensor = numpy_helper.from_array(np.ascontiguousarray(array), name)
        self.container.add_initializer(name, tensor.data_type, list(array.shape), tensor)
        return name


#: The torch modules that convert: as activations between the linear layers
#: (the elementwise ones, as ``compact()`` takes), and before the first or
#: after the last linear layer (all of them). Their ONNX nodes are those of
#: skticket's one activation table (``skticket._activations.ACTIVATIONS``).
SUPPORTED_MODULES = tuple(entry.module for entry in ACTIVATIONS)


def _emit_module(g: _Graph, x: str, module: nn.Module, where: str) -> str:
    entry = entry_of(module)
    if entry is None:
        raise _not_convertible(module, where, "no ONNX conversion is defined for it")
    try:
        return entry.onnx(g, x, module)
    except TypeError as exc:
        raise _not_convertible(module, where, str(exc)) from None


def _not_convertible(module, where: str, why: str) -> TypeError:
    names = ", ".join(cls.__name__ for cls in SUPPORTED_MODULES)
    return TypeError(f"skticket.onnx cannot convert the {type(module).__name__} {where}: {why}. "
                     f"Supported there: {names}.")


def _emit_network(g: _Graph, x: str, module: CompactMLP) -> str:
    for i, child in enumerate(module.prefix):
        x = _emit_module(g, x, child, f"before the first linear layer (prefix[{i}])")
    if module.input_index is not None:
        # Inputs that no surviving weight reads are not read.
        x = g.node("Gather", [x, g.const(module.input_index.numpy(), np.int64)], axis=1)
    for k, (layer, activations) in enumerate(zip(module.linears, module.activations,
                                                 strict=True)):
        weight = layer.weight.to_dense() if layer.is_sparse else layer.weight
        x = g.node("Gemm", [x, g.const(weight.detach().numpy()),
                            g.const(layer.bias.detach().numpy().reshape(-1))], transB=1)
        for i, act in enumerate(activations):
            x = _emit_module(g, x, act, f"after linear layer {k} (activations[{k}][{i}])")
    for i, child in enumerate(module.tail):
        x = _emit_module(g, x, child, f"after the last linear layer (tail[{i}])")
    return x


def _emit_nonlinearity(g: _Graph, x: str, nonlinearity) -> str:
    """skorch's predict nonlinearity, applied by ``predict``/``predict_proba`` only."""
    if is_identity(nonlinearity):
        return x
    if isinstance(nonlinearity, nn.Module):
        return _emit_module(g, x, nonlinearity, "used as predict_nonlinearity")
    module = as_module(nonlinearity)
    if module is None:
        raise TypeError(
            f"skticket.onnx cannot convert the net's predict_nonlinearity {nonlinearity!r}; it "
            "converts skorch's defaults ('auto': identity, or a softmax after "
            "CrossEntropyLoss), None, torch.sigmoid, functools.partial(torch.softmax, dim=-1) "
            "and the modules in skticket.onnx.SUPPORTED_MODULES."
        )
    try:
        return entry_of(module).onnx(g, x, module)
    except TypeError as exc:
        raise TypeError(f"skticket.onnx cannot convert predict_nonlinearity "
                        f"{nonlinearity!r}: {exc}.") from None


# --- skl2onnx hooks ----------------------------------------------------------------------


def _compact(model) -> CompactClassifier | CompactRegressor:
    if getattr(model, "_multilabel_", False):
        raise TypeError(f"skticket.onnx cannot convert this {type(model).__name__}: it was "
                        "fitted on multilabel targets, and skl2onnx's classifier outputs "
                        "(one label and one probability row per sample) cannot express a "
                        "label indicator matrix.")
    if isinstance(model, CompactClassifier | CompactRegressor):
        return model
    try:
        # Dense layers of the compacted shape: ONNX has no CSR matmul to gain from.
        return model.compact(sparse_threshold=1.0)
    except TypeError as exc:
        raise TypeError(f"skticket.onnx cannot convert this {type(model).__name__}: "
                        f"{exc}") from exc


def _input_and_dtype(g_scope, container, operator) -> tuple[str, type]:
    """The input, cast to a float type the graph computes in."""
    var = operator.inputs[0]
    if isinstance(var.type, DoubleTensorType):
        return var.full_name, np.float64
    if isinstance(var.type, FloatTensorType):
        return var.full_name, np.float32
    name = g_scope.get_unique_variable_name("cast")
    container.add_node("Cast", [var.full_name], [name], to=TensorProto.FLOAT,
                       name=g_scope.get_unique_operator_name("Cast"))
    return name, np.float32


def _check_opset(container) -> None:
    if container.target_opset is not None and container.target_opset < MIN_OPSET:
        raise RuntimeError(f"skticket.onnx needs target_opset >= {MIN_OPSET}, got "
                           f"{container.target_opset}.")


def _emit_predictor(scope, operator, container
                    ) -> tuple[_Graph, str, CompactClassifier | CompactRegressor]:
    """The graph, the output of the compacted network and its nonlinearity, and the
    compact predictor: what both converters start from."""
    _check_opset(container)
    predictor = _compact(operator.raw_operator)
    x, dtype = _input_and_dtype(scope, container, operator)
    g = _Graph(scope, container, dtype)
    out = _emit_nonlinearity(g, _emit_network(g, x, predictor.module_), predictor.nonlinearity)
    return g, out, predictor


def _convert_classifier(scope, operator, container) -> None:
    g, proba, _ = _emit_predictor(scope, operator, container)
    label_var, proba_var = operator.outputs[0], operator.outputs[1]
    container.add_node("Identity", [proba], [proba_var.full_name],
                       name=scope.get_unique_operator_name("Identity"))
    # The first largest probability wins, as numpy's argmax picks.
    index = g.node("ArgMax", [proba], axis=1, keepdims=0, select_last_index=0)
    classes = _classes(scope, operator.raw_operator)
    container.add_node("Gather", [g.const(classes, classes.dtype), index],
                       [label_var.full_name], axis=0,
                       name=scope.get_unique_operator_name("Gather"))


def _convert_regressor(scope, operator, container) -> None:
    g, out, predictor = _emit_predictor(scope, operator, container)
    scaling = predictor.target_scaling
    if scaling is not None:  # TargetScaling.inverse, as ONNX nodes
        out = g.node("Mul", [out, g.const(np.asarray(scaling.scale)[None, :])])
        out = g.node("Add", [out, g.const(np.asarray(scaling.offset)[None, :])])
    container.add_node("Identity", [out], [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("Identity"))


def _classes(scope, model) -> np.ndarray:
    """Class labels as an ONNX tensor holds them: int64 or strings."""
    classes = np.asarray(model.classes_)
    if scope.get_options(model, {"nocl": False})["nocl"]:
        return np.arange(len(classes), dtype=np.int64)
    if classes.dtype.kind in "biu":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f":
        if not np.array_equal(classes, np.round(classes)):
            raise TypeError(f"skticket.onnx needs integer or string class labels, got "
                            f"{classes.tolist()!r}.")
        return classes.astype(np.int64)
    if all(isinstance(c, str) for c in classes):
        return classes.astype(object)
    raise TypeError(f"skticket.onnx needs integer or string class labels, got dtype "
                    f"{classes.dtype}.")


def _float_type(operator):
    return guess_tensor_type(operator.inputs[0].type) if isinstance(
        operator.inputs[0].type, DoubleTensorType) else FloatTensorType()


def _classifier_shapes(operator) -> None:
    n = operator.inputs[0].get_first_dimension()
    classes = _classes(operator.scope_inst, operator.raw_operator)
    label_type = StringTensorType if classes.dtype == object else Int64TensorType
    operator.outputs[0].type = label_type(shape=[n])
    operator.outputs[1].type = _float_type(operator)
    operator.outputs[1].type.shape = [n, len(classes)]


def _regressor_shapes(operator) -> None:
    model = operator.raw_operator
    n_outputs = (model.module_.widths[-1] if isinstance(model, CompactRegressor)
                 else model.n_outputs_)
    operator.outputs[0].type = _float_type(operator)
    operator.outputs[0].type.shape = [operator.inputs[0].get_first_dimension(), n_outputs]


def register() -> None:
    """Register the converters with skl2onnx (done on import; idempotent).

    Examples
    --------
    >>> from skl2onnx import supported_converters
    >>> from skticket.onnx import register
    >>> register()
    >>> "SkticketClassifier" in supported_converters()
    True
    """
    # nocl: labels are class indices rather than classes_ (skl2onnx's option).
    # Declaring the zipmap option makes skl2onnx parse both classifiers (each a
    # ClassifierMixin) with its own classifier parser: outputs label and
    # probabilities, then a ZipMap unless zipmap=False.
    zipmap = {"zipmap": [True, False, "columns"], "nocl": [False, True]}
    for classifier in (LotteryTicketClassifier, CompactClassifier):
        update_registered_converter(classifier, _CLASSIFIER_ALIAS, _classifier_shapes,
                                    _convert_classifier, options=zipmap)
    update_registered_converter(LotteryTicketRegressor, _REGRESSOR_ALIAS, _regressor_shapes,
                                _convert_regressor)
    update_registered_converter(CompactRegressor, _REGRESSOR_ALIAS, _regressor_shapes,
                                _convert_regressor)


register()
