"""The answer a model gives to a profile prompt: a summary and a short reasoning, read from JSON."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from darec.profiles.errors import ProfileParseError
from darec.utils.llm_json import LENIENT as _LENIENT
from darec.utils.llm_json import head as _head
from darec.utils.llm_json import json_values

__all__ = ["ProfileAnswer"]

#: The opening of an answer object, up to the summary string's first character.
_OPENING = re.compile(r'\{\s*"summary"\s*:\s*"', re.IGNORECASE)
_CLOSING = re.compile(r'\s*(?:\}|$|,\s*"[^"\n]*(?:"\s*:|$))')  # what may follow the closing quote of a string
_REASONING = re.compile(r'\s*,\s*"reasoning"\s*:\s*"', re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
_PLACEHOLDER = re.compile(r"<[^<>\n]{1,40}>|\[[a-z][a-z _-]{0,30}\]")  # "<the profile>", "[genre]": the template echoed
_LIST_NUMBER = re.compile(r"\s+\d+[.)]$")

#: A summary of at least this many words is degenerate when fewer than half of its word
#: trigrams are distinct (a model stuck in a loop: "Comedy, Comedy, Comedy, ...").
_MIN_WORDS_FOR_REPETITION = 8


@dataclasses.dataclass(frozen=True)
class ProfileAnswer:
    """A profile as the model wrote it: ``summary`` (the text that is embedded) and ``reasoning``.

    :meth:`parse` reads it from a raw answer. Models rarely answer with bare JSON, so it looks for
    one JSON object in this order: inside a Markdown code fence (three backticks, optionally
    followed by ``json``), the whole answer, then the first object embedded in prose (``Sure! {"summary": ...} Hope it
    helps.``). Keys are matched without regard to case. The first object with a ``summary`` key
    is used; the summary must be a non-empty string, and the reasoning, if there is one, is kept
    as text.

    An answer whose object was cut after its summary (``{"summary": "Likes noir.", "reason``,
    by ``max_new_tokens``) still gives its summary, and the reasoning as far as it goes. With
    ``partial=True`` (answers *prefilled* with ``{"summary": "``, which small models continue
    until the token limit) a summary string that was cut itself is accepted too, up to its last
    complete sentence. In every case a degenerate summary is refused: one that repeats itself
    (fewer than half of its three-word sequences distinct), has fewer than two words, or echoes a
    placeholder of the prompt (``<the profile>``, ``[genre]``); a sentence repeated word for word
    is kept once.

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
        >>> ProfileAnswer.parse('{"summary": "A heist thriller. Fans of crime films will like it. The', partial=True)
        ProfileAnswer(summary='A heist thriller. Fans of crime films will like it.', reasoning='')
    """

    summary: str
    reasoning: str = ""

    @classmethod
    def parse(
        cls, text: str, *, entity: str | None = None, id: int | None = None, partial: bool = False  # noqa: A002
    ) -> ProfileAnswer:
        """Reads the profile out of the raw answer ``text``.

        Args:
            text (str): the model's answer (with a prefilled answer: the prefix and its continuation).
            entity (str, optional): ``"user"`` or ``"item"``, named in the error message.
            id (int, optional): the entity's internal id, named in the error message.
            partial (bool): also accept a summary string cut at the end of the answer, up to its
                last complete sentence. (default: :obj:`False`)

        Raises:
            ProfileParseError: the answer is empty, holds no JSON object, or its object has no
                non-empty string ``"summary"``, or the summary is degenerate (it repeats itself, has
                fewer than two words, holds a placeholder, or, cut, has no complete sentence); the
                message names the entity and the problem.
        """

        def fail(problem: str) -> ProfileParseError:
            return ProfileParseError(problem, entity=entity, id=id)

        if not isinstance(text, str) or not text.strip():
            raise fail("the answer is empty")
        objects = _objects(text)
        for found in objects:
            fields = {str(k).strip().lower(): v for k, v in found.items()}
            if "summary" not in fields:
                continue
            summary = fields["summary"]
            if not isinstance(summary, str):
                raise fail(f'the "summary" is not a string but {type(summary).__name__}')
            reasoning = fields.get("reasoning")
            reasoning = "" if reasoning is None else reasoning if isinstance(reasoning, str) else json.dumps(reasoning)
            return cls(_clean(summary, fail), " ".join(reasoning.split()))
        opened = _opened(text)
        if opened is not None:
            summary, closed, reasoning = opened
            if closed or partial:
                if not closed and summary.strip():
                    _check_degenerate(summary, fail)
                    ends = list(_SENTENCE_END.finditer(summary))
                    if not ends:
                        raise fail(
                            f"the summary was cut before its first sentence ended (raise max_new_tokens): {_head(summary)!r}"
                        )
                    summary = _LIST_NUMBER.sub("", summary[: ends[-1].end()])  # "... festival. 5." loses "5."
                return cls(_clean(summary, fail), " ".join(reasoning.split()))
        if not objects:
            if re.search(r"[\"']summary[\"']", text, re.IGNORECASE) and "{" in text:
                raise fail(
                    "the answer's JSON object is incomplete or malformed (was it cut by max_new_tokens?): "
                    f"{_head(text)!r}"
                )
            raise fail(f'the answer holds no JSON object; expected {{"summary": ..., "reasoning": ...}}: {_head(text)!r}')
        keys = sorted({str(k) for found in objects for k in found})
        raise fail(f'the answer\'s JSON has no "summary" key (keys: {", ".join(keys) or "none"})')


def _clean(summary: str, fail: Any) -> str:
    """The summary on one line, each sentence once; refused when empty or degenerate."""
    if not summary.strip():
        raise fail('the "summary" is empty')
    _check_degenerate(summary, fail)
    kept: list[str] = []
    seen: set[str] = set()
    for sentence in re.split(r"(?<=[.!?])\s+", " ".join(summary.split())):
        norm = sentence.lower()
        if norm not in seen:
            seen.add(norm)
            kept.append(sentence)
    return " ".join(kept)


def _check_degenerate(summary: str, fail: Any) -> None:
    if len([word for word in summary.split() if re.search(r"[^\W\d_]", word)]) < 2:
        raise fail(f"the summary is not a profile (fewer than two words): {_head(summary)!r}")
    placeholder = _PLACEHOLDER.search(summary)
    if placeholder:
        raise fail(f"the summary holds the placeholder {placeholder[0]!r} instead of a profile: {_head(summary)!r}")
    words = summary.lower().split()
    if len(words) < _MIN_WORDS_FOR_REPETITION:
        return
    trigrams = list(zip(words, words[1:], words[2:]))
    if len(set(trigrams)) < 0.5 * len(trigrams):
        raise fail(f"the summary repeats itself (a degenerate answer): {_head(summary)!r}")


def _string(text: str, start: int) -> tuple[str, int | None]:
    """The JSON string whose first character is ``text[start]``, decoded, and the index after its closing quote.

    Small models put bare quotes inside strings (``"enjoys "Heat" and ..."``): a quote counts as
    the closing one only when the next key (``, "reasoning":``), a closing brace or the end of the
    text follows it. A string cut at the end of ``text`` is returned as far as it goes, with
    :obj:`None` for the index.
    """
    parts: list[str] = []
    k = start
    while k < len(text):
        char = text[k]
        if char == "\\":
            parts.append(text[k : k + 2])
            k += 2
            continue
        if char == '"':
            if _CLOSING.match(text, k + 1):
                break
            parts.append('\\"')
        else:
            parts.append(char)
        k += 1
    closed = k < len(text)
    body = "".join(parts)
    if not closed and (len(body) - len(body.rstrip("\\"))) % 2 == 1:
        body = body[:-1]  # an escape cut in half
    try:
        value = _LENIENT.decode('"' + body + '"')
    except json.JSONDecodeError:
        value = body
    return value, (k + 1 if closed else None)


def _opened(text: str) -> tuple[str, bool, str] | None:
    """``(summary, closed, reasoning)`` of an answer object that opens like ``{"summary": "`` but is not whole."""
    match = _OPENING.search(text)
    if match is None:
        return None
    summary, end = _string(text, match.end())
    reasoning = ""
    if end is not None:
        follow = _REASONING.match(text, end)
        if follow is not None:
            reasoning = _string(text, follow.end())[0]
    return summary, end is not None, reasoning


def _objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in ``text``: fenced ones first, then the whole text, then ones embedded in prose."""
    return json_values(text)
