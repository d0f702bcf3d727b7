"""Fixtures for the module, callback and CLI tests: a small synthetic split with frozen text embeddings.

The data have an easy structure, so that a few epochs of training beat a random ranking: 40 users
in 4 groups of 10, 60 items in 4 groups of 15, and every user's 12 positives (8 train, 2 valid,
2 test) are drawn from the items of the user's group with a fixed numpy seed.

The plain helpers (``make_interactions``, ``make_datamodule``, ``make_trainer``, ...) are also
imported (``from tests.module import conftest``) by the test files here and in
``tests/callbacks`` and ``tests/cli``: ``conftest`` module names clash across folders.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch

from darec.data import Interactions, RecDataModule

NUM_USERS, NUM_ITEMS, TEXT_DIM, NUM_GROUPS = 40, 60, 12, 4
N_TRAIN, N_VALID, N_TEST = 8, 2, 2


def make_interactions(seed: int = 0, text: bool = False) -> Interactions:
    """40 users x 60 items, raw ids ``u0..`` / ``i0..``; optional text profiles."""
    rng = np.random.default_rng(seed)
    items_per_group = NUM_ITEMS // NUM_GROUPS
    splits: dict[str, list[tuple[int, int]]] = {"train": [], "valid": [], "test": []}
    for user in range(NUM_USERS):
        group = user % NUM_GROUPS
        pool = np.arange(group * items_per_group, (group + 1) * items_per_group)
        chosen = rng.choice(pool, N_TRAIN + N_VALID + N_TEST, replace=False)
        splits["train"] += [(user, int(i)) for i in chosen[:N_TRAIN]]
        splits["valid"] += [(user, int(i)) for i in chosen[N_TRAIN : N_TRAIN + N_VALID]]
        splits["test"] += [(user, int(i)) for i in chosen[N_TRAIN + N_VALID :]]
    return Interactions(
        NUM_USERS,
        NUM_ITEMS,
        train=np.array(splits["train"]),
        valid=np.array(splits["valid"]),
        test=np.array(splits["test"]),
        user_ids=[f"u{k}" for k in range(NUM_USERS)],
        item_ids=[f"i{k}" for k in range(NUM_ITEMS)],
        user_text=[f"user {k} of group {k % NUM_GROUPS}" for k in range(NUM_USERS)] if text else None,
        item_text=[f"item {k}" for k in range(NUM_ITEMS)] if text else None,
    )


def write_text_embeddings(directory: Path, seed: int = 0) -> tuple[str, str]:
    """Random ``(40, 12)`` and ``(60, 12)`` frozen "text embeddings" saved as ``.pt`` files."""
    gen = torch.Generator().manual_seed(seed)
    directory.mkdir(parents=True, exist_ok=True)
    user, item = directory / "user_emb.pt", directory / "item_emb.pt"
    torch.save(torch.randn(NUM_USERS, TEXT_DIM, generator=gen), user)
    torch.save(torch.randn(NUM_ITEMS, TEXT_DIM, generator=gen), item)
    return str(user), str(item)


def make_datamodule(
    directory: Path | None = None, text: bool = True, interactions: Interactions | None = None, **kwargs: Any
) -> RecDataModule:
    """The synthetic data module; with ``text``, precomputed embeddings written under ``directory``."""
    kwargs = {"batch_size": 64, "eval_batch_size": 16, "seed": 0, "text_encoder": None, **kwargs}
    if text:
        user, item = write_text_embeddings(Path(directory) / "text")
        kwargs.update(user_embeddings=user, item_embeddings=item)
    return RecDataModule.from_interactions(interactions or make_interactions(), **kwargs)


def make_trainer(root: Path, max_epochs: int = 2, logger: Any = False, **kwargs: Any) -> L.Trainer:
    """A quiet CPU trainer writing under ``root``."""
    defaults = dict(
        default_root_dir=str(root),
        max_epochs=max_epochs,
        logger=logger,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    defaults.update(kwargs)
    return L.Trainer(**defaults)


def fit_mf(root: Path, predict_k: int, max_epochs: int = 2) -> tuple[Any, RecDataModule, L.Trainer]:
    """A matrix factorisation (width 8, seed 0) fitted for ``max_epochs`` on :func:`make_interactions`
    without text; returns the module, its data module and the trainer."""
    from darec.backbones import MatrixFactorization
    from darec.module import DaRecModule

    dm = make_datamodule(text=False)
    torch.manual_seed(0)
    model = DaRecModule(MatrixFactorization(NUM_USERS + NUM_ITEMS, 8), lr=0.05, predict_k=predict_k)
    trainer = make_trainer(root, max_epochs=max_epochs)
    trainer.fit(model, datamodule=dm)
    return model, dm, trainer


def read_metrics(log_dir: str | Path) -> list[dict[str, str]]:
    """The rows of a CSVLogger's ``metrics.csv``."""
    with open(Path(log_dir) / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def epoch_values(rows: list[dict[str, str]], key: str) -> list[float]:
    """The non-empty values of ``key`` in ``metrics.csv`` rows, in order."""
    return [float(row[key]) for row in rows if row.get(key) not in (None, "")]


class CountingEncoder:
    """A toy text encoder that counts its calls and can be forbidden to run."""

    cache_key = {"kind": "counting-toy", "model": "counting-toy"}

    def __init__(self, dim: int = TEXT_DIM) -> None:
        self.dim = dim
        self.calls = 0
        self.forbidden = False

    def encode(self, texts: list[str]) -> torch.Tensor:
        if self.forbidden:
            raise AssertionError("the text encoder ran during training")
        self.calls += 1
        gen = torch.Generator().manual_seed(len(texts))
        return torch.randn(len(texts), self.dim, generator=gen)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: these tensors are tiny, and on a shared 2-core machine more threads only
    wait on each other (a 64 x 12 linear layer takes milliseconds instead of microseconds)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def interactions() -> Interactions:
    return make_interactions()


@pytest.fixture
def datamodule(tmp_path: Path) -> RecDataModule:
    """The synthetic data with precomputed text embeddings of width 12."""
    return make_datamodule(tmp_path)


@pytest.fixture
def plain_datamodule() -> RecDataModule:
    """The synthetic data without text."""
    return make_datamodule(text=False)
