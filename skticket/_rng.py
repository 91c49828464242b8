"""Seeds from ``random_state``, used inside contexts that restore the global RNGs.

Threads
-------
torch has one global generator per device for the whole process, and skorch
draws from it (weight init, the DataLoader's base seed, dropout). Every context
here saves that state, sets or uses it, and restores it on exit, so two threads
inside such contexts at once would interleave their draws (results would depend
on timing) and restore each other's states. All of them therefore hold one
process-wide re-entrant lock from entry to exit: a fit (or a prediction) in a
thread draws exactly what it draws alone, so joblib's threading backend and Dask
workers with several threads give the results of ``n_jobs=1``. The price is
that torch work of this package runs one fit or prediction at a time per
process; threads add no speed, processes do (joblib's default backend, one Dask
worker process per core). Refusing to run outside the main thread instead would
rule out Dask, whose workers run every task in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import numpy as np
import torch
from sklearn.utils import check_random_state

# Independent streams, so that a baseline differs from the winning ticket only
# where it should: the same data order, another init, another mask layout.
# "mask" draws the random start masks of sparse trainings. A new stream goes
# last: the seeds drawn before it stay what they were.
SEED_STREAMS = ("init", "data", "split", "reinit", "permute", "mask")

# Re-entrant: a fit's preserved_global_state wraps the seeded trainings and
# predictions inside it, all in the same thread.
_global_state_lock = threading.RLock()


def _fresh_lock_in_child() -> None:
    # A thread that held the lock when another one forked does not exist in the
    # child, which would wait for it forever. Each context releases the lock
    # object it acquired, so the forking thread, if it held the old one, still
    # releases that one in the child.
    global _global_state_lock
    _global_state_lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_lock_in_child)


def draw_seeds(random_state) -> dict[str, int]:
    """One base seed per stream in :data:`SEED_STREAMS`.

    ``None`` draws from the operating system's entropy rather than numpy's
    global generator, which scikit-learn's ``check_random_state(None)`` would
    return: fitting must leave the global random state as it found it.
    """
    if random_state is None:
        entropy = np.random.SeedSequence().generate_state(len(SEED_STREAMS))
        values = [int(v) for v in entropy]
    else:
        rng = check_random_state(random_state)
        values = [int(v) for v in rng.randint(0, 2**31 - 1, size=len(SEED_STREAMS))]
    return dict(zip(SEED_STREAMS, values, strict=True))


def round_seed(base: int, round_index: int) -> int:
    """A seed for one round of a stream, independent of the other rounds."""
    return int(np.random.SeedSequence([base, round_index]).generate_state(1)[0])


@contextlib.contextmanager
def seeded(seed: int | None, device: str | torch.device = "cpu") -> Iterator[None]:
    """Seed torch (``None``: leave it unseeded) and restore every global RNG on exit.

    skorch's DataLoader draws a base seed from the global torch generator on
    every pass, even an unshuffled prediction pass, so predicting also runs
    inside this context. Holds the module's lock throughout (see the module
    docstring): another thread's section waits until this one has restored
    the global state.
    """
    on_cuda = torch.device(device).type == "cuda"
    cuda_devices = list(range(torch.cuda.device_count())) if on_cuda else []
    lock = _global_state_lock
    with lock:
        # The legacy global generator is exactly the state to preserve.
        numpy_state = np.random.get_state()  # noqa: NPY002
        try:
            with torch.random.fork_rng(devices=cuda_devices):
                if seed is not None:
                    if on_cuda:
                        torch.manual_seed(seed)
                    else:
                        # CPU only: torch.manual_seed would also queue a seed for
                        # CUDA, changing its global state once CUDA starts.
                        torch.default_generator.manual_seed(seed)
                yield
        finally:
            np.random.set_state(numpy_state)  # noqa: NPY002


@contextlib.contextmanager
def preserved_torch_rng(device: str | torch.device = "cpu") -> Iterator[None]:
    """Restore torch's global generator(s) on exit, and nothing else (cheaply).

    For code that draws nothing from numpy: saving numpy's global state costs
    about a hundred microseconds, torch's CPU generator two. Holds the
    module's lock throughout: restoring the generator in the middle of another
    thread's seeded training would change that training's draws.
    """
    lock = _global_state_lock
    with lock:
        cpu_state = torch.get_rng_state()
        on_cuda = torch.device(device).type == "cuda"
        cuda_states = torch.cuda.get_rng_state_all() if on_cuda else None
        try:
            yield
        finally:
            torch.set_rng_state(cpu_state)
            if cuda_states is not None:
                torch.cuda.set_rng_state_all(cuda_states)


@contextlib.contextmanager
def preserved_global_state(device: str | torch.device = "cpu") -> Iterator[None]:
    """Leave the process as found: random states, torch's thread count and default dtype.

    Wraps a whole ``fit`` (or ``prune``), so that whatever runs inside, a
    user's module constructor included, and however it ends, the global
    settings a user relies on are restored. Holds the module's lock for the
    whole fit, so that fits in threads run one after the other, each seeing
    and restoring the process's settings as a lone fit would.
    """
    lock = _global_state_lock
    with lock:
        threads = torch.get_num_threads()
        dtype = torch.get_default_dtype()
        try:
            with seeded(None, device):
                yield
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            torch.set_default_dtype(dtype)
