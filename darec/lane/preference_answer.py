"""The answer to a preference prompt: exactly ``m`` distinct preferences, read from the last JSON
object or, without one, from a numbered list."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from darec.lane.errors import PreferenceParseError
from darec.utils.llm_json import head as _head
from darec.utils.llm_json import json_values

__all__ = ["PreferenceAnswer"]


@dataclasses.dataclass(frozen=True)
class PreferenceAnswer:
    """The ``m`` preferences a model listed for one user (LANE, LN-2).

    :meth:`parse` keeps the **last** JSON object of the answer, as LANE's code does: inside
    Markdown code fences, the whole answer, or embedded in prose (``Sure! {...} Hope it helps``).
    The object is either a dict of ``m`` preference strings (``{"1": "...", ..., "5": "..."}``,
    any keys) or holds one list of ``m`` strings (``{"preferences": [...]}``); a bare JSON list
    of ``m`` strings is accepted too. An answer without any JSON is read as a numbered list
    (``1. ...`` or ``1) ...`` at the start of a line, numbered ``1, 2, ...`` without gaps; lines
    that carry on an item are joined to it), the form small models keep to when JSON is beyond
    them (:data:`~darec.lane.PREFERENCE_LIST_TEMPLATE`). The count must be exactly ``m``, the
    strings non-empty and distinct (case and surrounding spaces ignored).

    Args:
        preferences (tuple[str, ...]): the preferences, in the model's order.

    Example:
        >>> PreferenceAnswer.parse('Here:\\n```json\\n{"1": "crime thrillers", "2": "1990s comedies"}\\n```', m=2)
        PreferenceAnswer(preferences=('crime thrillers', '1990s comedies'))
        >>> PreferenceAnswer.parse('{"preferences": ["noir", "westerns"]} That is all.', m=2).preferences
        ('noir', 'westerns')
        >>> PreferenceAnswer.parse('1. The user likes noir.\\n2. Westerns,\\n   mostly from the 1950s', m=2).preferences
        ('The user likes noir.', 'Westerns, mostly from the 1950s')
        >>> PreferenceAnswer.parse('{"1": "noir"}', m=2, user=4)
        Traceback (most recent call last):
        ...
        darec.lane.errors.PreferenceParseError: user 4: the answer lists 1 preference(s), expected exactly 2
    """

    preferences: tuple[str, ...]

    @classmethod
    def parse(cls, text: str, m: int, *, user: int | None = None) -> PreferenceAnswer:
        """Reads exactly ``m`` preferences out of the raw answer ``text``.

        Args:
            text (str): the model's answer.
            m (int): how many preferences the answer must list.
            user (int, optional): the user's internal id, named in the error message.

        Raises:
            PreferenceParseError: the answer is empty, holds no JSON object or list, or its last
                one does not hold exactly ``m`` distinct non-empty strings.
        """
        if not isinstance(text, str) or not text.strip():
            raise PreferenceParseError("the answer is empty", user)
        found = _values(text)
        if found:
            prefs = _strings(found[-1])
            if prefs is None:
                raise PreferenceParseError(
                    f"the answer's last JSON value is not a dict or list of preference strings: {_head(text)!r}", user
                )
        else:
            prefs = _numbered(text, user)
        if len(prefs) != m:
            raise PreferenceParseError(f"the answer lists {len(prefs)} preference(s), expected exactly {m}", user)
        cleaned = tuple(" ".join(p.split()) for p in prefs)
        if any(not p for p in cleaned):
            raise PreferenceParseError("a preference is empty", user)
        if len({p.lower() for p in cleaned}) != m:
            raise PreferenceParseError(f"the {m} preferences are not distinct: {list(cleaned)}", user)
        return cls(cleaned)


def _strings(value: Any) -> list[str] | None:
    """The preference strings of one parsed JSON value, or :obj:`None` when it has no such shape."""
    if isinstance(value, list):
        return [str(v) for v in value] if all(isinstance(v, str | int | float) for v in value) else None
    if not isinstance(value, dict) or not value:
        return None
    if len(value) == 1:
        (only,) = value.values()
        if isinstance(only, list):
            return _strings(only)
    if all(isinstance(v, str) for v in value.values()):
        return list(value.values())
    return None


_ITEM = re.compile(r"^\s*(?:[-*]\s*)?(\d{1,3})\s*[.)]\s*(.*)$")


def _numbered(text: str, user: int | None) -> list[str]:
    """The items of a numbered list ``1. ...``, ``2. ...`` (continuation lines joined to their item)."""
    items: list[list[str]] = []
    for line in text.splitlines():
        match = _ITEM.match(line)
        if match is not None:
            number = int(match.group(1))
            if number != len(items) + 1:
                raise PreferenceParseError(
                    f"the answer's numbered list jumps from {len(items)} to {number}: {_head(text)!r}", user
                )
            items.append([match.group(2)])
        elif items and line.strip():
            items[-1].append(line.strip())
    if not items:
        raise PreferenceParseError(f"the answer holds no JSON object and no numbered list: {_head(text)!r}", user)
    return [" ".join(" ".join(parts).split()) for parts in items]


def _values(text: str) -> list[Any]:
    """Every JSON object (or list) in ``text``, in order of appearance; fenced blocks are searched first."""
    return json_values(text, lenient=True, lists=True, text_after_fences=False)
