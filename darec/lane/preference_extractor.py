"""Zero-shot multi-preference extraction (LANE, LN-2): ``m`` preferences per user from a frozen LLM."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from darec.data.readers.preferences import read_preference_records
from darec.data.user_sequences import UserSequences
from darec.lane.errors import PreferenceParseError
from darec.lane.preference_answer import PreferenceAnswer
from darec.lane.preference_report import PreferenceReport
from darec.llm import EndpointUnreachableError, GenerationOptions, LLMBackend, ModelNotFoundError, generate_each
from darec.profiles.profile_failure import ProfileFailure
from darec.utils.io import ensure_writable_dir
from darec.utils.jsonl import JsonlJournal, replace_jsonl

__all__ = ["LIST_PREFILL", "PREFERENCE_LIST_TEMPLATE", "PREFERENCE_TEMPLATE", "PreferenceExtractor"]

log = logging.getLogger(__name__)

#: The default prompt (:meth:`str.format` fields ``{count}``, ``{titles}`` and ``{m}``).
PREFERENCE_TEMPLATE = (
    "Here are the {count} movies a user watched, in time order (oldest first):\n"
    "{titles}\n\n"
    "From this history, name exactly {m} distinct preferences of the user, each a short phrase "
    '(for example "enjoys 1990s crime thrillers").\n'
    'Answer with one JSON object only, with exactly {m} keys "1" to "{m}", each holding one preference.'
)

#: A prompt for small local models, which keep to a numbered list far better than to JSON
#: (SmolLM2-135M-Instruct: 0 of 8 ML-100K users answered in JSON in 5 rounds; it copies the
#: JSON example instead). Use it with the answer prefilled with :data:`LIST_PREFILL`
#: (``options={"response_prefix": LIST_PREFILL}``); :class:`~darec.lane.PreferenceAnswer` reads the list.
PREFERENCE_LIST_TEMPLATE = (
    "Here are the {count} movies a user watched, in time order (oldest first):\n"
    "{titles}\n\n"
    "List exactly {m} distinct preferences of this user: genres, themes, eras or styles of movie they like, "
    "each a short phrase, as a numbered list from 1 to {m}."
)

#: The start of every answer to :data:`PREFERENCE_LIST_TEMPLATE` when the backend can prefill.
LIST_PREFILL = "1."

#: Errors after which no further prompt can succeed: the run stops, and what it wrote stays.
_FATAL = (EndpointUnreachableError, ModelNotFoundError, PermissionError)


class PreferenceExtractor:
    r"""Asks a frozen language model for exactly ``m`` preferences of every user (LANE, LN-2).

    Each user's prompt lists the titles of their **training** items in time order, the last
    ``max_titles`` of them (:meth:`UserSequences.train_sequence
    <darec.data.UserSequences.train_sequence>`: the validation and test items are never shown),
    and asks for ``m`` distinct preferences as a JSON object. Answers are read by
    :meth:`PreferenceAnswer.parse <darec.lane.PreferenceAnswer.parse>` (the last JSON object,
    fenced or in prose, with exactly ``m`` strings). Users whose answer cannot be parsed, or whose
    prompt the backend refused or timed out on, are asked again in the next round, and only they,
    sampling at ``retry_temperature``; after ``max_rounds`` rounds the users that still fail are
    returned in the :class:`~darec.lane.PreferenceReport` (:attr:`~darec.lane.PreferenceReport.unparsed`)
    and written to ``<stem>.failed.jsonl``, never dropped silently.

    **Cache and resume.** Every parsed answer becomes one line of ``out``::

        {"user": "13", "id": 12, "key": "5f0c...", "preferences": ["...", ...], "raw": "...",
         "prompt_sha256": "9ab1..."}

    The file is only ever appended to and flushed after every batch, so a killed run loses at
    most the batch in flight; a line cut by a kill is closed and ignored. ``key`` hashes the
    template, ``m``, ``max_titles``, the model name and the generation options; a run skips every
    user that has a line with its key and the same prompt, so running it again resumes. Readers
    (:func:`~darec.data.read_preferences`, ``SequenceDataModule(preferences=...)``) take the last
    line of each user. An unreachable endpoint or unknown model stops the run with an error that
    says how many users are kept.

    - [0] Zhao et al., "LANE", arXiv:2407.02833 (zero-shot multi-preference extraction).

    Args:
        llm (LLMBackend): any object with ``generate(prompts, **options)``.
        m (int): preferences per user. (default: :obj:`5`)
        max_rounds (int): rounds of generation, the first included. (default: :obj:`5`)
        max_titles (int): the most (latest) training titles in a prompt. (default: :obj:`200`)
        template (str, optional): the prompt, with ``{count}``, ``{titles}`` and ``{m}``.
            (default: :data:`PREFERENCE_TEMPLATE`)
        options (dict, optional): generation options (:class:`~darec.llm.GenerationOptions`).
            (default: ``{"max_new_tokens": 256}``, greedy)
        model (str, optional): the model name in the key. (default: the backend's ``name`` or
            ``model`` attribute, else its class name)
        batch_size (int): prompts per call of ``generate``; the file is flushed after each.
            (default: :obj:`8`)
        retry_temperature (float, optional): the sampling temperature of later rounds when
            decoding is greedy (greedy decoding would repeat the same answer); :obj:`None` keeps
            the options. (default: :obj:`0.7`)
        progress (bool): show a progress bar. (default: :obj:`True`)

    Attributes:
        key (str): the hash of template, ``m``, ``max_titles``, model and options.
        report (PreferenceReport): the report of the current (or last) run.

    Example:
        >>> import numpy as np, pathlib, tempfile
        >>> from darec.data import UserSequences
        >>> from darec.llm import FakeLLM
        >>> data = UserSequences([np.array([1, 2, 3, 4]), np.array([2, 3, 1])], num_items=4,
        ...                      item_titles=["Heat (1995)", "Big (1988)", "Up (2009)", "Jaws (1975)"])
        >>> llm = FakeLLM('```json\n{"1": "crime films", "2": "comedies"}\n```')
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "prefs.jsonl"
        >>> extractor = PreferenceExtractor(llm, m=2, progress=False)
        >>> print(extractor.prompt(data, 0))
        Here are the 2 movies a user watched, in time order (oldest first):
        1. Heat (1995)
        2. Big (1988)
        <BLANKLINE>
        From this history, name exactly 2 distinct preferences of the user, each a short phrase (for example "enjoys 1990s crime thrillers").
        Answer with one JSON object only, with exactly 2 keys "1" to "2", each holding one preference.
        >>> print(extractor.run(data, out))  # doctest: +ELLIPSIS
        preferences: 2 written, 0 skipped (cached), 0 not parsed, of 2, in 1 round(s); in .../prefs.jsonl
        >>> print(extractor.run(data, out))  # doctest: +ELLIPSIS
        preferences: 0 written, 2 skipped (cached), 0 not parsed, of 2, in 0 round(s); in .../prefs.jsonl
    """

    def __init__(
        self,
        llm: LLMBackend,
        m: int = 5,
        max_rounds: int = 5,
        *,
        max_titles: int = 200,
        template: str | None = None,
        options: Mapping[str, Any] | None = None,
        model: str | None = None,
        batch_size: int = 8,
        retry_temperature: float | None = 0.7,
        progress: bool = True,
    ) -> None:
        if not callable(getattr(llm, "generate", None)):
            raise TypeError(f"llm must have a generate(prompts, **options) method, got {type(llm).__name__}")
        for name, value in (("m", m), ("max_rounds", max_rounds), ("max_titles", max_titles), ("batch_size", batch_size)):
            if value < 1:
                raise ValueError(f"`{name}` must be at least 1, got {value}")
        self.llm = llm
        self.m = int(m)
        self.max_rounds = int(max_rounds)
        self.max_titles = int(max_titles)
        self.template = template if template is not None else PREFERENCE_TEMPLATE
        try:
            self.template.format(count=1, titles="1. A film", m=self.m)
        except (KeyError, IndexError) as err:
            raise ValueError(f"the template may use only the fields {{count}}, {{titles}} and {{m}}; it has {err}") from err
        self.options = GenerationOptions.from_kwargs(**{"max_new_tokens": 256, **dict(options or {})})
        self.model = str(model or getattr(llm, "name", None) or getattr(llm, "model", None) or type(llm).__name__)
        self.batch_size = int(batch_size)
        self.retry_temperature = retry_temperature
        self.progress = progress
        settings = {
            "template": self.template,
            "m": self.m,
            "max_titles": self.max_titles,
            "model": self.model,
            "options": self.options.as_kwargs(),
        }
        self.key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        self.report = PreferenceReport(Path(), self.key)

    # -- prompts -----------------------------------------------------------------------------
    def titles(self, sequences: UserSequences, user: int) -> list[str]:
        """The titles of ``user``'s latest ``max_titles`` training items, oldest first.

        Raises:
            ValueError: the data have no item titles.
        """
        if sequences.item_titles is None:
            raise ValueError(
                "the user sequences have no item titles, and preference prompts list titles: give the items "
                "metadata with titles (e.g. SequenceDataModule(item_info=...))"
            )
        items = sequences.train_sequence(user)[-self.max_titles :]
        return [sequences.item_titles[int(item) - 1] for item in items]

    def prompt(self, sequences: UserSequences, user: int) -> str:
        """The prompt of ``user`` (internal id): the training titles only, numbered, oldest first."""
        titles = self.titles(sequences, user)
        listed = "\n".join(f"{k}. {title}" for k, title in enumerate(titles, start=1))
        return self.template.format(count=len(titles), titles=listed, m=self.m)

    # -- files -------------------------------------------------------------------------------
    @staticmethod
    def failed_path(out: str | os.PathLike[str]) -> Path:
        """``<stem>.failed.jsonl`` beside ``out``: the users that were not parsed, one JSON object per line."""
        out = Path(out)
        stem = out.with_suffix("") if out.suffix == ".jsonl" else out
        return stem.with_name(stem.name + ".failed.jsonl")

    # -- the run -----------------------------------------------------------------------------
    def run(
        self, sequences: UserSequences, out: str | os.PathLike[str], users: Sequence[int] | None = None
    ) -> PreferenceReport:
        """Writes the missing preferences of ``users`` (default: all) into ``out`` and returns the report.

        Args:
            sequences (UserSequences): the data; prompts use the training items only.
            out (str or os.PathLike): the preference file (``.jsonl``), created or appended to.
            users (Sequence[int], optional): internal ids of the users to extract. (default: all)

        Raises:
            EndpointUnreachableError, ModelNotFoundError, PermissionError: the backend cannot answer
                at all; the message adds how many users are kept in the file.
            ValueError: the data have no titles, or a user id is out of range.
        """
        start = time.perf_counter()
        out = Path(out).expanduser()
        ensure_writable_dir(out.parent, what="the folder of the preference file", hint="choose another out")
        targets = list(range(sequences.num_users)) if users is None else [int(u) for u in users]
        bad = [u for u in targets if not 0 <= u < sequences.num_users]
        if bad:
            raise ValueError(f"users {bad[:5]} are not in the data (internal ids 0 .. {sequences.num_users - 1})")
        raw = {u: str(sequences.user_ids[u]) for u in targets}
        prompts = {u: self.prompt(sequences, u) for u in targets}
        digests = {u: hashlib.sha256(p.encode()).hexdigest()[:16] for u, p in prompts.items()}
        done = self._already_written(out, raw, digests)
        report = self.report = PreferenceReport(out, self.key, requested=len(targets), skipped=len(done))
        pending = [u for u in targets if u not in done]
        attempts = dict.fromkeys(pending, 0)
        last: dict[int, tuple[str, str | None]] = {}
        bar = tqdm(
            total=len(targets), initial=len(done), desc=f"preferences ({self.model})", unit="user",
            disable=not self.progress, dynamic_ncols=True,
        )  # fmt: skip
        try:
            with bar, JsonlJournal.open(out, logger=log) as journal:
                for round_ in range(self.max_rounds):
                    if not pending:
                        break
                    report.rounds = round_ + 1
                    options = self.options.retry_kwargs(round_, self.retry_temperature)
                    again: list[int] = []
                    for first in range(0, len(pending), self.batch_size):
                        batch = pending[first : first + self.batch_size]
                        for u, answer in self._generate(batch, prompts, options):
                            attempts[u] += 1
                            if isinstance(answer, Exception):
                                last[u] = (str(answer), None)
                                again.append(u)
                                continue
                            try:
                                parsed = PreferenceAnswer.parse(answer, self.m, user=u)
                            except PreferenceParseError as err:
                                last[u] = (str(err), answer)
                                again.append(u)
                                continue
                            record = {
                                "user": raw[u], "id": u, "key": self.key, "preferences": list(parsed.preferences),
                                "raw": answer, "prompt_sha256": digests[u],
                            }  # fmt: skip
                            journal.write(record)
                            last.pop(u, None)
                            report.written += 1
                            bar.update(1)
                        journal.sync()
                        if again:
                            bar.set_postfix_str(f"to retry: {len(again)}")
                    pending = again
        except _FATAL as err:
            raise type(err)(
                f"{err}\n{report.written} user(s) written by this run (and {report.skipped} before) are kept in "
                f"{out}; fix the problem and run again to resume"
            ) from err
        report.failed = [
            ProfileFailure("user", u, raw[u], last[u][0], attempts[u], last[u][1]) for u in sorted(last)
        ]
        report.seconds = time.perf_counter() - start
        self._write_failures(out, report)
        return report

    def _generate(
        self, batch: Sequence[int], prompts: Mapping[int, str], options: Mapping[str, Any]
    ) -> list[tuple[int, str | Exception]]:
        """``(user, answer)`` for every user of ``batch``; a refused prompt or a timed-out batch gives ``(user, error)``."""
        return generate_each(self.llm, batch, prompts, options, label="user", noun="user(s)", logger=log)

    def _already_written(self, out: Path, raw: Mapping[int, str], digests: Mapping[int, str]) -> set[int]:
        """The users whose preferences are in ``out`` with this key, this prompt and this raw id."""
        if not out.is_file():
            return set()
        records = read_preference_records(out, key=self.key)
        done = set()
        for u, raw_id in raw.items():
            record = records.get(raw_id)
            if record is not None and record.get("prompt_sha256") == digests[u] and len(record["preferences"]) == self.m:
                done.add(u)
        return done

    def _write_failures(self, out: Path, report: PreferenceReport) -> None:
        replace_jsonl(self.failed_path(out), [{**failure.as_dict(), "key": self.key} for failure in report.failed])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(m={self.m}, max_rounds={self.max_rounds}, model={self.model!r}, key={self.key!r})"
