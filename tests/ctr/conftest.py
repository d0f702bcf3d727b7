"""One intra-op thread for the CTR tests: the tensors are tiny, and on a shared machine more threads only wait on each other."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
