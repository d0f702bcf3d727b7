"""On-disk cache of frozen text embeddings, keyed by encoder and text hash."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from darec.text.encoders import TextEncoder
from darec.utils.io import atomic_write, default_cache_dir

__all__ = ["TextEmbeddingCache", "check_embeddings", "load_embeddings"]

log = logging.getLogger(__name__)


def check_embeddings(emb: Any, num_rows: int, name: str) -> Tensor:
    """Validates an embedding matrix and returns it as a float32 CPU tensor.

    Raises:
        ValueError: if it is not 2-D, has a row count other than ``num_rows``, or holds NaN/inf.

    Example:
        >>> check_embeddings(torch.ones(3, 2), 3, "item embeddings").shape
        torch.Size([3, 2])
    """
    if isinstance(emb, np.ndarray):
        emb = torch.from_numpy(emb)
    if not isinstance(emb, Tensor):
        raise ValueError(f"{name} must be a tensor or numpy array, got {type(emb).__name__}")
    if emb.dim() != 2:
        raise ValueError(f"{name} must be 2-D (num_entities, dim), got shape {tuple(emb.shape)}")
    if emb.size(0) != num_rows:
        raise ValueError(f"{name} has {emb.size(0)} rows but there are {num_rows} entities to embed")
    emb = emb.detach().to("cpu", torch.float32)
    bad = ~torch.isfinite(emb).all(dim=1)
    if bad.any():
        rows = bad.nonzero().flatten()[:5].tolist()
        raise ValueError(f"{name} contain NaN or infinite values in {int(bad.sum())} row(s), e.g. rows {rows}")
    return emb.contiguous()


def load_embeddings(path: str | os.PathLike[str], num_rows: int, name: str) -> Tensor:
    """Loads precomputed embeddings from ``.pt``, ``.npy`` or ``.npz`` (first array) and validates them."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no file at {path}")
    if path.suffix == ".pt":
        emb = torch.load(path, map_location="cpu", weights_only=True)
    elif path.suffix == ".npy":
        emb = np.load(path, allow_pickle=False)
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            emb = archive[archive.files[0]]
    else:
        raise ValueError(f"{name}: unsupported file type {path.suffix!r}; use .pt, .npy or .npz")
    return check_embeddings(emb, num_rows, name)


class TextEmbeddingCache:
    """Encodes texts once and keeps the result on disk.

    An entry is keyed by the encoder's :attr:`~darec.text.TextEncoder.cache_key` and the SHA-256 of
    the ordered texts, so a changed text, order, model or setting gives a new entry and never a
    stale one. Files are written atomically; a corrupt or mismatching file is recomputed.

    Args:
        root (str, optional): cache directory. (default: ``$DAREC_HOME/embeddings`` or
            ``~/.cache/darec/embeddings``)

    Example:
        >>> import tempfile
        >>> class Toy:
        ...     cache_key = {"kind": "toy"}
        ...     calls = 0
        ...     def encode(self, texts):
        ...         Toy.calls += 1
        ...         return torch.ones(len(texts), 2)
        >>> cache = TextEmbeddingCache(tempfile.mkdtemp())
        >>> cache.get(Toy(), ["a", "b"]).shape, cache.get(Toy(), ["a", "b"]).shape, Toy.calls
        (torch.Size([2, 2]), torch.Size([2, 2]), 1)
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir() / "embeddings"

    @staticmethod
    def key(encoder: TextEncoder, texts: Sequence[str]) -> str:
        """The hex digest that names the entry of ``texts`` under ``encoder``."""
        digest = hashlib.sha256(json.dumps(encoder.cache_key, sort_keys=True).encode())
        for text in texts:
            digest.update(b"\x1f")
            digest.update(text.encode("utf-8"))
        return digest.hexdigest()

    def path(self, encoder: TextEncoder, texts: Sequence[str]) -> Path:
        model = str(encoder.cache_key.get("model", encoder.cache_key.get("kind", "encoder")))
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in model.split("/")[-1])[:48]
        return self.root / f"{slug}-{self.key(encoder, texts)[:24]}.pt"

    def get(self, encoder: TextEncoder, texts: Sequence[str], name: str = "text embeddings") -> Tensor:
        """Returns the ``(len(texts), d)`` embeddings of ``texts``, encoding them on a cache miss."""
        texts = list(texts)
        path = self.path(encoder, texts)
        if path.is_file():
            try:
                return check_embeddings(torch.load(path, map_location="cpu", weights_only=True), len(texts), name)
            except (ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
                log.warning("ignoring the unreadable cache entry %s (%s); encoding again", path, err)
        emb = check_embeddings(encoder.encode(texts), len(texts), name)
        with atomic_write(path) as handle:
            torch.save(emb, handle)
        return emb

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r})"
