"""A content-addressed cache of trained rounds: the ``memory`` parameter.

A round's outcome is a function of its inputs alone: the sized template net
(every parameter of it, the module's included), the training data, the start
weights, the masks, the round's seed and the training hooks (by value). All
of them are hashed into one key, so any two trainings with equal inputs share
one result, whichever search asked for it: the rounds that the IMP
trajectories towards 0.5 and towards 0.95 sparsity have in common, a
baseline, an explicit ``prune``. The estimators' loop does not know the cache
exists; a session only hands :func:`~skticket._stacking.train_members` to
:func:`cached_trainings` when ``memory`` is set.

What is stored is plain data (the trained module's state as numpy arrays, the
skorch history, the training time, the hooks' summaries, the masks if a hook
moved them), never the net object:
on a hit the net is rebuilt through skorch's ``initialize()`` and loaded by
value, exactly as :func:`~skticket._training.run_training` builds it.

Only completed, finite rounds are stored: :func:`~skticket._training.run_training`
raises on a Ctrl-C or a diverged training, and joblib stores nothing for a
call that raises. An entry that cannot be read (joblib then trains again) or
does not hold a complete, finite round is treated as missing: the round is
trained again and the entry rewritten.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import inspect
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import sklearn
import skorch
import torch
from joblib.hashing import NumpyHasher
from skorch.history import History

from . import (
    _edge_popup,
    _hooks,
    _mask_schedules,
    _mlp,
    _pruning,
    _rng,
    _stacking,
    _targeted_dropout,
    _training,
)
from ._rng import seeded
from ._training import (
    TrainingResult,
    TrainingSpec,
    epoch_train_loss,
    handed_back,
    load_state,
    module_state,
    non_finite_values,
    optimizer_implementation,
    training_net,
)
from .exceptions import TrainingDivergedError

# Bump when the stored payload or the key's layout changes: old entries are
# then simply never found again.
_FORMAT = 6

# Code whose behaviour the versions in every key already pin down: only the
# user's own classes and functions are hashed by their source.
_VERSIONED_PACKAGES = frozenset({"torch", "skorch", "sklearn", "numpy", "scipy", "joblib",
                                 "skticket"}) | frozenset(sys.stdlib_module_names)


@dataclass
class CachedTrainingResult(TrainingResult):
    """A training restored from the cache instead of run.

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
        elif isinstance(obj, type) or inspect.isfunction(obj):
            # pickle names a class or function by its qualified name alone: the
            # user's module class, edited under the same name, would keep its
            # key and a persistent cache would hand back the old results. (A
            # name also hashes what pickle cannot reference: lambdas, classes
            # defined inside a function.)
            obj = ("code", obj.__module__, obj.__qualname__, _source_digest_of(obj))
        super().save(obj)


@functools.cache
def _source_digest_of(obj) -> str | None:
    """A digest of the source of a user's class or function, if ``inspect`` can read it.

    Read once per object and process: the code a process runs does not change
    under it (an edited and reloaded module makes new objects).
    """
    if (getattr(obj, "__module__", None) or "").partition(".")[0] in _VERSIONED_PACKAGES:
        return None
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):  # no file (an interactive session): the name has to do
        return None
    return hashlib.sha1(source.encode()).hexdigest()


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
    name and, for the user's own code (anything outside the standard library,
    numpy, scipy, torch, skorch, scikit-learn, joblib and skticket, whose
    versions are part of every key), by their source when ``inspect`` can
    read it.

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


# What, besides its inputs, decides a round's result: the code that trains it (alone
# or as a member of a stack).
# The source of the modules a round runs through is part of every key, so that
# a persistent cache never hands a result of an edited training loop to the
# new one. Read once, at import, so that it describes the code this process runs.
_ENVIRONMENT = (
    _FORMAT,
    torch.__version__,
    skorch.__version__,
    sklearn.__version__,
    np.__version__,
    _source_digest(_training, _stacking, _hooks, _mask_schedules, _pruning, _rng, _mlp,
                   _edge_popup, _targeted_dropout, sys.modules[__name__]),
)


def training_key(spec: TrainingSpec) -> str:
    """The key of one training: a hash of every field of its :class:`TrainingSpec`.

    The net enters through its class and ``get_params(deep=False)``: module,
    its ``module__*`` arguments (a module instance by its weights), criterion,
    optimizer and the implementation it runs on (as
    :func:`~skticket._training.optimizer_implementation` chooses it, so that
    a net that asks for the kernel chosen anyway shares its rounds), learning
    rate, epochs, batch size, callbacks, iterators, device and the rest, but
    ``verbose`` and skorch's private bookkeeping. The default dtype is
    included because it decides the dtype in which a module class builds its
    weights.
    """
    fields = {field.name: getattr(spec, field.name) for field in dataclasses.fields(spec)}
    template = fields.pop("template")
    # What a training prints changes nothing it computes.
    # skorch lists its own bookkeeping among the parameters (``_params_to_validate``,
    # the names of the ``__`` parameters given): it repeats what they say.
    net_params = {name: value for name, value in template.get_params(deep=False).items()
                  if name != "verbose" and not name.startswith("_")}
    net_params.update(optimizer_implementation(template))
    return content_hash({
        "environment": _ENVIRONMENT,
        "net_class": type(template),
        "net_params": net_params,
        "default_dtype": str(torch.get_default_dtype()),
        # A hook is hashed by value, its class by its source; the class of the
        # callback it builds may live elsewhere, and is hashed by its source too.
        "hook_callbacks": [type(hook.callback()) for hook in spec.hooks],
        **{name: dict(value) if isinstance(value, Mapping) else value
           for name, value in fields.items()},
    })


class _PendingTraining:
    """One training on a cache miss: the function and spec handed to the cached function
    (not hashed: the key names the entry), and the result once trained."""

    def __init__(self, train, spec: TrainingSpec) -> None:
        self.train = train
        self.spec = spec
        self.result: TrainingResult | None = None

    def __repr__(self) -> str:  # joblib's verbose output prints the call
        return "<training inputs>"


def _train_and_store(key: str, job: _PendingTraining) -> dict:
    """Run the training (called on a cache miss only) and return what is stored.

    ``key`` alone names the entry; ``job`` is excluded from joblib's hash.
    """
    job.result = job.train(job.spec)
    net = job.result.net
    return {
        "state": module_state(net.module_),
        "history": list(net.history),
        "seconds": job.result.seconds,
        "hook_summaries": job.result.hook_summaries,
        "masks": job.result.masks,
    }


def _owned(value):
    """``value`` as stored, with every numpy array copied into memory: a memory opened
    with ``mmap_mode`` hands out read-only maps."""
    if isinstance(value, np.ndarray):
        return np.array(value)
    if isinstance(value, dict):
        return {key: _owned(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_owned(item) for item in value)
    return copy.deepcopy(value)


class _BrokenEntry(Exception):
    """A stored entry that does not hold a complete, finite round."""


def _restore(spec: TrainingSpec, payload) -> CachedTrainingResult:
    """The trained net of a stored round, built as :func:`run_training` builds it.

    Raises :class:`_BrokenEntry` if the payload is not what
    :func:`_train_and_store` stores for a completed, finite round.
    """
    try:
        masks = payload["masks"]
        if masks is not None:
            masks = {name: np.array(mask, dtype=bool) for name, mask in masks.items()}
        hook_summaries = tuple(_owned(payload["hook_summaries"]))
        # Built as the training built it; the masks stay attached, so that
        # further training of the net holds them.
        net = training_net(spec)
        with seeded(spec.seed, net.device):
            net.initialize()
        net = handed_back(net, spec, masks)
        load_state(net.module_, _owned(payload["state"]))
        net.history = History(payload["history"])
        seconds = float(payload["seconds"])
        train_loss = epoch_train_loss(net.history)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
        raise _BrokenEntry(f"{type(error).__name__}: {error}") from error
    problem = non_finite_values(net.module_, train_loss)
    if problem is None and len(hook_summaries) != len(spec.hooks):
        problem = (f"{len(hook_summaries)} hook summaries stored for the training's "
                   f"{len(spec.hooks)} hooks")
    if problem is not None:
        raise _BrokenEntry(problem)
    return CachedTrainingResult(net=net, seconds=seconds, train_loss=train_loss,
                                hook_summaries=hook_summaries, masks=masks)


def cached_trainings(
    memory,
    train_many: Callable[[list[TrainingSpec]], list[TrainingResult | TrainingDivergedError]],
    specs: list[TrainingSpec],
) -> list[TrainingResult | TrainingDivergedError]:
    """:func:`cached_training` of many independent trainings, those not stored trained at
    once by ``train_many`` (:func:`~skticket._stacking.train_members`).

    Each training is keyed and stored exactly as :func:`cached_training` keys and
    stores it alone: a member already in ``memory`` is restored, not trained;
    the others are trained together and each stored under its own key, so
    that a later solo training finds it. A diverged member is given back as
    its error and nothing is stored for it.
    """
    cached = memory.cache(_train_and_store, ignore=["job"])
    results: list = [None] * len(specs)
    missing = []
    for position, spec in enumerate(specs):
        key = training_key(spec)
        # Only looked up here: a miss is trained with the others below.
        job = _PendingTraining(_not_looked_up, spec)
        if not cached.check_call_in_cache(key, job):
            missing.append((position, key, False))
            continue
        try:
            results[position] = _restore(spec, cached(key, job))
        except (_BrokenEntry, _NotLookedUp) as broken:
            if isinstance(broken, _BrokenEntry):
                warnings.warn(f"A stored round in memory is broken ({broken}); training it "
                              "again and overwriting the entry.", UserWarning, stacklevel=2)
            missing.append((position, key, True))
    trained = train_many([specs[position] for position, _, _ in missing]) if missing else []
    for (position, key, present), result in zip(missing, trained, strict=True):
        results[position] = result
        if isinstance(result, TrainingResult):
            # Stored as its solo training stores it: the same key, the same payload, and
            # through the same call: joblib 1.3's ``call`` does not record the function's
            # code, and a later lookup that finds none records it and takes the entry for
            # stale (one training more). An entry that was there but unreadable is
            # overwritten.
            job = _PendingTraining(lambda spec, result=result: result, specs[position])
            if present:
                cached.call(key, job)
            else:
                cached(key, job)
    return results


class _NotLookedUp(Exception):
    """An entry joblib found but could not read: it would have trained it."""


def _not_looked_up(spec: TrainingSpec) -> TrainingResult:
    raise _NotLookedUp("the entry could not be read")


def cached_training(
    memory, train: Callable[[TrainingSpec], TrainingResult], spec: TrainingSpec
) -> TrainingResult:
    """``train(spec)`` (:func:`run_training`) through ``memory`` (a ``joblib.Memory``):
    :func:`cached_trainings` of one training, so that one lookup and one store serve
    a training alone and a stack's members.

    Returns the freshly trained round on a miss (after storing it), or a
    :class:`CachedTrainingResult` rebuilt from the store on a hit. Two processes
    that miss the same round both train it; joblib writes each entry
    atomically and the two results are equal, so either may win. What
    ``train`` raises (a Ctrl-C, a diverged training) propagates and nothing
    is stored; a broken entry is trained again and overwritten.
    """
    result, = cached_trainings(memory, lambda specs: [train(one) for one in specs], [spec])
    return result
