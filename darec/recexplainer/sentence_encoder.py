"""What :class:`~darec.recexplainer.fidelity_probe.FidelityProbe` needs from a text encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["SentenceEncoder"]


@runtime_checkable
class SentenceEncoder(Protocol):
    """Anything that turns texts into fixed-size vectors: ``encode(texts)`` returns an ``(N, d)`` array or tensor.

    darec's :class:`~darec.text.SentenceTransformerEncoder` satisfies it, and so does a
    ``sentence_transformers.SentenceTransformer`` or a stand-in of one's own (no ``cache_key``
    needed, unlike :class:`~darec.text.TextEncoder`).

    Example:
        >>> import numpy as np
        >>> class Lengths:
        ...     def encode(self, texts):
        ...         return np.array([[len(t), t.count(" ")] for t in texts], dtype=float)
        >>> isinstance(Lengths(), SentenceEncoder)
        True
    """

    def encode(self, texts: Sequence[str]) -> Any:
        """The ``(len(texts), d)`` embeddings of ``texts``."""
        ...
