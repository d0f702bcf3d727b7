"""RecBole atomic files (``<name>.inter``, ``.item``, ``.user``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from darec.data.interactions import InteractionLog
from darec.data.readers._common import MissingColumnError, PathLike, existing_dir, parse_floats, read_text
from darec.data.readers.arrays import from_arrays

__all__ = ["read_recbole"]

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
    directory = existing_dir(directory)
    name = name if name is not None else _dataset_name(directory)
    inter_path = directory / f"{name}.inter"
    if not inter_path.is_file():
        raise FileNotFoundError(f"RecBole interaction file {inter_path} does not exist")
    fields, _, columns = _read_atomic(inter_path, encoding, required=("user_id", "item_id"))
    item_info = _read_atomic_info(directory / f"{name}.item", "item_id", encoding)
    user_info = _read_atomic_info(directory / f"{name}.user", "user_id", encoding)
    return from_arrays(
        columns[fields.index("user_id")],
        columns[fields.index("item_id")],
        ratings=_numbers(fields, columns, "rating", inter_path),
        timestamps=_numbers(fields, columns, "timestamp", inter_path),
        item_info=item_info,
        user_info=user_info,
        source=f"recbole:{name}",
    )


def _numbers(fields: list[str], columns: list[list[str]], field: str, path: Path) -> np.ndarray | None:
    """Column ``field`` parsed as finite numbers, or ``None`` when the file has no such field."""
    if field not in fields:
        return None
    values = columns[fields.index(field)]
    return parse_floats(values, list(range(2, len(values) + 2)), path, field)


def _dataset_name(directory: Path) -> str:
    """The stem of the single ``*.inter`` file of ``directory``."""
    candidates = sorted(directory.glob("*.inter"))
    if not candidates:
        raise FileNotFoundError(f"no RecBole .inter file in {directory}")
    if len(candidates) > 1:
        raise ValueError(
            f"several .inter files in {directory} ({[p.name for p in candidates]}); pass name=... to pick one"
        )
    return candidates[0].stem


def _read_atomic(
    path: Path, encoding: str, required: tuple[str, ...] = ()
) -> tuple[list[str], list[str], list[list[str]]]:
    """Parses an atomic file into field names, field types and one list of strings per column.

    Raises :class:`MissingColumnError` when a field of ``required`` is not in the header.
    """
    lines = read_text(path, encoding).splitlines()
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
    for name in required:
        if name not in fields:
            raise MissingColumnError(f"{path} has no {name!r} field; header fields: {fields}")
    columns = [list(col) for col in zip(*rows)] if rows else [[] for _ in fields]
    return fields, types, columns


def _read_atomic_info(path: Path, id_field: str, encoding: str) -> dict[str, dict[str, Any]]:
    """Reads an optional ``.item``/``.user`` atomic file into ``{raw_id: {field: value}}``."""
    if not path.is_file():
        return {}
    fields, types, columns = _read_atomic(path, encoding, required=(id_field,))
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
