"""The answer a model gives to a profile prompt: a summary and a short reasoning, read from JSON."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from darec.profiles.errors import ProfileParseError

__all__ = ["ProfileAnswer"]

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class ProfileAnswer:
    """A profile as the model wrote it: ``summary`` (the text that is embedded) and ``reasoning``.

    :meth:`parse` reads it from a raw answer. Models rarely answer with bare JSON, so it looks for
    one JSON object in this order: inside a Markdown code fence (three backticks, optionally
    followed by ``json``), the whole answer, then the first object embedded in prose (``Sure! {"summary": ...} Hope it
    helps.``). Keys are matched without regard to case. The first object with a ``summary`` key
    is used; the summary must be a non-empty string, and the reasoning, if there is one, is kept
    as text.

    Args:
        summary (str): the profile.
        reasoning (str): why the model wrote it (may be empty). (default: ``""``)

    Example:
        >>> ProfileAnswer.parse('Here you go:\\n```json\\n{"summary": "Likes noir.", "reasoning": "3 crime films"}\\n```')
        ProfileAnswer(summary='Likes noir.', reasoning='3 crime films')
        >>> ProfileAnswer.parse('{"Summary": "Enjoys quiet dramas."} That is all.').summary
        'Enjoys quiet dramas.'
        >>> ProfileAnswer.parse('{"summary": ""}', entity="user", id=7)
        Traceback (most recent call last):
        ...
        darec.profiles.errors.ProfileParseError: user 7: the "summary" is empty
    """

    summary: str
    reasoning: str = ""

    @classmethod
    def parse(cls, text: str, *, entity: str | None = None, id: int | None = None) -> ProfileAnswer:  # noqa: A002
        """Reads the profile out of the raw answer ``text``.

        Args:
            text (str): the model's answer.
            entity (str, optional): ``"user"`` or ``"item"``, named in the error message.
            id (int, optional): the entity's internal id, named in the error message.

        Raises:
            ProfileParseError: the answer is empty, holds no JSON object, or its object has no
                non-empty string ``"summary"``; the message names the entity and the problem.
        """

        def fail(problem: str) -> ProfileParseError:
            return ProfileParseError(problem, entity=entity, id=id)

        if not isinstance(text, str) or not text.strip():
            raise fail("the answer is empty")
        objects = _objects(text)
        if not objects:
            if re.search(r"[\"']summary[\"']", text, re.IGNORECASE) and "{" in text:
                raise fail(
                    "the answer's JSON object is incomplete or malformed (was it cut by max_new_tokens?): "
                    f"{_head(text)!r}"
                )
            raise fail(f'the answer holds no JSON object; expected {{"summary": ..., "reasoning": ...}}: {_head(text)!r}')
        for found in objects:
            fields = {str(k).strip().lower(): v for k, v in found.items()}
            if "summary" not in fields:
                continue
            summary = fields["summary"]
            if not isinstance(summary, str):
                raise fail(f'the "summary" is not a string but {type(summary).__name__}')
            if not summary.strip():
                raise fail('the "summary" is empty')
            reasoning = fields.get("reasoning")
            reasoning = "" if reasoning is None else reasoning if isinstance(reasoning, str) else json.dumps(reasoning)
            return cls(" ".join(summary.split()), " ".join(reasoning.split()))
        keys = sorted({str(k) for found in objects for k in found})
        raise fail(f'the answer\'s JSON has no "summary" key (keys: {", ".join(keys) or "none"})')


def _objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in ``text``: fenced ones first, then the whole text, then ones embedded in prose."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    chunks = [match.group(1) for match in _FENCE.finditer(text)] + [text]
    for chunk in chunks:
        chunk = chunk.strip()
        try:
            whole = json.loads(chunk)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, dict):
            found.append(whole)
            continue
        start = chunk.find("{")
        while start != -1:
            try:
                value, end = decoder.raw_decode(chunk, start)
            except json.JSONDecodeError:
                start = chunk.find("{", start + 1)
                continue
            if isinstance(value, dict):
                found.append(value)
            start = chunk.find("{", end)
    return found


def _head(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."
