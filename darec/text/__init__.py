"""Text profile templates, frozen text encoders and the embedding cache.

This package works on plain values (metadata dicts, lists of strings, arrays) and imports nothing
from :mod:`darec.data`; the texts of a dataset's items and users are built by
:mod:`darec.data.text` (:func:`darec.data.with_text`) with a :class:`ProfileTemplate`.
"""

from darec.text.cache import TextEmbeddingCache, check_embeddings, load_embeddings
from darec.text.download import cached_all_mpnet_base_v2, fetch_all_mpnet_base_v2
from darec.text.encoders import (
    DEFAULT_ENCODER,
    HuggingFaceEncoder,
    SentenceTransformerEncoder,
    TextEncoder,
    resolve_encoder,
)
from darec.text.profiles import ProfileTemplate
from darec.text.title_embedder import TitleEmbedder

__all__ = [
    "DEFAULT_ENCODER",
    "HuggingFaceEncoder",
    "ProfileTemplate",
    "SentenceTransformerEncoder",
    "TextEmbeddingCache",
    "TextEncoder",
    "TitleEmbedder",
    "cached_all_mpnet_base_v2",
    "check_embeddings",
    "fetch_all_mpnet_base_v2",
    "load_embeddings",
    "resolve_encoder",
]

# Builders that walk interactions moved to darec.data (darec.text does not import darec.data).
_MOVED = {name: f"darec.data.{name}" for name in ("item_profiles", "user_profiles", "with_text")}


def __getattr__(name: str) -> object:
    if name in _MOVED:
        raise AttributeError(
            f"darec.text.{name} moved to {_MOVED[name]}: the texts of a dataset are built in darec.data, "
            "which walks its interactions; darec.text.ProfileTemplate holds the sentences"
        )
    raise AttributeError(f"module 'darec.text' has no attribute {name!r}")
