"""A tiny randomly initialised Llama model with a word-level tokenizer and a chat template, built in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

WORDS = (
    "the a movie film item likes dislikes good bad drama comedy action quiet loud old new "
    "is was and or not very Yes No yes no maybe describe summary one two three four five six seven eight nine ten"
).split()
SPECIAL = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "user", "assistant", "system"]
VOCAB = {token: k for k, token in enumerate(SPECIAL + WORDS)}
assert len(VOCAB) == len(SPECIAL + WORDS), "a word is listed twice"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }} {{ message['content'] }}<|im_end|> {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant {% endif %}"
)


def build_tiny_llama(folder: Path, *, chat_template: str | None = CHAT_TEMPLATE, context: int = 64, seed: int = 0) -> Path:
    """Saves a 2-layer, 16-wide LlamaForCausalLM and its tokenizer (no pad token) to ``folder``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = dict(VOCAB)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.add_special_tokens(["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=context,
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(50)  # larger logits than the default init: greedy choices far from ties
        for layer in model.model.layers:  # attention that matters: answers depend on the whole prompt
            layer.self_attn.o_proj.weight.mul_(10)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny chat model (context of 64 tokens)."""
    pytest.importorskip("transformers")
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_llama_plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same kind of model whose tokenizer has no chat template."""
    pytest.importorskip("transformers")
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-plain"), chat_template=None)
