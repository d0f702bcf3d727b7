"""Item titles -> a padded embedding matrix for a sequential model's item table (LANE, LN-1)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor

from darec.text.cache import TextEmbeddingCache
from darec.text.encoders import DEFAULT_ENCODER, TextEncoder, resolve_encoder

__all__ = ["TitleEmbedder"]


class TitleEmbedder:
    """Encodes item titles with a frozen encoder into a ``(num_items + 1, d)`` matrix, row 0 zeros.

    Row ``i`` holds the embedding of ``titles[i - 1]``, so that the matrix lines up with an item
    table whose row ``0`` is padding (:class:`~darec.backbones.SASRec`). Each distinct title is
    encoded once and the rows are gathered from those, so identical titles give bit-identical
    rows. The encodings are kept in darec's :class:`~darec.text.TextEmbeddingCache`, keyed by the
    encoder and the titles, so a second call with the same titles reads the cache. The default
    encoder is all-MiniLM-L6-v2 (384-d), the encoder LANE uses, loaded from the packaged copy
    when installed (works with ``HF_HUB_OFFLINE=1``).

    - [0] Zhao et al., "LANE", arXiv:2407.02833 (semantic item embedding).

    Args:
        encoder (str or TextEncoder): model name or directory (sentence-transformers), or any
            :class:`~darec.text.TextEncoder`. (default: :obj:`"all-MiniLM-L6-v2"`)
        cache_dir (str, optional): cache directory. (default: ``$DAREC_HOME/embeddings``)

    Example:
        >>> import tempfile
        >>> class Toy:
        ...     cache_key = {"kind": "toy"}
        ...     def encode(self, texts):
        ...         return torch.tensor([[float(len(t)), 1.0] for t in texts])
        >>> matrix = TitleEmbedder(Toy(), cache_dir=tempfile.mkdtemp())(["Heat", "Up", "Heat"])
        >>> matrix
        tensor([[0., 0.],
                [4., 1.],
                [2., 1.],
                [4., 1.]])
    """

    def __init__(self, encoder: str | TextEncoder = DEFAULT_ENCODER, cache_dir: str | os.PathLike[str] | None = None) -> None:
        resolved = resolve_encoder(encoder)
        if resolved is None:
            raise ValueError("TitleEmbedder needs an encoder, got None")
        self.encoder = resolved
        self.cache = TextEmbeddingCache(cache_dir)

    def __call__(self, titles: Sequence[str]) -> Tensor:
        """The ``(len(titles) + 1, d)`` float32 matrix of ``titles``, row ``0`` zeros.

        Raises:
            ValueError: ``titles`` is empty or holds a non-string or empty title.
        """
        titles = list(titles)
        if not titles:
            raise ValueError("there are no titles to embed")
        bad = [k for k, t in enumerate(titles) if not isinstance(t, str) or not t.strip()]
        if bad:
            raise ValueError(f"{len(bad)} title(s) are empty or not strings, e.g. item {bad[0] + 1}: give every item a title")
        unique = sorted(set(titles))
        index = {title: row for row, title in enumerate(unique)}
        emb = self.cache.get(self.encoder, unique, name="item title embeddings")
        rows = torch.tensor([index[t] for t in titles], dtype=torch.long)
        return torch.cat([emb.new_zeros(1, emb.size(1)), emb.index_select(0, rows)])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(encoder={self.encoder!r})"
