"""Errors of profile generation that a caller may want to tell apart from other failures."""

from __future__ import annotations

__all__ = ["ProfileParseError"]


class ProfileParseError(ValueError):
    """A model's answer holds no usable profile; the message names the entity and the problem.

    Attributes:
        entity (str or None): ``"user"`` or ``"item"``, when known.
        id (int or None): the internal id of the entity, when known.
        problem (str): what is wrong with the answer, without the entity.
    """

    def __init__(self, problem: str, *, entity: str | None = None, id: int | None = None) -> None:  # noqa: A002
        who = f"{entity} {id}" if entity is not None and id is not None else (entity or "the answer")
        super().__init__(f"{who}: {problem}")
        self.entity = entity
        self.id = id
        self.problem = problem
