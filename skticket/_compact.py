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

The compact network computes in float64, from the trained (float32) weights,
as scikit-learn's MLP does: a row's output then does not depend on the other
rows of the call to within float64 rounding (about 1e-16 relative a product,
far below the float32 resolution of the weights), whatever kernels, blockings
or thread splits the libraries pick for a shape.

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
from scipy.sparse import issparse
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_array
from torch import nn

from ._activations import entry_of
from ._docstring import Substitution
from ._mlp import MLP
from ._rng import preserved_torch_rng
from ._targets import (
    ClassLabels,
    ClassPredictions,
    TargetEncoding,
    TargetPredictions,
    TargetScaling,
)

__all__ = [
    "BATCH_SIZE",
    "CSR_MIN_SPARSITY",
    "FLOAT32_MAX",
    "CompactClassifier",
    "CompactMLP",
    "CompactRegressor",
    "compact_module",
    "mlp_children",
    "refuse_beyond_float32",
    "sparse_chunk_rows",
]

#: Layers sparser than this use a CSR matmul. Measured with
#: ``python benchmarks/bench_compact.py`` (2-core CPU, torch 2.13, MKL, 10,000
#: rows in batches of 1024, layers 64 to 512 wide): CSR wins from 0.8 with two
#: threads and from 0.85 with one; a dense matmul of the same shape is faster
#: below. Measured again in float64 (one thread, passes of 2,048 rows): from
#: 0.85 in all four layer shapes.
CSR_MIN_SPARSITY = 0.85

#: Rows per forward pass of a compact predictor. A CSR product streams one
#: row of activations per stored weight; passes this small keep those rows
#: in cache. Measured in float64 on 10,000 rows of the default net's 90% ticket
#: (61-256-196-10, three CSR products; 2-core CPU, one thread, two runs):
#: 2,048 rows a pass took 0.67-0.80x the time of 4,096 and 0.92-0.97x that of 1,024.
BATCH_SIZE = 2048


def _is_elementwise(module: nn.Module) -> bool:
    # A module of the activation table that acts on each unit alone (only
    # inherited forwards count: a subclass's own forward may do anything).
    entry = entry_of(module)
    return entry is not None and entry.elementwise


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) and type(module).forward is nn.Linear.forward


class CompactLinear(nn.Module):
    """``W @ h + b`` on inputs laid out as ``(in_features, n_samples)``, in float64.

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
    """The compacted network: prefix, linear layers with activations, tail, in float64.

    Built by :func:`compact_module`. Takes ``(n_samples, features)`` tensors
    like the module it came from and returns float64 ones; a row's output
    does not depend on the other rows of the call to within float64 rounding.

    Attributes
    ----------
    prefix : nn.Sequential
        The original modules before the first linear layer, in float64.
    input_index : torch.Tensor or None
        The input columns the first layer reads; ``None``: all of them.
    in_features : int
        Columns of the first layer's input before ``input_index`` picks from them.
    linears : nn.ModuleList of CompactLinear
        One per linear layer of the original module, the output layer last.
    activations : nn.ModuleList of nn.Sequential
        The elementwise modules after each linear layer but the last.
    tail : nn.Sequential
        The original modules after the last linear layer (e.g. a softmax), in float64.
    """

    def __init__(self, prefix, input_index, linears, activations, tail,
                 in_features: int) -> None:
        super().__init__()
        self.prefix = nn.Sequential(*prefix)
        self.register_buffer("input_index", input_index)
        self.in_features = in_features
        self.linears = nn.ModuleList(linears)
        self.activations = nn.ModuleList(nn.Sequential(*acts) for acts in activations)
        self.tail = nn.Sequential(*tail)

    @property
    def widths(self) -> list[int]:
        """Inputs read, then the width of every layer (hidden units left, outputs)."""
        return [self.linears[0].weight.shape[1],
                *(int(layer.weight.shape[0]) for layer in self.linears)]

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        # A copy for the prefix: a module may work in place, never on the caller's rows.
        h = self.prefix(X.to(torch.float64, copy=True)) if len(self.prefix) else X
        # One pass converts and transposes: 3 times faster here than a copy of the
        # transpose after the conversion.
        h = h.T.to(torch.float64, memory_format=torch.contiguous_format)
        if self.input_index is not None:
            # Whole rows of the transposed inputs: a gather of columns cost 3 times as much.
            h = h.index_select(0, self.input_index)
        for linear, activations in zip(self.linears, self.activations, strict=True):
            h = activations(linear(h))
        return self.tail(h.T)

    def outputs(self, X: torch.Tensor,
                nonlinearity: Callable[[torch.Tensor], torch.Tensor] | None = None, *,
                rows_per_pass: int = BATCH_SIZE) -> torch.Tensor:
        """The network's output for ``X``, then ``nonlinearity`` of it, in passes.

        The global random state is left as found (a prefix or tail module of
        one's own may draw).

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)
        nonlinearity : callable, default=None
            Applied to the output (a net's predict nonlinearity); None: none.
        rows_per_pass : int, default=BATCH_SIZE
            Rows computed at once; only speed and memory depend on it.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_outputs), float64
        """
        # A call with no rows still makes one (empty) pass, for the output's width.
        starts = range(0, max(len(X), 1), max(int(rows_per_pass), 1))
        with preserved_torch_rng("cpu"):
            outputs = [self(X[start:start + rows_per_pass]) for start in starts]
            out = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
            return out if nonlinearity is None else nonlinearity(out)


#: Values of a sparse X densified at once for a prediction (16 MiB of float32).
SPARSE_CHUNK_VALUES = 2**22


#: The largest magnitude a float32 holds (about 3.4e38): the nets compute in float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def refuse_beyond_float32(X) -> None:
    """Refuse an ``X`` (float64, dense or sparse) holding a value a float32 cannot hold.

    Cast to float32 such a value would become infinite: training would diverge
    and predictions be NaN, saying nothing of the cause.

    Raises
    ------
    ValueError
        Naming X, its largest magnitude and what to do.
    """
    if X.dtype == np.float32:
        return  # holds nothing beyond it
    values = X.data if issparse(X) else X
    largest = float(np.abs(values).max()) if values.size else 0.0
    if largest > FLOAT32_MAX:
        raise ValueError(
            f"X holds values beyond float32's range (|x| up to {largest:.3g}; float32 ends at "
            f"{FLOAT32_MAX:.3g}), in which the net computes. Rescale the features first, "
            "e.g. make_pipeline(StandardScaler(), estimator) (scikit-learn's scalers compute "
            "in float64).")


def sparse_chunk_rows(n_features: int, most: int = BATCH_SIZE) -> int:
    """Rows of a sparse X densified at once for a prediction: at most ``most``, and
    no more than :data:`SPARSE_CHUNK_VALUES` values (a wide X gets fewer rows).

    >>> sparse_chunk_rows(64), sparse_chunk_rows(10_000)
    (2048, 419)
    """
    return int(max(1, min(most, SPARSE_CHUNK_VALUES // max(int(n_features), 1))))


def _csr(weight: torch.Tensor) -> torch.Tensor:
    """The dense ``weight`` as a CSR tensor with 32-bit indices.

    MKL's kernel takes 32-bit indices; torch converts 64-bit ones on every
    product, which doubles the cost of a one-row call.
    """
    with warnings.catch_warnings():
        # torch flags CSR support as beta on the first conversion of a process.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        weight = weight.to_sparse_csr()
    # Indices taken from a valid CSR tensor: no need to check them again.
    return torch.sparse_csr_tensor(weight.crow_indices().to(torch.int32),
                                   weight.col_indices().to(torch.int32), weight.values(),
                                   tuple(weight.shape), check_invariants=False)


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


def mlp_children(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules ``module`` applies one after the other, if it is MLP-like.

    MLP-like: an ``nn.Sequential`` (such as :class:`skticket.MLP`, nested
    ``nn.Sequential`` flattened) whose linear layers have only elementwise
    activations of the activation table between them; any modules before the
    first and after the last linear layer.

    Parameters
    ----------
    module : nn.Module

    Returns
    -------
    list of (str, nn.Module)
        Each child by its name in ``module.named_modules()``, in order.

    Raises
    ------
    TypeError
        If ``module`` is not MLP-like, saying why.
    """
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
    return children


def compact_module(
    module: nn.Module,
    masks: Mapping[str, np.ndarray] | None = None,
    *,
    sparse_threshold: float = CSR_MIN_SPARSITY,
) -> CompactMLP:
    """A smaller module computing what the masked ``module`` computes, in float64.

    Parameters
    ----------
    module : nn.Sequential
        ``nn.Linear`` layers with elementwise activations between them, as
        :class:`skticket.MLP` builds; modules before the first and after the
        last linear layer are kept as they are (converted to float64).
    masks : dict of str to bool ndarray, default=None
        Masks by parameter name; weights outside their mask are treated as
        zero. Weights that are exactly zero count as pruned in any case.
    sparse_threshold : float, default=CSR_MIN_SPARSITY
        A compacted layer whose share of zero weights is above this multiplies
        with a CSR matrix; 1.0 keeps every layer dense.

    Returns
    -------
    CompactMLP
        On the CPU, in eval mode, in float64.

    Raises
    ------
    TypeError
        If the module is not such a sequence (see :func:`mlp_children`).

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
    >>> bool(torch.allclose(small(X), net(X).double(), atol=1e-6))
    True
    """
    if not 0 <= sparse_threshold <= 1:
        raise ValueError(f"sparse_threshold must be in [0, 1], got {sparse_threshold!r}.")
    children = mlp_children(module)
    positions = [i for i, (_, child) in enumerate(children) if _is_linear(child)]
    masks = masks or {}

    weights, biases, activations = [], [], []
    for k, i in enumerate(positions):
        name, linear = children[i]
        weight = linear.weight.detach().cpu().double().numpy()
        mask = masks.get(f"{name}.weight")
        weights.append(weight if mask is None else np.where(mask, weight, 0))
        biases.append(np.zeros(linear.out_features) if linear.bias is None
                      else linear.bias.detach().cpu().double().numpy())
        end = positions[k + 1] if k + 1 < len(positions) else i + 1  # the tail is kept apart
        activations.append([_inplace(_float64_copy(child)) for _, child in children[i + 1:end]])
    params, input_index = _drop_dead_units(weights, biases, activations)

    linears = [_compact_linear(w, b, sparse_threshold) for w, b in params]
    prefix = [_float64_copy(child) for _, child in children[:positions[0]]]
    tail = [_float64_copy(child) for _, child in children[positions[-1] + 1:]]
    # The last layer's activation list is empty: what follows it is the tail.
    return CompactMLP(prefix, input_index, linears, activations, tail,
                      in_features=children[positions[0]][1].in_features).eval()


def _float64_copy(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module).cpu().double().eval()


def _drop_dead_units(weights, biases, activations) -> tuple[list, torch.Tensor | None]:
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
        # act(bias) of a constant unit, in float64 as the network computes it.
        values = torch.as_tensor(bias[const])
        for act in activations[k]:
            values = act(values)
        shift = weights[k + 1][:, const] @ values.numpy()
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


def _compact_linear(weight: np.ndarray, bias: np.ndarray, threshold: float) -> CompactLinear:
    w = torch.as_tensor(np.ascontiguousarray(weight))
    if w.numel() and 1 - np.count_nonzero(weight) / weight.size > threshold:
        w = _csr(w)
    return CompactLinear(w, torch.as_tensor(bias))


class _CompactBase:
    """Prediction through a :class:`CompactMLP`; see the public subclasses."""

    def __init__(self, module: CompactMLP, *, target: TargetEncoding, n_features_in: int,
                 nonlinearity: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 batch_size: int = BATCH_SIZE) -> None:
        self.module_ = module
        self.n_features_in_ = n_features_in
        self.batch_size = batch_size
        self._target_ = target
        self._nonlinearity = nonlinearity

    @property
    def target(self) -> TargetEncoding:
        """The estimator's fitted target encoding, which decodes the network's outputs."""
        return self._target_

    @property
    def nonlinearity(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """What ``predict`` applies to the network's output: the net's
        predict nonlinearity (a softmax after ``CrossEntropyLoss``, say);
        None: the output as it is."""
        return self._nonlinearity

    def _outputs(self, X) -> np.ndarray:
        # float32, as the estimator hands rows to its net: the same inputs, the same outputs.
        X = check_array(X, dtype=[np.float32, np.float64], accept_sparse="csr")
        refuse_beyond_float32(X)
        X = X.astype(np.float32, copy=False)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} "
                             f"expects {self.n_features_in_} features as input.")
        if issparse(X):
            # Densified a chunk at a time, as it is used (each row is its own).
            step = sparse_chunk_rows(X.shape[1], max(self.batch_size, 1))
            return np.concatenate([self._outputs(X[start:start + step].toarray())
                                   for start in range(0, max(X.shape[0], 1), step)])
        with torch.inference_mode():
            out = self.module_.outputs(torch.from_numpy(X), self._nonlinearity,
                                       rows_per_pass=self.batch_size)
        return np.asarray(out.numpy(), dtype=np.float64)

    def __repr__(self) -> str:
        kinds = ", ".join("csr" if layer.is_sparse else "dense" for layer in self.module_.linears)
        widths = " -> ".join(str(w) for w in self.module_.widths)
        return f"{type(self).__name__}({widths}; {kinds})"


_SHARED_PARAMETERS = """module : CompactMLP
        The compact network.
    target : {target}
        The estimator's fitted target encoding: what turns the network's
        outputs into {decoded}.
    n_features_in : int
        The estimator's ``n_features_in_``.
    nonlinearity : callable or None, default=None
        What the net's ``{method}`` applies to its output.
    batch_size : int, default=2048
        Rows per forward pass.

    Attributes
    ----------
    module_ : CompactMLP
        The compact network (CPU, eval mode).
    n_features_in_ : int
        Number of features the estimator was fitted on.
    batch_size : int
        Rows per forward pass."""


@Substitution(shared_parameters=_SHARED_PARAMETERS.format(
    target="ClassLabels", decoded="labels", method="predict_proba"))
class CompactClassifier(ClassPredictions, ClassifierMixin, _CompactBase):
    """A fitted classifier's ticket, compacted for prediction.

    Returned by :meth:`LotteryTicketClassifier.compact` (see its example);
    predicts what the estimator predicts (both compute in float64: probabilities
    equal to float64 rounding) with a smaller network.

    Parameters
    ----------
    %(shared_parameters)s
    classes_ : ndarray of shape (n_classes,)
        The class labels (for multilabel targets, the label indices).
    """

    def __init__(self, module: CompactMLP, *, target: ClassLabels, n_features_in: int,
                 nonlinearity: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 batch_size: int = BATCH_SIZE) -> None:
        super().__init__(module, target=target, n_features_in=n_features_in,
                         nonlinearity=nonlinearity, batch_size=batch_size)
        self.classes_ = target.classes_


@Substitution(shared_parameters=_SHARED_PARAMETERS.format(
    target="RegressionTarget", decoded="the target's units and shape", method="predict"))
class CompactRegressor(TargetPredictions, RegressorMixin, _CompactBase):
    """A fitted regressor's ticket, compacted for prediction.

    Returned by :meth:`LotteryTicketRegressor.compact`; predicts what the
    estimator predicts (both compute in float64: equal to float64 rounding)
    with a smaller network.

    Parameters
    ----------
    %(shared_parameters)s

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_regression
    >>> from skticket import LotteryTicketRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=0.1, random_state=0)
    >>> reg = LotteryTicketRegressor(prune_fraction=0.6, target_sparsity=0.9,
    ...                              random_state=0).fit(X, y / 100)
    >>> small = reg.compact()
    >>> all(w < 256 for w in small.module_.widths[1:-1])  # units left of the default 256
    True
    >>> bool(np.allclose(small.predict(X), reg.predict(X), atol=1e-5))
    True
    """

    @property
    def target_scaling(self) -> TargetScaling | None:
        """The estimator's target standardization, undone on the network's output
        (:meth:`TargetScaling.inverse`); None: the output as it is."""
        return self._target_.scaling_
