"""A resumable, cached run that asks a language model for the profile of every user or item."""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from darec.data.readers.profiles import read_profiles
from darec.llm import (
    EndpointUnreachableError,
    GenerationError,
    GenerationOptions,
    LLMBackend,
    ModelNotFoundError,
    PromptTruncatedWarning,
)
from darec.profiles.errors import ProfileParseError
from darec.profiles.profile_answer import ProfileAnswer
from darec.profiles.profile_failure import ProfileFailure
from darec.profiles.profile_prompts import ProfilePrompts
from darec.profiles.profile_report import ProfileReport
from darec.profiles.profile_source import ProfileSource
from darec.utils.io import atomic_write, ensure_writable_dir
from darec.utils.jsonl import JsonlJournal, replace_jsonl

__all__ = ["PREFILL", "ProfileJob"]

#: The start of every answer when a job prefills: the model continues inside the JSON object.
PREFILL = '{"summary": "'

log = logging.getLogger(__name__)

#: The default token limit of an answer: a summary of two or three sentences and a short reasoning.
DEFAULT_MAX_NEW_TOKENS = 128

#: Errors after which no further prompt can succeed: the run stops, and what it wrote stays.
_FATAL = (EndpointUnreachableError, ModelNotFoundError, PermissionError)


class ProfileJob:
    r"""Writes the profile of every user (or item) with a language model into one JSON-lines file.

    Each entity gets a prompt from ``prompts`` (built from the **training** interactions of
    ``source``), the prompts go to ``backend`` in batches of ``batch_size``, and every answer is
    read by :meth:`ProfileAnswer.parse <darec.profiles.ProfileAnswer.parse>`. A usable answer
    becomes one line of the file ``out``::

        {"entity": "user", "id": 12, "raw_id": "13", "key": "5f0c...", "summary": "...",
         "reasoning": "...", "raw": "<the whole answer>", "prompt_sha256": "9ab1..."}

    **Cache and resume.** The file is only ever appended to, and flushed to disk after every
    batch, so a run that is killed loses at most the batch in flight. ``key`` hashes the prompt
    template and its settings (:meth:`ProfilePrompts.fingerprint
    <darec.profiles.ProfilePrompts.fingerprint>`), the model name and the generation options; a
    new run skips every entity that already has a line with the same key and the same prompt
    (``prompt_sha256``, so changed data are written again too). Another template, model or
    option writes every profile again, appended: readers take the **last** line of each id
    (:func:`~darec.data.read_profiles`). A line left half-written by a kill is closed with a
    newline and then ignored.

    **Failures.** An answer without a usable JSON ``summary``, or a prompt the backend refused
    (:class:`~darec.llm.GenerationError`), is asked again up to ``max_retries`` times, in later
    rounds, sampling at ``retry_temperature`` (greedy decoding would repeat the same answer).
    Entities that still fail are returned in the report and written to ``<stem>.failed.jsonl``,
    never dropped silently; an empty prompt fails at once. An unreachable endpoint, an unknown
    model or a refused key stop the run with an error that names the endpoint or model and says
    how many profiles are kept. Other errors (and Ctrl-C) stop it too, with everything written
    before kept.

    **Prefill.** Small models rarely answer with JSON when asked to (SmolLM2-135M-Instruct
    writes prose). With ``prefill=True`` every answer is started for the model with
    ``PREFILL`` (``{"summary": "``, the ``response_prefix`` generation option), so it
    continues inside the summary string; the answer is read with ``partial=True``
    (:meth:`ProfileAnswer.parse <darec.profiles.ProfileAnswer.parse>`), which accepts a summary
    cut by ``max_new_tokens`` up to its last complete sentence. The backend must honour
    ``response_prefix`` (:class:`~darec.llm.HFCausalLM` and :class:`~darec.llm.FakeLLM` do;
    :class:`~darec.llm.OpenAICompatible` ignores it with a warning, and capable chat models need
    none). Prefilling is part of the key.

    **Long prompts.** A prompt longer than the model's context is cut by the backend
    (:class:`~darec.llm.HFCausalLM` does, keeping the end of the chat template); the job repeats
    the backend's :class:`~darec.llm.PromptTruncatedWarning` naming the entity, and lists it in
    :attr:`ProfileReport.truncated <darec.profiles.ProfileReport.truncated>`.

    **End of a run.** A run that ends (with or without failures) writes ``<stem>.summary.json``
    (the report, key, model and options) with an atomic rename, and replaces
    ``<stem>.failed.jsonl`` the same way (removing it when nothing failed), where ``<stem>`` is
    ``out`` without ``.jsonl``.

    Args:
        backend (LLMBackend): any object with ``generate(prompts, **options)``
            (:class:`~darec.llm.HFCausalLM`, :class:`~darec.llm.OpenAICompatible`, :class:`~darec.llm.FakeLLM`).
        source (ProfileSource): the data the prompts are written from.
        entity (str): ``"user"`` or ``"item"``.
        out (str or os.PathLike): the profile file (``.jsonl``); created if needed, else appended to.
        prompts (ProfilePrompts, optional): the prompt templates. (default: ``ProfilePrompts()``)
        options (dict, optional): generation options (:class:`~darec.llm.GenerationOptions`:
            ``max_new_tokens``, ``temperature``, ``top_p``, ``seed``, ``system``).
            (default: ``{"max_new_tokens": 128}``, greedy: room for a summary of two or three
            sentences, under 100 tokens, and a short reasoning)
        model (str, optional): the model name in the key. (default: the backend's ``name`` or
            ``model`` attribute, else its class name)
        batch_size (int): prompts per call of ``generate``; the file is flushed after each.
            (default: ``8``)
        max_retries (int): further attempts for an entity whose answer was unusable. (default: ``2``)
        retry_temperature (float, optional): the sampling temperature of retries when decoding is
            greedy; :obj:`None` retries with the same options. (default: ``0.7``)
        limit (int, optional): only the first ``limit`` entities (to try a template or a model).
            (default: :obj:`None`, all)
        prefill (bool): start every answer with ``PREFILL`` for the model (see above).
            (default: :obj:`False`)
        progress (bool): show a progress bar with rate and time left. (default: :obj:`True`)

    Attributes:
        key (str): the hash of template, model and options that marks this run's lines.
        report (ProfileReport): the report of the current (or last) run, updated as it goes.

    Example:
        >>> import json, tempfile, pathlib
        >>> from darec.data import Interactions
        >>> from darec.llm import FakeLLM
        >>> from darec.profiles import ProfileJob, ProfileSource
        >>> data = Interactions(2, 3, train=[[0, 0], [1, 1], [1, 2]], item_text=["Heat (1995).", "Big (1988).", "Up (2009)."])
        >>> llm = FakeLLM(lambda prompt: json.dumps({"summary": f"Likes {prompt.count('- ')} films.", "reasoning": "count"}))
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "users.jsonl"
        >>> job = ProfileJob(llm, ProfileSource(data), "user", out, progress=False)
        >>> print(job.run())  # doctest: +ELLIPSIS
        user profiles: 2 written, 0 skipped (cached), 0 failed, of 2; in .../users.jsonl
        >>> [json.loads(line)["summary"] for line in out.read_text().splitlines()]
        ['Likes 1 films.', 'Likes 2 films.']
        >>> print(job.run())  # doctest: +ELLIPSIS
        user profiles: 0 written, 2 skipped (cached), 0 failed, of 2; in .../users.jsonl
    """

    def __init__(
        self,
        backend: LLMBackend,
        source: ProfileSource,
        entity: str,
        out: str | os.PathLike[str],
        *,
        prompts: ProfilePrompts | None = None,
        options: Mapping[str, Any] | None = None,
        model: str | None = None,
        batch_size: int = 8,
        max_retries: int = 2,
        retry_temperature: float | None = 0.7,
        limit: int | None = None,
        prefill: bool = False,
        progress: bool = True,
    ) -> None:
        if not callable(getattr(backend, "generate", None)):
            raise TypeError(f"backend must have a generate(prompts, **options) method, got {type(backend).__name__}")
        if entity not in ("user", "item"):
            raise ValueError(f"entity must be 'user' or 'item', got {entity!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be at least 0, got {max_retries}")
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1 (or None for all), got {limit}")
        self.backend = backend
        self.source = source
        self.entity = entity
        self.out = Path(out).expanduser()
        self.prompts = prompts if prompts is not None else ProfilePrompts()
        given = {"max_new_tokens": DEFAULT_MAX_NEW_TOKENS, **dict(options or {})}
        if prefill:
            if given.get("response_prefix") not in (None, PREFILL):
                raise ValueError(
                    f"prefill=True starts the answers with {PREFILL!r}; drop response_prefix "
                    f"{given['response_prefix']!r} from the options"
                )
            given["response_prefix"] = PREFILL
        self.options = GenerationOptions.from_kwargs(**given)
        self.prefill = self.options.response_prefix is not None
        self.model = str(model or getattr(backend, "name", None) or getattr(backend, "model", None) or type(backend).__name__)
        self.batch_size = int(batch_size)
        self.max_retries = int(max_retries)
        self.retry_temperature = retry_temperature
        self.limit = limit
        self.progress = progress
        settings = {
            "entity": entity,
            "prompts": self.prompts.fingerprint(entity),
            "model": self.model,
            "options": self._key_options(),
        }
        self.key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        self.report = ProfileReport(entity, self.out, self.key)

    def _key_options(self) -> dict[str, Any]:
        return self.options.as_kwargs()  # keys of runs without the newer options stay as they were

    # -- files -------------------------------------------------------------------------------
    @property
    def stem(self) -> Path:
        """``out`` without its ``.jsonl`` suffix: the prefix of the run's other files."""
        return self.out.with_suffix("") if self.out.suffix == ".jsonl" else self.out

    @property
    def failed_path(self) -> Path:
        """``<stem>.failed.jsonl``: the entities that still failed, one JSON object per line."""
        return self.stem.with_name(self.stem.name + ".failed.jsonl")

    @property
    def summary_path(self) -> Path:
        """``<stem>.summary.json``: the report of the last run that ended."""
        return self.stem.with_name(self.stem.name + ".summary.json")

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> ProfileReport:
        """Writes the missing profiles and returns the :class:`~darec.profiles.ProfileReport`.

        Raises:
            EndpointUnreachableError, ModelNotFoundError, PermissionError: the backend cannot
                answer at all; the message adds how many profiles are kept in the file.
            UnwritableDirectoryError: the folder of ``out`` cannot be written (checked first).
        """
        start = time.perf_counter()
        ensure_writable_dir(self.out.parent, what="the folder of the profile file", hint="choose another --out")
        count = self.source.count(self.entity)
        targets = list(range(count if self.limit is None else min(count, self.limit)))
        prompts = {k: self.prompts.prompt(self.source, self.entity, k) for k in targets}
        digests = {k: hashlib.sha256(prompt.encode()).hexdigest()[:16] for k, prompt in prompts.items()}
        done = self._already_written(digests)
        report = self.report = ProfileReport(self.entity, self.out, self.key, requested=len(targets), skipped=len(done))
        pending = [k for k in targets if k not in done]
        attempts: collections.Counter[int] = collections.Counter()
        last: dict[int, tuple[str, str | None]] = {}
        for k in [k for k in pending if not prompts[k].strip()]:
            attempts[k] += 1
            last[k] = (f"{self.entity} {k}: the prompt is empty (check the template)", None)
        pending = [k for k in pending if prompts[k].strip()]
        bar = tqdm(
            total=len(targets), initial=len(done), desc=f"{self.entity} profiles ({self.model})", unit=self.entity,
            disable=not self.progress, dynamic_ncols=True,
        )  # fmt: skip
        try:
            with bar, JsonlJournal.open(self.out, logger=log) as journal:
                for attempt in range(self.max_retries + 1):
                    if not pending:
                        break
                    options = self.options.retry_kwargs(attempt, self.retry_temperature)  # newer options off: as in the key
                    again = []
                    for first in range(0, len(pending), self.batch_size):
                        batch = pending[first : first + self.batch_size]
                        for k, answer in self._generate(batch, prompts, options):
                            attempts[k] += 1
                            if isinstance(answer, Exception):
                                last[k] = (str(answer), None)
                                again.append(k)
                                continue
                            try:
                                parsed = ProfileAnswer.parse(answer, entity=self.entity, id=k, partial=self.prefill)
                            except ProfileParseError as err:
                                last[k] = (str(err), answer)
                                again.append(k)
                                continue
                            journal.write(self._record(k, parsed, answer, digests[k]))
                            last.pop(k, None)
                            report.written += 1
                            bar.update(1)
                        journal.sync()
                        if again:
                            bar.set_postfix_str(f"to retry: {len(again)}")
                    pending = again
        except _FATAL as err:
            raise type(err)(
                f"{err}\n{report.written} {self.entity} profile(s) written by this run (and {report.skipped} before) "
                f"are kept in {self.out}; fix the problem and run again to resume"
            ) from err
        report.failed = [  # every entity whose last attempt failed: the retries are spent
            ProfileFailure(self.entity, k, self.source.raw_id(self.entity, k), last[k][0], attempts[k], last[k][1])
            for k in sorted(last)
        ]
        report.truncated = sorted(set(report.truncated))
        report.seconds = time.perf_counter() - start
        self._finish(report)
        return report

    def _generate(
        self, batch: Sequence[int], prompts: Mapping[int, str], options: Mapping[str, Any]
    ) -> list[tuple[int, str | Exception]]:
        """``(id, answer)`` for every entity of ``batch``; a prompt the backend refused gives ``(id, error)``."""
        if not batch:
            return []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", PromptTruncatedWarning)
                answers = self.backend.generate([prompts[k] for k in batch], **options)
        except GenerationError as err:
            index = getattr(err, "index", None)
            if not isinstance(index, int) or not 0 <= index < len(batch):
                raise
            refused = batch[index]
            error = GenerationError(f"{self.entity} {refused}: {err}", index)
            rest = [k for k in batch if k != refused]
            return [(refused, error), *self._generate(rest, prompts, options)]
        self._repeat_warnings(caught, batch)
        if not isinstance(answers, list) or len(answers) != len(batch):
            got = len(answers) if isinstance(answers, list) else type(answers).__name__
            raise RuntimeError(f"{type(self.backend).__name__}.generate returned {got} answers for {len(batch)} prompts")
        return list(zip(batch, answers))

    def _repeat_warnings(self, caught: list[warnings.WarningMessage], batch: Sequence[int]) -> None:
        for record in caught:
            index = getattr(record.message, "index", None)
            if issubclass(record.category, PromptTruncatedWarning) and isinstance(index, int) and 0 <= index < len(batch):
                k = batch[index]
                self.report.truncated.append(k)
                raw = self.source.raw_id(self.entity, k)
                warnings.warn(
                    PromptTruncatedWarning(f"{self.entity} {k} (raw id {raw}): {record.message}", index), stacklevel=4
                )
            else:
                warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)

    def _record(self, k: int, answer: ProfileAnswer, raw: str, digest: str) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "id": k,
            "raw_id": self.source.raw_id(self.entity, k),
            "key": self.key,
            "summary": answer.summary,
            "reasoning": answer.reasoning,
            "raw": raw,
            "prompt_sha256": digest,
        }

    def _already_written(self, digests: Mapping[int, str]) -> set[int]:
        """The targets whose profile is in the file with this key, this prompt and this raw id."""
        if not self.out.is_file():
            return set()
        records = read_profiles(self.out, self.entity, key=self.key)
        done = set()
        for k, record in records.items():
            if k not in digests:
                continue
            if record.get("prompt_sha256", digests[k]) != digests[k]:
                continue
            if str(record.get("raw_id", self.source.raw_id(self.entity, k))) != self.source.raw_id(self.entity, k):
                continue
            done.add(k)
        return done

    def _finish(self, report: ProfileReport) -> None:
        replace_jsonl(self.failed_path, [{**failure.as_dict(), "key": self.key} for failure in report.failed])
        summary = {
            **report.as_dict(),
            "failed": [failure.id for failure in report.failed],
            "model": self.model,
            "options": self.options.as_dict(),
            "prompts": self.prompts.fingerprint(self.entity),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        with atomic_write(self.summary_path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(entity={self.entity!r}, out={str(self.out)!r}, model={self.model!r}, "
            f"key={self.key!r}, batch_size={self.batch_size})"
        )
