"""Reading JSON out of a language model's answer: code fences, prose around the object, raw newlines."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["FENCE", "LENIENT", "head", "json_values"]

#: A Markdown code fence (three backticks, optionally ``json``); group 1 is its content.
FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)
#: A decoder that accepts control characters in strings: a model may put a raw newline inside a string.
LENIENT = json.JSONDecoder(strict=False)
_STRICT = json.JSONDecoder()


def json_values(text: str, *, lenient: bool = False, lists: bool = False, text_after_fences: bool = True) -> list[Any]:
    """Every JSON object in ``text``, in order: fenced blocks first, each whole or with objects embedded in prose.

    Each chunk (the content of a code fence, or the whole text) counts as one value when it is
    valid JSON as a whole; otherwise every JSON object that starts at a ``{`` in it and does not
    lie inside an object found before is collected (``Sure! {"a": 1} Hope it helps.``).

    Args:
        text: the model's answer.
        lenient: allow control characters (raw newlines) inside strings. (default: :obj:`False`)
        lists: a chunk that is a JSON list as a whole counts too. (default: :obj:`False`, objects only)
        text_after_fences: search the whole text after the fenced blocks; :obj:`False` searches
            it only when there is no fence. (default: :obj:`True`)

    Example:
        >>> json_values('Sure:\\n```json\\n{"a": 1}\\n```\\nor {"b": 2}!')
        [{'a': 1}, {'a': 1}, {'b': 2}]
        >>> json_values('Sure:\\n```json\\n{"a": 1}\\n```\\nor {"b": 2}!', text_after_fences=False)
        [{'a': 1}]
        >>> json_values('["x", "y"]', lists=True), json_values('["x", "y"]')
        ([['x', 'y']], [])
    """
    decoder = LENIENT if lenient else _STRICT
    whole_types = (dict, list) if lists else (dict,)
    fenced = [match.group(1) for match in FENCE.finditer(text)]
    chunks = fenced + [text] if text_after_fences else fenced or [text]
    found: list[Any] = []
    for chunk in chunks:
        chunk = chunk.strip()
        try:
            whole = decoder.decode(chunk)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, whole_types):
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


def head(text: str, width: int = 80) -> str:
    """``text`` on one line (white space folded), cut to ``width`` characters with ``...``: for error messages.

    Example:
        >>> head("a  long\\nanswer", width=80), head("x" * 100, width=10)
        ('a long answer', 'xxxxxxx...')
    """
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."
