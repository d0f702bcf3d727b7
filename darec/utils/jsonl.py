"""JSON-lines files that runs append to and resume from: one JSON object a line, the last line of an id wins.

A long run (an LLM writing one line per user, say) appends each result with :class:`JsonlJournal`
and flushes after every batch, so a kill loses at most the batch in flight and can leave at most
one half-written last line; the next run closes that line and goes on appending. Readers use
:func:`last_records`, which keeps the last complete line of each id and reports the others.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

from darec.utils.io import atomic_write

__all__ = ["JsonlJournal", "dumps_line", "last_records", "loads_object", "replace_jsonl"]

K = TypeVar("K", bound=Hashable)

_log = logging.getLogger(__name__)


def dumps_line(record: Mapping[str, Any]) -> str:
    """``record`` as one JSON line (``ensure_ascii=False``, ending in ``"\\n"``).

    Example:
        >>> dumps_line({"user": "7", "text": "café"})
        '{"user": "7", "text": "café"}\\n'
    """
    return json.dumps(record, ensure_ascii=False) + "\n"


def loads_object(line: str) -> dict[str, Any] | None:
    """The JSON object on ``line``, or :obj:`None` when it is not one (cut by a kill, a list, ...).

    Example:
        >>> loads_object('{"id": 1}'), loads_object('{"id": 1'), loads_object("[1]")
        ({'id': 1}, None, None)
    """
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


class JsonlJournal:
    """An append-only JSON-lines file: :meth:`write` adds a line, :meth:`sync` puts it on disk.

    Open it with :meth:`open`. A file whose last line was cut (a run killed while writing) gets
    that line closed with a newline first, with a warning in the log, so that the cut line stays
    one unreadable line that readers skip instead of running into the next record.

    Attributes:
        handle (IO[str]): the open file (text, UTF-8, ``"\\n"`` line ends).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.jsonl"
        >>> _ = path.write_text('{"id": 0}\\n{"id": 1, "su')
        >>> with JsonlJournal.open(path) as journal:
        ...     journal.write({"id": 1})
        ...     journal.sync()
        >>> path.read_text().splitlines()
        ['{"id": 0}', '{"id": 1, "su', '{"id": 1}']
    """

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: str | os.PathLike[str], *, logger: logging.Logger | None = None) -> Iterator[JsonlJournal]:
        """``path``, opened for appending (created if needed); a last line cut by a kill is closed first.

        Args:
            path: the ``.jsonl`` file.
            logger: where the warning about a cut last line goes. (default: this module's logger)
        """
        path = Path(path)
        cut = False
        if path.is_file() and path.stat().st_size > 0:
            with open(path, "rb") as handle:
                handle.seek(-1, os.SEEK_END)
                cut = handle.read(1) != b"\n"
            if cut:
                (logger or _log).warning("%s ends in a half-written line (a killed run?); it is closed and ignored", path)
        with open(path, "a", encoding="utf-8", newline="\n") as handle:
            if cut:
                handle.write("\n")
            yield cls(handle)

    def write(self, record: Mapping[str, Any]) -> None:
        """Appends ``record`` as one line (:func:`dumps_line`); it is on disk after the next :meth:`sync`."""
        self.handle.write(dumps_line(record))

    def sync(self) -> None:
        """Flushes the lines written so far and waits until they are on disk (``fsync``)."""
        self.handle.flush()
        os.fsync(self.handle.fileno())


def replace_jsonl(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> None:
    """Replaces ``path`` atomically with one line per record, or removes it when there are no records.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "failed.jsonl"
        >>> replace_jsonl(path, [{"id": 3}])
        >>> path.read_text()
        '{"id": 3}\\n'
        >>> replace_jsonl(path, [])
        >>> path.exists()
        False
    """
    records = list(records)
    if records:
        with atomic_write(path, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(dumps_line(record))
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def last_records(
    text: str,
    parse: Callable[[str], dict[str, Any] | None],
    id_of: Callable[[dict[str, Any]], K],
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> tuple[dict[K, dict[str, Any]], list[int]]:
    """The last complete record of every id in the JSON-lines ``text``, and the numbers of the bad lines.

    Blank lines are passed over. A line that ``parse`` rejects (returns :obj:`None`: e.g. the
    last line of a run killed while writing it) is skipped and its 1-based number listed, so the
    caller can warn in its own words.

    Args:
        text: the file's content.
        parse: reads one line into a record, or :obj:`None` when the line is not a complete one
            (start from :func:`loads_object`).
        id_of: the id of a record; a later record of the same id replaces an earlier one.
        keep: whether a (complete) record counts, e.g. only the lines of one run's key.
            (default: all)

    Returns:
        ``({id: record}, bad_line_numbers)``.

    Example:
        >>> text = '{"id": 0, "v": "old"}\\n\\n{"id": 0, "v": "new"}\\n{"id": 1, "v'
        >>> last_records(text, loads_object, lambda r: r["id"])
        ({0: {'id': 0, 'v': 'new'}}, [4])
    """
    records: dict[K, dict[str, Any]] = {}
    bad: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record = parse(line)
        if record is None:
            bad.append(number)
            continue
        if keep is not None and not keep(record):
            continue
        records[id_of(record)] = record
    return records, bad
