"""What one run of a :class:`~darec.lane.PreferenceExtractor` did."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from darec.profiles.profile_failure import ProfileFailure
from darec.profiles.profile_report import RunOutcome

__all__ = ["PreferenceReport"]


@dataclasses.dataclass
class PreferenceReport(RunOutcome):
    """The outcome of an extraction: preferences written, found in the file already, or not parsed.

    Args:
        path (Path): the preference file.
        key (str): the key of the run's template, model and options.
        requested (int): the users the run was asked for.
        written (int): users whose preferences this run wrote.
        skipped (int): users already in the file with the same key and prompt.
        rounds (int): the rounds of generation the run needed (at most ``max_rounds``).
        failed (list[ProfileFailure]): the users whose answers could not be parsed in any round,
            each with the last problem (``entity`` is ``"user"``).
        seconds (float): the time the run took.

    Example:
        >>> report = PreferenceReport(Path("prefs.jsonl"), "0123abcd", requested=4, written=3, rounds=2)
        >>> report.failed.append(ProfileFailure("user", 2, "u2", "user 2: the answer is empty", 2))
        >>> report.unparsed, str(report)
        ([2], 'preferences: 3 written, 0 skipped (cached), 1 not parsed, of 4, in 2 round(s); in prefs.jsonl')
    """

    path: Path
    key: str
    requested: int = 0
    written: int = 0
    skipped: int = 0
    rounds: int = 0
    failed: list[ProfileFailure] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def unparsed(self) -> list[int]:
        """The internal ids of the users whose preferences could not be parsed, ascending."""
        return sorted(failure.id for failure in self.failed)

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-able dict."""
        return self._json_dict(unparsed=self.unparsed)

    def __str__(self) -> str:
        return (
            f"preferences: {self.written} written, {self.skipped} skipped (cached), {len(self.failed)} not parsed, "
            f"of {self.requested}, in {self.rounds} round(s); in {self.path}"
        )
