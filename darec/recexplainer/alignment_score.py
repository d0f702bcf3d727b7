"""One alignment metric over a set of generated answers, with the answers that could not be read (RX-3)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["AlignmentScore"]


@dataclasses.dataclass(frozen=True)
class AlignmentScore:
    r"""The value of an alignment metric, how many answers it covers and how many could not be read.

    Every function of :mod:`darec.recexplainer.alignment_metrics` returns one. An answer that
    could not be read (empty, garbled, no known title in it, an undecided yes/no) is a *parse
    failure*: it scores ``0`` and stays in the mean, as a miss, so

    .. math::
        \mathrm{value} = \frac{1}{n} \sum_{c=1}^{n} v_c,
        \qquad v_c = 0 \text{ for every failed case } c.

    Report :attr:`failure_rate` next to :attr:`value`: a model that writes nothing usable scores
    as badly as one that is wrong, and only the rate tells them apart (RecExplainer's zero-shot
    Vicuna scored 0.24 on the graded ranking NDCG, far below random ordering's 0.61, for that
    reason).

    Args:
        name (str): the metric, e.g. ``"hit@5"``, ``"graded_ndcg@5"``.
        values (tuple[float, ...]): the value of every case, in input order (``0`` for failures).
        failed (tuple[int, ...]): the indices of the cases whose answer could not be read, ascending.

    Example:
        >>> score = AlignmentScore("hit@5", (1.0, 0.0, 1.0, 0.0), failed=(3,))
        >>> score.value, score.n, score.failures, score.failure_rate
        (0.5, 4, 1, 0.25)
        >>> print(score)
        hit@5 = 0.5000 (n = 4; parse failures: 1 = 25.0%)
        >>> score.as_dict()
        {'name': 'hit@5', 'value': 0.5, 'n': 4, 'failures': 1, 'failure_rate': 0.25}
    """

    name: str
    values: tuple[float, ...]
    failed: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"{self.name}: no cases to score")
        bad = [index for index in self.failed if not 0 <= index < len(self.values)]
        if bad:
            raise ValueError(f"{self.name}: failed case indices {bad} are outside 0..{len(self.values) - 1}")

    @property
    def value(self) -> float:
        """The mean over all :attr:`n` cases, failures counted as ``0``."""
        return math.fsum(self.values) / len(self.values)

    @property
    def n(self) -> int:
        """The number of cases (answers scored)."""
        return len(self.values)

    @property
    def failures(self) -> int:
        """The number of answers that could not be read."""
        return len(self.failed)

    @property
    def failure_rate(self) -> float:
        """:attr:`failures` over :attr:`n`, in ``[0, 1]``."""
        return self.failures / self.n

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-able dict (without the per-case values)."""
        return {"name": self.name, "value": self.value, "n": self.n, "failures": self.failures,
                "failure_rate": self.failure_rate}  # fmt: skip

    def __str__(self) -> str:
        return (
            f"{self.name} = {self.value:.4f} (n = {self.n}; parse failures: {self.failures} = {100 * self.failure_rate:.1f}%)"
        )
