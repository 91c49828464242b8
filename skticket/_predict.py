"""Predictions of a trained net that do not depend on the other rows of the call.

A float32 matrix product rounds a row's result differently with the number
of rows it is computed with: BLAS libraries pick their kernels, blockings and
thread splits by shape (measured on torch 2.13's CPU build: a row computed
alone, or with 2, 3, 5, ..., 11 others, differs in its last bits from the
same row in a batch of 1024; for narrow layers most batch sizes differ). So
a row's prediction would change with what it is predicted with, and
scikit-learn's ``check_methods_subset_invariance`` fails.

:func:`predict_outputs` has two paths, both with that guarantee:

* An MLP-like module on the CPU (what :func:`~skticket._compact.compact_module`
  takes) predicts through its compacted copy: dead units removed, sparse
  layers as CSR products, run by :class:`~skticket._compact.CompactForward`,
  whose steps either compute each row on its own by construction, or use a
  kernel a run-time probe found to do so on this machine, or run on
  fixed-shape blocks. A ticket's pruned weights then cost nothing, and one row
  costs one row. The copy is kept per module and rebuilt when the module
  changes (:class:`~skticket._compact.ModuleCache`).
* Any other net runs skorch's own ``evaluation_step`` and ``infer`` on blocks
  of a fixed number of rows, the last block padded with zero rows: each row
  goes through the same products whatever else is in the call. A call
  computes at least one whole block: the block is sized from the module's
  parameter count, about 2**21 multiply-adds (16 rows for wide nets to 1024
  for small ones).
"""

from __future__ import annotations

import weakref

import numpy as np
import torch
from scipy.sparse import issparse
from skorch import NeuralNet
from skorch.dataset import Dataset
from torch import nn
from torch.utils.data import DataLoader

from ._activations import predict_nonlinearity
from ._compact import (
    CompactForward,
    ModuleCache,
    block_rows,
    compact_module,
    has_forward_hooks,
    sparse_chunk_rows,
)
from ._rng import preserved_torch_rng, seeded

# predict_nonlinearity: what the estimators give their compact predictors too.
__all__ = ["predict_nonlinearity", "predict_outputs"]

# DataLoader arguments that decide only how rows are grouped, not what a row is.
_GROUPING_ARGS = frozenset({"batch_size", "shuffle", "drop_last", "num_workers", "pin_memory"})


def _module_block_rows(module: nn.Module) -> int:
    """Rows per forward pass of ``module`` itself, fixed by its parameter count."""
    rows = _BLOCK_ROWS.get(module)
    if rows is None:
        rows = _BLOCK_ROWS[module] = block_rows(sum(p.numel() for p in module.parameters()))
    return rows


# A module's parameter count does not change: counted once per module.
_BLOCK_ROWS: weakref.WeakKeyDictionary[nn.Module, int] = weakref.WeakKeyDictionary()


def _plain_inference(net: NeuralNet) -> bool:
    """Whether ``net`` predicts through skorch's default data pipeline, unchanged.

    A user's own dataset class or collate function may change what a row is;
    such nets predict through skorch itself.
    """
    return (net.dataset is Dataset and net.iterator_valid is DataLoader
            and set(net.get_params_for("iterator_valid")) <= _GROUPING_ARGS)


def _compacted_forward(module: nn.Module) -> CompactForward | None:
    """The forward pass of ``module``'s compacted copy, or None if it has none."""
    if any(t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float64)
           for t in module.parameters()):
        return None  # other devices and dtypes: the module itself
    if any(has_forward_hooks(m) for m in module.modules()):
        return None  # a hook expects the module's own forward to run
    try:
        # Without masks: a pruned weight is a zero, and zeros are dropped.
        return CompactForward(compact_module(module))
    except TypeError:
        return None  # not MLP-like


_COMPACTED: ModuleCache[CompactForward | None] = ModuleCache()


def _runs_skorch_forward(net: NeuralNet) -> bool:
    # A net class with its own evaluation step or inference must run it.
    return (type(net).evaluation_step is NeuralNet.evaluation_step
            and type(net).infer is NeuralNet.infer)


def predict_outputs(net: NeuralNet, X: np.ndarray) -> np.ndarray:
    """What ``net.predict_proba(X)`` returns, each row independent of the others.

    The module's output after the net's predict nonlinearity (probabilities for
    a classifier, the predictions for a regressor), as float64. The global
    random state is left untouched.

    Parameters
    ----------
    net : skorch NeuralNet
        A trained (initialized) net.
    X : ndarray or scipy sparse matrix of shape (n_samples, n_features)
        Rows as the net takes them (float32). A sparse X is densified a chunk
        of rows at a time (:func:`~skticket._compact.sparse_chunk_rows`): each
        row's output is its own whatever the rows around it, so the result is
        that of the dense X.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs)
    """
    if issparse(X):
        step = sparse_chunk_rows(X.shape[1])
        return np.concatenate([predict_outputs(net, X[start:start + step].toarray())
                               for start in range(0, max(X.shape[0], 1), step)])
    if not _plain_inference(net):
        # A custom data pipeline: skorch's own path (rows then depend on their batch).
        with seeded(None, net.device):
            return np.asarray(net.predict_proba(X), dtype=np.float64)
    nonlinearity = predict_nonlinearity(net)  # checks that the net is initialized
    rows = torch.from_numpy(np.ascontiguousarray(X))
    forward = (_COMPACTED.get(net.module_, _compacted_forward) if _runs_skorch_forward(net)
               else None)
    # inference_mode rather than no_grad: the same kernels, without the
    # version counting and view tracking each op does otherwise.
    if forward is not None:
        # The compacted forward leaves the random state as found itself, and
        # takes the lock only if a step might draw.
        with torch.inference_mode():
            return forward(rows, nonlinearity).numpy().astype(np.float64)
    # Only torch's generator: an inference pass draws from nothing else, and
    # numpy's global state costs more to save than a small forward pass.
    with preserved_torch_rng(net.device), torch.inference_mode():
        return _net_blocks(net, rows, nonlinearity)


def _net_blocks(net: NeuralNet, rows: torch.Tensor, nonlinearity) -> np.ndarray:
    """skorch's forward on fixed blocks of rows (see the module docstring)."""
    block = _module_block_rows(net.module_)
    n_rows = len(rows)
    outputs = []
    for start in range(0, n_rows, block):
        chunk = rows[start:start + block]
        if len(chunk) < block:
            chunk = torch.cat([chunk, chunk.new_zeros((block - len(chunk), *chunk.shape[1:]))])
        if start == 0:
            # skorch's own evaluation step (and any override of it): it checks
            # the net, puts its modules in eval mode and calls infer.
            output = net.evaluation_step((chunk, None), training=False)
        else:
            # The modes are set: what evaluation_step would do again is infer.
            output = net.infer(chunk)
        if isinstance(output, tuple):
            output = output[0]
        outputs.append(output if nonlinearity is None else nonlinearity(output))
    # One copy off the device and into float64 for the whole call.
    result = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
    return result[:n_rows].cpu().numpy().astype(np.float64)
