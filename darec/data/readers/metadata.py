"""Item and user metadata files (the text source of one's own data) and joining them to a log."""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from darec.data.interactions import InteractionLog
from darec.data.readers._common import MissingColumnError, PathLike, csv_rows, infer_separator, read_text_file
from darec.text.profiles import ProfileTemplate

__all__ = ["METADATA_TEMPLATE", "attach_metadata", "read_metadata"]

#: The text template of metadata files (:func:`read_metadata`) and of any source without MovieLens
#: titles: items have a title (``movie_title``, ``title`` or ``name``, the first present), a year
#: (``release_year`` or ``year``) and genres (``class``, ``genres`` or ``genre``), so that files
#: exported from MovieLens or RecBole read as well (RecBole's misspelt ``"unkonwn"`` is a placeholder
#: title, like ``"unknown"``); every other field is a sentence.
METADATA_TEMPLATE = ProfileTemplate(
    title_fields=("movie_title", "title", "name"),
    year_fields=("release_year", "year"),
    genre_fields=("class", "genres", "genre"),
    placeholder_titles=frozenset({"", "unknown", "unkonwn"}),
)

_METADATA_ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "item": ("item_id", "item", "id"),
    "user": ("user_id", "user", "id"),
}
_JSONL_SUFFIXES = (".jsonl", ".ndjson")


def read_metadata(
    path: PathLike,
    kind: str = "item",
    *,
    id_col: str | None = None,
    sep: str | None = None,
    encoding: str = "utf-8",
) -> dict[str, dict[str, Any]]:
    """Reads an item or user metadata file into ``{raw_id: {field: value}}``.

    Two formats are read:

    * **delimited text** (TSV, CSV, ...): a header row, then one row per item (user). The
      separator is found as in :func:`read_csv` (``.tsv`` -> tab, ``.csv`` -> comma, else
      sniffed); quote fields that contain it (``"Heat, the movie"``). Values are the stripped
      strings of the file; empty cells are left out.
    * **JSON lines** (``.jsonl``/``.ndjson``): one JSON object per line. Values keep their JSON
      type (a list of genres stays a list); ``null`` and empty strings are left out.

    The id column is ``id_col`` if given, else the first of these found: ``item_id``, ``item``,
    ``id`` for items; ``user_id``, ``user``, ``id`` for users. Every other column is a field. The
    text builders of :mod:`darec.data.text` use ``title`` (or ``name``/``movie_title``), ``year``,
    ``genres`` (``|``, ``;``, ``,`` or space separated) and write any other field
    (``description``, ``director``, ...) as ``"Field: value."``.

    Args:
        path: the metadata file.
        kind: ``"item"`` or ``"user"``: which id column names are looked for.
        id_col: name of the id column, overriding the defaults.
        sep: field separator of a delimited file; inferred when ``None``.
        encoding: text encoding of the file.

    Returns:
        Raw id (a string, as in the interaction file) -> dict of the row's other fields.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        MissingColumnError: if no id column is found (the message lists the accepted names).
        ValueError: if the file is not text, is empty, a row has the wrong number of fields, a
            JSON line is malformed, or an id is missing or repeated (the message names the line).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "items.csv"
        >>> _ = path.write_text('item_id,title,description\\n7,Heat,"A cop, a thief."\\n9,Fargo,\\n')
        >>> read_metadata(path)
        {'7': {'title': 'Heat', 'description': 'A cop, a thief.'}, '9': {'title': 'Fargo'}}
    """
    if kind not in _METADATA_ID_COLUMNS:
        raise ValueError(f"kind must be one of {sorted(_METADATA_ID_COLUMNS)}, got {kind!r}")
    path, text = read_text_file(
        path, encoding, what=f"{kind} metadata file", expected=f"a header with an id column and one row per {kind}"
    )
    jsonl = path.suffix.lower() in _JSONL_SUFFIXES
    records = _jsonl_records(path, text) if jsonl else _delimited_records(path, text, sep)
    return _by_id(records, path, kind, (id_col,) if id_col is not None else _METADATA_ID_COLUMNS[kind])


def _by_id(
    records: Iterator[tuple[int, dict[str, Any]]], path: Path, kind: str, accepted: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """``{raw_id: fields}`` from ``(line, record)`` pairs; the id column is the first of ``accepted`` found."""
    info: dict[str, dict[str, Any]] = {}
    seen_at: dict[str, int] = {}
    key: str | None = None
    for line, fields in records:
        if key is None:
            key = next((name for name in accepted if name in fields), None)
            if key is None:
                raise MissingColumnError(
                    f"{path} has no {kind} id column: expected one of {list(accepted)}, found {list(fields)}"
                )
        raw = fields.pop(key, None)
        raw = "" if raw is None else str(raw).strip()
        if not raw:
            raise ValueError(f"{path}, line {line}: the {kind} id ({key!r}) is missing")
        if raw in seen_at:
            raise ValueError(f"{path}, line {line}: {kind} id {raw!r} is repeated (first on line {seen_at[raw]})")
        seen_at[raw] = line
        info[raw] = {name: value for name, value in fields.items() if value is not None and value != ""}
    if key is None:
        raise ValueError(f"{path} has a header but no {kind} rows")
    return info


def _delimited_records(path: Path, text: str, sep: str | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, {column: value})`` for each row after the header; ``sep`` is inferred when ``None``."""
    sep = sep if sep is not None else infer_separator(path, text)
    rows = csv_rows(text, sep)
    _, names = next(rows)
    empty = [k for k, name in enumerate(names) if not name]
    if empty:
        raise ValueError(f"{path}: column {empty[0] + 1} of the header has no name; header: {names}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{path}: the header repeats the column name(s) {repeated}")
    for line, row in rows:
        if len(row) != len(names):
            raise ValueError(
                f"{path}, line {line}: expected {len(names)} fields separated by {sep!r} (as in the header), "
                f"got {len(row)}; quote values that contain the separator"
            )
        yield line, dict(zip(names, row))


def _jsonl_records(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            record = json.loads(content)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {line}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}, line {line}: expected a JSON object, got {type(record).__name__}")
        yield line, record


def attach_metadata(
    log: InteractionLog,
    *,
    item_info: PathLike | Mapping[str, Mapping[str, Any]] | None = None,
    user_info: PathLike | Mapping[str, Mapping[str, Any]] | None = None,
) -> InteractionLog:
    """A copy of ``log`` with item and/or user metadata from files (or mappings).

    A file is read with :func:`read_metadata`. The metadata given replace those of ``log`` on
    that side (``None`` keeps them). Ids that do not occur in the log are dropped, and one
    :class:`UserWarning` counts them (often a sign that the ids are spelled differently, e.g.
    ``"007"`` and ``"7"``). Items (users) of the log without metadata are counted later, when
    their text is built by :func:`darec.data.text.item_profiles`.

    Args:
        log: the interaction log.
        item_info: item metadata file, or raw id -> fields.
        user_info: user metadata file, or raw id -> fields.

    Returns:
        The new :class:`~darec.data.interactions.InteractionLog`; ``log`` is not modified.

    Raises:
        As :func:`read_metadata`; ``ValueError`` if no id of a metadata file is in the log.

    Example:
        >>> from darec.data.readers import from_arrays
        >>> log = from_arrays(["u1", "u2"], ["7", "9"])
        >>> attach_metadata(log, item_info={"7": {"title": "Heat"}}).item_info
        {'7': {'title': 'Heat'}}
    """
    updates: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, given, known in (("item", item_info, log.items), ("user", user_info, log.users)):
        if given is None:
            continue
        if isinstance(given, Mapping):
            where = f"the {kind} metadata"
            info = {str(k): dict(v) for k, v in given.items()}
        else:
            where = str(given)
            info = read_metadata(given, kind)
        present = set(np.unique(known).tolist())
        unknown = [raw for raw in info if raw not in present]
        if len(unknown) == len(info) and info:
            raise ValueError(
                f"none of the {len(info)} {kind} id(s) of {where} occurs in the interactions of {log.source} "
                f"(e.g. {unknown[:3]} vs. {sorted(present)[:3]}): is it the right file, and are the ids "
                "spelled the same?"
            )
        if unknown:
            warnings.warn(
                f"{len(unknown)} of {len(info)} {kind}(s) in {where} have no interaction in {log.source} and are "
                f"ignored (e.g. {unknown[:3]})",
                UserWarning,
                stacklevel=2,
            )
        updates[f"{kind}_info"] = {raw: fields for raw, fields in info.items() if raw in present}
    return dataclasses.replace(log, **updates) if updates else log
