"""The one table of the activations skticket compacts, predicts through and exports.

Each entry says, for a torch module class (its own ``forward``, not a
subclass's):

* whether it acts on each unit alone (``elementwise``), so that
  :func:`~skticket._compact.compact_module` may remove units around it and it
  may sit between two linear layers;
* its ONNX nodes (``onnx``), used by :mod:`skticket.onnx`.

Every module of the table computes in any float dtype and draws nothing in
eval mode, so an MLP-like net made of them predicts in float64
(:mod:`skticket._predict`).

The functions a skorch net may apply to its predictions (its
``predict_nonlinearity``) are described by the module they compute
(:func:`as_module`), so the same table covers them.

skorch has no public way to ask which function ``predict_proba`` applies;
:func:`predict_nonlinearity` asks through the two private names of skorch that
answer it, kept in :mod:`skticket._compat` (``tests/test_compat.py`` fails with a
clear message when skorch changes them).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from ._compat import SKORCH_IDENTITY, resolved_predict_nonlinearity

__all__ = ["ACTIVATIONS", "Activation", "as_module", "entry_of", "is_identity",
           "predict_nonlinearity"]


class Activation(NamedTuple):
    """One row of :data:`ACTIVATIONS`."""

    module: type[nn.Module]
    elementwise: bool
    onnx: Callable[[Any, str, nn.Module], str]
    #: The word scikit-learn's MLPs use for it, which ``MLP(activation=...)`` takes too.
    name: str | None = None


# --- ONNX nodes ---------------------------------------------------------------------------
# Each takes the graph builder of skticket.onnx (``node(op, inputs, **attrs)`` and
# ``const(value)``), the name of the input and the module; it returns the output's name.


def _softplus(g, x: str) -> str:
    # max(x, 0) + log(1 + exp(-|x|)): never overflows, unlike log(1 + exp(x)).
    tail = g.node("Log", [g.node("Add", [g.const(1.0), g.node(
        "Exp", [g.node("Neg", [g.node("Abs", [x])])])])])
    return g.node("Add", [g.node("Max", [x, g.const(0.0)]), tail])


def _torch_softplus(g, x: str, m: nn.Softplus) -> str:
    # torch: x where beta * x > threshold, else softplus(beta * x) / beta.
    bx = g.node("Mul", [x, g.const(m.beta)])
    soft = g.node("Div", [_softplus(g, bx), g.const(m.beta)])
    return g.node("Where", [g.node("Greater", [bx, g.const(m.threshold)]), x, soft])


def _gelu(g, x: str, m: nn.GELU) -> str:
    if m.approximate == "tanh":
        cube = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Add", [x, g.node("Mul", [cube, g.const(0.044715)])])
        core = g.node("Tanh", [g.node("Mul", [inner, g.const(math.sqrt(2 / math.pi))])])
    else:
        core = g.node("Erf", [g.node("Mul", [x, g.const(1 / math.sqrt(2))])])
    half_x = g.node("Mul", [x, g.const(0.5)])
    return g.node("Mul", [half_x, g.node("Add", [core, g.const(1.0)])])


def _softmax_axis(dim) -> int:
    if dim not in (1, -1):
        raise TypeError(f"a softmax over dim={dim!r}: only the feature dimension (1 or -1) of "
                        "(n_samples, features) outputs converts")
    return 1


def _same(g, x: str, m: nn.Module) -> str:
    return x


#: Every module class skticket knows, in one place. Dropout is the identity at
#: inference (predictions run in eval mode).
ACTIVATIONS: tuple[Activation, ...] = tuple(Activation(*row) for row in [
    (nn.Identity, True, _same, "identity"),
    (nn.Dropout, True, _same),
    (nn.AlphaDropout, True, _same),
    (nn.ReLU, True, lambda g, x, m: g.node("Relu", [x]), "relu"),
    (nn.ReLU6, True, lambda g, x, m: g.node("Clip", [x, g.const(0.0), g.const(6.0)])),
    (nn.LeakyReLU, True,
     lambda g, x, m: g.node("LeakyRelu", [x], alpha=float(m.negative_slope))),
    (nn.Hardtanh, True,
     lambda g, x, m: g.node("Clip", [x, g.const(m.min_val), g.const(m.max_val)])),
    (nn.Threshold, True, lambda g, x, m: g.node("Where", [
        g.node("Greater", [x, g.const(m.threshold)]), x, g.const(m.value)])),
    (nn.ELU, True, lambda g, x, m: g.node("Elu", [x], alpha=float(m.alpha))),
    # ONNX's Selu defaults are torch's constants.
    (nn.SELU, True, lambda g, x, m: g.node("Selu", [x])),
    (nn.CELU, True, lambda g, x, m: g.node("Celu", [x], alpha=float(m.alpha))),
    (nn.GELU, True, _gelu),
    (nn.SiLU, True, lambda g, x, m: g.node("Mul", [x, g.node("Sigmoid", [x])])),
    (nn.Mish, True,
     lambda g, x, m: g.node("Mul", [x, g.node("Tanh", [_softplus(g, x)])])),
    (nn.Sigmoid, True, lambda g, x, m: g.node("Sigmoid", [x]), "logistic"),
    (nn.Tanh, True, lambda g, x, m: g.node("Tanh", [x]), "tanh"),
    (nn.Softplus, True, _torch_softplus),
    (nn.Softsign, True, lambda g, x, m: g.node("Softsign", [x])),
    (nn.Hardsigmoid, True,
     lambda g, x, m: g.node("HardSigmoid", [x], alpha=1 / 6, beta=0.5)),
    (nn.Hardswish, True, lambda g, x, m: g.node(
        "Mul", [x, g.node("HardSigmoid", [x], alpha=1 / 6, beta=0.5)])),
    (nn.LogSigmoid, True,
     lambda g, x, m: g.node("Neg", [_softplus(g, g.node("Neg", [x]))])),
    (nn.Tanhshrink, True, lambda g, x, m: g.node("Sub", [x, g.node("Tanh", [x])])),
    (nn.Softshrink, True, lambda g, x, m: g.node(
        "Shrink", [x], lambd=float(m.lambd), bias=float(m.lambd))),
    (nn.Hardshrink, True,
     lambda g, x, m: g.node("Shrink", [x], lambd=float(m.lambd), bias=0.0)),
    # Not elementwise: only before the first or after the last linear layer.
    (nn.Softmax, False,
     lambda g, x, m: g.node("Softmax", [x], axis=_softmax_axis(m.dim))),
    (nn.LogSoftmax, False,
     lambda g, x, m: g.node("LogSoftmax", [x], axis=_softmax_axis(m.dim))),
])


def entry_of(module: nn.Module) -> Activation | None:
    """The row of :data:`ACTIVATIONS` for ``module``, or None.

    A subclass that overrides ``forward`` may compute anything: only
    inherited forwards match.
    """
    for entry in ACTIVATIONS:
        if isinstance(module, entry.module) and type(module).forward is entry.module.forward:
            return entry
    return None


# --- predict nonlinearities -------------------------------------------------------------

_SOFTMAXES = {torch.softmax: nn.Softmax, torch.nn.functional.softmax: nn.Softmax,
              torch.special.softmax: nn.Softmax, torch.log_softmax: nn.LogSoftmax,
              torch.nn.functional.log_softmax: nn.LogSoftmax,
              torch.special.log_softmax: nn.LogSoftmax}
_SIGMOIDS = (torch.sigmoid, torch.special.expit, torch.nn.functional.sigmoid)


def is_identity(function: Callable | None) -> bool:
    """Whether ``function`` (a predict nonlinearity) is the identity: None or skorch's."""
    return function is None or (SKORCH_IDENTITY is not None and function is SKORCH_IDENTITY)


def as_module(function: Callable | None) -> nn.Module | None:
    """A module of :data:`ACTIVATIONS` that computes what ``function`` does, or None.

    Knows the identity, ``functools.partial(torch.softmax, dim=...)`` (what
    skorch applies after ``CrossEntropyLoss``) and its log and functional
    forms, torch's sigmoids, and the modules of the table themselves.
    """
    if is_identity(function):
        return nn.Identity()
    if isinstance(function, nn.Module):
        return function if entry_of(function) is not None else None
    if (isinstance(function, functools.partial) and not function.args
            and set(function.keywords) == {"dim"}):
        for func, cls in _SOFTMAXES.items():
            if function.func is func:
                return cls(dim=function.keywords["dim"])
        return None
    if any(function is sigmoid for sigmoid in _SIGMOIDS):
        return nn.Sigmoid()
    return None


def predict_nonlinearity(net) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """What ``net.predict_proba`` applies to the module's output; None for the identity.

    Parameters
    ----------
    net : skorch.NeuralNet
        An initialized net.

    Returns
    -------
    callable or None
        The net's ``predict_nonlinearity`` as skorch resolves it ('auto': a
        softmax after ``CrossEntropyLoss``, ...), or None where that is the
        identity.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        (skorch's ``NotInitializedError``) if the net is not initialized.
    """
    if net.predict_nonlinearity is None:
        net.check_is_fitted()
        return None
    # 'auto' is resolved from the net's criteria, by skorch itself (_compat).
    function = resolved_predict_nonlinearity(net)
    return None if is_identity(function) else function
