"""A scripted backend for tests and documentation: no model, no network, fully predictable."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch

from darec.llm.options import GenerationOptions, check_prompts

__all__ = ["FakeLLM"]

Response = str | Callable[[re.Match[str]], str]


class FakeLLM:
    r"""A backend that answers from a script and records every prompt it was given.

    It checks its prompts and options exactly as the real backends do (an empty prompt or an
    unknown option fails the same way), so code tested against it behaves the same against
    :class:`~darec.llm.HFCausalLM` or :class:`~darec.llm.OpenAICompatible`. A scripted answer
    stands for what the model writes: with a ``response_prefix`` it is returned after the prefix,
    as :class:`~darec.llm.HFCausalLM` returns the prefix and the model's continuation (rules and
    callables see the prompt only).

    Args:
        responses: what to answer. One string: always that. A list: its items in turn, starting
            again at the end (across calls). A callable ``f(prompt) -> str``. A mapping of regular
            expressions to answers: the first pattern found in the prompt (:func:`re.search`)
            decides, and its answer is a string or a callable ``f(match) -> str``.
            (default: ``"OK"``)
        default (str, optional): the answer of a prompt that no pattern matches; without it such a
            prompt raises :class:`ValueError`. (default: :obj:`None`)
        logits: what :meth:`choice_logits` returns: a mapping of option to log-probability
            (options not in it get ``-inf``), or a callable ``f(prompt, options) -> list[float]``;
            :obj:`None` gives every option the same score, ``log(1 / len(options))``.
            (default: :obj:`None`)

    Attributes:
        prompts (list[str]): every prompt received, in order, over all calls.
        calls (list[dict]): one entry per call: ``{"prompts": [...], "options": {...}}`` for
            :meth:`generate` (options as in :meth:`GenerationOptions.as_dict`), ``{"prompt": ...,
            "options": [...]}`` for :meth:`choice_logits`.

    Example:
        >>> from darec.llm import FakeLLM
        >>> llm = FakeLLM(["first", "second"])
        >>> llm.generate(["a", "b", "c"])
        ['first', 'second', 'first']
        >>> rules = FakeLLM({r"user (\d+)": lambda m: f'{{"summary": "user {m[1]} likes dramas"}}', r"item": "an item"})
        >>> rules.generate(["Describe user 7.", "Describe item 3."], max_new_tokens=64)
        ['{"summary": "user 7 likes dramas"}', 'an item']
        >>> rules.prompts
        ['Describe user 7.', 'Describe item 3.']
        >>> rules.generate(["Hello"])
        Traceback (most recent call last):
        ...
        ValueError: FakeLLM: no rule matches prompt 0 ('Hello'); give a rule for it or a default answer
        >>> FakeLLM('likes dramas."}').generate(["Describe user 7."], response_prefix='{"summary": "')
        ['{"summary": "likes dramas."}']
    """

    def __init__(
        self,
        responses: str | Sequence[str] | Callable[[str], str] | Mapping[str, Response] = "OK",
        *,
        default: str | None = None,
        logits: Mapping[str, float] | Callable[[str, Sequence[str]], Sequence[float]] | None = None,
    ) -> None:
        self._cycle: Iterator[str] | None = None
        self._function: Callable[[str], str] | None = None
        self._rules: list[tuple[re.Pattern[str], Response]] | None = None
        if isinstance(responses, str):
            self._cycle = itertools.repeat(responses)
        elif isinstance(responses, Mapping):
            self._rules = [(re.compile(pattern), answer) for pattern, answer in responses.items()]
        elif callable(responses):
            self._function = responses
        else:
            answers = list(responses)
            if not answers or not all(isinstance(answer, str) for answer in answers):
                raise ValueError("responses must be a non-empty list of strings, a string, a callable or a mapping")
            self._cycle = itertools.cycle(answers)
        self.default = default
        self.logits = logits
        self.prompts: list[str] = []
        self.calls: list[dict[str, Any]] = []

    def generate(self, prompts: Sequence[str], **options: Any) -> list[str]:
        """One scripted answer per prompt, in order.

        Args:
            prompts (Sequence[str]): the prompts.
            **options: the generation options (:class:`~darec.llm.GenerationOptions`): checked and
                recorded; ``response_prefix`` is put before every answer, the others are ignored.

        Raises:
            TypeError: an unknown option, or a prompt that is not a string.
            ValueError: an empty prompt, a bad option value, or a prompt no rule matches (without
                a ``default``).
        """
        checked = check_prompts(prompts)
        settings = GenerationOptions.from_kwargs(**options)
        prefix = settings.response_prefix or ""
        answers = [prefix + self._answer(index, prompt) for index, prompt in enumerate(checked)]
        self.prompts.extend(checked)
        self.calls.append({"prompts": checked, "options": settings.as_dict()})
        return answers

    def _answer(self, index: int, prompt: str) -> str:
        if self._cycle is not None:
            return next(self._cycle)
        if self._function is not None:
            return str(self._function(prompt))
        for pattern, answer in self._rules or []:
            match = pattern.search(prompt)
            if match:
                return answer if isinstance(answer, str) else str(answer(match))
        if self.default is not None:
            return self.default
        head = prompt if len(prompt) <= 60 else prompt[:57] + "..."
        raise ValueError(f"FakeLLM: no rule matches prompt {index} ({head!r}); give a rule for it or a default answer")

    def choice_logits(self, prompt: str, options: Sequence[str]) -> torch.Tensor:
        """The scripted log-probability of each option, shape ``(len(options),)`` (float32).

        Raises:
            ValueError: ``options`` is empty, or the ``logits`` callable returned the wrong number
                of scores.
        """
        check_prompts([prompt])
        options = list(options)
        if not options:
            raise ValueError("choice_logits needs at least one option")
        if self.logits is None:
            scores = [-math.log(len(options))] * len(options)
        elif isinstance(self.logits, Mapping):
            scores = [float(self.logits.get(option, -math.inf)) for option in options]
        else:
            scores = [float(score) for score in self.logits(prompt, options)]
            if len(scores) != len(options):
                raise ValueError(f"the logits callable returned {len(scores)} scores for {len(options)} options")
        self.prompts.append(prompt)
        self.calls.append({"prompt": prompt, "options": options})
        return torch.tensor(scores, dtype=torch.float32)

    def __repr__(self) -> str:
        return f"FakeLLM(prompts received: {len(self.prompts)})"
