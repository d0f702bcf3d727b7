"""``darec preferences``: extract LANE's ``m`` preferences of every user with a language model, from the shell.

Examples::

    darec preferences --data ml100k --backend hf --model smollm2 --out lane/ml100k_preferences.jsonl
    darec preferences --data ml100k --backend openai --model qwen2.5:7b --base-url http://localhost:11434/v1 \\
        --out lane/ml100k_preferences.jsonl
    darec preferences --data path/to/ratings.csv --item-info path/to/items.csv --backend fake --limit 20 --out p.jsonl

It runs :class:`~darec.lane.PreferenceExtractor` over the users of a sequence data set (the
training titles of each user only) and appends one JSON line per user to ``--out``, the file
``SequenceDataModule(preferences=...)`` reads (``data.init_args.preferences`` of
``examples/configs/ml100k_sasrec_lane.yaml``). Run the same command again to resume. The cache
key names the model as :class:`~darec.lane.PreferenceExtractor` does by default (the backend's
model name, without the endpoint), so lines written in Python with the same model and options
count as done.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "fake_preferences", "load_sequences", "main"]

#: Exit statuses: 1 when some users failed, 2 for a bad argument or an unusable backend, 130 for Ctrl-C.
EXIT_FAILED, EXIT_USAGE, EXIT_SIGINT = 1, 2, 130

#: The names ``--data`` takes for :class:`~darec.data.MovieLens100KSequences`.
ML100K = ("ml100k", "ml-100k", "movielens100k")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``darec preferences``."""
    from darec.llm.factory import BACKENDS

    parser = argparse.ArgumentParser(
        prog="darec preferences",
        description=(
            "Ask a language model for exactly m preferences of every user of a sequence data set (LANE), from the "
            "titles of the user's training items only, and write them into a JSON-lines file. The file is appended "
            "to and flushed after every batch: run the same command again to resume, or after changing the model or "
            "options to write new preferences. Users whose answers cannot be parsed are asked again, up to "
            "--max-rounds rounds, and listed in <out>.failed.jsonl. Use the file as --data.init_args.preferences."
        ),
    )
    parser.add_argument(
        "--data", required=True,
        help="'ml100k' (MovieLens-100K sequences), or any SequenceDataModule source: a RecBole folder, a GroupLens "
        "folder or a TSV/CSV file with user, item and timestamp columns",
    )  # fmt: skip
    parser.add_argument("--out", required=True, help="the preference file (.jsonl), created or appended to")
    parser.add_argument("--item-info", default=None, help="item metadata with titles, for a --data path without them")
    parser.add_argument("--min-length", type=int, default=3, help="users with fewer interactions are dropped (default: 3)")
    parser.add_argument(
        "--positive-threshold", type=float, default=None,
        help="keep only ratings at or above it, as the training data do (default: every interaction)",
    )  # fmt: skip
    parser.add_argument("--backend", default="hf", choices=BACKENDS, help="the language model backend (default: hf)")
    parser.add_argument(
        "--model",
        default=None,
        help="hf: a local model folder or 'smollm2' (the offline default, the default here); openai: the model name "
        "the server knows; fake: ignored",
    )
    parser.add_argument("--base-url", default=None, help="openai: the API root, e.g. http://localhost:8000/v1 (default: the OpenAI API)")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai: the environment variable with the key")
    parser.add_argument("--m", type=int, default=5, help="preferences per user (LANE's m; default: 5)")
    parser.add_argument(
        "--max-rounds", type=int, default=5,
        help="rounds of generation, the first included; later rounds ask only the users that failed, sampling "
        "(default: 5)",
    )  # fmt: skip
    parser.add_argument("--max-titles", type=int, default=200, help="the most (latest) training titles in a prompt (default: 200)")
    parser.add_argument(
        "--format", default=None, choices=("list", "json"),
        help="the answer asked for: a numbered list, prefilled with '1.' where the backend can (small local "
        "models keep to it), or a JSON object (default: list for --backend hf, json otherwise)",
    )  # fmt: skip
    parser.add_argument(
        "--template", default=None,
        help="a file whose text replaces the prompt ({count}, {titles}, {m}); ask for the --format's answer",
    )  # fmt: skip
    parser.add_argument("--system", default=None, help="a system prompt")
    parser.add_argument("--limit", type=int, default=None, help="only the first N users (to try things out)")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per batch; the file is flushed after each (default: 8)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="the most tokens per answer (default: 256)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 is greedy (default: 0)")
    parser.add_argument("--seed", type=int, default=None, help="seed of sampling")
    parser.add_argument(
        "--repetition-penalty",
        type=float,
        default=None,
        help="divide the scores of tokens already written by this (1 is off): a guard against small models looping "
        "(default: 1.3 for --backend hf, 1 otherwise; the openai backend ignores it)",
    )
    parser.add_argument("--threads", type=int, default=None, help="hf: CPU threads (1 is fastest on a busy machine)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def fake_preferences(prompt: str, m: int, numbered: bool = False) -> str:
    """The ``fake`` backend's answer: a JSON object of ``m`` distinct preferences taken from the prompt
    (``numbered=True``: a numbered list, without its leading ``"1."``, which the prefill writes).

    The preferences name the latest titles of the prompt's numbered list (``"1. Heat (1995)"``),
    then, when there are fewer than ``m`` distinct titles, phrases made from the prompt's hash,
    so the answer always parses and differs between users.

    Example:
        >>> fake_preferences("Movies:\\n1. Heat (1995)\\n2. Big (1988)\\nName 3.", 3)  # doctest: +ELLIPSIS
        '{"1": "enjoys Big (1988)", "2": "enjoys Heat (1995)", "3": "taste ... no. 3"}'
    """
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:8]
    titles = [" ".join(title.split()) for title in re.findall(r"^\s*\d+\.\s+(.+)$", prompt, re.MULTILINE)]
    prefs: list[str] = []
    for title in reversed(titles):
        pref = f"enjoys {title}"
        if title and pref.lower() not in {p.lower() for p in prefs}:
            prefs.append(pref)
        if len(prefs) == m:
            break
    prefs += [f"taste {digest} no. {k}" for k in range(len(prefs) + 1, m + 1)]
    if numbered:
        return "\n".join(f"{k}. {pref}" for k, pref in enumerate(prefs, start=1)).removeprefix("1.")
    return json.dumps({str(k): pref for k, pref in enumerate(prefs, start=1)}, ensure_ascii=False)


def _repetition_penalty(args: argparse.Namespace) -> float:
    from darec.profiles.command import HF_REPETITION_PENALTY

    if args.repetition_penalty is not None:
        return float(args.repetition_penalty)
    return HF_REPETITION_PENALTY if args.backend == "hf" else 1.0


def _format(args: argparse.Namespace) -> str:
    if args.format is not None:
        return str(args.format)
    return "list" if args.backend == "hf" else "json"


def _backend(args: argparse.Namespace) -> tuple[Any, str]:
    """The backend of ``--backend`` and its label (:func:`darec.llm.make_backend`)."""
    from darec.llm import make_backend

    return make_backend(
        args.backend, args.model, base_url=args.base_url, api_key_env=args.api_key_env, batch_size=args.batch_size,
        threads=args.threads, fake=functools.partial(fake_preferences, m=args.m, numbered=_format(args) == "list"),
    )  # fmt: skip


def load_sequences(
    data: str | os.PathLike[str],
    *,
    item_info: str | None = None,
    min_length: int = 3,
    positive_threshold: float | None = None,
) -> Any:
    """The :class:`~darec.data.UserSequences` of ``data``: ``"ml100k"`` or any :class:`~darec.data.SequenceDataModule` source.

    Raises:
        FileNotFoundError: ``data`` is neither ``"ml100k"`` nor an existing path.
        ValueError: the data have no item titles (give ``item_info``), or cannot be read as sequences.
    """
    from darec.data import MovieLens100KSequences, SequenceDataModule

    settings = {"min_length": min_length, "positive_threshold": positive_threshold, "title_encoder": None}
    if str(data).lower() in ML100K:
        if item_info is not None:
            raise ValueError("--item-info is for a --data path: ml100k has its own titles")
        dm: Any = MovieLens100KSequences(**settings)
    else:
        path = Path(data).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"no data at {path}: give a RecBole folder, a GroupLens folder, a TSV/CSV file with timestamps or 'ml100k'"
            )
        dm = SequenceDataModule(str(path), item_info=item_info, **settings)
    sequences = dm.sequences
    if sequences.item_titles is None:
        raise ValueError(
            f"the items of {data} have no titles, and preference prompts list titles: give --item-info (a metadata "
            "file with a title column)"
        )
    return sequences


def _one_line(err: BaseException) -> str:
    return "; ".join(part.strip() for part in str(err).splitlines() if part.strip()) or type(err).__name__


def _check(args: argparse.Namespace) -> None:
    """Fails on a bad number before any data or model is loaded."""
    for option in ("m", "max_rounds", "max_titles", "batch_size", "limit", "min_length", "threads"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise ValueError(f"--{option.replace('_', '-')} must be at least 1, got {value}")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``darec preferences`` with ``argv`` (default: ``sys.argv[2:]``) and returns the exit status."""
    from darec.lane import LIST_PREFILL, PREFERENCE_LIST_TEMPLATE, PREFERENCE_TEMPLATE, PreferenceExtractor
    from darec.llm import EndpointUnreachableError, ModelNotFoundError

    args = build_parser().parse_args(sys.argv[2:] if argv is None else list(argv))
    debug = os.environ.get("DAREC_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    out = Path(args.out).expanduser()
    extractor = None
    try:
        _check(args)
        options = {
            "max_new_tokens": args.max_new_tokens,
            "temperature": args.temperature,
            "seed": args.seed,
            "system": args.system,
            "repetition_penalty": _repetition_penalty(args),
        }
        if args.template:
            template = Path(args.template).expanduser().read_text(encoding="utf-8")
        else:
            template = PREFERENCE_LIST_TEMPLATE if _format(args) == "list" else PREFERENCE_TEMPLATE
        if _format(args) == "list" and args.backend != "openai":  # chat APIs cannot prefill
            options["response_prefix"] = LIST_PREFILL
        settings = {
            "m": args.m, "max_rounds": args.max_rounds, "max_titles": args.max_titles, "template": template,
            "options": options, "batch_size": args.batch_size,
        }  # fmt: skip
        PreferenceExtractor(_NoModel(), **settings, progress=False)  # bad settings fail before data and model load
        sequences = load_sequences(
            args.data, item_info=args.item_info, min_length=args.min_length, positive_threshold=args.positive_threshold
        )
        backend, _ = _backend(args)
        extractor = PreferenceExtractor(backend, **settings, progress=not args.no_progress)
        users = None if args.limit is None else range(min(args.limit, sequences.num_users))
        report = extractor.run(sequences, out, users=users)
    except KeyboardInterrupt:
        kept = f"; {extractor.report.written} user(s) written by this run are kept in {out}" if extractor is not None else ""
        print(f"darec preferences: interrupted{kept}; run the same command again to resume", file=sys.stderr)
        return EXIT_SIGINT
    except (
        EndpointUnreachableError, ModelNotFoundError, PermissionError, ImportError, OSError, ValueError, TypeError,
        RuntimeError,
    ) as err:  # fmt: skip
        if debug:
            raise
        print(f"darec preferences: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    for failure in report.failed[:5]:
        print(f"darec preferences: failed after {failure.attempts} attempt(s): {failure.error}", file=sys.stderr)
    if report.failed:
        print(f"darec preferences: the failed users are listed in {extractor.failed_path(out)}", file=sys.stderr)
    print(f"darec preferences: {report}")
    return EXIT_FAILED if report.failed else 0


class _NoModel:
    """A stand-in backend: the settings are checked by a :class:`~darec.lane.PreferenceExtractor` before the
    real backend is loaded (minutes for a local model); it never answers."""

    name = "none"

    def generate(self, prompts: Sequence[str], **options: Any) -> list[str]:
        raise RuntimeError("no model")
