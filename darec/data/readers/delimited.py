"""Delimited text files (CSV, TSV, ...) of interactions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from darec.data.interactions import InteractionLog
from darec.data.readers._common import (
    MissingColumnError,
    PathLike,
    csv_rows,
    infer_separator,
    parse_floats,
    read_text_file,
)
from darec.data.readers.arrays import from_arrays
from darec.data.readers.metadata import attach_metadata

__all__ = ["read_csv"]

_POSITIONAL_DEFAULTS = {"user": 0, "item": 1, "rating": 2, "timestamp": 3}


# Over 60 lines only because its docstring documents every option; the body is a short list of
# named steps (_header_names, _column_positions, _collect_columns).
def read_csv(
    path: PathLike,
    *,
    sep: str | None = None,
    user_col: str | int = "user",
    item_col: str | int = "item",
    rating_col: str | int | None = None,
    timestamp_col: str | int | None = None,
    header: bool = True,
    encoding: str = "utf-8",
    detect_optional: bool = False,
    item_info: PathLike | Mapping[str, Mapping[str, Any]] | None = None,
    user_info: PathLike | Mapping[str, Mapping[str, Any]] | None = None,
) -> InteractionLog:
    """Reads an interaction log from a delimited text file (CSV, TSV, ...).

    The separator is taken from the extension when not given: ``.tsv`` -> tab, ``.csv`` -> comma,
    anything else is sniffed from the first lines (among ``, \\t ; |`` and space). Blank lines are
    skipped and fields are stripped of surrounding whitespace.

    Columns are selected by header name, or by 0-based position when ``*_col`` is an ``int``. With
    ``header=False`` the file has no header row and columns are positional, laid out as
    ``user, item[, rating[, timestamp]]``: the default names ``"user"``/``"item"`` select
    columns 0 and 1, and ``rating_col="rating"``/``timestamp_col="timestamp"`` select columns
    2 and 3. ``rating_col``/``timestamp_col`` of ``None`` mean "not read" in both modes.

    Args:
        path: the file.
        sep: field separator; inferred when ``None``.
        user_col: column of raw user ids (name, or position).
        item_col: column of raw item ids (name, or position).
        rating_col: column of ratings (name, or position), or ``None``.
        timestamp_col: column of timestamps (name, or position), or ``None``.
        header: whether the first non-blank line is a header.
        encoding: text encoding of the file.
        detect_optional: with a header, also read the columns named ``rating`` and ``timestamp``
            when they are present and ``rating_col``/``timestamp_col`` are ``None``.
        item_info: item metadata, the text source of the items: a file read by
            :func:`read_metadata` (e.g. ``items.csv`` with ``item_id,title,description``) or a
            mapping raw id -> fields; attached with :func:`attach_metadata`.
        user_info: user metadata, likewise (e.g. ``users.csv`` with ``user_id,age,occupation``).

    Returns:
        The :class:`~darec.data.interactions.InteractionLog` (source ``"csv:<file name>"``).

    Raises:
        FileNotFoundError: if ``path`` (or a metadata file) does not exist.
        MissingColumnError: if a named column is not in the header, or a position is beyond the
            number of fields.
        ValueError: for a file that is not text, an empty file, a short row, or a rating/timestamp
            that is not a finite number (the message names the file and the line).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.tsv"
        >>> _ = path.write_text("user\\titem\\trating\\nu1\\ti1\\t5\\nu2\\ti1\\t3\\n")
        >>> log = read_csv(path, rating_col="rating")
        >>> log.users.tolist(), log.ratings.tolist()
        (['u1', 'u2'], [5.0, 3.0])
    """
    expected = f"{'a header and ' if header else ''}(user, item) rows"
    path, text = read_text_file(path, encoding, what="interaction file", expected=expected)
    sep = sep if sep is not None else infer_separator(path, text)
    rows = csv_rows(text, sep)
    names = _header_names(rows, path) if header else None
    if names is not None and detect_optional:
        rating_col = rating_col if rating_col is not None else ("rating" if "rating" in names else None)
        timestamp_col = timestamp_col if timestamp_col is not None else ("timestamp" if "timestamp" in names else None)
    wanted = _column_positions(
        path, names, {"user": user_col, "item": item_col, "rating": rating_col, "timestamp": timestamp_col}
    )
    values, lines = _collect_columns(rows, wanted, path, sep)
    numeric = {key: parse_floats(values[key], lines, path, key) for key in ("rating", "timestamp") if key in values}
    log = from_arrays(
        values["user"],
        values["item"],
        ratings=numeric.get("rating"),
        timestamps=numeric.get("timestamp"),
        source=f"csv:{path.name}",
    )
    if item_info is None and user_info is None:
        return log
    return attach_metadata(log, item_info=item_info, user_info=user_info)


def _header_names(rows: Iterator[tuple[int, list[str]]], path: Path) -> list[str]:
    """The fields of the first non-blank record: the header row."""
    first = next(rows, None)
    if first is None:
        raise ValueError(f"{path} is empty")
    return first[1]


def _column_positions(
    path: Path, names: list[str] | None, columns: Mapping[str, str | int | None]
) -> dict[str, int]:
    """0-based position of each requested column (``role -> name or position``); ``None`` ones are left out."""
    positions = {role: _column_position(path, names, col, f"{role}_col") for role, col in columns.items()}
    return {role: pos for role, pos in positions.items() if pos is not None}


def _column_position(path: Path, names: list[str] | None, col: str | int | None, role: str) -> int | None:
    """Where column ``col`` is: by position (an ``int``), by header name, or by the positional default."""
    if col is None:
        return None
    if isinstance(col, (int, np.integer)) and not isinstance(col, bool):
        if col < 0 or (names is not None and col >= len(names)):
            width = f" of {len(names)}" if names is not None else ""
            raise MissingColumnError(f"{role}={col} is not a valid column position{width} in {path}")
        return int(col)
    if names is not None:
        if col not in names:
            raise MissingColumnError(f"column {col!r} ({role}) is not in the header of {path}; header: {names}")
        return names.index(col)
    if col in _POSITIONAL_DEFAULTS:
        return _POSITIONAL_DEFAULTS[col]
    raise MissingColumnError(
        f"{role}={col!r} cannot be found by name in {path}: with header=False columns are positional, "
        "pass an integer position"
    )


def _collect_columns(
    rows: Iterator[tuple[int, list[str]]], wanted: Mapping[str, int], path: Path, sep: str
) -> tuple[dict[str, list[str]], list[int]]:
    """The wanted columns of every remaining row (as strings) and the line number of each row."""
    need = max(wanted.values()) + 1
    values: dict[str, list[str]] = {key: [] for key in wanted}
    lines: list[int] = []
    for line_num, row in rows:
        if len(row) < need:
            raise ValueError(
                f"{path}, line {line_num}: expected at least {need} fields separated by {sep!r}, got {len(row)}: {row}"
            )
        lines.append(line_num)
        for key, col in wanted.items():
            values[key].append(row[col])
    if not lines:
        raise ValueError(f"{path} has a header but no interaction rows")
    return values, lines
