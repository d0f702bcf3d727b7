"""Shared fixtures: an isolated cache, an offline Hugging Face hub and a tiny split."""

from __future__ import annotations

import os

# Set before anything imports huggingface_hub/transformers, which read these once at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from darec.data.interactions import Interactions  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_darec_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own ``DAREC_HOME``, so nothing is read from or written to ``~/.cache``."""
    home = tmp_path_factory.mktemp("darec-home")
    monkeypatch.setenv("DAREC_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture
def tiny_interactions() -> Interactions:
    """4 users x 6 items; every user has train, valid and test pairs.

    train: u0 {0, 1}, u1 {1, 2}, u2 {3}, u3 {0, 4}
    valid: u0 {2}, u1 {3}, u2 {4}, u3 {5}
    test:  u0 {5}, u1 {0}, u2 {0}, u3 {1}
    """
    return Interactions(
        num_users=4,
        num_items=6,
        train=np.array([[0, 0], [0, 1], [1, 1], [1, 2], [2, 3], [3, 0], [3, 4]]),
        valid=np.array([[0, 2], [1, 3], [2, 4], [3, 5]]),
        test=np.array([[0, 5], [1, 0], [2, 0], [3, 1]]),
        user_ids=["ua", "ub", "uc", "ud"],
        item_ids=[f"i{k}" for k in range(6)],
        user_text=[f"user {k}" for k in range(4)],
        item_text=[f"item {k}" for k in range(6)],
    )
