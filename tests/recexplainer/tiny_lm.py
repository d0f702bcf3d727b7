"""A tiny random Llama and a word-level tokenizer, built in memory in milliseconds, for the RX-2 tests.

Every title is one token, so that task 1's answer is one token followed by the end-of-sequence token.
The tokenizer has the chat template of ``tests/llm/conftest.py`` (or none) and no pad token.
"""

from __future__ import annotations

from typing import Any

from tests.llm.conftest import CHAT_TEMPLATE, SPECIAL

#: Width of the synthetic recommender vectors.
REC_DIM = 8

TITLES = (
    "Heat Alien Fargo Ran Jaws Up Big Brazil Casino Psycho Rocky Vertigo Amadeus Gattaca Memento Seven"
).split()
WORDS = "which movie next for the item like Yes No is and title similar to of".split()
VOCAB = {token: k for k, token in enumerate(SPECIAL + WORDS + list(TITLES))}
assert len(VOCAB) == len(SPECIAL) + len(WORDS) + len(TITLES), "a word is listed twice"


def tiny_tokenizer(chat_template: str | None = CHAT_TEMPLATE):
    """A word-level tokenizer over :data:`VOCAB` (whitespace-split, unknown words are ``<unk>``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(vocab=dict(VOCAB), unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.add_special_tokens(["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def tiny_llama(hidden_size: int = 32, context: int = 64, seed: int = 0, tie: bool = False):
    """A 2-layer random ``LlamaForCausalLM`` over :data:`VOCAB`, the same weights for the same arguments."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context,
        bos_token_id=VOCAB["<s>"],
        eos_token_id=VOCAB["</s>"],
        tie_word_embeddings=tie,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # a trained LM's confident logits, not the init's near-uniform ones (as tests/llm/conftest.py)
        model.lm_head.weight.mul_(50)
    return model


def make_injector(chat: bool = True, rec_dim: int = REC_DIM, **kwargs: Any):
    """A :class:`~darec.recexplainer.RecEmbeddingInjector` (LoRA rank 4, no dropout) over a fresh :func:`tiny_llama`.

    ``hidden_size``, ``context``, ``seed`` and ``tie`` go to :func:`tiny_llama`, the rest to the injector.
    """
    from darec.recexplainer.rec_embedding_injector import RecEmbeddingInjector

    lm_kwargs = {key: kwargs.pop(key) for key in ("hidden_size", "context", "seed", "tie") if key in kwargs}
    kwargs.setdefault("lora_r", 4)
    kwargs.setdefault("lora_dropout", 0.0)
    tokenizer = tiny_tokenizer() if chat else tiny_tokenizer(chat_template=None)
    return RecEmbeddingInjector(tiny_llama(**lm_kwargs), rec_dim, tokenizer, **kwargs)


def task_one(user: int, title: str):
    """Task 1 in the intention form: the user's vector -> the title of "their" item."""
    from darec.recexplainer.alignment_task import AlignmentTask

    return AlignmentTask(
        "next_item", "intention", "which movie next for the user <user>", title, user=user, placeholders=(("user", user),)
    )


def users_and_tasks(num_users: int = 4, seed: int = 0):
    """``(num_users, REC_DIM)`` random user vectors and each user's task 1, answered by ``TITLES[user]``."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.randn(num_users, REC_DIM, generator=gen), [task_one(u, TITLES[u]) for u in range(num_users)]
