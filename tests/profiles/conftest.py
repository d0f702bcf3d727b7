"""A tiny MovieLens-like split with its raw log (titles, genres, ratings, times, demographics), and a toy encoder."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch

from darec.data import InteractionLog, Interactions

TITLES = ["Heat", "Big", "Alien", "Fargo", "Babe", "Casino"]
YEARS = [1995, 1988, 1979, 1996, 1995, 1995]
GENRES = ["Action|Crime", "Comedy", "Horror|Sci-Fi", "Crime|Drama", "Children|Comedy", "Drama"]
USERS = {
    "ua": {"age": 24, "gender": "M", "occupation": "student"},
    "ub": {"age": 31, "gender": "F", "occupation": "writer"},
    "uc": {"age": 47, "gender": "M", "occupation": "engineer"},
    "ud": {"age": 22, "gender": "M", "occupation": "student"},
}
# train: ua {0, 1}, ub {1, 2}, uc {3}, ud {0, 4}; valid: ua 2, ub 3, uc 4, ud 5; test: ua 5, ub 0, uc 0, ud 1
TRAIN = [[0, 0], [0, 1], [1, 1], [1, 2], [2, 3], [3, 0], [3, 4]]
VALID = [[0, 2], [1, 3], [2, 4], [3, 5]]
TEST = [[0, 5], [1, 0], [2, 0], [3, 1]]


def make_data() -> tuple[Interactions, InteractionLog]:
    users, items = list(USERS), [f"i{k}" for k in range(6)]
    pairs = TRAIN + VALID + TEST
    ratings = [4, 5, 5, 4, 5, 4, 5] + [5] * 8  # ua rates Big (5) above Heat (4)
    stamps = [10, 5, 1, 2, 3, 7, 9] + [20] * 8  # ... but watched Heat later
    log = InteractionLog(
        [users[u] for u, _ in pairs],
        [items[i] for _, i in pairs],
        ratings=ratings,
        timestamps=stamps,
        item_info={f"i{k}": {"title": TITLES[k], "year": YEARS[k], "genres": GENRES[k]} for k in range(6)},
        user_info=USERS,
    )
    data = Interactions(
        4, 6, train=np.array(TRAIN), valid=np.array(VALID), test=np.array(TEST), user_ids=users, item_ids=items,
        user_text=[f"template user {k}" for k in range(4)],
        item_text=[f"{TITLES[k]} ({YEARS[k]}). Genres: {GENRES[k].replace('|', ', ')}." for k in range(6)],
    )  # fmt: skip
    return data, log


@pytest.fixture
def profile_data() -> tuple[Interactions, InteractionLog]:
    return make_data()


class HashEncoder:
    """A toy text encoder: 8 numbers from the SHA-256 of each text, so different texts embed differently."""

    def __init__(self, dim: int = 8) -> None:
        self.dim = dim
        self.calls: list[list[str]] = []

    @property
    def cache_key(self) -> dict[str, Any]:
        return {"kind": "toy", "model": "hash", "dim": self.dim}

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        self.calls.append(list(texts))
        rows = [[b / 255.0 for b in hashlib.sha256(t.encode()).digest()[: self.dim]] for t in texts]
        return torch.tensor(rows, dtype=torch.float32)
