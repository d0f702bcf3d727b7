"""Errors of the LANE pipeline that a caller may want to tell apart from other failures."""

from __future__ import annotations

__all__ = ["PreferenceParseError"]


class PreferenceParseError(ValueError):
    """An answer to a preference prompt holds no usable list of preferences; the message names the user.

    Attributes:
        user (int or None): the internal id of the user whose answer it was.
    """

    def __init__(self, problem: str, user: int | None = None) -> None:
        super().__init__(f"user {user}: {problem}" if user is not None else problem)
        self.problem = problem
        self.user = user
