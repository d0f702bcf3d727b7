"""A parsed chain-of-thought explanation (LANE, LN-4)."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Explanation"]

#: The interaction probabilities of step 3, from least to most likely.
VERDICTS = ("Low", "Medium", "High")


@dataclasses.dataclass(frozen=True)
class Explanation:
    """What a model answered to a :class:`~darec.lane.CoTExplainer` prompt, read step by step.

    Args:
        fitness (tuple[float, ...]): step 2, how well the item fits each preference, in ``[0, 1]``,
            one per preference in the prompt's order.
        verdict (str): step 3, the interaction probability: ``"Low"``, ``"Medium"`` or ``"High"``.
        reason (str): step 3, why.
        recommendation (str): step 4, the personalised recommendation.
        justifications (tuple[str, ...]): step 1, one justification per preference (may be
            empty when the model wrote them in another form).
        text (str): the whole answer.

    Example:
        >>> e = Explanation((0.9, 0.1), "High", "fits the first preference", "Watch it.", (), "...")
        >>> e.parsed, e.level, e.as_dict()["verdict"]
        (True, 2, 'High')
    """

    fitness: tuple[float, ...]
    verdict: str
    reason: str
    recommendation: str
    justifications: tuple[str, ...]
    text: str = dataclasses.field(repr=False)

    #: Always :obj:`True`; :class:`~darec.lane.Unparsed` has :obj:`False`.
    parsed = True

    @property
    def level(self) -> int:
        """The verdict as a number: 0 (Low), 1 (Medium) or 2 (High), for rank correlations."""
        return VERDICTS.index(self.verdict)

    def as_dict(self) -> dict[str, Any]:
        """The explanation as a JSON-able dict, with ``"parsed": true``."""
        return {"parsed": True, **dataclasses.asdict(self), "fitness": list(self.fitness),
                "justifications": list(self.justifications)}  # fmt: skip
