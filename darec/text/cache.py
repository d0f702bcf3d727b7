"""On-disk cache of frozen text embeddings, keyed by encoder and text hash."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from darec.text.encoders import TextEncoder
from darec.utils.io import atomic_write, default_cache_dir, ensure_writable_dir

__all__ = ["TextEmbeddingCache", "check_embeddings", "load_embeddings"]

log = logging.getLogger(__name__)

#: Version of the entry layout written by :class:`TextEmbeddingCache`.
_ENTRY_FORMAT = 2


def _tensor_sha256(tensor: Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (in C order)."""
    digest = hashlib.sha256(f"{tensor.dtype}|{tuple(tensor.shape)}|".encode())
    digest.update(tensor.detach().cpu().contiguous().flatten().view(torch.uint8).numpy())  # no copy
    return digest.hexdigest()


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
    stale one. Each entry stores, next to the embeddings, their SHA-256 and its full key, and both
    are verified on every read: a file that cannot be read, was changed on disk (flipped bits, a
    partial copy), belongs to other texts, or has no checksum (written by an older darec) is
    reported in a warning naming it, encoded again and replaced. Entries are written atomically,
    and the directory is checked to be writable *before* encoding, so a cache that cannot take the
    result fails at once rather than after minutes of work.

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
        """The file of the entry of ``texts`` under ``encoder`` (it may not exist yet)."""
        model = str(encoder.cache_key.get("model", encoder.cache_key.get("kind", "encoder")))
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in model.split("/")[-1])[:48]
        return self.root / f"{slug}-{self.key(encoder, texts)[:24]}.pt"

    def get(self, encoder: TextEncoder, texts: Sequence[str], name: str = "text embeddings") -> Tensor:
        """Returns the ``(len(texts), d)`` embeddings of ``texts``, encoding them on a cache miss.

        Raises:
            UnwritableDirectoryError: on a miss, when the cache directory cannot be written
                (raised before the encoder runs).
            ValueError: the encoder returned a wrong shape or non-finite values (nothing is cached).
        """
        texts = list(texts)
        key = self.key(encoder, texts)
        path = self.path(encoder, texts)
        if path.is_file():
            cached = self._read(path, key, len(texts), name)
            if cached is not None:
                return cached
        ensure_writable_dir(self.root, what=f"the cache directory of the {name}")
        emb = check_embeddings(encoder.encode(texts), len(texts), name)
        entry = {
            "format": _ENTRY_FORMAT,
            "key": key,
            "encoder": json.dumps(encoder.cache_key, sort_keys=True),
            "sha256": _tensor_sha256(emb),
            "embeddings": emb,
        }
        try:
            with atomic_write(path) as handle:
                torch.save(entry, handle)
        except OSError as err:  # e.g. the disk filled up while writing: keep this run's work
            log.warning("could not write the cache entry %s (%s); the %s are used but not cached", path, err, name)
        return emb

    @staticmethod
    def _read(path: Path, key: str, num_rows: int, name: str) -> Tensor | None:
        """The verified embeddings of the entry at ``path``, or :obj:`None` (with a warning) if unusable."""
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # any file torch cannot read back is as good as missing
            first_line = next(iter(str(err).strip().splitlines()), "")
            problem = f"cannot be read ({type(err).__name__}: {first_line})" if first_line else "cannot be read"
            if path.stat().st_size == 0:
                problem = "is empty"
        else:
            problem = _entry_problem(entry, key)
            if problem is None:
                try:
                    return check_embeddings(entry["embeddings"], num_rows, name)
                except ValueError as err:
                    problem = f"holds unusable embeddings ({err})"
        log.warning("the text-embedding cache entry %s %s; encoding the texts again and replacing it", path, problem)
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r})"


def _entry_problem(entry: Any, key: str) -> str | None:
    """Why a loaded cache entry cannot be trusted, or :obj:`None` when it verifies."""
    if not isinstance(entry, dict) or "sha256" not in entry or "embeddings" not in entry:
        return "has no checksum (it was written by an older darec or by another program), so it cannot be verified"
    if entry.get("format") != _ENTRY_FORMAT:
        return f"has the unknown layout {entry.get('format')!r}"
    if entry.get("key") != key:
        return "was written for other texts or another encoder"
    if not isinstance(entry["embeddings"], Tensor):
        return f"holds a {type(entry['embeddings']).__name__} instead of an embedding tensor"
    actual = _tensor_sha256(entry["embeddings"])
    if actual != entry["sha256"]:
        return (
            f"does not match its checksum (the embeddings hash to {actual[:16]}..., the entry records "
            f"{str(entry['sha256'])[:16]}...): the file was changed or damaged on disk"
        )
    return None
