"""The protocols every text-generation backend of :mod:`darec.llm` satisfies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

__all__ = ["ChoiceScorer", "LLMBackend"]


@runtime_checkable
class LLMBackend(Protocol):
    """Anything that turns a batch of prompts into one answer each.

    ``generate(prompts, **options)`` takes a sequence of user prompts (plain strings; a backend
    with a chat model wraps each in its chat template) and returns one answer per prompt, in the
    same order. The options, validated by :class:`~darec.llm.GenerationOptions`, are
    ``max_new_tokens``, ``temperature`` (``0`` is greedy, the default), ``top_p``, ``seed`` (for
    sampling) and ``system`` (a system prompt). :class:`~darec.llm.HFCausalLM`,
    :class:`~darec.llm.OpenAICompatible` and :class:`~darec.llm.FakeLLM` satisfy it, and so does
    any object of your own with such a method.

    Backends that can also score fixed answers satisfy :class:`ChoiceScorer` as well.

    Example:
        >>> from darec.llm import FakeLLM, LLMBackend
        >>> isinstance(FakeLLM(["yes"]), LLMBackend)
        True
    """

    def generate(self, prompts: Sequence[str], **options: Any) -> list[str]:
        """One answer per prompt, in order."""
        ...


@runtime_checkable
class ChoiceScorer(Protocol):
    """A backend that scores fixed answers, for yes/no style questions.

    ``choice_logits(prompt, options)`` returns a float tensor of shape ``(len(options),)``: for
    each option, the log-probability that the model's answer to ``prompt`` starts with it (its
    first token; :class:`~darec.llm.HFCausalLM` can also score the whole option). They are *not*
    renormalised over the options: ``scores.softmax(-1)`` does that.

    Example:
        >>> from darec.llm import ChoiceScorer, FakeLLM
        >>> fake = FakeLLM(logits={"Yes": -0.1, "No": -2.3})
        >>> isinstance(fake, ChoiceScorer)
        True
        >>> fake.choice_logits("Will user 3 like Heat (1995)?", ["Yes", "No"])
        tensor([-0.1000, -2.3000])
    """

    def choice_logits(self, prompt: str, options: Sequence[str]) -> torch.Tensor:
        """Log-probability of each option as the beginning of the answer, shape ``(len(options),)``."""
        ...
