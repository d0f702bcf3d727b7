"""Text profiles, frozen text encoders and the embedding cache."""

from darec.text.cache import TextEmbeddingCache, check_embeddings, load_embeddings
from darec.text.encoders import (
    DEFAULT_ENCODER,
    HuggingFaceEncoder,
    SentenceTransformerEncoder,
    TextEncoder,
    resolve_encoder,
)
from darec.text.profiles import item_profiles, user_profiles, with_text

__all__ = [
    "DEFAULT_ENCODER",
    "HuggingFaceEncoder",
    "SentenceTransformerEncoder",
    "TextEmbeddingCache",
    "TextEncoder",
    "check_embeddings",
    "item_profiles",
    "load_embeddings",
    "resolve_encoder",
    "user_profiles",
    "with_text",
]
