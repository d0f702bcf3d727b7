"""Helpers of the RecExplainer tests: a target with known scores (fixed vectors, nothing trained), tiny modules, checkpoints."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

NUM_USERS, NUM_ITEMS, DIM = 12, 30, 4


class KnownScores:
    """A two-tower target whose scores are the dot products of fixed random vectors (seeded)."""

    def __init__(self, num_users: int = NUM_USERS, num_items: int = NUM_ITEMS, dim: int = DIM, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.users = torch.randn(num_users, dim, generator=gen)
        self.items = torch.randn(num_items, dim, generator=gen)
        self.num_users, self.num_items, self.dim = num_users, num_items, dim

    def user_embeddings(self, users):
        return self.users[torch.as_tensor(users)]

    def item_embeddings(self):
        return self.items

    def score(self, users, items=None):
        scores = self.user_embeddings(users) @ self.items.T
        return scores if items is None else scores[:, torch.as_tensor(items)]

    def all_scores(self) -> np.ndarray:
        return (self.users @ self.items.T).double().numpy()


def make_histories(num_users: int = NUM_USERS, num_items: int = NUM_ITEMS, seed: int = 0) -> list[list[int]]:
    """3 to 8 distinct random items per user, in random order."""
    rng = np.random.default_rng(seed)
    return [rng.choice(num_items, int(rng.integers(3, 9)), replace=False).tolist() for _ in range(num_users)]


def make_catalog(num_items: int = NUM_ITEMS) -> list[str]:
    """Fixed-width titles, so that no title is part of another: ``"Movie 007 (1990)"``."""
    return [f"Movie {i:03d} ({1990 + i % 10})" for i in range(num_items)]


def make_mf(seed: int = 0):
    """An untrained DaRecModule with matrix factorisation (width 8) on the 40 x 60 data of the module tests."""
    from darec.backbones import MatrixFactorization
    from darec.module import DaRecModule
    from tests.module.conftest import NUM_ITEMS as ITEMS
    from tests.module.conftest import NUM_USERS as USERS
    from tests.module.conftest import make_interactions

    torch.manual_seed(seed)
    model = DaRecModule(MatrixFactorization(USERS + ITEMS, 8), num_users=USERS, num_items=ITEMS)
    data = make_interactions()
    model.set_graph(torch.from_numpy(data.train), user_ids=data.user_ids, item_ids=data.item_ids)
    return model


def save_checkpoint(module: L.LightningModule, path: Path) -> Path:
    """What ``trainer.save_checkpoint`` writes for the module (its hooks included), without a trainer."""
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                  "pytorch-lightning_version": L.__version__}  # fmt: skip
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: the tensors are tiny and the machine is shared."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def target() -> KnownScores:
    return KnownScores()


@pytest.fixture
def histories() -> list[list[int]]:
    return make_histories()


@pytest.fixture
def catalog() -> list[str]:
    return make_catalog()
