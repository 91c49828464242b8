"""Compact inference: the winning ticket as a network that really is smaller.

A masked net computes with its dense shapes, so a 95%-sparse ticket predicts
no faster than the dense net. :func:`compact_module` rebuilds an MLP-like
module (``nn.Sequential`` of ``nn.Linear`` layers and elementwise
activations) from its masked weights:

* a hidden unit with no incoming weights emits the constant ``act(bias)``; that
  constant times the unit's outgoing weights is folded into the next layer's
  bias, and the unit is removed (exact);
* a hidden unit with no outgoing weights affects nothing and is removed;
  removals cascade through the layers (forward for constants, backward for
  dead ends), and inputs no weight reads are not read;
* each layer that is still sparser than :data:`CSR_MIN_SPARSITY` multiplies
  with a CSR matrix, the others with a dense one.

The compact layers compute in the transposed layout ``(features, samples)``:
torch's CSR kernel multiplies a sparse matrix on the left of a dense one, so
``W @ h`` needs no transpose copies from layer to layer.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping

import numpy as np
import torch
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.validation import check_array
from torch import nn

from ._mlp import MLP

__all__ = ["BATCH_SIZE", "CSR_MIN_SPARSITY", "CompactClassifier", "CompactMLP", "CompactRegressor",
           "compact_module"]

#: Layers sparser than this use a CSR matmul. Measured with
#: ``python benchmarks/bench_compact.py`` (2-core CPU, torch 2.13, MKL, 10,000
#: rows in batches of 1024, layers 64 to 512 wide): CSR wins from 0.8 with two
#: threads and from 0.85 with one; a dense matmul of the same shape is faster
#: below.
CSR_MIN_SPARSITY = 0.85

#: Rows per forward pass of a compact predictor. A CSR product streams one
#: row of activations per stored weight; batches this small keep those rows
#: in cache, where 10,000 rows at once would read them from memory.
BATCH_SIZE = 1024

# Activations that act on each unit alone (so units can be removed around
# them); Dropout is the identity at inference.
_ELEMENTWISE = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Softsign, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish,
    nn.LogSigmoid, nn.Tanhshrink, nn.Softshrink, nn.Hardshrink, nn.Threshold, nn.Identity,
    nn.Dropout, nn.AlphaDropout,
)


def _is_elementwise(module: nn.Module) -> bool:
    # A subclass that overrides forward may do anything: only inherited
    # forwards count.
    return any(isinstance(module, cls) and type(module).forward is cls.forward
               for cls in _ELEMENTWISE)


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) and type(module).forward is nn.Linear.forward


class CompactLinear(nn.Module):
    """``W @ h + b`` on inputs laid out as ``(in_features, n_samples)``.

    ``weight`` is a dense or a CSR tensor of shape ``(out_features, in_features)``.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias.reshape(-1, 1).contiguous())

    @property
    def is_sparse(self) -> bool:
        """Whether the layer multiplies with a CSR matrix."""
        return self.weight.layout == torch.sparse_csr

    @property
    def nnz(self) -> int:
        """Number of stored (nonzero) weights."""
        if self.is_sparse:
            return int(self.weight.values().numel())
        return int(torch.count_nonzero(self.weight))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, self.weight, h)

    def __deepcopy__(self, memo) -> CompactLinear:
        # torch's generic deepcopy reads a tensor's storage, which a CSR tensor
        # does not expose; clone() copies one.
        copied = type(self)(self.weight.clone(), self.bias.detach().clone().reshape(-1))
        copied.train(self.training)
        return copied

    def extra_repr(self) -> str:
        out_features, in_features = self.weight.shape
        kind = "csr" if self.is_sparse else "dense"
        return f"{in_features} -> {out_features}, {kind}, {self.nnz} weights"


class CompactMLP(nn.Module):
    """The compacted network: prefix, linear layers with activations, tail.

    Built by :func:`compact_module`. Takes and returns ``(n_samples, features)``
    tensors like the module it came from.

    Attributes
    ----------
    prefix : nn.Sequential
        The original modules before the first linear layer (applied unchanged).
    input_index : torch.Tensor or None
        The input columns the first layer reads; ``None``: all of them.
    linears : nn.ModuleList of CompactLinear
        One per linear layer of the original module, the output layer last.
    activations : nn.ModuleList of nn.Sequential
        The elementwise modules after each linear layer but the last.
    tail : nn.Sequential
        The original modules after the last linear layer (e.g. a softmax).
    """

    def __init__(self, prefix, input_index, linears, activations, tail, dtype) -> None:
        super().__init__()
        self.prefix = nn.Sequential(*prefix)
        self.register_buffer("input_index", input_index)
        self.linears = nn.ModuleList(linears)
        self.activations = nn.ModuleList(nn.Sequential(*acts) for acts in activations)
        self.tail = nn.Sequential(*tail)
        self.dtype = dtype

    @property
    def widths(self) -> list[int]:
        """Inputs read, then the width of every layer (hidden units left, outputs)."""
        return [self.linears[0].weight.shape[1],
                *(int(layer.weight.shape[0]) for layer in self.linears)]

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        X = self.prefix(X.to(self.dtype))
        if self.input_index is not None:
            X = X.index_select(1, self.input_index)
        # One copy into the transposed layout; every layer then keeps it.
        h = X.T.contiguous()
        for layer, activation in zip(self.linears, self.activations, strict=True):
            h = activation(layer(h))
        return self.tail(h.T)


def _flat_children(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    children = []
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if type(child) is nn.Sequential:
            children.extend(_flat_children(child, f"{full}."))
        else:
            children.append((full, child))
    return children


def _unsupported(module: nn.Module, why: str) -> TypeError:
    return TypeError(
        f"compact() cannot rebuild a {type(module).__name__}: {why}. It supports "
        "nn.Sequential modules (such as skticket.MLP) of nn.Linear layers with elementwise "
        "activations between them (ReLU, Tanh, Sigmoid, ...), any modules before the first "
        "and after the last linear layer; predict with the estimator itself otherwise."
    )


def compact_module(
    module: nn.Module,
    masks: Mapping[str, np.ndarray] | None = None,
    *,
    sparse_threshold: float = CSR_MIN_SPARSITY,
) -> CompactMLP:
    """A smaller module computing what the masked ``module`` computes.

    Parameters
    ----------
    module : nn.Sequential
        ``nn.Linear`` layers with elementwise activations between them, as
        :class:`skticket.MLP` builds; modules before the first and after the
        last linear layer are kept as they are.
    masks : dict of str to bool ndarray, default=None
        Masks by parameter name; weights outside their mask are treated as
        zero. Weights that are exactly zero count as pruned in any case.
    sparse_threshold : float, default=CSR_MIN_SPARSITY
        A compacted layer whose share of zero weights is above this multiplies
        with a CSR matrix; 1.0 keeps every layer dense.

    Returns
    -------
    CompactMLP
        On the CPU, in eval mode, in the dtype of the first linear layer.

    Raises
    ------
    TypeError
        If the module is not such a sequence.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 0.0], [2.0, 0.0]]))
    ...     _ = net[2].weight.copy_(torch.tensor([[1.0, 0.5, 0.0]]))
    >>> small = compact_module(net)
    >>> small.widths  # unit 1 has no inputs (folded), unit 2 no outputs (dropped)
    [2, 1, 1]
    >>> X = torch.randn(5, 2)
    >>> bool(torch.allclose(small(X), net(X), atol=1e-6))
    True
    """
    if not 0 <= sparse_threshold <= 1:
        raise ValueError(f"sparse_threshold must be in [0, 1], got {sparse_threshold!r}.")
    if not isinstance(module, nn.Sequential):
        raise _unsupported(module, "it is not an nn.Sequential")
    if type(module).forward not in (nn.Sequential.forward, MLP.forward):
        raise _unsupported(module, "it overrides forward, so its layers may not run in order")
    children = _flat_children(module)
    positions = [i for i, (_, child) in enumerate(children) if _is_linear(child)]
    if not positions:
        raise _unsupported(module, "it has no nn.Linear layer")
    for name, child in children[positions[0]:positions[-1]]:
        if not (_is_linear(child) or _is_elementwise(child)):
            raise _unsupported(
                module, f"{name} ({type(child).__name__}) between its linear layers is not "
                "an elementwise activation")
    masks = masks or {}
    first = children[positions[0]][1]
    dtype = first.weight.dtype

    weights, biases, activations = [], [], []
    for k, i in enumerate(positions):
        name, linear = children[i]
        weight = linear.weight.detach().cpu().numpy()
        mask = masks.get(f"{name}.weight")
        weights.append(weight if mask is None else np.where(mask, weight, 0))
        biases.append(np.zeros(linear.out_features) if linear.bias is None
                      else linear.bias.detach().cpu().numpy().astype(np.float64))
        end = positions[k + 1] if k + 1 < len(positions) else i + 1  # the tail is kept apart
        activations.append([_inplace(copy.deepcopy(child).cpu().eval())
                            for _, child in children[i + 1:end]])
    params, input_index = _fold(weights, biases, activations, dtype)

    with warnings.catch_warnings():
        # torch flags CSR support as beta on the first conversion of a process.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        linears = [_compact_linear(w, b, dtype, sparse_threshold) for w, b in params]
    prefix = [copy.deepcopy(child).cpu().eval() for _, child in children[:positions[0]]]
    tail = [copy.deepcopy(child).cpu().eval() for _, child in children[positions[-1] + 1:]]
    # The last layer's activation list is empty: what follows it is the tail.
    return CompactMLP(prefix, input_index, linears, activations, tail, dtype).eval()


def _fold(weights, biases, activations, dtype) -> tuple[list, torch.Tensor | None]:
    """Remove dead units: the pure array part of :func:`compact_module`.

    Forward, layer by layer: a unit whose incoming weights are all zero is a
    constant; its activation is added, through its outgoing weights, to the
    next layer's bias. Backward: a unit whose outgoing weights are all zero
    is dropped, which may leave units below it without outgoing weights too.
    """
    n_layers = len(weights)
    kept = np.arange(weights[0].shape[1])  # units of the previous layer still fed forward
    shift = np.zeros(weights[0].shape[0])
    params = []
    for k in range(n_layers):
        weight = weights[k][:, kept]
        bias = biases[k] + shift
        if k == n_layers - 1:
            params.append([weight, bias])
            break
        live = np.flatnonzero((weight != 0).any(axis=1))
        const = np.flatnonzero(~(weight != 0).any(axis=1))
        # The net computes a constant unit in its own dtype: act(bias) there.
        values = torch.as_tensor(bias[const]).to(dtype)
        for act in activations[k]:
            values = act(values)
        shift = weights[k + 1][:, const].astype(np.float64) @ values.double().numpy()
        params.append([weight[live], bias[live]])
        kept = live
    for k in range(n_layers - 1, 0, -1):
        used = (params[k][0] != 0).any(axis=0)
        params[k][0] = params[k][0][:, used]
        params[k - 1][0] = params[k - 1][0][used]
        params[k - 1][1] = params[k - 1][1][used]
    used = (params[0][0] != 0).any(axis=0)
    input_index = None
    if not used.all():
        input_index = torch.as_tensor(np.flatnonzero(used), dtype=torch.long)
        params[0][0] = params[0][0][:, used]
    return params, input_index


def _inplace(activation: nn.Module) -> nn.Module:
    # Each activation acts on the fresh output of a compact layer, which
    # nothing else holds: overwriting it saves an allocation per layer.
    if isinstance(getattr(activation, "inplace", None), bool):
        activation.inplace = True
    return activation


def _compact_linear(weight: np.ndarray, bias: np.ndarray, dtype, threshold: float):
    w = torch.as_tensor(np.ascontiguousarray(weight)).to(dtype)
    b = torch.as_tensor(bias).to(dtype)
    if w.numel() and 1 - np.count_nonzero(weight) / weight.size > threshold:
        w = w.to_sparse_csr()
    return CompactLinear(w, b)


class _CompactBase:
    """Prediction through a :class:`CompactMLP`; see the public subclasses."""

    def __init__(self, module: CompactMLP, *, n_features_in: int,
                 nonlinearity: Callable[[torch.Tensor], torch.Tensor],
                 batch_size: int = BATCH_SIZE) -> None:
        self.module_ = module
        self.n_features_in_ = n_features_in
        self.batch_size = batch_size
        self._nonlinearity = nonlinearity

    @property
    def nonlinearity(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """What ``predict`` applies to the network's output: the net's
        predict nonlinearity (a softmax after ``CrossEntropyLoss``, say)."""
        return self._nonlinearity

    def _output(self, X) -> np.ndarray:
        X = check_array(X, dtype=[np.float32, np.float64])
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} "
                             f"expects {self.n_features_in_} features as input.")
        X = torch.from_numpy(X)
        with torch.inference_mode():
            out = torch.cat([self._nonlinearity(self.module_(X[start:start + self.batch_size]))
                             for start in range(0, len(X), self.batch_size)])
        return out.numpy().astype(np.float64)

    def __repr__(self) -> str:
        kinds = ", ".join("csr" if layer.is_sparse else "dense" for layer in self.module_.linears)
        widths = " -> ".join(str(w) for w in self.module_.widths)
        return f"{type(self).__name__}({widths}; {kinds})"


class CompactClassifier(_CompactBase):
    """A fitted classifier's ticket, compacted for prediction.

    Returned by :meth:`LotteryTicketClassifier.compact` (see its example);
    predicts what the estimator predicts (probabilities within 1e-5) with a
    smaller network.

    Attributes
    ----------
    module_ : CompactMLP
        The compact network (CPU, eval mode).
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Number of features the estimator was fitted on.
    batch_size : int
        Rows per forward pass.
    """

    def __init__(self, module: CompactMLP, *, classes: np.ndarray, n_features_in: int,
                 nonlinearity: Callable[[torch.Tensor], torch.Tensor],
                 batch_size: int = BATCH_SIZE) -> None:
        super().__init__(module, n_features_in=n_features_in, nonlinearity=nonlinearity,
                         batch_size=batch_size)
        self.classes_ = classes

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        return self._output(X)

    def predict(self, X) -> np.ndarray:
        """Class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def score(self, X, y) -> float:
        """Accuracy on ``(X, y)``."""
        return float(accuracy_score(y, self.predict(X)))


class CompactRegressor(_CompactBase):
    """A fitted regressor's ticket, compacted for prediction.

    Returned by :meth:`LotteryTicketRegressor.compact`; predicts what the
    estimator predicts (within 1e-5) with a smaller network.

    Attributes
    ----------
    module_ : CompactMLP
        The compact network (CPU, eval mode).
    n_features_in_ : int
        Number of features the estimator was fitted on.
    batch_size : int
        Rows per forward pass.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_regression
    >>> from skticket import LotteryTicketRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=0.1, random_state=0)
    >>> reg = LotteryTicketRegressor(prune_fraction=0.6, target_sparsity=0.9,
    ...                              random_state=0).fit(X, y / 100)
    >>> small = reg.compact()
    >>> small.module_.widths[1] < 100  # hidden units left of the default 100
    True
    >>> bool(np.allclose(small.predict(X), reg.predict(X), atol=1e-5))
    True
    """

    def __init__(self, module: CompactMLP, *, n_features_in: int,
                 nonlinearity: Callable[[torch.Tensor], torch.Tensor],
                 target_is_1d: bool, batch_size: int = BATCH_SIZE,
                 target_scale: np.ndarray | None = None,
                 target_offset: np.ndarray | None = None) -> None:
        super().__init__(module, n_features_in=n_features_in, nonlinearity=nonlinearity,
                         batch_size=batch_size)
        self._target_is_1d = target_is_1d
        self._target_scale = target_scale
        self._target_offset = target_offset

    @property
    def target_scale(self) -> np.ndarray | None:
        """Predictions are the network's output times this, plus :attr:`target_offset`
        (the estimator's target standardization undone); None: the output as is."""
        return self._target_scale

    @property
    def target_offset(self) -> np.ndarray | None:
        """See :attr:`target_scale`."""
        return self._target_offset

    def predict(self, X) -> np.ndarray:
        """Predicted targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        y = self._output(X)
        if self._target_scale is not None:
            y = y * self._target_scale + self._target_offset
        return y.ravel() if self._target_is_1d else y

    def score(self, X, y) -> float:
        """R^2 on ``(X, y)``."""
        return float(r2_score(y, self.predict(X)))
