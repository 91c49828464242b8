"""Shared test setup."""

import pytest
import torch

import skticket._session as session_module


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    # The suite trains tiny nets: one intra-op thread is faster for them and does not
    # oversubscribe a small CI machine. Speed is measured in benchmarks/, not here.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def training_calls(monkeypatch):
    """The specs of the trainings actually run (a cache hit runs none)."""
    calls = []
    real = session_module.train_members
    monkeypatch.setattr(session_module, "train_members",
                        lambda specs, **kwargs: calls.extend(specs) or real(specs, **kwargs))
    return calls
