"""The grades an LLM judge gave a set of explanations, and the answers it could not read (RX-4)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["JudgeReport"]


@dataclasses.dataclass(frozen=True)
class JudgeReport:
    r"""What a :class:`~darec.recexplainer.rubric_judge.RubricJudge` made of a batch of explanations.

    Every case has the judge's raw answer and either a grade (``0`` to ``levels - 1``) or the
    reason it could not be read. The aggregates count parsed cases only; the unparsed ones are
    kept apart in :attr:`unparsed` and must be reported next to the mean:

    .. math::
        \mathrm{mean} = \frac{1}{|P|} \sum_{c \in P} s_c, \qquad P = \{c : \text{the answer of case } c \text{ was parsed}\}.

    Args:
        scores (tuple[int | None, ...]): the grade of every case, :obj:`None` where unparsed.
        answers (tuple[str, ...]): the judge's answer for every case.
        problems (tuple[str | None, ...]): why each answer could not be read (:obj:`None` if it was).
        levels (int): the number of grades, ``0 .. levels - 1``. (default: :obj:`4`)

    Example:
        >>> report = JudgeReport((3, 2, None, 2), ("<score>3</score>", "<score>2</score>", "fine", "<score>2</score>"),
        ...                      (None, None, "no <score> tag", None))
        >>> report.mean, report.distribution, report.unparsed, report.unparsed_rate
        (2.3333333333333335, {0: 0, 1: 0, 2: 2, 3: 1}, 1, 0.25)
        >>> print(report)
        judge: mean 2.333 over 3 parsed of 4 (distribution 0:0 1:0 2:2 3:1; unparsed 1 = 25.0%)
    """

    scores: tuple[int | None, ...]
    answers: tuple[str, ...]
    problems: tuple[str | None, ...]
    levels: int = 4

    def __post_init__(self) -> None:
        if not len(self.scores) == len(self.answers) == len(self.problems):
            raise ValueError(
                f"scores, answers and problems must have one entry per case, got {len(self.scores)}, "
                f"{len(self.answers)} and {len(self.problems)}"
            )
        for case, (score, problem) in enumerate(zip(self.scores, self.problems)):
            if (score is None) == (problem is None):
                raise ValueError(f"case {case} needs either a score or a problem, not both or neither")
            if score is not None and not 0 <= score < self.levels:
                raise ValueError(f"case {case}: score {score} is outside 0..{self.levels - 1}")

    @property
    def n(self) -> int:
        """The number of cases judged."""
        return len(self.scores)

    @property
    def parsed(self) -> int:
        """The number of answers with a grade."""
        return self.n - self.unparsed

    @property
    def unparsed(self) -> int:
        """The number of answers that could not be read (the "unparsed" bucket)."""
        return sum(score is None for score in self.scores)

    @property
    def unparsed_rate(self) -> float:
        """:attr:`unparsed` over :attr:`n` (``0`` with no cases)."""
        return self.unparsed / self.n if self.n else 0.0

    @property
    def mean(self) -> float:
        """The mean grade over the parsed answers; ``nan`` when none was parsed."""
        grades = [score for score in self.scores if score is not None]
        return math.fsum(grades) / len(grades) if grades else math.nan

    @property
    def distribution(self) -> dict[int, int]:
        """How many parsed answers got each grade, ``{0: ..., 1: ..., ...}``."""
        counts = dict.fromkeys(range(self.levels), 0)
        for score in self.scores:
            if score is not None:
                counts[score] += 1
        return counts

    @property
    def unparsed_cases(self) -> list[int]:
        """The indices of the cases whose answer could not be read, ascending."""
        return [case for case, score in enumerate(self.scores) if score is None]

    def as_dict(self, *, cases: bool = False) -> dict[str, Any]:
        """The aggregates as a JSON-able dict (``mean`` is :obj:`None` when nothing was parsed).

        Args:
            cases (bool): also list every case's score, answer and problem. (default: :obj:`False`)
        """
        summary: dict[str, Any] = {
            "n": self.n, "mean": None if math.isnan(self.mean) else self.mean, "parsed": self.parsed,
            "distribution": {str(grade): count for grade, count in self.distribution.items()},
            "unparsed": self.unparsed, "unparsed_rate": self.unparsed_rate,
        }  # fmt: skip
        if cases:
            summary["cases"] = [
                {"score": score, "answer": answer, "problem": problem}
                for score, answer, problem in zip(self.scores, self.answers, self.problems)
            ]
        return summary

    def __str__(self) -> str:
        spread = " ".join(f"{grade}:{count}" for grade, count in self.distribution.items())
        return (
            f"judge: mean {self.mean:.3f} over {self.parsed} parsed of {self.n} "
            f"(distribution {spread}; unparsed {self.unparsed} = {100 * self.unparsed_rate:.1f}%)"
        )
