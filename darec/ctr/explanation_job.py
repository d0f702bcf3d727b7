"""A resumable, cached run that asks a language model for a one-sentence explanation of every (user, item) pair."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from darec.ctr.ctr_samples import CTRSamples
from darec.ctr.explanation_prompt import ExplanationPrompt
from darec.data.interactions import SPLITS
from darec.llm import EndpointUnreachableError, GenerationOptions, LLMBackend, ModelNotFoundError, generate_each
from darec.utils.io import ensure_writable_dir
from darec.utils.jsonl import JsonlJournal, last_records, loads_object, replace_jsonl

__all__ = ["DEFAULT_MAX_NEW_TOKENS", "ExplanationJob", "ExplanationReport"]

log = logging.getLogger(__name__)

#: The default token limit of an answer: one sentence.
DEFAULT_MAX_NEW_TOKENS = 48

#: Errors after which no further prompt can succeed: the run stops, and what it wrote stays.
_FATAL = (EndpointUnreachableError, ModelNotFoundError, PermissionError)


@dataclasses.dataclass
class ExplanationReport:
    """What an :class:`ExplanationJob` run did: counts, the pairs that failed, and where the file is.

    Attributes:
        out (Path): the explanation file.
        key (str): the job's cache key.
        split (str): the split the pairs came from (``"all"`` for every split).
        requested (int): the distinct pairs asked for.
        written (int): the lines this run wrote.
        skipped (int): the pairs already in the file with this key and prompt.
        failed (list of dict): the pairs whose answers stayed empty or refused (as in ``<stem>.failed.jsonl``).
        seconds (float): the run's wall time.
        untitled (int): the requested pairs whose target item has no title (named ``Item <id>``; a warning says so).
    """

    out: Path
    key: str
    split: str = "all"
    requested: int = 0
    written: int = 0
    skipped: int = 0
    failed: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    untitled: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "out": str(self.out), "failed": len(self.failed)}

    def __str__(self) -> str:
        return (
            f"{self.split} explanations: {self.written} written, {self.skipped} skipped (cached), "
            f"{len(self.failed)} failed, of {self.requested}; in {self.out}"
        )


class ExplanationJob:
    r"""Writes a one-sentence explanation of every (user, item) pair of a split with a language model (ExpCTR).

    Each distinct pair of the split (its first row, when a pair occurs in several rows) gets the
    liked/disliked prompt of ``prompt`` (:meth:`ExplanationPrompt.for_row
    <darec.ctr.ExplanationPrompt.for_row>`, training history only); the prompts go to ``llm`` in
    batches of ``batch_size``, and every non-empty answer becomes one line of ``out``::

        {"user": "13", "item": "242", "split": "train", "row": 57, "key": "5f0c...",
         "text": "...", "prompt_sha256": "9ab1..."}

    in raw ids: the file :class:`CTRDataModule(explanations=...) <darec.ctr.CTRDataModule>`
    reads (the last line of a pair wins there).

    **Cache and resume.** The file is only appended to, and flushed to disk (``fsync``) after
    every batch; a line cut by a kill is closed and ignored. ``key`` hashes the prompt settings
    (:meth:`ExplanationPrompt.fingerprint <darec.ctr.ExplanationPrompt.fingerprint>`), the model
    name and the generation options; a run skips every pair with a line of this key and the same
    prompt, so running it again resumes.

    **Failures.** An empty or blank answer, a prompt the backend refused or a timed-out batch is
    asked again, only those pairs, up to ``max_retries`` times, sampling at ``retry_temperature``
    when decoding is greedy. Pairs that still fail are in :attr:`ExplanationReport.failed` and in
    ``<stem>.failed.jsonl`` (removed when nothing failed). An unreachable endpoint or an unknown
    model stops the run with an error that says how many explanations are kept.

    Args:
        llm (LLMBackend): any object with ``generate(prompts, **options)``.
        prompt (ExplanationPrompt, optional): the prompt builder. (default: ``ExplanationPrompt()``)
        batch_size (int): prompts per call of ``generate``. (default: :obj:`8`)
        max_retries (int): further attempts for a failed pair. (default: :obj:`2`)
        options (dict, optional): generation options (:class:`~darec.llm.GenerationOptions`).
            (default: ``{"max_new_tokens": 48}``, greedy)
        model (str, optional): the model name in the key. (default: the backend's ``name`` or
            ``model`` attribute, else its class name)
        retry_temperature (float, optional): the sampling temperature of retries when decoding is
            greedy; :obj:`None` keeps the options. (default: :obj:`0.7`)
        progress (bool): show a progress bar. (default: :obj:`True`)

    Attributes:
        key (str): the hash of prompt settings, model and options.
        report (ExplanationReport): the report of the current (or last) run.

    Example:
        >>> import pathlib, tempfile
        >>> from darec.data import InteractionLog
        >>> from darec.llm import FakeLLM
        >>> log = InteractionLog(["a", "a", "b", "a", "b"], ["x", "y", "x", "z", "y"],
        ...                      ratings=[5, 2, 4, 1, 5], timestamps=[1, 2, 3, 4, 5])
        >>> samples = CTRSamples.from_log(log, fractions=(0.6, 0.2, 0.2))
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "expl.jsonl"
        >>> job = ExplanationJob(FakeLLM("They would like it."), progress=False)
        >>> print(job.run(samples, "train", out))  # doctest: +ELLIPSIS
        train explanations: 3 written, 0 skipped (cached), 0 failed, of 3; in .../expl.jsonl
        >>> print(job.run(samples, "train", out))  # doctest: +ELLIPSIS
        train explanations: 0 written, 3 skipped (cached), 0 failed, of 3; in .../expl.jsonl
    """

    def __init__(
        self,
        llm: LLMBackend,
        prompt: ExplanationPrompt | None = None,
        *,
        batch_size: int = 8,
        max_retries: int = 2,
        options: Mapping[str, Any] | None = None,
        model: str | None = None,
        retry_temperature: float | None = 0.7,
        progress: bool = True,
    ) -> None:
        if not callable(getattr(llm, "generate", None)):
            raise TypeError(f"llm must have a generate(prompts, **options) method, got {type(llm).__name__}")
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be at least 1, got {batch_size}")
        if max_retries < 0:
            raise ValueError(f"`max_retries` must be at least 0, got {max_retries}")
        self.llm = llm
        self.prompt = prompt if prompt is not None else ExplanationPrompt()
        self.batch_size = int(batch_size)
        self.max_retries = int(max_retries)
        self.options = GenerationOptions.from_kwargs(**{"max_new_tokens": DEFAULT_MAX_NEW_TOKENS, **dict(options or {})})
        self.model = str(model or getattr(llm, "name", None) or getattr(llm, "model", None) or type(llm).__name__)
        self.retry_temperature = retry_temperature
        self.progress = progress
        settings = {"prompt": self.prompt.fingerprint(), "model": self.model, "options": self.options.as_kwargs()}
        self.key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        self.report = ExplanationReport(Path(), self.key)

    # -- files -------------------------------------------------------------------------------
    @staticmethod
    def failed_path(out: str | os.PathLike[str]) -> Path:
        """``<stem>.failed.jsonl`` beside ``out``: the pairs that failed, one JSON object per line."""
        out = Path(out)
        stem = out.with_suffix("") if out.suffix == ".jsonl" else out
        return stem.with_name(stem.name + ".failed.jsonl")

    # -- pairs -------------------------------------------------------------------------------
    @staticmethod
    def rows(samples: CTRSamples, split: str, pairs: Sequence[int] | None = None, limit: int | None = None) -> list[int]:
        """The rows to explain: one per distinct (user, item) pair of ``split`` (its first), in time order.

        Args:
            samples (CTRSamples): the data.
            split (str): ``"train"``, ``"valid"`` (or ``"validate"``), ``"test"`` or ``"all"``.
            pairs (Sequence[int], optional): only these rows of ``samples`` (e.g. every row of a
                few users). (default: :obj:`None`, every row of the split)
            limit (int, optional): only the first ``limit`` pairs. (default: :obj:`None`, all)
        """
        name = _split_name(split)
        rows = np.arange(len(samples)) if name == "all" else samples.split(name)
        if pairs is not None:
            wanted = np.asarray(list(pairs), dtype=np.int64)
            bad = wanted[(wanted < 0) | (wanted >= len(samples))]
            if len(bad):
                raise ValueError(f"pairs {bad[:5].tolist()} are not rows of the samples (0 .. {len(samples) - 1})")
            rows = rows[np.isin(rows, wanted)]
        if limit is not None and limit < 1:
            raise ValueError(f"`limit` must be at least 1 (or None for all), got {limit}")
        seen: set[tuple[int, int]] = set()
        out: list[int] = []
        for row in rows.tolist():
            pair = (int(samples.user[row]), int(samples.item[row]))
            if pair not in seen:
                seen.add(pair)
                out.append(row)
                if limit is not None and len(out) == limit:
                    break
        return out

    # -- the run -----------------------------------------------------------------------------
    def run(
        self,
        samples: CTRSamples,
        split: str,
        out: str | os.PathLike[str],
        pairs: Sequence[int] | None = None,
        limit: int | None = None,
    ) -> ExplanationReport:
        """Writes the missing explanations of ``split`` (see :meth:`rows`) into ``out`` and returns the report.

        Raises:
            EndpointUnreachableError, ModelNotFoundError, PermissionError: the backend cannot answer
                at all; the message adds how many explanations are kept in the file.
            ValueError: an unknown split, a row out of range, or a prompt over its token budget.
        """
        start = time.perf_counter()
        out = Path(out).expanduser()
        ensure_writable_dir(out.parent, what="the folder of the explanation file", hint="choose another out")
        targets = self.rows(samples, split, pairs, limit)
        raw = {r: (str(samples.user_ids[samples.user[r]]), str(samples.item_ids[samples.item[r]])) for r in targets}
        untitled = np.isin(samples.item[targets], samples.untitled_items()) if targets else np.zeros(0, dtype=bool)
        if untitled.any():
            log.warning(
                "%d of %d pairs to explain have a target item without a title (e.g. item %s); their prompts name it "
                "'Item <id>', which a language model cannot explain: give item metadata with titles (item_info)",
                int(untitled.sum()), len(targets), samples.item_ids[samples.item[targets[int(np.argmax(untitled))]]],
            )  # fmt: skip
        prompts = {r: self.prompt.for_row(samples, r) for r in targets}
        digests = {r: hashlib.sha256(p.encode()).hexdigest()[:16] for r, p in prompts.items()}
        done = self._already_written(out, raw, digests)
        report = self.report = ExplanationReport(
            out, self.key, split=_split_name(split), requested=len(targets), skipped=len(done), untitled=int(untitled.sum())
        )
        pending = [r for r in targets if r not in done]
        attempts = dict.fromkeys(pending, 0)
        last: dict[int, tuple[str, str | None]] = {}
        bar = tqdm(
            total=len(targets), initial=len(done), desc=f"explanations ({self.model})", unit="pair",
            disable=not self.progress, dynamic_ncols=True,
        )  # fmt: skip
        try:
            with bar, JsonlJournal.open(out, logger=log) as journal:
                for attempt in range(self.max_retries + 1):
                    if not pending:
                        break
                    options = self.options.retry_kwargs(attempt, self.retry_temperature)
                    again: list[int] = []
                    for first in range(0, len(pending), self.batch_size):
                        batch = pending[first : first + self.batch_size]
                        for r, answer in self._generate(batch, prompts, options):
                            attempts[r] += 1
                            if isinstance(answer, Exception):
                                last[r] = (str(answer), None)
                            elif not isinstance(answer, str) or not answer.strip():
                                last[r] = (f"pair {raw[r]}: the answer is empty", answer if isinstance(answer, str) else None)
                            else:
                                journal.write(self._record(samples, r, raw[r], answer, digests[r]))
                                last.pop(r, None)
                                report.written += 1
                                bar.update(1)
                                continue
                            again.append(r)
                        journal.sync()
                        if again:
                            bar.set_postfix_str(f"to retry: {len(again)}")
                    pending = again
        except _FATAL as err:
            raise type(err)(
                f"{err}\n{report.written} explanation(s) written by this run (and {report.skipped} before) are kept "
                f"in {out}; fix the problem and run again to resume"
            ) from err
        report.failed = [
            {"user": raw[r][0], "item": raw[r][1], "row": r, "error": last[r][0], "attempts": attempts[r],
             "raw": last[r][1], "key": self.key}
            for r in sorted(last)
        ]  # fmt: skip
        report.seconds = time.perf_counter() - start
        replace_jsonl(self.failed_path(out), report.failed)
        return report

    def _record(self, samples: CTRSamples, row: int, raw: tuple[str, str], answer: str, digest: str) -> dict[str, Any]:
        return {
            "user": raw[0], "item": raw[1], "split": _split_of(samples, row), "row": int(row), "key": self.key,
            "text": " ".join(answer.split()), "prompt_sha256": digest,
        }  # fmt: skip

    def _generate(
        self, batch: Sequence[int], prompts: Mapping[int, str], options: Mapping[str, Any]
    ) -> list[tuple[int, str | Exception]]:
        """``(row, answer)`` for every row of ``batch``; a refused prompt or a timed-out batch gives ``(row, error)``."""
        return generate_each(self.llm, batch, prompts, options, label="row", noun="pair(s)", logger=log)

    def _already_written(self, out: Path, raw: Mapping[int, tuple[str, str]], digests: Mapping[int, str]) -> set[int]:
        """The rows whose pair has a line in ``out`` with this key and this prompt."""
        if not out.is_file():
            return set()

        def parse(line: str) -> dict[str, Any] | None:
            record = loads_object(line)
            if record is None or None in (record.get("user"), record.get("item")) or not isinstance(record.get("text"), str):
                return None
            return record

        records, _ = last_records(
            out.read_text(encoding="utf-8", errors="replace"), parse, lambda r: (str(r["user"]), str(r["item"])),
            keep=lambda r: r.get("key") == self.key and bool(r["text"].strip()),
        )  # fmt: skip
        return {r for r, pair in raw.items() if pair in records and records[pair].get("prompt_sha256") == digests[r]}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, key={self.key!r}, batch_size={self.batch_size})"


def _split_name(split: str) -> str:
    name = {"validate": "valid", "validation": "valid"}.get(split, split)
    if name != "all" and name not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of train, valid (validate), test, all")
    return name


def _split_of(samples: CTRSamples, row: int) -> str:
    for name in SPLITS:
        rows = samples.split(name)
        if len(rows) and rows[0] <= row <= rows[-1]:
            return name
    return "unknown"
