"""Readers that turn interaction data on disk (or in memory) into darec's containers.

Two kinds of readers live here:

* **Raw-log readers** return an :class:`~darec.data.interactions.InteractionLog` (raw string ids,
  optional ratings and timestamps, item/user metadata). Feed it to a split protocol from
  :mod:`darec.data.split` to get :class:`~darec.data.interactions.Interactions`:
  :func:`from_arrays`, :func:`from_dataframe`, :func:`read_csv`, :func:`read_recbole` and
  :func:`read_grouplens_100k`. :func:`read_metadata` reads an item or user metadata file (the
  text source of one's own data) and :func:`attach_metadata` joins it to a log.
* **Split readers** return ready-made :class:`~darec.data.interactions.Interactions`:
  :func:`read_split_dir` (darec's own export format, written by :func:`write_split_dir`) and
  :func:`read_rlmrec` (the pickled matrices of RLMRec).

Both MovieLens-100K readers (:func:`read_recbole` on RecBole's atomic files and
:func:`read_grouplens_100k` on the GroupLens originals) produce metadata with the same keys, so the
text builders of :mod:`darec.text.profiles` work on either:

* ``item_info[raw_id]``: ``movie_title`` (title without the trailing ``" (year)"``),
  ``release_year`` and ``class`` (genre names joined by single spaces, e.g.
  ``"Animation Children's Comedy"``);
* ``user_info[raw_id]``: ``age``, ``gender``, ``occupation``, ``zip_code``.

All text files are read through one helper, so a file that is not text (compressed, pickled,
another encoding) fails with its name and the offending byte offset and line.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darec.data.interactions import InteractionLog, Interactions

__all__ = [
    "MissingColumnError",
    "attach_metadata",
    "from_arrays",
    "from_dataframe",
    "read_csv",
    "read_metadata",
    "read_recbole",
    "read_grouplens_100k",
    "read_split_dir",
    "read_rlmrec",
    "write_split_dir",
]

PathLike = str | os.PathLike


class MissingColumnError(KeyError, ValueError):
    """A requested column is not in the data; both a :class:`KeyError` and a :class:`ValueError`.

    Example:
        >>> try:
        ...     raise MissingColumnError("no column 'rating'")
        ... except ValueError as err:
        ...     print(err)
        no column 'rating'
    """

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


# ------------------------------------------------------------------------------------------------
# In-memory sources
# ------------------------------------------------------------------------------------------------
def from_arrays(
    users: Sequence[Any] | np.ndarray,
    items: Sequence[Any] | np.ndarray,
    ratings: Sequence[float] | np.ndarray | None = None,
    timestamps: Sequence[float] | np.ndarray | None = None,
    *,
    source: str = "arrays",
    item_info: Mapping[str, Mapping[str, Any]] | None = None,
    user_info: Mapping[str, Mapping[str, Any]] | None = None,
) -> InteractionLog:
    """Builds an interaction log from parallel arrays.

    Ids of any type are converted to strings (``1`` -> ``"1"``); the split protocols later number
    them in numeric order when all of them are integers.

    Args:
        users: ``(E,)`` raw user ids.
        items: ``(E,)`` raw item ids.
        ratings: ``(E,)`` explicit ratings, if any.
        timestamps: ``(E,)`` interaction times (any numeric unit), if any.
        source: a short description of where the data came from, recorded in the protocol.
        item_info: raw item id -> metadata fields, used to build item text.
        user_info: raw user id -> metadata fields, used to build user text.

    Returns:
        The :class:`~darec.data.interactions.InteractionLog`.

    Raises:
        ValueError: if the arrays are empty, of different lengths, or ratings/timestamps are not
            finite numbers.

    Example:
        >>> log = from_arrays([1, 1, 2], ["a", "b", "a"], ratings=[5, 3, 4])
        >>> log.users.tolist(), log.ratings.tolist()
        (['1', '1', '2'], [5.0, 3.0, 4.0])
    """
    users_arr = _as_id_array(users, "users")
    items_arr = _as_id_array(items, "items")
    if users_arr.shape != items_arr.shape:
        raise ValueError(
            f"users and items must have the same length, got {len(users_arr)} and {len(items_arr)}"
        )
    if len(users_arr) == 0:
        raise ValueError(f"the interaction log from {source} is empty: no (user, item) pairs were given")
    return InteractionLog(
        users=users_arr,
        items=items_arr,
        ratings=_as_numeric(ratings, "ratings"),
        timestamps=_as_numeric(timestamps, "timestamps"),
        item_info={str(k): dict(v) for k, v in (item_info or {}).items()},
        user_info={str(k): dict(v) for k, v in (user_info or {}).items()},
        source=source,
    )


def from_dataframe(
    df: Any,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = None,
    timestamp_col: str | None = None,
) -> InteractionLog:
    """Builds an interaction log from the columns of a data frame.

    The frame is duck-typed: anything with ``columns`` and ``df[name]`` returning an array-like
    works (a :class:`pandas.DataFrame`, a :class:`polars.DataFrame`, a dict of arrays). pandas is
    not a dependency of darec.

    Args:
        df: the data frame.
        user_col: column of raw user ids.
        item_col: column of raw item ids.
        rating_col: column of explicit ratings, or ``None`` for implicit data.
        timestamp_col: column of interaction times, or ``None``.

    Returns:
        The :class:`~darec.data.interactions.InteractionLog` (source ``"dataframe"``).

    Raises:
        MissingColumnError: (a :class:`KeyError` and :class:`ValueError`) if a requested column
            is absent; the message lists the available columns.
        ValueError: if the frame is empty or a rating/timestamp column is not numeric.

    Example:
        >>> frame = {"user": [1, 2], "item": [10, 10], "stars": [4.0, 2.5]}
        >>> log = from_dataframe(frame, rating_col="stars")
        >>> log.items.tolist(), log.ratings.tolist()
        (['10', '10'], [4.0, 2.5])
        >>> from_dataframe(frame, item_col="movie")
        Traceback (most recent call last):
        ...
        darec.data.readers.MissingColumnError: column 'movie' (item_col) is not in the data frame; available columns: ['user', 'item', 'stars']
    """
    columns = [str(c) for c in (df.columns if hasattr(df, "columns") else df.keys())]

    def column(name: str | None, what: str) -> np.ndarray | None:
        if name is None:
            return None
        if str(name) not in columns:
            raise MissingColumnError(
                f"column {name!r} ({what}) is not in the data frame; available columns: {columns}"
            )
        values = df[name]
        if hasattr(values, "to_numpy"):
            values = values.to_numpy()
        return np.asarray(values)

    users = column(user_col, "user_col")
    items = column(item_col, "item_col")
    assert users is not None and items is not None
    return from_arrays(
        users,
        items,
        ratings=column(rating_col, "rating_col"),
        timestamps=column(timestamp_col, "timestamp_col"),
        source="dataframe",
    )


# ------------------------------------------------------------------------------------------------
# Delimited text files
# ------------------------------------------------------------------------------------------------
_POSITIONAL_DEFAULTS = {"user": 0, "item": 1, "rating": 2, "timestamp": 3}


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
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such interaction file: {path}")
    text = _read_text(path, encoding)
    if not text.strip():
        raise ValueError(f"{path} is empty: expected {'a header and ' if header else ''}(user, item) rows")
    if sep is None:
        sep = _infer_separator(path, text)

    rows = _csv_rows(text, sep)
    names: list[str] | None = None
    if header:
        first = next(rows, None)
        if first is None:
            raise ValueError(f"{path} is empty")
        names = first[1]
        if detect_optional:
            rating_col = rating_col if rating_col is not None else ("rating" if "rating" in names else None)
            timestamp_col = timestamp_col if timestamp_col is not None else ("timestamp" if "timestamp" in names else None)

    def position(col: str | int | None, role: str) -> int | None:
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

    cols = {
        "user": position(user_col, "user_col"),
        "item": position(item_col, "item_col"),
        "rating": position(rating_col, "rating_col"),
        "timestamp": position(timestamp_col, "timestamp_col"),
    }
    wanted = {k: v for k, v in cols.items() if v is not None}
    need = max(wanted.values()) + 1
    values: dict[str, list[str]] = {k: [] for k in wanted}
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

    numeric = {key: _parse_floats(values[key], lines, path, key) for key in ("rating", "timestamp") if key in values}
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


def _csv_rows(text: str, sep: str) -> Iterator[tuple[int, list[str]]]:
    """Yields ``(line number, stripped fields)`` for the non-blank records of ``text``."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    for row in reader:
        fields = [f.strip() for f in row]
        if any(fields):
            yield reader.line_num, fields


def _infer_separator(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        return "\t"
    if suffix == ".csv":
        return ","
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;| ").delimiter
    except csv.Error as err:
        raise ValueError(f"could not infer the field separator of {path}; pass sep=... explicitly") from err


def _parse_floats(values: list[str], lines: list[int], path: Path, what: str) -> np.ndarray:
    """Parses a column of numbers; the error names the file and line of the first bad value.

    Empty cells, text, ``nan`` and ``inf`` are all refused: a rating or timestamp must be a
    finite number.
    """
    try:
        numbers = np.asarray(values, dtype=np.float64)
    except ValueError:
        numbers = None
    else:
        bad = np.flatnonzero(~np.isfinite(numbers))
        if not len(bad):
            return numbers
    for value, line in zip(values, lines):
        try:
            number = float(value)
        except ValueError:
            shown = "an empty cell" if not value.strip() else repr(value)
            raise ValueError(f"{path}, line {line}: {what} {shown} is not a number") from None
        if not np.isfinite(number):
            raise ValueError(
                f"{path}, line {line}: {what} {value!r} is not a finite number; every {what} must be a "
                "real number (drop the row or fill in the value)"
            )
    raise AssertionError("unreachable: a value failed to parse as a whole but not one by one")


# ------------------------------------------------------------------------------------------------
# Metadata files (the text source of own data)
# ------------------------------------------------------------------------------------------------
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
    ``id`` for items; ``user_id``, ``user``, ``id`` for users. Every
    other column is a field. The text builders of :mod:`darec.text.profiles` use ``title`` (or
    ``name``/``movie_title``), ``year``, ``genres`` (``|``, ``;``, ``,`` or space separated) and
    write any other field (``description``, ``director``, ...) as ``"Field: value."``.

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
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such {kind} metadata file: {path}")
    text = _read_text(path, encoding)
    if not text.strip():
        raise ValueError(f"{path} is empty: expected a header with an id column and one row per {kind}")
    accepted = (id_col,) if id_col is not None else _METADATA_ID_COLUMNS[kind]
    if path.suffix.lower() in _JSONL_SUFFIXES:
        records = _jsonl_records(path, text)
    else:
        records = _delimited_records(path, text, sep if sep is not None else _infer_separator(path, text))

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


def _delimited_records(path: Path, text: str, sep: str) -> Iterator[tuple[int, dict[str, Any]]]:
    rows = _csv_rows(text, sep)
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
    their text is built by :func:`darec.text.profiles.item_profiles`.

    Args:
        log: the interaction log.
        item_info: item metadata file, or raw id -> fields.
        user_info: user metadata file, or raw id -> fields.

    Returns:
        The new :class:`~darec.data.interactions.InteractionLog`; ``log`` is not modified.

    Raises:
        As :func:`read_metadata`; ``ValueError`` if no id of a metadata file is in the log.

    Example:
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


# ------------------------------------------------------------------------------------------------
# RecBole atomic files
# ------------------------------------------------------------------------------------------------
_RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")


def read_recbole(directory: PathLike, name: str | None = None, *, encoding: str = "utf-8") -> InteractionLog:
    """Reads a dataset in RecBole's atomic-file format.

    ``<name>.inter`` is required and must have the fields ``user_id`` and ``item_id``; ``rating``
    and ``timestamp`` are read when present. The optional ``<name>.item`` and ``<name>.user``
    files become ``item_info``/``user_info``: one dict per row, keyed by the field names without
    their ``:type`` suffix (``movie_title:token_seq`` -> ``movie_title``); the id field itself is
    left out. Values are kept as the strings found in the file (``token_seq`` fields stay
    space-separated, e.g. ``class`` -> ``"Animation Children's Comedy"``), except ``float``
    fields, which become :class:`float` (``None`` when empty).

    Files are tab-separated with a ``field:type`` header; quotes are not special.

    Args:
        directory: the folder holding the atomic files.
        name: the dataset name (file stem); inferred from the single ``*.inter`` file of
            ``directory`` when ``None``.
        encoding: text encoding of the files.

    Returns:
        The :class:`~darec.data.interactions.InteractionLog` (source ``"recbole:<name>"``).

    Raises:
        FileNotFoundError: if the directory or ``<name>.inter`` does not exist, or ``name`` is
            not given and the directory holds no ``.inter`` file.
        ValueError: if the name is ambiguous (several ``.inter`` files), a header is malformed,
            a required field is missing, a row has the wrong number of fields or a number does
            not parse.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "toy.inter").write_text("user_id:token\\titem_id:token\\trating:float\\n1\\t7\\t4\\n")
        >>> _ = (d / "toy.item").write_text("item_id:token\\tmovie_title:token_seq\\n7\\tHeat\\n")
        >>> log = read_recbole(d)
        >>> log.source, log.ratings.tolist(), log.item_info
        ('recbole:toy', [4.0], {'7': {'movie_title': 'Heat'}})
    """
    directory = _existing_dir(directory)
    if name is None:
        candidates = sorted(directory.glob("*.inter"))
        if not candidates:
            raise FileNotFoundError(f"no RecBole .inter file in {directory}")
        if len(candidates) > 1:
            raise ValueError(
                f"several .inter files in {directory} ({[p.name for p in candidates]}); pass name=... to pick one"
            )
        name = candidates[0].stem
    inter_path = directory / f"{name}.inter"
    if not inter_path.is_file():
        raise FileNotFoundError(f"RecBole interaction file {inter_path} does not exist")

    fields, types, columns = _read_atomic(inter_path, encoding)
    for required in ("user_id", "item_id"):
        if required not in fields:
            raise MissingColumnError(f"{inter_path} has no {required!r} field; header fields: {fields}")

    def numeric(field: str) -> np.ndarray | None:
        if field not in fields:
            return None
        values = columns[fields.index(field)]
        lines = list(range(2, len(values) + 2))
        return _parse_floats(values, lines, inter_path, field)

    item_info = _read_atomic_info(directory / f"{name}.item", "item_id", encoding)
    user_info = _read_atomic_info(directory / f"{name}.user", "user_id", encoding)
    return from_arrays(
        columns[fields.index("user_id")],
        columns[fields.index("item_id")],
        ratings=numeric("rating"),
        timestamps=numeric("timestamp"),
        item_info=item_info,
        user_info=user_info,
        source=f"recbole:{name}",
    )


def _read_atomic(path: Path, encoding: str) -> tuple[list[str], list[str], list[list[str]]]:
    """Parses an atomic file into field names, field types and one list of strings per column."""
    lines = _read_text(path, encoding).splitlines()
    if not lines or not lines[0].strip():
        raise ValueError(f"{path} is empty: expected a 'field:type' header line")
    fields, types = [], []
    for spec in lines[0].split("\t"):
        field, _, kind = spec.strip().rpartition(":")
        if not field or kind not in _RECBOLE_TYPES:
            raise ValueError(
                f"{path}: malformed header field {spec!r}; expected 'name:type' with type in {_RECBOLE_TYPES}"
            )
        fields.append(field)
        types.append(kind)
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        row = line.split("\t")
        if len(row) != len(fields):
            raise ValueError(f"{path}, line {number}: expected {len(fields)} tab-separated fields, got {len(row)}")
        rows.append(row)
    columns = [list(col) for col in zip(*rows)] if rows else [[] for _ in fields]
    return fields, types, columns


def _read_atomic_info(path: Path, id_field: str, encoding: str) -> dict[str, dict[str, Any]]:
    """Reads an optional ``.item``/``.user`` atomic file into ``{raw_id: {field: value}}``."""
    if not path.is_file():
        return {}
    fields, types, columns = _read_atomic(path, encoding)
    if id_field not in fields:
        raise MissingColumnError(f"{path} has no {id_field!r} field; header fields: {fields}")
    key = fields.index(id_field)
    info: dict[str, dict[str, Any]] = {}
    for row in zip(*columns):
        entry: dict[str, Any] = {}
        for field, kind, value in zip(fields, types, row):
            if field == id_field:
                continue
            if kind == "float":
                value = value.strip()
                try:
                    entry[field] = float(value) if value else None
                except ValueError:
                    raise ValueError(f"{path}: {field} {value!r} of {id_field} {row[key]!r} is not a number") from None
            else:
                entry[field] = value
        info[row[key]] = entry
    return info


# ------------------------------------------------------------------------------------------------
# GroupLens MovieLens-100K original layout
# ------------------------------------------------------------------------------------------------
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")
_DATE_YEAR = re.compile(r"(\d{4})\s*$")


def read_grouplens_100k(directory: PathLike) -> InteractionLog:
    """Reads MovieLens-100K in the original GroupLens layout (``ml-100k/u.*``).

    Files: ``u.data`` (tab-separated ``user item rating timestamp``, required), ``u.item``
    (``|``-separated, ISO-8859-1: ``id|title|release date|video release date|url|`` and one 0/1
    flag per genre in the order of ``u.genre``), ``u.user`` (``id|age|gender|occupation|zip``) and
    ``u.genre`` (``name|index``). The metadata are normalised to the keys of :func:`read_recbole`
    on RecBole's ML-100K, so both sources give the same text:

    * ``movie_title``: the title without its trailing ``" (year)"``;
    * ``release_year``: the year in the title, else the year of the release date, else ``""``;
    * ``class``: the flagged genre names joined by spaces, in ``u.genre`` order, spelled as in the
      file (``"Children's"``, ``"Sci-Fi"``, ``"Film-Noir"``, ``"unknown"``);
    * ``age``, ``gender``, ``occupation``, ``zip_code`` for users.

    The placeholder movie titled ``"unknown"`` keeps that title; the text builders turn it into
    ``"Unknown title. Genres: unknown."``, as they do for RecBole's ``"unkonwn"``.

    Args:
        directory: the ``ml-100k`` folder.

    Returns:
        The :class:`~darec.data.interactions.InteractionLog` (source ``"grouplens:ml-100k"``).

    Raises:
        FileNotFoundError: if ``u.data`` is missing, or ``u.item`` is present without ``u.genre``.
        ValueError: if a line has the wrong number of fields or a number does not parse.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "u.data").write_text("1\\t1\\t5\\t874965758\\n")
        >>> _ = (d / "u.genre").write_text("unknown|0\\nAnimation|1\\nComedy|2\\n")
        >>> _ = (d / "u.item").write_text("1|Toy Story (1995)|01-Jan-1995||http://x|0|1|1\\n")
        >>> read_grouplens_100k(d).item_info["1"]
        {'movie_title': 'Toy Story', 'release_year': '1995', 'class': 'Animation Comedy'}
    """
    directory = _existing_dir(directory)
    data_path = directory / "u.data"
    if not data_path.is_file():
        raise FileNotFoundError(f"{data_path} does not exist: not a GroupLens MovieLens-100K folder")
    log = read_csv(
        data_path,
        sep="\t",
        header=False,
        rating_col="rating",
        timestamp_col="timestamp",
        encoding="iso-8859-1",
    )

    item_info: dict[str, dict[str, Any]] = {}
    item_path = directory / "u.item"
    if item_path.is_file():
        genres = _read_grouplens_genres(directory / "u.genre")
        for number, row in _pipe_rows(item_path):
            if len(row) != 5 + len(genres):
                raise ValueError(
                    f"{item_path}, line {number}: expected {5 + len(genres)} '|'-separated fields "
                    f"(5 + {len(genres)} genre flags), got {len(row)}"
                )
            match = _TITLE_YEAR.match(row[1])
            title, year = (match["title"], match["year"]) if match else (row[1].strip(), "")
            if not year:
                date_year = _DATE_YEAR.search(row[2])
                year = date_year.group(1) if date_year else ""
            flags = row[5:]
            item_info[row[0].strip()] = {
                "movie_title": title,
                "release_year": year,
                "class": " ".join(g for g, flag in zip(genres, flags) if flag.strip() == "1"),
            }

    user_info: dict[str, dict[str, Any]] = {}
    user_path = directory / "u.user"
    if user_path.is_file():
        for number, row in _pipe_rows(user_path):
            if len(row) != 5:
                raise ValueError(f"{user_path}, line {number}: expected 5 '|'-separated fields, got {len(row)}")
            user_info[row[0].strip()] = dict(zip(("age", "gender", "occupation", "zip_code"), row[1:]))

    log.item_info = item_info
    log.user_info = user_info
    log.source = "grouplens:ml-100k"
    return log


def _pipe_rows(path: Path) -> list[tuple[int, list[str]]]:
    lines = _read_text(path, "iso-8859-1").splitlines()
    return [(n, line.split("|")) for n, line in enumerate(lines, start=1) if line.strip()]


def _read_grouplens_genres(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is needed to name the genre flags of u.item")
    indexed = []
    for number, row in _pipe_rows(path):
        if len(row) != 2 or not row[1].strip().isdigit():
            raise ValueError(f"{path}, line {number}: expected 'name|index', got {'|'.join(row)!r}")
        indexed.append((int(row[1]), row[0].strip()))
    return [name for _, name in sorted(indexed)]


# ------------------------------------------------------------------------------------------------
# darec split directories
# ------------------------------------------------------------------------------------------------
_SPLIT_FILES = ("train", "valid", "test")


def read_split_dir(directory: PathLike, *, verify: bool = True) -> Interactions:
    """Reads a split exported by :func:`write_split_dir` (e.g. ``shared/data/ml100k-implicit-v1``).

    Layout (all UTF-8):

    * ``train.tsv`` (required), ``valid.tsv``, ``test.tsv``: header ``user<TAB>item``, then one
      pair of new (0-based) ids per line;
    * ``user_map.tsv``, ``item_map.tsv`` (optional): header ``id<TAB>raw_id``, one line per id;
    * ``user_text.jsonl``, ``item_text.jsonl`` (optional): one ``{"id", "raw_id", "text"}``
      object per line, covering every id once;
    * ``stats.json`` (optional): its ``protocol`` (a dict, or a name) and ``settings`` become
      :attr:`Interactions.protocol`, with ``source`` and ``counts`` when present; its
      ``files_sha256`` are checked when ``verify`` is true.

    ``num_users``/``num_items`` come from the maps, else from the largest id in the splits (and
    texts) plus one.

    Args:
        directory: the split folder.
        verify: check the SHA-256 digests listed in ``stats.json["files_sha256"]``.

    Returns:
        The :class:`~darec.data.interactions.Interactions`, with texts when the files exist.

    Raises:
        FileNotFoundError: if the folder or ``train.tsv`` is missing.
        ValueError: for a malformed file, ids that do not cover ``0 .. n-1``, a text whose
            ``raw_id`` disagrees with the map, or a digest mismatch.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "train.tsv").write_text("user\\titem\\n0\\t0\\n1\\t1\\n")
        >>> _ = (d / "test.tsv").write_text("user\\titem\\n0\\t1\\n")
        >>> read_split_dir(d)
        Interactions(users=2, items=2, train=2, valid=0, test=1)
    """
    directory = _existing_dir(directory)
    if not (directory / "train.tsv").is_file():
        raise FileNotFoundError(f"{directory} is not a split folder: train.tsv is missing")

    stats: dict[str, Any] = {}
    stats_path = directory / "stats.json"
    if stats_path.is_file():
        try:
            stats = json.loads(_read_text(stats_path))
        except json.JSONDecodeError as err:
            raise ValueError(f"{stats_path} is not valid JSON: {err}") from err
        if not isinstance(stats, dict):
            raise ValueError(f"{stats_path} must hold a JSON object, got {type(stats).__name__}")
        if verify:
            _verify_digests(directory, stats.get("files_sha256") or {})

    splits = {
        name: _read_pairs(directory / f"{name}.tsv") if (directory / f"{name}.tsv").is_file() else None
        for name in _SPLIT_FILES
    }
    user_ids = _read_id_map(directory / "user_map.tsv")
    item_ids = _read_id_map(directory / "item_map.tsv")
    user_text = _read_texts(directory / "user_text.jsonl")
    item_text = _read_texts(directory / "item_text.jsonl")

    def count(ids: np.ndarray | None, column: int, text: tuple[list[int], list[Any], list[str]] | None) -> int:
        if ids is not None:
            return len(ids)
        largest = [int(p[:, column].max()) for p in splits.values() if p is not None and len(p)]
        if text is not None:
            largest.append(max(text[0]))
        return max(largest) + 1

    num_users = count(user_ids, 0, user_text)
    num_items = count(item_ids, 1, item_text)

    protocol: dict[str, Any] = {}
    declared = stats.get("protocol")
    if isinstance(declared, Mapping):
        protocol.update(declared)
    elif declared is not None:
        protocol["name"] = str(declared)
    for key, value in (stats.get("settings") or {}).items():
        protocol.setdefault(key, value)
    protocol.setdefault("source", stats.get("source", f"split_dir:{directory.name}"))
    if "counts" in stats:
        protocol.setdefault("counts", stats["counts"])

    user_texts = _ordered_texts(user_text, num_users, user_ids, directory / "user_text.jsonl")
    item_texts = _ordered_texts(item_text, num_items, item_ids, directory / "item_text.jsonl")
    try:
        return Interactions(
            num_users=num_users,
            num_items=num_items,
            train=splits["train"],
            valid=splits["valid"],
            test=splits["test"],
            user_ids=user_ids,
            item_ids=item_ids,
            user_text=user_texts,
            item_text=item_texts,
            protocol=protocol,
        )
    except ValueError as err:  # name the folder: the container does not know where the data came from
        raise ValueError(f"the split in {directory} is invalid: {err}") from None


def _read_pairs(path: Path) -> np.ndarray:
    lines = _read_text(path).splitlines()
    if not lines or lines[0].strip().split("\t") != ["user", "item"]:
        raise ValueError(f"{path}: the first line must be the header 'user<TAB>item'")
    body = [line.split("\t") for line in lines[1:] if line.strip()]
    if not body:
        return np.zeros((0, 2), dtype=np.int64)
    bad = next((n for n, row in enumerate(body, start=2) if len(row) != 2), None)
    if bad is not None:
        raise ValueError(f"{path}, line {bad}: expected 2 tab-separated ids")
    try:
        pairs = np.asarray(body, dtype=np.int64)
    except ValueError:
        line = next(n for n, row in enumerate(body, start=2) if not all(f.strip().lstrip("-").isdigit() for f in row))
        raise ValueError(f"{path}, line {line}: ids must be integers") from None
    if (pairs < 0).any():
        raise ValueError(f"{path}: ids must be non-negative")
    return pairs


def _read_id_map(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    lines = _read_text(path).splitlines()
    if not lines or lines[0].strip().split("\t") != ["id", "raw_id"]:
        raise ValueError(f"{path}: the first line must be the header 'id<TAB>raw_id'")
    ids, raws = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip().isdigit():
            raise ValueError(f"{path}, line {number}: expected '<id><TAB><raw_id>'")
        ids.append(int(parts[0]))
        raws.append(parts[1])
    order = np.argsort(ids, kind="stable")
    if not np.array_equal(np.asarray(ids, dtype=np.int64)[order], np.arange(len(ids))):
        raise ValueError(f"{path}: ids must cover 0 .. {len(ids) - 1} exactly once")
    return np.asarray(raws, dtype=str)[order]


def _read_texts(path: Path) -> tuple[list[int], list[Any], list[str]] | None:
    if not path.is_file():
        return None
    ids, raws, texts = [], [], []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            ids.append(int(record["id"]))
            texts.append(record["text"])
            raws.append(record.get("raw_id"))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}, line {number}: expected a JSON object with 'id' and 'text' ({err})") from None
        if not isinstance(texts[-1], str):
            raise ValueError(f"{path}, line {number}: 'text' must be a string")
    if not ids:
        raise ValueError(f"{path} holds no text")
    return ids, raws, texts


def _ordered_texts(
    records: tuple[list[int], list[Any], list[str]] | None, n: int, raw_ids: np.ndarray | None, path: Path
) -> list[str] | None:
    if records is None:
        return None
    ids, raws, texts = records
    if sorted(ids) != list(range(n)):
        missing = sorted(set(range(n)) - set(ids))
        extra = sorted(set(ids) - set(range(n)))
        repeated = len(ids) - len(set(ids))
        raise ValueError(
            f"{path}: text ids must cover 0 .. {n - 1} exactly once; missing {missing[:5]}, "
            f"out of range {extra[:5]}, {repeated} repeated"
        )
    out = [""] * n
    for k, raw, text in zip(ids, raws, texts):
        if raw_ids is not None and raw is not None and str(raw) != raw_ids[k]:
            raise ValueError(f"{path}: id {k} has raw_id {raw!r} but the id map says {str(raw_ids[k])!r}")
        out[k] = text
    return out


def _verify_digests(directory: Path, digests: Mapping[str, str]) -> None:
    for name, expected in digests.items():
        path = directory / name
        if not path.is_file():
            continue
        actual = _sha256(path)
        if actual != expected:
            raise ValueError(
                f"{path} does not match the SHA-256 recorded in stats.json ({actual} != {expected}); "
                "the file was modified — pass verify=False to read it anyway"
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_split_dir(interactions: Interactions, directory: PathLike, *, overwrite: bool = False) -> Path:
    """Writes ``interactions`` in the split-folder layout read by :func:`read_split_dir`.

    Writes ``train.tsv``, ``valid.tsv``, ``test.tsv`` (pairs sorted by user then item),
    ``user_map.tsv``, ``item_map.tsv``, ``user_text.jsonl``/``item_text.jsonl`` when the texts are
    set, and ``stats.json`` (``protocol``, ``counts`` and the ``files_sha256`` of the other files).
    The folder is built beside ``directory`` under a temporary name and moved into place with
    :func:`os.replace`, so readers never see a half-written split.

    Args:
        interactions: the split to export.
        directory: the folder to create.
        overwrite: replace ``directory`` if it exists (otherwise that is an error).

    Returns:
        The path of the written folder.

    Raises:
        FileExistsError: if ``directory`` exists and ``overwrite`` is false.

    Example:
        >>> import tempfile, pathlib
        >>> data = Interactions(2, 2, train=[[0, 0], [1, 1]], test=[[0, 1]], item_text=["A.", "B."])
        >>> out = write_split_dir(data, pathlib.Path(tempfile.mkdtemp()) / "toy")
        >>> sorted(p.name for p in out.iterdir())  # doctest: +NORMALIZE_WHITESPACE
        ['item_map.tsv', 'item_text.jsonl', 'stats.json', 'test.tsv', 'train.tsv',
         'user_map.tsv', 'valid.tsv']
        >>> read_split_dir(out).item_text
        ['A.', 'B.']
    """
    target = Path(directory)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        for name in _SPLIT_FILES:
            pairs = interactions.split(name)
            pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if len(pairs) else pairs
            _write_text(tmp / f"{name}.tsv", "user\titem\n" + "".join(f"{u}\t{i}\n" for u, i in pairs.tolist()))
        for kind in ("user", "item"):
            raw = getattr(interactions, f"{kind}_ids")
            _write_text(tmp / f"{kind}_map.tsv", "id\traw_id\n" + "".join(f"{k}\t{r}\n" for k, r in enumerate(raw)))
            text = getattr(interactions, f"{kind}_text")
            if text is not None:
                lines = (
                    json.dumps({"id": k, "raw_id": str(r), "text": t}, ensure_ascii=False) + "\n"
                    for k, (r, t) in enumerate(zip(raw, text))
                )
                _write_text(tmp / f"{kind}_text.jsonl", "".join(lines))
        digests = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
        stats = {
            "protocol": _jsonable(interactions.protocol),
            "counts": _jsonable(interactions.stats()),
            "files_sha256": digests,
        }
        _write_text(tmp / "stats.json", json.dumps(stats, indent=1, ensure_ascii=False) + "\n")
        os.chmod(tmp, 0o755)
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def _replace_dir(tmp: Path, target: Path) -> None:
    """Moves folder ``tmp`` to ``target``, swapping out an existing ``target`` with a rename."""
    if not target.exists():
        os.replace(tmp, target)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    backup.rmdir()
    os.replace(target, backup)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(backup, target)
        raise
    if backup.is_dir() and not backup.is_symlink():
        shutil.rmtree(backup, ignore_errors=True)
    else:
        backup.unlink()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# ------------------------------------------------------------------------------------------------
# RLMRec pickles
# ------------------------------------------------------------------------------------------------
_RLMREC_MATRICES = {"train": "trn_mat.pkl", "valid": "val_mat.pkl", "test": "tst_mat.pkl"}
_RLMREC_EMBEDDINGS = {"user": "usr_emb_np.pkl", "item": "itm_emb_np.pkl"}


def read_rlmrec(directory: PathLike, *, trust_pickle: bool = False) -> tuple[Interactions, dict[str, np.ndarray]]:
    """Reads a dataset in the layout of RLMRec (``data/<name>/``).

    ``trn_mat.pkl`` (required), ``val_mat.pkl`` and ``tst_mat.pkl`` are pickled SciPy sparse
    user x item matrices of the same shape; their non-zeros become the train/valid/test pairs.
    ``usr_emb_np.pkl`` and ``itm_emb_np.pkl`` are pickled ``(num_users, d)``/``(num_items, d)``
    NumPy arrays of LLM profile embeddings. Ids are the matrix rows and columns (raw ids
    ``"0" .. "n-1"``).

    Unpickling can run arbitrary code, so this reader refuses unless ``trust_pickle=True`` says
    the files come from a trusted source.

    Args:
        directory: the dataset folder.
        trust_pickle: confirm that the pickles are trusted and may be loaded.

    Returns:
        ``(interactions, embeddings)``: the :class:`~darec.data.interactions.Interactions` and a
        dict with the keys ``"user"``/``"item"`` for the embedding files that exist (float32
        arrays).

    Raises:
        ValueError: without ``trust_pickle=True``; for a matrix that is not 2-D sparse/dense, of a
            different shape than ``trn_mat.pkl``, or an embedding with the wrong number of rows.
        FileNotFoundError: if the folder or ``trn_mat.pkl`` is missing.

    Example:
        >>> read_rlmrec(".")
        Traceback (most recent call last):
        ...
        ValueError: read_rlmrec loads pickle files, and unpickling can execute arbitrary code; pass trust_pickle=True only if you trust the files in .
    """
    if not trust_pickle:
        raise ValueError(
            "read_rlmrec loads pickle files, and unpickling can execute arbitrary code; "
            f"pass trust_pickle=True only if you trust the files in {directory}"
        )
    directory = _existing_dir(directory)
    if not (directory / _RLMREC_MATRICES["train"]).is_file():
        raise FileNotFoundError(f"{directory / _RLMREC_MATRICES['train']} does not exist: not an RLMRec data folder")

    splits: dict[str, np.ndarray] = {}
    shape: tuple[int, int] | None = None
    for name, file in _RLMREC_MATRICES.items():
        path = directory / file
        if not path.is_file():
            continue
        pairs, matrix_shape = _sparse_pairs(_load_pickle(path), path)
        if shape is None:
            shape = matrix_shape
        elif matrix_shape != shape:
            raise ValueError(f"{path} has shape {matrix_shape}, but {_RLMREC_MATRICES['train']} has shape {shape}")
        splits[name] = pairs
    assert shape is not None
    num_users, num_items = shape

    embeddings: dict[str, np.ndarray] = {}
    for kind, file in _RLMREC_EMBEDDINGS.items():
        path = directory / file
        if not path.is_file():
            continue
        emb = np.asarray(_load_pickle(path), dtype=np.float32)
        rows = num_users if kind == "user" else num_items
        if emb.ndim != 2 or emb.shape[0] != rows:
            raise ValueError(f"{path} must have shape ({rows}, d) to match the {kind}s, got {emb.shape}")
        embeddings[kind] = emb

    try:
        interactions = Interactions(
            num_users=num_users,
            num_items=num_items,
            train=splits["train"],
            valid=splits.get("valid"),
            test=splits.get("test"),
            protocol={"name": "rlmrec", "source": f"rlmrec:{directory.name}"},
        )
    except ValueError as err:
        raise ValueError(f"the split in {directory} is invalid: {err}") from None
    return interactions, embeddings


def _load_pickle(path: Path) -> Any:
    with open(path, "rb") as handle:
        return pickle.load(handle)  # noqa: S301 - the caller passed trust_pickle=True


def _sparse_pairs(matrix: Any, path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    if hasattr(matrix, "tocoo"):
        coo = matrix.tocoo()
        shape = tuple(int(s) for s in coo.shape)
        keep = np.asarray(coo.data) != 0
        rows, cols = np.asarray(coo.row)[keep], np.asarray(coo.col)[keep]
    else:
        dense = np.asarray(matrix)
        if dense.ndim != 2 or not np.issubdtype(dense.dtype, np.number):
            raise ValueError(f"{path} must hold a 2-D user x item matrix, got {type(matrix).__name__}")
        shape = dense.shape
        rows, cols = np.nonzero(dense)
    if len(shape) != 2:
        raise ValueError(f"{path} must hold a 2-D user x item matrix, got shape {shape}")
    pairs = np.stack([rows, cols], axis=1).astype(np.int64)
    return np.unique(pairs, axis=0) if len(pairs) else pairs, (shape[0], shape[1])


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
# Leading bytes of binary formats that are often mistaken for a ratings file. All of them hold
# control bytes, so no text file (with or without header) starts like this.
_BINARY_SIGNATURES = (
    (b"\x1f\x8b", "a gzip-compressed file (decompress it first, e.g. with gunzip)"),
    (b"PK\x03\x04", "a zip archive (extract it first)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file (decompress it first)"),
    (b"\x80", "a pickle or another binary file"),
)


def _read_text(path: Path, encoding: str = "utf-8") -> str:
    """The text of ``path``, or a :class:`ValueError` naming the file if it is not text.

    Every reader of this module goes through this function, so that a binary file (compressed,
    pickled, ...) or a file in another encoding fails with one clear message instead of a bare
    :class:`UnicodeDecodeError`. A leading UTF-8 byte-order mark is dropped.

    Args:
        path: the file.
        encoding: its text encoding.

    Returns:
        The decoded text.

    Raises:
        ValueError: if the file starts like a known binary format, cannot be decoded with
            ``encoding`` (the message gives the byte offset and line), or holds NUL bytes.
    """
    data = path.read_bytes()
    for magic, kind in _BINARY_SIGNATURES:
        if data.startswith(magic):
            raise ValueError(f"{path} is not a text file: it looks like {kind}")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ValueError(
            f"{path} is not {encoding} text: byte {err.start} (line {line}) is {data[err.start:err.start + 1]!r}, "
            f"which is not valid {encoding}. Is it a binary file? If it is text in another encoding, "
            "convert it to UTF-8"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise ValueError(
            f"{path} is not a text file: it holds a NUL byte (character {nul}, line {line}); "
            "is it binary, or UTF-16 text? Convert it to UTF-8"
        )
    return text[1:] if text.startswith("\ufeff") else text


def _existing_dir(directory: PathLike) -> Path:
    path = Path(directory)
    if not path.is_dir():
        raise FileNotFoundError(f"no such directory: {path}")
    return path


def _as_id_array(ids: Any, name: str) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            raise ValueError(f"`{name}` contains missing (NaN) ids")
        if np.all(arr == np.round(arr)):  # 1.0 -> "1": float ids usually come from a NaN-tainted column
            arr = arr.astype(np.int64)
    elif arr.dtype == object:
        missing = [k for k, v in enumerate(arr.tolist()) if v is None or (isinstance(v, float) and v != v)]
        if missing:
            raise ValueError(f"`{name}` contains missing ids (first at position {missing[0]})")
    return arr.astype(str)


def _as_numeric(values: Any, name: str) -> np.ndarray | None:
    if values is None:
        return None
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be numeric") from None
