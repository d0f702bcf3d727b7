"""Prompt rendering, placeholder ids and padding shared by the embedding injector and its dataset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from darec.recexplainer.alignment_task import ITEM_TOKEN, USER_TOKEN

#: The placeholder tokens, in the order of their kinds.
PLACEHOLDERS = {"user": USER_TOKEN, "item": ITEM_TOKEN}


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_prompt(tokenizer: Any, prompt: str, system: str | None = None) -> str:
    """The text the model sees: the chat template's user turn ready for the answer, or the prompt itself.

    The same rendering as :meth:`darec.llm.HFCausalLM.render`: without a template a system
    prompt goes before the prompt, separated by a blank line; a template that refuses a system
    turn gets it folded into the prompt.
    """
    if not has_chat_template(tokenizer):
        return f"{system}\n\n{prompt}" if system else prompt
    messages = [{"role": "user", "content": prompt}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception:  # jinja2's TemplateError for a template without system turns
        if not system:
            raise
        return render_prompt(tokenizer, f"{system}\n\n{prompt}")


def prompt_ids(tokenizer: Any, prompt: str, system: str | None = None) -> list[int]:
    """Token ids of the rendered prompt (a chat template writes its own special tokens, a plain prompt gets the tokenizer's)."""
    text = render_prompt(tokenizer, prompt, system)
    return list(tokenizer(text, add_special_tokens=not has_chat_template(tokenizer))["input_ids"])


def response_ids(tokenizer: Any, response: str) -> list[int]:
    """Token ids of the answer followed by the end-of-sequence token: what the model learns to write."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no end-of-sequence token: the model could not learn where an answer ends")
    return list(tokenizer(response, add_special_tokens=False)["input_ids"]) + [int(tokenizer.eos_token_id)]


def placeholder_ids(tokenizer: Any) -> dict[str, int]:
    """``{"user": id, "item": id}`` of the placeholder tokens, or a ``ValueError`` if the tokenizer lacks them."""
    vocab = tokenizer.get_vocab()
    missing = [token for token in PLACEHOLDERS.values() if token not in vocab]
    if missing:
        raise ValueError(
            f"the tokenizer has no {' or '.join(missing)} token: use the tokenizer of a RecEmbeddingInjector "
            "(`injector.tokenizer`), which adds the placeholders"
        )
    return {kind: int(vocab[token]) for kind, token in PLACEHOLDERS.items()}


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int, side: str, fill: int | None = None) -> tuple[Tensor, Tensor]:
    """``(B, T)`` ids padded with ``fill`` (default ``pad_id``) on ``side`` ("left" or "right") and their attention mask."""
    width = max((len(row) for row in rows), default=0)
    ids = torch.full((len(rows), width), pad_id if fill is None else fill, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        if not len(row):
            continue
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[r, span] = torch.as_tensor(list(row), dtype=torch.long)
        mask[r, span] = 1
    return ids, mask
