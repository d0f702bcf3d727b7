"""Helpers shared by the readers: text decoding, delimited rows, number and id parsing.

Every reader reads its text files through :func:`read_text`, so that a file that is not text
(compressed, pickled, another encoding) fails with its name and the offending byte offset and line.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

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


# Defined here so that every reader can raise it; named after the package it is imported from.
MissingColumnError.__module__ = "darec.data.readers"


# Leading bytes of binary formats that are often mistaken for a ratings file. All of them hold
# control bytes, so no text file (with or without header) starts like this.
_BINARY_SIGNATURES = (
    (b"\x1f\x8b", "a gzip-compressed file (decompress it first, e.g. with gunzip)"),
    (b"PK\x03\x04", "a zip archive (extract it first)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file (decompress it first)"),
    (b"\x80", "a pickle or another binary file"),
)


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """The text of ``path``, or a :class:`ValueError` naming the file if it is not text.

    Every reader of :mod:`darec.data.readers` goes through this function, so that a binary file (compressed,
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


def read_text_file(path: PathLike, encoding: str, *, what: str, expected: str) -> tuple[Path, str]:
    """``(path, text)`` of an existing text file that is not blank.

    The errors name the file as ``what`` (``"no such <what>: <path>"``) and say what an empty file
    was ``expected`` to hold.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such {what}: {path}")
    text = read_text(path, encoding)
    if not text.strip():
        raise ValueError(f"{path} is empty: expected {expected}")
    return path, text


def existing_dir(directory: PathLike) -> Path:
    path = Path(directory)
    if not path.is_dir():
        raise FileNotFoundError(f"no such directory: {path}")
    return path


def as_id_array(ids: Any, name: str) -> np.ndarray:
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


def as_numeric(values: Any, name: str) -> np.ndarray | None:
    if values is None:
        return None
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be numeric") from None


def csv_rows(text: str, sep: str) -> Iterator[tuple[int, list[str]]]:
    """Yields ``(line number, stripped fields)`` for the non-blank records of ``text``."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    for row in reader:
        fields = [f.strip() for f in row]
        if any(fields):
            yield reader.line_num, fields


def infer_separator(path: Path, text: str) -> str:
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


def parse_floats(values: list[str], lines: list[int], path: Path, what: str) -> np.ndarray:
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
