"""Profile files: JSON lines of text profiles written by a language model (:mod:`darec.profiles`).

Each line is one JSON object with at least ``entity`` (``"user"`` or ``"item"``), ``id`` (the
internal, 0-based id), ``raw_id`` and ``summary`` (the profile text); the files written by
:class:`~darec.profiles.ProfileJob` also carry ``key`` (which prompt template, model and options
wrote it), ``reasoning`` and ``raw`` (the model's whole answer). The same id may appear more than
once (a profile written again after the template changed): the **last** line wins.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from darec.data.readers._common import read_text
from darec.utils.jsonl import last_records, loads_object

__all__ = ["read_profiles"]

ENTITIES = ("user", "item")


def read_profiles(path: str | os.PathLike[str], entity: str, *, key: str | None = None) -> dict[int, dict[str, Any]]:
    """The profiles of one kind of entity in a profile file, by internal id (the last line of an id wins).

    Lines that are not complete JSON objects with an integer ``id`` and a non-empty string
    ``summary`` (e.g. the last line of a run that was killed while writing it) are skipped, and one
    :class:`UserWarning` counts them and names the first line number.

    Args:
        path: the ``.jsonl`` file.
        entity: ``"user"`` or ``"item"``; lines of the other kind are ignored.
        key: keep only lines with this ``key`` (default: all).

    Returns:
        ``{id: record}``, each record the line's JSON object.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``entity`` is neither ``"user"`` nor ``"item"``.

    Example:
        >>> import json, tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "items.jsonl"
        >>> rows = [{"entity": "item", "id": 0, "raw_id": "a", "summary": "old"},
        ...         {"entity": "item", "id": 0, "raw_id": "a", "summary": "new"}]
        >>> _ = path.write_text("".join(json.dumps(r) + "\\n" for r in rows) + '{"entity": "item", "id": 1, "su')
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     profiles = read_profiles(path, "item")
        >>> profiles[0]["summary"], len(profiles), len(caught)
        ('new', 1, 1)
    """
    if entity not in ENTITIES:
        raise ValueError(f"entity must be 'user' or 'item', got {entity!r}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no profile file at {path}")
    records, bad = last_records(
        read_text(path),
        _record,
        lambda record: int(record["id"]),
        lambda record: record.get("entity", entity) == entity and (key is None or record.get("key") == key),
    )
    if bad:
        warnings.warn(
            f"{path}: skipped {len(bad)} line(s) that are not complete profiles (first: line {bad[0]}); "
            "a run killed while writing leaves such a line, and its profile is written again when the run resumes",
            UserWarning,
            stacklevel=2,
        )
    return records


def _record(line: str) -> dict[str, Any] | None:
    record = loads_object(line)
    if record is None:
        return None
    ident, summary = record.get("id"), record.get("summary")
    if isinstance(ident, bool) or not isinstance(ident, int) or ident < 0:
        return None
    if not isinstance(summary, str) or not summary.strip():
        return None
    return record
