"""Shared test setup."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    # The suite trains tiny nets: one intra-op thread is faster for them and does not
    # oversubscribe a small CI machine. Speed is measured in benchmarks/, not here.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
