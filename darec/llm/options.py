"""The generation options every backend accepts, validated in one place."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["GenerationOptions", "check_prompts"]


@dataclasses.dataclass(frozen=True)
class GenerationOptions:
    """The options of :meth:`LLMBackend.generate <darec.llm.LLMBackend.generate>`, with their defaults.

    Backends build it from their keyword arguments with :meth:`from_kwargs`, so an unknown option
    or a bad value fails the same way everywhere, before any work is done. :meth:`as_dict` is
    stable, so it can be hashed to key cached answers.

    Args:
        max_new_tokens (int): the most tokens to generate per answer. (default: ``256``)
        temperature (float): ``0`` decodes greedily (deterministic); above ``0`` samples.
            (default: ``0.0``)
        top_p (float): nucleus sampling mass, in ``(0, 1]``; used only when sampling. (default: ``1.0``)
        seed (int, optional): seed of the sampling, for answers that reproduce. (default: :obj:`None`)
        system (str, optional): a system prompt put before every prompt. (default: :obj:`None`)
        response_prefix (str, optional): the start of every answer, written for the model
            (*assistant prefill*): the model continues it instead of starting its answer freely,
            e.g. ``'{"summary": "'`` to get JSON from a small model. The answers returned begin
            with it. Only a backend that builds the model's input itself can honour it:
            :class:`~darec.llm.HFCausalLM` and :class:`~darec.llm.FakeLLM` do;
            :class:`~darec.llm.OpenAICompatible` cannot (a chat API takes whole messages), warns
            once and returns the model's own answers. (default: :obj:`None`)
        repetition_penalty (float): divides the score of every token the answer already holds
            (above ``1``; ``1`` is off), the classic guard against a small model looping
            (``Children's, Children's, ...``). Only the answer's own tokens count, not the prompt's
            nor the ``response_prefix``: the titles and genres a prompt asks about stay free to copy. :class:`~darec.llm.HFCausalLM` honours it;
            :class:`~darec.llm.OpenAICompatible` warns once and ignores it (the chat API has no such
            field; servers differ in what they accept). (default: ``1.0``)

    Example:
        >>> GenerationOptions.from_kwargs(max_new_tokens=32).as_dict()
        {'max_new_tokens': 32, 'temperature': 0.0, 'top_p': 1.0, 'seed': None, 'system': None, 'response_prefix': None, 'repetition_penalty': 1.0}
        >>> GenerationOptions.from_kwargs(max_tokens=32)
        Traceback (most recent call last):
        ...
        TypeError: unknown generation option 'max_tokens'; the options are max_new_tokens, temperature, top_p, seed, system, response_prefix, repetition_penalty
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    system: str | None = None
    response_prefix: str | None = None
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}")
        if not _is_number(self.temperature) or not self.temperature >= 0 or math.isinf(self.temperature):
            raise ValueError(f"temperature must be a finite number >= 0 (0 is greedy), got {self.temperature!r}")
        if not _is_number(self.top_p) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an integer or None, got {self.seed!r}")
        if self.system is not None and not isinstance(self.system, str):
            raise ValueError(f"system must be a string or None, got {type(self.system).__name__}")
        if self.response_prefix is not None and (not isinstance(self.response_prefix, str) or not self.response_prefix):
            raise ValueError(f"response_prefix must be a non-empty string or None, got {self.response_prefix!r}")
        if (
            not _is_number(self.repetition_penalty)
            or not self.repetition_penalty > 0
            or math.isinf(self.repetition_penalty)
        ):
            raise ValueError(f"repetition_penalty must be a finite number > 0 (1 is off), got {self.repetition_penalty!r}")

    @property
    def greedy(self) -> bool:
        """Whether decoding is greedy (``temperature == 0``)."""
        return self.temperature == 0

    @classmethod
    def from_kwargs(cls, **options: Any) -> GenerationOptions:
        """Builds the options from keyword arguments; unknown names raise :class:`TypeError`."""
        known = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            raise TypeError(
                f"unknown generation option{'s' if len(unknown) > 1 else ''} {names}; the options are {', '.join(known)}"
            )
        return cls(**options)

    def as_dict(self) -> dict[str, Any]:
        """The options as a plain dict, in field order."""
        return dataclasses.asdict(self)

    def as_kwargs(self) -> dict[str, Any]:
        """:meth:`as_dict` without the options added later that are switched off.

        ``response_prefix=None`` and ``repetition_penalty=1.0`` are left out: a backend of one's
        own written before they existed still accepts the options, and cache keys hashed from this
        dict stay those of files written before them.

        Example:
            >>> GenerationOptions(max_new_tokens=8).as_kwargs()
            {'max_new_tokens': 8, 'temperature': 0.0, 'top_p': 1.0, 'seed': None, 'system': None}
            >>> GenerationOptions(repetition_penalty=1.3).as_kwargs()["repetition_penalty"]
            1.3
        """
        options = self.as_dict()
        for name, off in _ADDED_OFF.items():
            if options[name] == off:
                del options[name]
        return options

    def retry_kwargs(self, attempt: int, retry_temperature: float | None = 0.7) -> dict[str, Any]:
        """:meth:`as_kwargs` for attempt ``attempt`` (0 the first) of a job that asks again for failed answers.

        Attempt 0 gets the options as they are; a later one gets the seed ``seed + attempt`` and,
        when decoding is greedy (which would repeat the failed answer), ``retry_temperature``
        (:obj:`None` keeps the options' temperature).

        Example:
            >>> options = GenerationOptions(max_new_tokens=8)
            >>> options.retry_kwargs(0) == options.as_kwargs()
            True
            >>> {k: options.retry_kwargs(2)[k] for k in ("seed", "temperature")}
            {'seed': 2, 'temperature': 0.7}
        """
        options = self.as_kwargs()
        if attempt == 0:
            return options
        options["seed"] = (self.seed or 0) + attempt
        if self.greedy and retry_temperature is not None:
            options["temperature"] = float(retry_temperature)
        return options


#: Options added after the first release, with the value that switches them off (see ``as_kwargs``).
_ADDED_OFF: dict[str, Any] = {"response_prefix": None, "repetition_penalty": 1.0}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def check_prompts(prompts: Sequence[str]) -> list[str]:
    """The prompts as a list, after checking that each is a non-empty string.

    Raises:
        TypeError: ``prompts`` is one string (pass a list) or an element is not a string; the
            message names its index.
        ValueError: a prompt is empty or only whitespace; the message names its index.

    Example:
        >>> check_prompts(("a", "b"))
        ['a', 'b']
        >>> check_prompts(["a", " "])
        Traceback (most recent call last):
        ...
        ValueError: prompt 1 is empty
    """
    if isinstance(prompts, (str, bytes)):
        raise TypeError("prompts must be a sequence of strings, got one string; pass [prompt]")
    if isinstance(prompts, Mapping):
        raise TypeError("prompts must be a sequence of strings, got a mapping; pass list(mapping.values())")
    checked = list(prompts)
    for index, prompt in enumerate(checked):
        if not isinstance(prompt, str):
            raise TypeError(f"prompt {index} is a {type(prompt).__name__}, not a string")
        if not prompt.strip():
            raise ValueError(f"prompt {index} is empty")
    return checked
