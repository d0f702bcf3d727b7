"""Preference files: JSON lines of the preferences a language model extracted per user (LANE, LN-2).

Each line is one JSON object with at least ``user`` (the raw user id) and ``preferences`` (a
list of non-empty strings); the files written by :class:`~darec.lane.PreferenceExtractor` also
carry ``id`` (the internal user id when it was written), ``key`` (which template, model and
options wrote it), ``raw`` (the model's whole answer) and ``prompt_sha256``. A user may appear
more than once (preferences written again after the template changed): the **last** line wins.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from darec.data.readers._common import read_text
from darec.utils.jsonl import last_records, loads_object

__all__ = ["read_preference_records", "read_preferences"]


def read_preference_records(path: str | os.PathLike[str], *, key: str | None = None) -> dict[str, dict[str, Any]]:
    """Every user's last complete line of a preference file, by raw user id.

    Lines that are not complete JSON objects with a string ``user`` and a list of non-empty
    strings ``preferences`` (e.g. the last line of a run killed while writing it) are skipped,
    and one :class:`UserWarning` counts them and names the first line number.

    Args:
        path: the ``.jsonl`` file.
        key: keep only lines with this ``key``. (default: all)

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"no preference file at {path}; write one with darec.lane.PreferenceExtractor (see the LANE tutorial)"
        )
    records, bad = last_records(
        read_text(path),
        _record,
        lambda record: str(record["user"]),
        lambda record: key is None or record.get("key") == key,
    )
    if bad:
        warnings.warn(
            f"{path}: skipped {len(bad)} line(s) that are not complete preference lists (first: line {bad[0]}); "
            "a run killed while writing leaves such a line, and the user is asked again when the run resumes",
            UserWarning,
            stacklevel=2,
        )
    return records


def read_preferences(
    path: str | os.PathLike[str],
    user_ids: Sequence[str],
    num_preferences: int,
    *,
    key: str | None = None,
    fallback: Callable[[int], list[str]] | None = None,
) -> list[list[str]]:
    """The ``(len(user_ids), num_preferences)`` preference strings of the users, in the order of ``user_ids``.

    Args:
        path: the preference file (``.jsonl``).
        user_ids: the raw id of every user, ``user_ids[u]`` for user ``u``.
        num_preferences: how many preferences every user must have (LANE's ``m``).
        key: read only lines with this ``key``. (default: all)
        fallback: ``fallback(u)`` gives the preferences of a user without a line; without it, a
            missing user is an error. (default: :obj:`None`)

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a user has no line (and there is no ``fallback``), or a list of another
            length than ``num_preferences``; the message names the users.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "prefs.jsonl"
        >>> _ = path.write_text('{"user": "7", "preferences": ["noir", "heists"]}\\n')
        >>> read_preferences(path, ["7"], 2)
        [['noir', 'heists']]
        >>> read_preferences(path, ["7", "8"], 2, fallback=lambda u: ["films", "more films"])
        [['noir', 'heists'], ['films', 'more films']]
        >>> read_preferences(path, ["7", "8"], 2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: 1 of 2 user(s) have no preferences in .../prefs.jsonl (e.g. raw ids ['8']); ...
    """
    if num_preferences < 1:
        raise ValueError(f"num_preferences must be at least 1, got {num_preferences}")
    records = read_preference_records(path, key=key)
    out: list[list[str]] = []
    missing: list[str] = []
    wrong: list[tuple[str, int]] = []
    for u, raw in enumerate(user_ids):
        record = records.get(str(raw))
        if record is None:
            if fallback is None:
                missing.append(str(raw))
                continue
            prefs = [str(p) for p in fallback(u)]
        else:
            prefs = list(record["preferences"])
        if len(prefs) != num_preferences:
            wrong.append((str(raw), len(prefs)))
            continue
        out.append(prefs)
    if wrong:
        raw, count = wrong[0]
        raise ValueError(
            f"{len(wrong)} user(s) have a preference list of the wrong length in {path} (e.g. user {raw!r} has "
            f"{count}, expected {num_preferences}): extract them again with m={num_preferences}, or set "
            "num_preferences to the length of the file's lists"
        )
    if missing:
        raise ValueError(
            f"{len(missing)} of {len(user_ids)} user(s) have no preferences in {path} (e.g. raw ids {missing[:5]}); "
            "run the extraction again to retry them (it resumes), or set missing_preferences='titles' to give "
            "them preferences made of their latest training titles"
        )
    return out


def _record(line: str) -> dict[str, Any] | None:
    record = loads_object(line)
    if record is None:
        return None
    user, prefs = record.get("user"), record.get("preferences")
    if not isinstance(user, str | int) or isinstance(user, bool):
        return None
    if not isinstance(prefs, list) or not prefs or not all(isinstance(p, str) and p.strip() for p in prefs):
        return None
    return record
