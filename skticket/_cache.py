"""A content-addressed cache of trained rounds: the ``memory`` parameter.

A round's outcome is a function of its inputs alone: the sized template net
(every parameter of it, the module's included), the training data, the start
weights, the masks, the round's seed and the rewind step to capture. All of
them are hashed into one key, so any two trainings with equal inputs share
one result, whichever search asked for it: the rounds that the IMP
trajectories towards 0.5 and towards 0.95 sparsity have in common, a
baseline, an explicit ``prune``. The estimators' loop does not know the cache
exists; it only hands :func:`~skticket._training.train_round` to
:func:`cached_train_round` when ``memory`` is set.

What is stored is plain data (the trained module's state as numpy arrays, the
skorch history, the rewind point, the training time), never the net object:
on a hit the net is rebuilt through skorch's ``initialize()`` and loaded by
value, exactly as :func:`~skticket._training.train_round` builds it.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import skorch
import torch
from joblib.hashing import NumpyHasher
from sklearn.base import clone
from skorch import NeuralNet
from skorch.history import History

from . import _mlp, _rng, _training
from ._rng import seeded
from ._training import (
    _MASK_CALLBACK,
    ApplyMasks,
    RoundResult,
    State,
    load_state,
    module_state,
)

# Bump when the stored payload or the key's layout changes: old entries are
# then simply never found again.
_FORMAT = 1


@dataclass
class CachedRoundResult(RoundResult):
    """A round restored from the cache instead of trained.

    ``seconds`` is the time its training took when it ran.
    """


class _Hasher(NumpyHasher):
    """joblib's hasher, with torch tensors hashed by value.

    joblib pickles a tensor through ``torch.save``, whose bytes differ between
    two saves of the same tensor, so the key of a net holding tensors (a module
    instance, ``criterion__weight``) would never match. A tensor is hashed as
    its dtype, layout, device, shape and values instead.
    """

    def save(self, obj):
        if isinstance(obj, torch.Tensor):
            obj = _tensor_token(obj)
        super().save(obj)


def _tensor_token(tensor: torch.Tensor) -> tuple:
    values = tensor.detach()
    if values.layout != torch.strided:
        values = values.to_dense()
    values = values.cpu().contiguous()
    try:
        array = values.numpy()
    except TypeError:  # bfloat16 and other dtypes numpy lacks: hash the raw bytes
        array = values.reshape(-1).view(torch.uint8).numpy()
    return ("torch.Tensor", type(tensor).__qualname__, str(tensor.dtype), str(tensor.layout),
            str(tensor.device), tuple(tensor.shape), bool(tensor.requires_grad), array)


def content_hash(obj) -> str:
    """A hash of ``obj`` by value, equal across processes and sessions.

    Numpy arrays and torch tensors are hashed by their bytes, dicts and sets
    independently of their order; classes and functions by their qualified
    name.

    Examples
    --------
    >>> import numpy as np, torch
    >>> content_hash({"a": torch.ones(3), "b": np.zeros(2)}) == content_hash(
    ...     {"b": np.zeros(2), "a": torch.ones(3)})
    True
    >>> content_hash(torch.ones(3)) == content_hash(torch.ones(3, dtype=torch.float64))
    False
    """
    # sha1 hashes the arrays (data, weights, masks) about twice as fast as md5
    # on CPUs with SHA instructions; keys need no cryptographic strength.
    return _Hasher(hash_name="sha1").hash(obj)


def _source_digest(*modules) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for module in modules:
        try:
            digest.update(inspect.getsource(module).encode())
        except (OSError, TypeError):  # no source to read: the versions have to do
            pass
    return digest.hexdigest()


# What, besides its inputs, decides a round's result: the code that trains it.
# The source of the modules a round runs through is part of every key, so that
# a persistent cache never hands a result of an edited training loop to the
# new one. Read once, at import, so that it describes the code this process runs.
_ENVIRONMENT = (
    _FORMAT,
    torch.__version__,
    skorch.__version__,
    np.__version__,
    _source_digest(_training, _rng, _mlp, sys.modules[__name__]),
)


def round_key(
    template: NeuralNet,
    X: np.ndarray,
    y: np.ndarray,
    *,
    start: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray] | None,
    seed: int,
    capture_step: int,
) -> str:
    """The key of one round: a hash of every input of its training.

    The net enters through its class and ``get_params(deep=False)``: module,
    its ``module__*`` arguments (a module instance by its weights), criterion,
    optimizer, learning rate, epochs, batch size, callbacks, iterators, device
    and the rest. The default dtype is included because it decides the dtype
    in which a module class builds its weights.
    """
    return content_hash({
        "environment": _ENVIRONMENT,
        "net_class": type(template),
        "net_params": template.get_params(deep=False),
        "default_dtype": str(torch.get_default_dtype()),
        "X": X,
        "y": y,
        "start": dict(start),
        "masks": None if masks is None else dict(masks),
        "seed": int(seed),
        "capture_step": int(capture_step),
    })


class _Job:
    """One round's training, handed to the cached function but not hashed."""

    def __init__(self, train, inputs: dict) -> None:
        self.train = train
        self.inputs = inputs
        self.result: RoundResult | None = None

    def __repr__(self) -> str:  # joblib's verbose output prints the call
        return "<round inputs>"


def _trained_round(key: str, job: _Job) -> dict:
    """Train the round (called on a cache miss only) and return what is stored.

    ``key`` alone names the entry; ``job`` is excluded from joblib's hash.
    """
    job.result = job.train(**job.inputs)
    net = job.result.net
    return {
        "state": module_state(net.module_),
        "history": list(net.history),
        "rewind_point": job.result.rewind_point,
        "seconds": job.result.seconds,
    }


def _copy_state(state: State | None) -> State | None:
    # np.array copies: a memory opened with mmap_mode hands out read-only maps.
    return None if state is None else {name: np.array(value) for name, value in state.items()}


def _restore(template: NeuralNet, masks, seed: int, payload: dict) -> CachedRoundResult:
    """The trained net of a stored round, built as :func:`train_round` builds it."""
    net = clone(template)
    if masks is not None:
        # The masks stay attached, so that further training of the net holds them.
        net.set_params(callbacks=[*(net.callbacks or []), (_MASK_CALLBACK, ApplyMasks(masks))])
    with seeded(seed, net.device):
        net.initialize()
    load_state(net.module_, _copy_state(payload["state"]))
    net.history = History(payload["history"])
    return CachedRoundResult(net=net, rewind_point=_copy_state(payload["rewind_point"]),
                             seconds=payload["seconds"])


def cached_train_round(
    memory,
    train: Callable[..., RoundResult],
    *,
    template: NeuralNet,
    X: np.ndarray,
    y: np.ndarray,
    start: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray] | None,
    seed: int,
    capture_step: int = 0,
) -> RoundResult:
    """``train(**inputs)`` (:func:`train_round`) through ``memory`` (a ``joblib.Memory``).

    Returns the freshly trained round on a miss (after storing it), or a
    :class:`CachedRoundResult` rebuilt from the store on a hit. Two processes
    that miss the same round both train it; joblib writes each entry
    atomically and the two results are equal, so either may win.
    """
    inputs = dict(template=template, X=X, y=y, start=start, masks=masks, seed=seed,
                  capture_step=capture_step)
    key = round_key(**inputs)
    job = _Job(train, inputs)
    payload = memory.cache(_trained_round, ignore=["job"])(key, job)
    if job.result is not None:
        return job.result
    return _restore(template, masks, seed, payload)
