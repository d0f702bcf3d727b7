"""Tests of darec.data.read_preferences and SequenceDataModule(preferences=...): order, errors, fallback."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from darec.data import InteractionLog, SequenceDataModule
from darec.data.readers.preferences import read_preferences


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_last_line_wins_and_order_follows_user_ids(tmp_path):
    path = _write(tmp_path / "p.jsonl", [{"user": "b", "preferences": ["x", "y"]}, {"user": "a", "preferences": ["p", "q"]},
                                         {"user": "b", "preferences": ["z", "w"]}])  # fmt: skip
    assert read_preferences(path, ["a", "b"], 2) == [["p", "q"], ["z", "w"]]


def test_wrong_length_and_missing_users_are_named(tmp_path):
    path = _write(tmp_path / "p.jsonl", [{"user": "a", "preferences": ["p", "q", "r"]}])
    with pytest.raises(ValueError, match="user 'a' has 3, expected 2"):
        read_preferences(path, ["a"], 2)
    with pytest.raises(ValueError, match=r"raw ids \['b'\]"):
        read_preferences(path, ["a", "b"], 3)
    with pytest.raises(FileNotFoundError, match="PreferenceExtractor"):
        read_preferences(tmp_path / "none.jsonl", ["a"], 3)


class Toy:
    cache_key = {"kind": "toy-preferences"}

    def encode(self, texts):
        return torch.tensor([[float(len(t)), 1.0] for t in texts])


def test_the_data_module_embeds_preferences_and_falls_back_to_titles(tmp_path):
    log = InteractionLog(["a"] * 4 + ["b"] * 3, list("wxyzxyz"), timestamps=range(7),
                         item_info={k: {"title": f"Film {k}"} for k in "wxyz"})  # fmt: skip
    path = _write(tmp_path / "p.jsonl", [{"user": "a", "preferences": ["noir", "heist films"]}])
    dm = SequenceDataModule.from_log(log, max_len=3, eval_negatives=1, preferences=str(path), preference_encoder=Toy(),
                                     num_preferences=2, missing_preferences="titles", cache_dir=str(tmp_path))  # fmt: skip
    with pytest.warns(UserWarning, match=r"raw ids \['b'\]"):
        dm.setup("fit")
    assert dm.preference_texts == [["noir", "heist films"], ["Enjoys Film x", "Enjoys Film x"]]
    assert dm.preference_embeddings.shape == (2, 2, 2)
    assert np.allclose(dm.preference_embeddings[0, :, 0].numpy(), [4.0, 11.0])
    strict = SequenceDataModule.from_log(log, max_len=3, eval_negatives=1, preferences=str(path), preference_encoder=Toy(),
                                         num_preferences=2, cache_dir=str(tmp_path))  # fmt: skip
    with pytest.raises(ValueError, match="missing_preferences='titles'"):
        strict.setup("fit")
