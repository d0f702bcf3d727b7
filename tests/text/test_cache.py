"""Tests of darec.text.cache: the on-disk embedding cache and the embedding checks."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from darec.text.cache import TextEmbeddingCache, check_embeddings, load_embeddings

TEXTS = ["Heat (1995). Genres: Action", "Fargo (1996). Genres: Crime", "Babe (1995). Genres: Comedy"]


class Toy:
    """A text encoder that counts its calls; ``fill`` overrides every value (e.g. NaN)."""

    def __init__(self, model: str = "toy/model-v1", fill: float | None = None, **settings) -> None:
        self.cache_key = {"kind": "toy", "model": model, **settings}
        self.fill = fill
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        out = torch.tensor([[float(len(t)), float(k)] for k, t in enumerate(texts)])
        if self.fill is not None:
            out[-1, 0] = self.fill
        return out


def _entries(cache: TextEmbeddingCache) -> list[str]:
    return sorted(p.name for p in cache.root.iterdir()) if cache.root.exists() else []


def test_hit_and_miss(tmp_path):
    cache = TextEmbeddingCache(tmp_path / "emb")
    encoder = Toy()
    first = cache.get(encoder, TEXTS)
    assert encoder.calls == 1 and first.shape == (3, 2) and first.dtype == torch.float32
    (entry,) = _entries(cache)
    assert entry.startswith("model-v1-") and entry.endswith(".pt")
    again = Toy()
    second = cache.get(again, TEXTS)
    assert again.calls == 0
    torch.testing.assert_close(second, first)
    assert _entries(cache) == [entry]
    assert not [p for p in cache.root.iterdir() if p.suffix == ".tmp"]


def test_default_root_is_darec_home(_isolated_darec_home):
    cache = TextEmbeddingCache()
    assert cache.root == _isolated_darec_home / "embeddings"
    cache.get(Toy(), TEXTS)
    assert len(_entries(cache)) == 1


@pytest.mark.parametrize(
    "texts",
    [
        [TEXTS[0], TEXTS[1], "Babe (1995). Genres: Family"],  # one text changed
        [TEXTS[1], TEXTS[0], TEXTS[2]],  # same texts, other order
        TEXTS[:2],  # one text fewer
        [TEXTS[0] + TEXTS[1], TEXTS[2]],  # texts joined differently
    ],
)
def test_changed_texts_give_a_new_key(tmp_path, texts):
    cache = TextEmbeddingCache(tmp_path)
    encoder = Toy()
    assert cache.key(encoder, texts) != cache.key(encoder, TEXTS)
    assert cache.path(encoder, texts) != cache.path(encoder, TEXTS)
    cache.get(encoder, TEXTS)
    out = cache.get(encoder, texts)
    assert encoder.calls == 2
    assert out.shape == (len(texts), 2)


@pytest.mark.parametrize(
    "other",
    [Toy(model="toy/model-v2"), Toy(normalize=True), Toy(pooling="last")],
)
def test_changed_encoder_key_gives_a_new_key(tmp_path, other):
    cache = TextEmbeddingCache(tmp_path)
    base = Toy()
    assert cache.key(base, TEXTS) == cache.key(Toy(), TEXTS)
    assert cache.key(other, TEXTS) != cache.key(base, TEXTS)
    cache.get(base, TEXTS)
    cache.get(other, TEXTS)
    assert other.calls == 1
    assert len(_entries(cache)) == 2


@pytest.mark.parametrize(
    "content",
    [
        b"garbage bytes, not a torch file",
        b"",
        "truncated",
        "wrong rows",
        "dict",
    ],
)
def test_corrupt_entry_is_recomputed(tmp_path, caplog, content):
    cache = TextEmbeddingCache(tmp_path)
    encoder = Toy()
    path = cache.path(encoder, TEXTS)
    path.parent.mkdir(parents=True, exist_ok=True)
    if content == "truncated":
        torch.save(torch.ones(3, 2), path)
        path.write_bytes(path.read_bytes()[:40])
    elif content == "wrong rows":
        torch.save(torch.ones(5, 2), path)
    elif content == "dict":
        torch.save({"emb": torch.ones(3, 2)}, path)
    else:
        path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="darec.text.cache"):
        out = cache.get(encoder, TEXTS)
    assert encoder.calls == 1
    torch.testing.assert_close(out, Toy().encode(TEXTS))
    assert f"the text-embedding cache entry {path} " in caplog.text
    assert "encoding the texts again and replacing it" in caplog.text
    # The entry was rewritten and is now served from disk:
    fresh = Toy()
    torch.testing.assert_close(cache.get(fresh, TEXTS), out)
    assert fresh.calls == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_embeddings_are_not_cached(tmp_path, bad):
    cache = TextEmbeddingCache(tmp_path / "emb")
    with pytest.raises(ValueError, match=r"item text embeddings contain NaN or infinite values in 1 row\(s\), e.g. rows \[2\]"):
        cache.get(Toy(fill=bad), TEXTS, name="item text embeddings")
    assert not cache.root.exists() or list(cache.root.iterdir()) == []


def test_wrong_row_count_from_encoder_is_not_cached(tmp_path):
    class Short(Toy):
        def encode(self, texts):
            return super().encode(texts)[:-1]

    cache = TextEmbeddingCache(tmp_path / "emb")
    with pytest.raises(ValueError, match="has 2 rows but there are 3 entities"):
        cache.get(Short(), TEXTS)
    assert not cache.root.exists() or list(cache.root.iterdir()) == []


# -- check_embeddings / load_embeddings --------------------------------------------------------
def test_check_embeddings_converts():
    out = check_embeddings(np.arange(6, dtype=np.float64).reshape(3, 2), 3, "x")
    assert out.dtype == torch.float32 and out.is_contiguous() and out.tolist() == [[0, 1], [2, 3], [4, 5]]
    leaf = torch.ones(2, 2, requires_grad=True)
    assert not check_embeddings(leaf, 2, "x").requires_grad


@pytest.mark.parametrize(
    ("emb", "message"),
    [
        (torch.ones(4, 2), "item embeddings has 4 rows but there are 3 entities to embed"),
        (torch.ones(3), r"item embeddings must be 2-D \(num_entities, dim\), got shape \(3,\)"),
        (torch.ones(3, 2, 1), r"must be 2-D .*got shape \(3, 2, 1\)"),
        (torch.tensor([[1.0, 2.0], [float("nan"), 0.0], [0.0, float("-inf")]]), r"in 2 row\(s\), e.g. rows \[1, 2\]"),
        ([[1.0, 2.0]] * 3, "item embeddings must be a tensor or numpy array, got list"),
    ],
)
def test_check_embeddings_errors(emb, message):
    with pytest.raises(ValueError, match=message):
        check_embeddings(emb, 3, "item embeddings")


@pytest.mark.parametrize("suffix", [".pt", ".npy", ".npz"])
def test_load_embeddings(tmp_path, suffix):
    array = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    path = tmp_path / f"emb{suffix}"
    if suffix == ".pt":
        torch.save(torch.from_numpy(array), path)
    elif suffix == ".npy":
        np.save(path, array)
    else:
        np.savez(path, first=array, second=np.zeros(2))
    torch.testing.assert_close(load_embeddings(path, 3, "user embeddings"), torch.from_numpy(array))


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.ones((2, 4)), "user embeddings has 2 rows but there are 3 entities"),
        (np.ones(3), "user embeddings must be 2-D"),
        (np.array([[1.0], [np.nan], [1.0]]), r"contain NaN or infinite values in 1 row\(s\), e.g. rows \[1\]"),
    ],
)
@pytest.mark.parametrize("suffix", [".pt", ".npy"])
def test_load_embeddings_errors(tmp_path, array, message, suffix):
    path = tmp_path / f"emb{suffix}"
    if suffix == ".pt":
        torch.save(torch.from_numpy(array), path)
    else:
        np.save(path, array)
    with pytest.raises(ValueError, match=message):
        load_embeddings(path, 3, "user embeddings")


def test_load_embeddings_bad_suffix(tmp_path):
    path = tmp_path / "emb.csv"
    path.write_text("1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"user embeddings: unsupported file type '\.csv'; use \.pt, \.npy or \.npz"):
        load_embeddings(path, 2, "user embeddings")


def test_load_embeddings_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="user embeddings: no file at .*missing.pt"):
        load_embeddings(tmp_path / "missing.pt", 2, "user embeddings")


def test_load_embeddings_refuses_pickles(tmp_path):
    path = tmp_path / "emb.npy"
    np.save(path, np.array([{"not": "an array"}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        load_embeddings(path, 1, "user embeddings")
