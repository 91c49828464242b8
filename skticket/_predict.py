"""Predictions of a trained net whose rows do not depend on the other rows of the call.

A float32 matrix product rounds a row's result differently with the number
of rows it is computed with: BLAS libraries pick their kernels, blockings and
thread splits by shape, and the instruction sets of the CPU. So a row's
prediction would change in its last float32 bits with what it is predicted
with, and scikit-learn's ``check_methods_subset_invariance`` fails.

:func:`predict_outputs` computes an MLP-like net (:func:`~skticket._compact.mlp_children`,
with only linear layers and modules of the activation table) in float64 from
its float32 weights, as scikit-learn's MLP computes: kernels still round by
shape, but float64 rounding (about 1e-16 relative) is far below anything the
float32 weights resolve, so a row's outputs agree to 1e-12 relative whatever
the batch, and its labels are the same. Nothing about the kernels is assumed.
Many rows go through the net's compacted copy (pruned weights cost nothing),
computed afresh on each call; a few rows through the layers as they are.

Any other net (a module of one's own, forward hooks, a net class with its own
``infer`` or ``evaluation_step``, a module on a GPU) runs skorch's own
evaluation step on blocks of a fixed number of rows, the last one padded
with zero rows: each row goes through products of the same shapes whatever
else is in the call, so its outputs do not depend on the batch as long as a
kernel computes a row the same way wherever it sits in a call of one shape
(what dense BLAS kernels do, and what the tests check; no library promises
it). A net with its own dataset or iterator is predicted by skorch itself,
with no such promise.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import issparse
from skorch import NeuralNet
from skorch.dataset import Dataset
from torch import nn
from torch.nn import functional
from torch.utils.data import DataLoader

from ._activations import entry_of, predict_nonlinearity
from ._compact import compact_module, mlp_children, sparse_chunk_rows
from ._compat import has_forward_hooks
from ._rng import preserved_torch_rng, seeded

# predict_nonlinearity: what the estimators give their compact predictors too.
__all__ = ["COMPACT_MIN_ROWS", "predict_nonlinearity", "predict_outputs"]

#: Calls with at least this many rows compact the net first. Measured on the
#: default net's 90% ticket (64-256-256-10; 2-core CPU, one thread, under load):
#: compacting takes about 1.8 ms, and the two paths cost the same at about 750
#: rows (512 rows: 2.3 ms dense, 3.2 ms compacted; 1,024 rows: 5.5 and 4.1 ms).
COMPACT_MIN_ROWS = 1024

# DataLoader arguments that decide only how rows are grouped, not what a row is.
_GROUPING_ARGS = frozenset({"batch_size", "shuffle", "drop_last", "num_workers", "pin_memory"})

# Rows of a fixed-shape block of skorch's forward: a power of two from 16 to
# 1024 with about 2**21 multiply-adds a block (about 100 us on a 2-core CPU).
_BLOCK_WORK = 2**21
_MIN_BLOCK, _MAX_BLOCK = 16, 1024


def _plain_inference(net: NeuralNet) -> bool:
    """Whether ``net`` predicts through skorch's default data pipeline, unchanged.

    A user's own dataset class or collate function may change what a row is;
    such nets predict through skorch itself.
    """
    return (net.dataset is Dataset and net.iterator_valid is DataLoader
            and set(net.get_params_for("iterator_valid")) <= _GROUPING_ARGS)


def _float64_layers(net: NeuralNet) -> list[nn.Module] | None:
    """The modules of ``net``'s module in order, where it predicts in float64, else None.

    That is, an MLP-like module on the CPU made of ``nn.Linear`` layers and
    modules of the activation table only (they compute in any dtype and draw
    nothing in eval mode), without forward hooks (a hook expects the module's
    own forward to run), in a net that runs skorch's own evaluation step and
    inference.
    """
    if (type(net).evaluation_step is not NeuralNet.evaluation_step
            or type(net).infer is not NeuralNet.infer):
        return None
    try:
        children = [child for _, child in mlp_children(net.module_)]
    except TypeError:
        return None
    for child in children:
        if type(child).forward is nn.Linear.forward:
            if child.weight.device.type != "cpu":
                return None
        elif entry_of(child) is None:  # a Linear's subclass with its own forward too
            return None
    if any(has_forward_hooks(m) for m in net.module_.modules()):
        return None
    return children


def predict_outputs(net: NeuralNet, X: np.ndarray) -> np.ndarray:
    """What ``net.predict_proba(X)`` returns, each row independent of the others.

    The module's output after the net's predict nonlinearity (probabilities for
    a classifier, the predictions for a regressor), as float64. For an
    MLP-like net, computed in float64: a row's outputs agree to 1e-12
    relative whatever the rows around it (see the module docstring for other
    nets). The global random state is left untouched.

    Parameters
    ----------
    net : skorch NeuralNet
        A trained (initialized) net.
    X : ndarray or scipy sparse matrix of shape (n_samples, n_features)
        Rows as the net takes them (float32). A sparse X is densified a chunk
        of rows at a time (:func:`~skticket._compact.sparse_chunk_rows`).

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
    layers = _float64_layers(net)
    # inference_mode rather than no_grad: the same kernels, without the
    # version counting and view tracking each op does otherwise.
    if layers is None:
        # Only torch's generator: an inference pass draws from nothing else, and
        # numpy's global state costs more to save than a small forward pass.
        with preserved_torch_rng(net.device), torch.inference_mode():
            return _net_blocks(net, rows, nonlinearity)
    # The layers draw nothing; a nonlinearity of one's own might.
    with preserved_torch_rng("cpu"), torch.inference_mode():
        if len(rows) >= COMPACT_MIN_ROWS:
            # A pruned weight is a zero, and zeros are dropped: no masks needed.
            out = compact_module(net.module_).outputs(rows)
        else:
            out = _float64_forward(layers, rows)
        out = out if nonlinearity is None else nonlinearity(out)
    return np.asarray(out.numpy(), dtype=np.float64)


def _float64_forward(layers: list[nn.Module], rows: torch.Tensor) -> torch.Tensor:
    """The layers (of :func:`_float64_layers`) applied in float64 to ``rows``, as in eval mode."""
    h = rows.to(torch.float64)
    for layer in layers:
        if isinstance(layer, nn.Linear):  # with nn.Linear's own forward
            bias = None if layer.bias is None else layer.bias.double()
            h = functional.linear(h, layer.weight.double(), bias)
        elif not isinstance(layer, (nn.Dropout, nn.AlphaDropout)):  # identities in eval mode
            h = layer(h)
    return h


def _net_blocks(net: NeuralNet, rows: torch.Tensor, nonlinearity) -> np.ndarray:
    """skorch's forward on fixed blocks of rows (see the module docstring)."""
    work = sum(p.numel() for p in net.module_.parameters())
    block = 2 ** int(np.floor(np.log2(max(1.0, _BLOCK_WORK / max(1, work)))))
    block = int(np.clip(block, _MIN_BLOCK, _MAX_BLOCK))
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
