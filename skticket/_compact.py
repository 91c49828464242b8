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

A row's outputs never depend on the other rows of the call (see
:class:`CompactForward`): each step of the forward pass either computes every
row on its own by construction, or uses a kernel that a probe found to do so
on this machine, or runs on blocks of one fixed number of rows.
"""

from __future__ import annotations

import copy
import functools
import os
import warnings
import weakref
from collections.abc import Callable, Mapping
from typing import Generic, NamedTuple, TypeVar

import numpy as np
import torch
from scipy.sparse import issparse
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.validation import check_array
from torch import nn

from ._activations import EXACT, PROBED, as_module, entry_of, is_identity, rows_kind
from ._mlp import MLP
from ._rng import preserved_torch_rng
from ._targets import TargetScaling

__all__ = [
    "BATCH_SIZE",
    "CSR_MIN_SPARSITY",
    "KERNELS_ENV",
    "CompactClassifier",
    "CompactForward",
    "CompactMLP",
    "CompactRegressor",
    "ModuleCache",
    "block_rows",
    "compact_module",
    "kernel_verdicts",
    "sparse_chunk_rows",
]

#: Layers sparser than this use a CSR matmul. Measured with
#: ``python benchmarks/bench_compact.py`` (2-core CPU, torch 2.13, MKL, 10,000
#: rows in batches of 1024, layers 64 to 512 wide): CSR wins from 0.8 with two
#: threads and from 0.85 with one; a dense matmul of the same shape is faster
#: below.
CSR_MIN_SPARSITY = 0.85

#: Rows per forward pass of a compact predictor. A CSR product streams one
#: row of activations per stored weight; passes this small keep those rows
#: in cache. Measured on 10,000 rows of a 64-76-10 ticket (2-core CPU, one
#: thread): 4,096 rows a pass was 5-10% faster than 1,024; 8,192 and larger
#: passes measured from 15% faster to 10% slower from run to run.
BATCH_SIZE = 4096

#: Cost of a stored weight of a CSR product in dense multiply-adds: per
#: weight, MKL's CSR kernel took about 6 times as long as a dense matmul of
#: the same layer (2-core CPU, torch 2.13, 61 -> 76 units, 512 rows).
_CSR_COST = 6

# Work of one fixed-shape block (in dense multiply-adds a row, times rows):
# about 2**21 keeps a block's kernels near 100 us on a 2-core CPU. Blocks are
# powers of two between these bounds.
_BLOCK_WORK = 2**21
_MIN_BLOCK, _MAX_BLOCK = 16, 1024

def _is_elementwise(module: nn.Module) -> bool:
    # A module of the activation table that acts on each unit alone (only
    # inherited forwards count: a subclass's own forward may do anything).
    entry = entry_of(module)
    return entry is not None and entry.elementwise


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
    tensors like the module it came from; a row's output does not depend on
    the other rows (see :class:`CompactForward`).

    Attributes
    ----------
    prefix : nn.Sequential
        The original modules before the first linear layer (applied unchanged).
    input_index : torch.Tensor or None
        The input columns the first layer reads; ``None``: all of them.
    in_features : int
        Columns of the first layer's input before ``input_index`` picks from them.
    linears : nn.ModuleList of CompactLinear
        One per linear layer of the original module, the output layer last.
    activations : nn.ModuleList of nn.Sequential
        The elementwise modules after each linear layer but the last.
    tail : nn.Sequential
        The original modules after the last linear layer (e.g. a softmax).
    """

    def __init__(self, prefix, input_index, linears, activations, tail, dtype,
                 in_features: int) -> None:
        super().__init__()
        self.prefix = nn.Sequential(*prefix)
        self.register_buffer("input_index", input_index)
        self.in_features = in_features
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
        return self.outputs(X)

    def outputs(self, X: torch.Tensor,
                nonlinearity: Callable[[torch.Tensor], torch.Tensor] | None = None, *,
                rows_per_pass: int = BATCH_SIZE) -> torch.Tensor:
        """The network's output for ``X``, then ``nonlinearity`` of it, in passes.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)
        nonlinearity : callable, default=None
            Applied to the output (a net's predict nonlinearity); None: none.
        rows_per_pass : int, default=BATCH_SIZE
            Rows computed at once (rounded to whole blocks); only speed and
            memory depend on it.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_outputs)
        """
        return _FORWARDS.get(self, CompactForward)(X, nonlinearity, rows_per_pass=rows_per_pass)


class _Kernel(NamedTuple):
    """A library kernel whose row invariance is observed, not promised: probed."""

    key: tuple  # its shape class: the verdict is kept per key and thread count
    probe: Callable[[], bool]  # True when it computed each sample on its own


class _ForwardStep(NamedTuple):
    """One step of a forward pass, and what is known of it."""

    apply: Callable[[torch.Tensor], torch.Tensor]
    rowwise: bool  # computes each sample on its own by construction
    draws: bool = False  # may draw random numbers: not a module or function known here
    kernel: _Kernel | None = None  # row-wise too where this kernel passes its probe


def _forward_step(function: Callable[[torch.Tensor], torch.Tensor], width: int | None = None,
                  dtype: torch.dtype = torch.float32) -> _ForwardStep:
    """The step applying ``function`` (a module or a predict nonlinearity).

    ``width``: the features of the ``(n_samples, width)`` tensors it gets, where
    known; a softmax is probed for that width (and runs in blocks without one).
    """
    if isinstance(function, (nn.Dropout, nn.AlphaDropout)) and function.training:
        return _ForwardStep(function, rowwise=False, draws=True)
    module = as_module(function)
    if module is None:  # neither in the activation table nor a known function
        return _ForwardStep(function, rowwise=False, draws=True)
    rows = rows_kind(module)
    if rows == PROBED and width is not None:
        key = (entry_of(module).module.__name__, width, dtype)
        probe = functools.partial(_probe_rows, function, width, dtype)
        return _ForwardStep(function, rowwise=False, kernel=_Kernel(key, probe))
    return _ForwardStep(function, rowwise=rows == EXACT)


#: Values of a sparse X densified at once for a prediction (16 MiB of float32).
SPARSE_CHUNK_VALUES = 2**22


def sparse_chunk_rows(n_features: int, most: int = BATCH_SIZE) -> int:
    """Rows of a sparse X densified at once for a prediction: at most ``most``, and
    no more than :data:`SPARSE_CHUNK_VALUES` values (a wide X gets fewer rows).

    >>> sparse_chunk_rows(64), sparse_chunk_rows(10_000)
    (4096, 419)
    """
    return int(max(1, min(most, SPARSE_CHUNK_VALUES // max(int(n_features), 1))))


def block_rows(work_per_row: float) -> int:
    """Rows of a fixed-shape block for ``work_per_row`` multiply-adds a row.

    A power of two from 16 to 1024, about 2**21 multiply-adds a block.
    """
    rows = 2 ** int(np.floor(np.log2(max(1.0, _BLOCK_WORK / max(1.0, work_per_row)))))
    return int(np.clip(rows, _MIN_BLOCK, _MAX_BLOCK))


def _csr(weight: torch.Tensor, columns: torch.Tensor | None = None,
         n_columns: int | None = None) -> torch.Tensor:
    """``weight`` (dense or CSR) as a CSR tensor with 32-bit indices.

    MKL's kernel takes 32-bit indices; torch converts 64-bit ones on every
    product, which doubles the cost of a one-row call. ``columns`` moves column
    ``j`` to ``columns[j]`` of a ``n_columns``-wide matrix.
    """
    if (columns is None and weight.layout == torch.sparse_csr
            and weight.crow_indices().dtype == torch.int32):
        return weight  # already what it should be
    if weight.layout != torch.sparse_csr:
        with warnings.catch_warnings():
            # torch flags CSR support as beta on the first conversion of a process.
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            weight = weight.to_sparse_csr()
    col = weight.col_indices()
    shape = tuple(weight.shape)
    if columns is not None:
        col, shape = columns[col], (shape[0], n_columns)
    # Indices taken from a valid CSR tensor: no need to check them again.
    return torch.sparse_csr_tensor(weight.crow_indices().to(torch.int32), col.to(torch.int32),
                                   weight.values(), shape, check_invariants=False)


def _sparse_addmm(bias: torch.Tensor, weight: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``bias + weight @ h`` with a CSR ``weight``: torch's CPU kernel (MKL's)."""
    return torch.addmm(bias, weight, h)


# --- the kernel probe ------------------------------------------------------------------------

#: Environment variable choosing how kernels whose row invariance is only
#: observed (MKL's CSR product, torch's softmax) run: ``probe`` (the default:
#: a whole pass where the probe confirmed them on this machine, fixed-shape
#: blocks elsewhere), ``blocks`` (always in blocks) or ``trust`` (always on a
#: whole pass, unchecked: for measurements only).
KERNELS_ENV = "SKTICKET_KERNELS"
_MODES = ("probe", "blocks", "trust")

# Columns (samples) of a probe's reference call: a whole pass, the most a
# probed kernel is given at once (larger passes are cut to this).
_PROBE_WIDTH = 4096
# Sample counts a probe checks against the reference call: every count up to
# 64 (vector widths and unrolls up to 16 floats times 4), those around powers
# of two (blockings and thread splits), and one just short of a whole pass;
# the small ones also at an offset no vector width divides.
_PROBE_COUNTS = (*range(1, 65), 127, 128, 129, 255, 256, 257, 511, 513, 1000, 1023, 1024,
                 1025, 2047, 2049, _PROBE_WIDTH - 1)
_PROBE_OFFSET = 5

#: Verdicts of the probes in this process, by kernel shape class and thread count.
_VERDICTS: dict[tuple, bool] = {}


def _kernels_mode() -> str:
    mode = os.environ.get(KERNELS_ENV, "probe")
    if mode not in _MODES:
        raise ValueError(f"{KERNELS_ENV} must be one of {', '.join(_MODES)}, got {mode!r}.")
    return mode


def _trusted(kernel: _Kernel, threads: int, mode: str) -> bool:
    if mode != "probe":
        return mode == "trust"
    key = (*kernel.key, threads)
    verdict = _VERDICTS.get(key)
    if verdict is None:
        verdict = _VERDICTS[key] = kernel.probe()
    return verdict


def kernel_verdicts() -> dict[tuple, bool]:
    """The probes' verdicts so far in this process.

    Returns
    -------
    dict
        By ``(kernel, shape..., dtype, threads)``: True where the kernel computed
        each sample on its own (so it runs on whole passes), False where it did
        not (so it runs on fixed-shape blocks). Kernels: ``"csr"`` (shape: out
        and in features, bit length of the stored weights' count), ``"Softmax"``
        and ``"LogSoftmax"`` (shape: features).
    """
    return dict(_VERDICTS)


def _same_for_every_count(function: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
                          dim: int) -> bool:
    """Whether ``function`` gives each sample (along ``dim``) the same result in any call.

    The reference is one call on all of ``inputs`` (``_PROBE_WIDTH`` samples);
    each of ``_PROBE_COUNTS`` samples, from the start and (the small counts)
    from an offset, must come out bit for bit as there.
    """
    with torch.inference_mode():
        full = function(inputs)
        for n in _PROBE_COUNTS:
            for start in ((0, _PROBE_OFFSET) if n <= 64 else (0,)):
                part = function(inputs.narrow(dim, start, n).contiguous())
                if not torch.equal(part, full.narrow(dim, start, n)):
                    return False
    return True


def _probe_inputs(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    # Its own generator: a probe leaves the global random state alone.
    generator = torch.Generator().manual_seed(0)
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)


def _probe_csr(product: Callable[[torch.Tensor], torch.Tensor], in_features: int,
               dtype: torch.dtype) -> bool:
    """Whether a layer's CSR ``product`` computes each column on its own, here.

    MKL's kernel does on some CPUs and not on others (in vectorized blocks of
    columns on Intel CPUs with AVX2 or AVX-512): checked with the very product
    the step runs (the layer's own weights), on random inputs.
    """
    return _same_for_every_count(product, _probe_inputs((in_features, _PROBE_WIDTH), dtype),
                                 dim=1)


def _probe_rows(function: Callable[[torch.Tensor], torch.Tensor], width: int,
                dtype: torch.dtype) -> bool:
    """Whether ``function`` (a softmax) computes each row on its own, here."""
    return _same_for_every_count(function, _probe_inputs((_PROBE_WIDTH, width), dtype) * 4,
                                 dim=0)


class CompactForward:
    """How a :class:`CompactMLP` computes a call, each row independent of the others.

    A float32 product rounds a row's result differently with the number of
    rows it is computed with: dense BLAS kernels pick their blocking by shape,
    MKL's CSR kernel does on some CPUs (AVX2 and AVX-512 Intel CPUs compute
    columns in vectorized blocks), and elementwise kernels may round values in
    their vectorized body differently from those in their remainder loop. So
    every step is one of three kinds:

    * *row-wise by construction*: exact elementwise modules (ReLU, LeakyReLU,
      clamps, the identity: one comparison, selection or multiplication per
      value, correctly rounded by any kernel) and gathers of input columns see
      a whole pass;
    * *probed*: CSR products and softmax over the last dimension compute each
      sample on its own as the kernels are written, but no library promises
      it. A probe checks each kernel on this machine, once per process, shape
      class and thread count (:func:`kernel_verdicts`); it sees a whole pass
      where it passed and runs in fixed-shape blocks where it failed
      (environment variable :data:`KERNELS_ENV` overrides the probe);
    * every other step (dense products, other activations, unknown modules and
      functions) runs on blocks of ``block_rows`` rows, the last one padded
      with zero rows: the same shapes for each block, whatever the call.

    When all steps see whole passes, nothing is padded, and a one-row call
    computes one row. Rows go through in passes of ``rows_per_pass``.

    Parameters
    ----------
    module : CompactMLP
    """

    def __init__(self, module: CompactMLP) -> None:
        self.dtype = module.dtype
        # A prefix may reshape its input (Flatten): no width to probe a softmax
        # there, which then runs in blocks.
        self.before = [_forward_step(m) for m in module.prefix]
        self.layers: list[_ForwardStep] = []
        weights = [layer.weight for layer in module.linears]
        if module.input_index is not None:
            if module.linears[0].is_sparse:
                # Widened back to every input column: the inputs need no gather.
                weights[0] = _csr(weights[0], module.input_index, module.in_features)
            else:
                index = module.input_index
                self.layers.append(_ForwardStep(lambda h: h.index_select(0, index), rowwise=True))
        work = 0
        for weight, layer, activations in zip(weights, module.linears, module.activations,
                                              strict=True):
            if weight.layout == torch.sparse_csr:
                # compact_module stores 32-bit indices; a module pickled by an
                # earlier version may hold 64-bit ones.
                weight = _csr(weight)
                nnz = weight.values().numel()
                work += _CSR_COST * nnz
                key = ("csr", *weight.shape, int(nnz).bit_length(), self.dtype)
                product = functools.partial(_sparse_addmm, layer.bias, weight)
                probe = functools.partial(_probe_csr, product, weight.shape[1], self.dtype)
                self.layers.append(_ForwardStep(product, rowwise=False, kernel=_Kernel(key, probe)))
            else:
                work += weight.numel()
                product = functools.partial(torch.addmm, layer.bias, weight)
                self.layers.append(_ForwardStep(product, rowwise=False))
            self.layers.extend(_forward_step(m) for m in activations)
        # The tail sees (n_samples, outputs) tensors; the modules of the activation
        # table keep that shape, so a softmax after them is probed for that width.
        width = int(module.linears[-1].weight.shape[0])
        self.after = []
        for m in module.tail:
            self.after.append(_forward_step(m, width, self.dtype))
            if entry_of(m) is None:
                width = None
        self._out_width = width
        self.block_rows = block_rows(work)
        self._steps = [*self.before, *self.layers, *self.after]
        self._draws = any(step.draws for step in self._steps)
        self._last_nonlinearity: tuple = (None, None)

    def _nonlinearity_step(self, nonlinearity) -> _ForwardStep:
        # Looked up once per nonlinearity: a net passes the same one on every call.
        function, step = self._last_nonlinearity
        if step is None or function is not nonlinearity:
            step = _forward_step(nonlinearity, self._out_width, self.dtype)
            self._last_nonlinearity = (nonlinearity, step)
        return step

    def row_wise(self, nonlinearity: Callable[[torch.Tensor], torch.Tensor] | None = None
                 ) -> list[bool]:
        """Which steps see a whole pass (the others run in blocks), here and now.

        Runs the probes this needs (once per process, shape class and thread
        count).

        Parameters
        ----------
        nonlinearity : callable, default=None
            The predict nonlinearity of the call; its step comes last.

        Returns
        -------
        list of bool
            One per step: prefix, layers (products, activations), tail, then
            the nonlinearity's unless it is the identity.
        """
        steps = list(self._steps)
        if not is_identity(nonlinearity):
            steps.append(self._nonlinearity_step(nonlinearity))
        return self._plan(steps, torch.get_num_threads(), _kernels_mode())

    @staticmethod
    def _plan(steps: list[_ForwardStep], threads: int, mode: str) -> list[bool]:
        return [step.rowwise or (step.kernel is not None and _trusted(step.kernel, threads, mode))
                for step in steps]

    def __call__(self, X: torch.Tensor,
                 nonlinearity: Callable[[torch.Tensor], torch.Tensor] | None = None, *,
                 rows_per_pass: int = BATCH_SIZE) -> torch.Tensor:
        """The output for ``X``, then ``nonlinearity`` of it; see the class docstring.

        The global random state is left as found: restored afterwards when a
        step is not known to draw nothing.
        """
        steps, draws = self._steps, self._draws
        if not is_identity(nonlinearity):
            last = self._nonlinearity_step(nonlinearity)
            steps, draws = [*steps, last], draws or last.draws
        flags = self._plan(steps, torch.get_num_threads(), _kernels_mode())
        if draws:
            with preserved_torch_rng("cpu"):
                return self._passes(X, steps, flags, rows_per_pass)
        return self._passes(X, steps, flags, rows_per_pass)

    def _passes(self, X, steps, flags, rows_per_pass):
        block = self.block_rows
        padded = not all(flags)
        per_pass = max(block, rows_per_pass // block * block)
        if any(flag and step.kernel is not None for step, flag in zip(steps, flags, strict=True)):
            # A probed kernel on whole passes: no wider than the probe checked.
            per_pass = min(per_pass, max(block, _PROBE_WIDTH // block * block))
        n_before, n_layers = len(self.before), len(self.layers)
        before = list(zip(steps[:n_before], flags[:n_before], strict=True))
        layers = list(zip(steps[n_before:n_before + n_layers], flags[n_before:n_before + n_layers],
                          strict=True))
        after = list(zip(steps[n_before + n_layers:], flags[n_before + n_layers:], strict=True))
        X = X.to(self.dtype)
        outputs = []
        # A call with no rows still makes one (empty) pass, for the output's width.
        for start in range(0, max(len(X), 1), per_pass):
            x = X[start:start + per_pass]
            n_rows = len(x)
            if padded and n_rows % block:
                x = torch.cat([x, x.new_zeros((block - n_rows % block, *x.shape[1:]))])
            elif before:
                x = x.clone()  # prefix modules may work in place: never on the caller's rows
            for step, whole in before:
                x = step.apply(x) if whole else _in_blocks(step.apply, x, block, dim=0)
            h = x.T.contiguous()
            for step, whole in layers:
                h = step.apply(h) if whole else _in_blocks(step.apply, h, block, dim=1)
            out = h.T.contiguous()
            for step, whole in after:
                out = step.apply(out) if whole else _in_blocks(step.apply, out, block, dim=0)
            outputs.append(out[:n_rows])
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def _in_blocks(function: Callable[[torch.Tensor], torch.Tensor], t: torch.Tensor, block: int,
               dim: int) -> torch.Tensor:
    """``function`` on contiguous blocks of ``block`` samples along ``dim`` of ``t``."""
    return torch.cat([function(part.contiguous()) for part in t.split(block, dim)], dim)


_Value = TypeVar("_Value")


class ModuleCache(Generic[_Value]):
    """Values derived from modules, rebuilt when a module changes.

    A module changes when a submodule is replaced or added, a setting that a
    submodule shows in its ``extra_repr()`` changes (a LeakyReLU's slope), a
    parameter or buffer is replaced, changed in place (its version counter
    moves) or moved to another device, or a forward hook is registered. Entries hold weak
    references only, so a cache keeps no module alive.

    A change made through a parameter's ``.data`` is not seen: torch gives
    ``.data`` a version counter of its own. Change weights in place under
    ``torch.no_grad()`` (or replace them) instead.
    """

    def __init__(self) -> None:
        self._entries: weakref.WeakKeyDictionary[nn.Module, tuple[list, tuple, _Value]] = (
            weakref.WeakKeyDictionary())

    def get(self, module: nn.Module, build: Callable[[nn.Module], _Value]) -> _Value:
        parts, details = _fingerprint(module)
        entry = self._entries.get(module)
        if entry is None or entry[1] != details or not all(
                ref() is part for ref, part in zip(entry[0], parts, strict=True)):
            # Weak references: a reference to a part would keep it alive, and one to
            # the module itself (the key) would keep the entry forever.
            entry = ([weakref.ref(part) for part in parts], details, build(module))
            self._entries[module] = entry
        return entry[2]


def _fingerprint(module: nn.Module) -> tuple[list, tuple]:
    """What ``module``'s derived values depend on: its parts, below it, and details.

    The parts are the submodules, parameters and buffers, compared by
    identity; the details are whether each module has forward hooks, its
    ``extra_repr()`` (the settings of torch's modules), and each tensor's
    version and device. This runs on every prediction.
    """
    submodules = list(module.modules())
    tensors = [*module.parameters(), *module.buffers()]
    details = [(has_forward_hooks(m), m.extra_repr()) for m in submodules]
    details.extend((tensor_version(t), t.device) for t in tensors)
    parts = [*submodules[1:], *tensors]
    # The number of parts is in the details: a list of the same length compares.
    details.append(len(parts))
    return parts, tuple(details)


# --- torch internals, in one place -----------------------------------------------------------
# torch has no public way to ask either question; tests/test_private_api.py fails
# with a clear message if a torch release changes these attributes.


def has_forward_hooks(module: nn.Module) -> bool:
    """Whether ``module`` itself has forward or forward pre-hooks.

    A hooked module expects its own forward to run (the hook sees its inputs
    and outputs), so such a module is not replaced by its compacted copy.
    torch can register hooks but not list them: this reads the dictionaries
    ``register_forward_hook`` and ``register_forward_pre_hook`` fill.
    """
    return bool(module._forward_hooks or module._forward_pre_hooks)


def tensor_version(tensor: torch.Tensor) -> int:
    """``tensor``'s version counter: it moves on every in-place change.

    What tells a changed parameter from the same one, at the cost of reading
    an integer (comparing values would cost a pass over every weight on every
    prediction). torch documents the counter (autograd's in-place checks and
    ``torch.autograd.graph.increment_version``) but reads it only through
    ``_version``.
    """
    return tensor._version


_FORWARDS: ModuleCache[CompactForward] = ModuleCache()


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
    params, input_index = _drop_dead_units(weights, biases, activations, dtype)

    linears = [_compact_linear(w, b, dtype, sparse_threshold) for w, b in params]
    prefix = [copy.deepcopy(child).cpu().eval() for _, child in children[:positions[0]]]
    tail = [copy.deepcopy(child).cpu().eval() for _, child in children[positions[-1] + 1:]]
    # The last layer's activation list is empty: what follows it is the tail.
    return CompactMLP(prefix, input_index, linears, activations, tail, dtype,
                      in_features=first.in_features).eval()


def _drop_dead_units(weights, biases, activations, dtype) -> tuple[list, torch.Tensor | None]:
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
        w = _csr(w)
    return CompactLinear(w, b)


class _CompactBase:
    """Prediction through a :class:`CompactMLP`; see the public subclasses."""

    def __init__(self, module: CompactMLP, *, n_features_in: int,
                 nonlinearity: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 batch_size: int = BATCH_SIZE) -> None:
        self.module_ = module
        self.n_features_in_ = n_features_in
        self.batch_size = batch_size
        self._nonlinearity = nonlinearity

    @property
    def nonlinearity(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """What ``predict`` applies to the network's output: the net's
        predict nonlinearity (a softmax after ``CrossEntropyLoss``, say);
        None: the output as it is."""
        return self._nonlinearity

    def _output(self, X) -> np.ndarray:
        X = check_array(X, dtype=[np.float32, np.float64], accept_sparse="csr")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} "
                             f"expects {self.n_features_in_} features as input.")
        if issparse(X):
            # Densified a chunk at a time, as it is used (each row is its own).
            step = sparse_chunk_rows(X.shape[1], max(self.batch_size, 1))
            return np.concatenate([self._output(X[start:start + step].toarray())
                                   for start in range(0, max(X.shape[0], 1), step)])
        with torch.inference_mode():
            out = self.module_.outputs(torch.from_numpy(X), self._nonlinearity,
                                       rows_per_pass=self.batch_size)
        return out.numpy().astype(np.float64)

    def __repr__(self) -> str:
        kinds = ", ".join("csr" if layer.is_sparse else "dense" for layer in self.module_.linears)
        widths = " -> ".join(str(w) for w in self.module_.widths)
        return f"{type(self).__name__}({widths}; {kinds})"


class CompactClassifier(ClassifierMixin, _CompactBase):
    """A fitted classifier's ticket, compacted for prediction.

    Returned by :meth:`LotteryTicketClassifier.compact` (see its example);
    predicts what the estimator predicts (probabilities within 1e-5) with a
    smaller network.

    Parameters
    ----------
    module : CompactMLP
        The compact network.
    classes : ndarray of shape (n_classes,)
        The estimator's ``classes_``.
    n_features_in : int
        The estimator's ``n_features_in_``.
    nonlinearity : callable or None, default=None
        What the net's ``predict_proba`` applies to its output.
    batch_size : int, default=4096
        Rows per forward pass.
    multilabel_dtype : numpy dtype or None, default=None
        For multilabel targets, the dtype of the indicator matrix.

    Attributes
    ----------
    module_ : CompactMLP
        The compact network (CPU, eval mode).
    classes_ : ndarray of shape (n_classes,)
        The class labels (for multilabel targets, the label indices).
    n_features_in_ : int
        Number of features the estimator was fitted on.
    batch_size : int
        Rows per forward pass.
    multilabel_dtype : numpy dtype or None
        For multilabel targets, the dtype of the indicator matrix ``predict``
        returns; None for one label per sample.
    """

    def __init__(self, module: CompactMLP, *, classes: np.ndarray, n_features_in: int,
                 nonlinearity: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 batch_size: int = BATCH_SIZE, multilabel_dtype: np.dtype | None = None) -> None:
        super().__init__(module, n_features_in=n_features_in, nonlinearity=nonlinearity,
                         batch_size=batch_size)
        self.classes_ = classes
        self.multilabel_dtype = multilabel_dtype

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        return self._output(X)

    def predict(self, X) -> np.ndarray:
        """Class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_labels)
            For multilabel targets, the indicator matrix (1 where the label's
            probability is above 0.5).
        """
        proba = self.predict_proba(X)
        if self.multilabel_dtype is not None:
            return (proba > 0.5).astype(self.multilabel_dtype)
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X, y) -> float:
        """Accuracy on ``(X, y)`` (subset accuracy for multilabel targets).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)

        Returns
        -------
        float
        """
        return float(accuracy_score(y, self.predict(X)))


class CompactRegressor(_CompactBase):
    """A fitted regressor's ticket, compacted for prediction.

    Returned by :meth:`LotteryTicketRegressor.compact`; predicts what the
    estimator predicts (within 1e-5) with a smaller network.

    Parameters
    ----------
    module : CompactMLP
        The compact network.
    n_features_in : int
        The estimator's ``n_features_in_``.
    nonlinearity : callable or None, default=None
        What the net's ``predict`` applies to its output.
    target_is_1d : bool
        Whether ``predict`` returns a 1-D array (the estimator was fitted on one).
    batch_size : int, default=4096
        Rows per forward pass.
    target_scaling : TargetScaling or None, default=None
        The estimator's target standardization, undone on the output.

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
    >>> all(w < 256 for w in small.module_.widths[1:-1])  # units left of the default 256
    True
    >>> bool(np.allclose(small.predict(X), reg.predict(X), atol=1e-5))
    True
    """

    def __init__(self, module: CompactMLP, *, n_features_in: int,
                 nonlinearity: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 target_is_1d: bool, batch_size: int = BATCH_SIZE,
                 target_scaling: TargetScaling | None = None) -> None:
        super().__init__(module, n_features_in=n_features_in, nonlinearity=nonlinearity,
                         batch_size=batch_size)
        self._target_is_1d = target_is_1d
        self._target_scaling = target_scaling

    @property
    def target_scaling(self) -> TargetScaling | None:
        """The estimator's target standardization, undone on the network's output
        (:meth:`TargetScaling.inverse`); None: the output as it is."""
        return self._target_scaling

    def predict(self, X) -> np.ndarray:
        """Predicted targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        y = self._output(X)
        if self._target_scaling is not None:
            y = self._target_scaling.inverse(y)
        return y.ravel() if self._target_is_1d else y

    def score(self, X, y) -> float:
        """R^2 on ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        float
        """
        return float(r2_score(y, self.predict(X)))
