"""MovieLens-100K in the original GroupLens layout (``ml-100k/u.*``)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from darec.data.interactions import InteractionLog
from darec.data.readers._common import PathLike, existing_dir, read_text
from darec.data.readers.delimited import read_csv
from darec.data.readers.metadata import METADATA_TEMPLATE

__all__ = ["MOVIELENS_TEMPLATE", "read_grouplens_100k"]

#: The text template of MovieLens metadata (``movie_title``, ``release_year``, ``class``), as written
#: by :func:`read_grouplens_100k` and found in RecBole's MovieLens atomic files:
#: :data:`~darec.data.METADATA_TEMPLATE` with the items called "Movies". :func:`darec.data.with_text`
#: uses it when the items' metadata have a ``movie_title`` field.
MOVIELENS_TEMPLATE = dataclasses.replace(METADATA_TEMPLATE, item_noun="Movies")

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
    directory = existing_dir(directory)
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

    log.item_info = _read_items(directory / "u.item", directory / "u.genre")
    log.user_info = _read_users(directory / "u.user")
    log.source = "grouplens:ml-100k"
    return log


def _read_items(item_path: Path, genre_path: Path) -> dict[str, dict[str, Any]]:
    """``u.item`` as ``{raw_id: {movie_title, release_year, class}}`` (empty when the file is absent)."""
    item_info: dict[str, dict[str, Any]] = {}
    if not item_path.is_file():
        return item_info
    genres = _read_grouplens_genres(genre_path)
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
    return item_info


def _read_users(user_path: Path) -> dict[str, dict[str, Any]]:
    """``u.user`` as ``{raw_id: {age, gender, occupation, zip_code}}`` (empty when the file is absent)."""
    user_info: dict[str, dict[str, Any]] = {}
    if not user_path.is_file():
        return user_info
    for number, row in _pipe_rows(user_path):
        if len(row) != 5:
            raise ValueError(f"{user_path}, line {number}: expected 5 '|'-separated fields, got {len(row)}")
        user_info[row[0].strip()] = dict(zip(("age", "gender", "occupation", "zip_code"), row[1:]))
    return user_info


def _pipe_rows(path: Path) -> list[tuple[int, list[str]]]:
    lines = read_text(path, "iso-8859-1").splitlines()
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
