"""An answer to an explanation prompt that could not be read (LANE, LN-4)."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Unparsed"]


@dataclasses.dataclass(frozen=True)
class Unparsed:
    """An explanation answer without the fixed response template: the text and what was wrong with it.

    :meth:`CoTExplainer.parse <darec.lane.CoTExplainer.parse>` returns it instead of raising, so
    a batch of explanations never stops at a bad answer.

    Args:
        text (str): the whole answer.
        problem (str): why it could not be read.

    Example:
        >>> Unparsed("I like it.", "no 'Step 2' section").as_dict()
        {'parsed': False, 'text': 'I like it.', 'problem': "no 'Step 2' section"}
    """

    text: str
    problem: str

    #: Always :obj:`False`; :class:`~darec.lane.Explanation` has :obj:`True`.
    parsed = False

    def as_dict(self) -> dict[str, Any]:
        """The result as a JSON-able dict, with ``"parsed": false``."""
        return {"parsed": False, **dataclasses.asdict(self)}
