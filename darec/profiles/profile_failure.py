"""One entity whose profile could not be written."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["ProfileFailure"]


@dataclasses.dataclass(frozen=True)
class ProfileFailure:
    """A user or item whose answers stayed unusable after every attempt, with the last problem.

    Args:
        entity (str): ``"user"`` or ``"item"``.
        id (int): its internal id.
        raw_id (str): its raw id.
        error (str): the last problem, naming the entity (e.g. ``'user 3: the "summary" is empty'``).
        attempts (int): how many times it was asked.
        raw (str, optional): the last raw answer, if there was one.

    Example:
        >>> ProfileFailure("user", 3, "u3", 'user 3: the "summary" is empty', 3, '{"summary": ""}').as_dict()["error"]
        'user 3: the "summary" is empty'
    """

    entity: str
    id: int
    raw_id: str
    error: str
    attempts: int
    raw: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The failure as a JSON-able dict (one line of the ``*.failed.jsonl`` file)."""
        return dataclasses.asdict(self)
