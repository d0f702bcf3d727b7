"""What one run of a :class:`~darec.profiles.ProfileJob` did."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from darec.profiles.profile_failure import ProfileFailure

__all__ = ["ProfileReport", "RunOutcome"]


class RunOutcome:
    """What the reports of resumable LLM runs share (:class:`ProfileReport`, :class:`~darec.lane.PreferenceReport`).

    A base of dataclasses with the fields ``path``, ``requested``, ``written``, ``skipped`` and
    ``failed``; it declares no fields of its own.
    """

    path: Path
    requested: int
    written: int
    skipped: int
    failed: list[ProfileFailure]

    @property
    def complete(self) -> bool:
        """Whether every requested user (or item) has its result in the file."""
        return self.written + self.skipped == self.requested and not self.failed

    def _json_dict(self, **extra: Any) -> dict[str, Any]:
        """The dataclass's fields as a JSON-able dict (``path`` as a string), with ``extra`` added."""
        out = dataclasses.asdict(self)  # type: ignore[call-overload]
        out["path"] = str(self.path)
        out.update(extra)
        return out


@dataclasses.dataclass
class ProfileReport(RunOutcome):
    """The outcome of a run: how many profiles were written, found in the file already, or failed.

    Args:
        entity (str): ``"user"`` or ``"item"``.
        path (Path): the profile file.
        key (str): the key of this run's template, model and options.
        requested (int): the entities the run was asked for (all, or the first ``limit``).
        written (int): profiles written by this run.
        skipped (int): profiles already in the file with the same key (not generated again).
        failed (list[ProfileFailure]): the entities that still failed after the retries.
        truncated (list[int]): the entities whose prompt was cut to fit the model's context.
        seconds (float): the time the run took.

    Example:
        >>> report = ProfileReport("user", Path("users.jsonl"), "0123abcd", requested=10, written=7, skipped=3)
        >>> report.complete, str(report)
        (True, 'user profiles: 7 written, 3 skipped (cached), 0 failed, of 10; in users.jsonl')
    """

    entity: str
    path: Path
    key: str
    requested: int = 0
    written: int = 0
    skipped: int = 0
    failed: list[ProfileFailure] = dataclasses.field(default_factory=list)
    truncated: list[int] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-able dict (the run's ``*.summary.json``)."""
        return self._json_dict(complete=self.complete)

    def __str__(self) -> str:
        return (
            f"{self.entity} profiles: {self.written} written, {self.skipped} skipped (cached), "
            f"{len(self.failed)} failed, of {self.requested}; in {self.path}"
        )
