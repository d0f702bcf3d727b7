"""Synthetic CTR data for the tests: labels the ids cannot predict, and explanations that can."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from darec.data import InteractionLog


def random_log(num_users: int = 40, num_items: int = 100, num_pairs: int = 4000, seed: int = 0, ties: bool = True):
    """Distinct (user, item) pairs with coin-flip ratings (1 or 5) and timestamps; the ids carry no signal.

    Returns ``(log, clicks)``, ``clicks`` the 0/1 label of every row of the log.
    """
    rng = np.random.default_rng(seed)
    codes = rng.choice(num_users * num_items, size=num_pairs, replace=False)
    clicks = rng.integers(0, 2, size=num_pairs)
    stamps = rng.integers(0, num_pairs // 4 if ties else 10**9, size=num_pairs)  # many equal times with ties
    log = InteractionLog(
        users=[f"u{c // num_items}" for c in codes],
        items=[f"i{c % num_items}" for c in codes],
        ratings=np.where(clicks == 1, 5.0, 1.0),
        timestamps=stamps,
        item_info={f"i{k}": {"title": f"Film {k}"} for k in range(num_items)},
    )
    return log, clicks


def write_explanations(path: Path, log: InteractionLog, clicks: np.ndarray, accuracy: float = 0.9, seed: int = 1) -> Path:
    """One explanation per row: "will enjoy" for a click, "will not enjoy" otherwise, right with ``accuracy``."""
    rng = np.random.default_rng(seed)
    right = rng.random(len(clicks)) < accuracy
    with open(path, "w") as handle:
        for k, (user, item) in enumerate(zip(log.users.tolist(), log.items.tolist())):
            liked = bool(clicks[k]) == bool(right[k])
            text = f"{user} will {'' if liked else 'not '}enjoy {item}, reason {k}."  # unique per pair
            handle.write(json.dumps({"user": user, "item": item, "text": text}) + "\n")
    return path


class KeywordEncoder:
    """A stand-in text encoder: ``[1, 0, 0, 0]`` for a text with " not ", ``[0, 1, 0, 0]`` otherwise, and two
    columns of noise from the text's length (no signal)."""

    def __init__(self) -> None:
        self.calls = 0

    @property
    def cache_key(self) -> dict[str, Any]:
        return {"kind": "keyword-test-encoder", "version": 1}

    def encode(self, texts: Sequence[str]) -> Tensor:
        self.calls += 1
        rows = []
        for text in texts:
            negative = " not " in text
            rows.append([float(negative), float(not negative), (len(text) % 7) / 7.0, (len(text) % 3) / 3.0])
        return torch.tensor(rows)
