"""Errors of the LLM backends that a caller may want to tell apart from other failures."""

from __future__ import annotations

__all__ = ["EndpointUnreachableError", "GenerationError", "ModelNotFoundError", "PromptTruncatedWarning"]


class EndpointUnreachableError(ConnectionError):
    """An HTTP endpoint could not be reached (refused, timed out, unknown host); the message names its URL."""


class ModelNotFoundError(LookupError):
    """The backend has no model of the requested name; the message names it (and, if known, the ones it has)."""


class GenerationError(RuntimeError):
    """One prompt failed for a reason that retrying does not fix (e.g. the server refused the request).

    Attributes:
        index (int): the position of the failed prompt in the list given to ``generate``.
    """

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class PromptTruncatedWarning(UserWarning):
    """A prompt was longer than the model's context allows and was cut; the message names its index.

    Attributes:
        index (int or None): the position of the cut prompt in the list given to ``generate``, so
            that a caller can name what the prompt was about (e.g. the user whose profile it asks for).
    """

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index
