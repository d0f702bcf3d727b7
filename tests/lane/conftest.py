"""Synthetic data for the LANE tests: users whose next items come from the genre one of their preferences names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from darec.data import InteractionLog

GENRES, PER_GENRE = 10, 20
NUM_ITEMS = GENRES * PER_GENRE
NOISE = ("enjoys popcorn", "watches on weekends")


class GenreEncoder:
    """A tiny deterministic text encoder: "loves genre k" -> one-hot at k; other texts -> fixed vectors."""

    cache_key = {"kind": "test-genre-encoder"}
    dim = 16

    def encode(self, texts):
        out = torch.zeros(len(texts), self.dim)
        for row, text in enumerate(texts):
            match = re.search(r"genre (\d+)", text)
            if match:
                out[row, int(match[1])] = 1.0
            else:
                out[row, GENRES + sum(map(ord, text)) % (self.dim - GENRES)] = 1.0
        return out


def genre_log(num_users: int = 300, signal: float = 0.5, seed: int = 0) -> tuple[InteractionLog, dict[str, int]]:
    """Each user has a genre; each item of their sequence is from it with probability ``signal``, else
    uniform; the last two items (validation, test) always are. Item ``i<k>`` is in genre ``k // PER_GENRE``."""
    rng = np.random.default_rng(seed)
    users, items, stamps, genre_of = [], [], [], {}
    for u in range(num_users):
        genre = int(rng.integers(GENRES))
        genre_of[f"u{u}"] = genre
        length = int(rng.integers(6, 10))
        picked: list[int] = []
        while len(picked) < length:
            held_out = len(picked) >= length - 2  # the validation and test items
            if held_out or rng.random() < signal:
                item = genre * PER_GENRE + int(rng.integers(PER_GENRE))
            else:
                item = int(rng.integers(NUM_ITEMS))
            if item not in picked:
                picked.append(item)
        for t, item in enumerate(picked):
            users.append(f"u{u}")
            items.append(f"i{item:03d}")
            stamps.append(t)
    info = {f"i{k:03d}": {"title": f"Film {k} (genre {k // PER_GENRE})"} for k in range(NUM_ITEMS)}
    return InteractionLog(users, items, timestamps=stamps, item_info=info), genre_of


def write_preferences(path: Path, genre_of: dict[str, int], seed: int = 0) -> Path:
    """Three preferences per user, the genre one at a random place."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as handle:
        for user, genre in genre_of.items():
            prefs = [f"loves genre {genre}", *NOISE]
            rng.shuffle(prefs)
            handle.write(json.dumps({"user": user, "preferences": prefs}) + "\n")
    return path
