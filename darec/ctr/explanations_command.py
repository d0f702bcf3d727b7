"""``darec explanations``: write ExpCTR's one-sentence explanation of every (user, item) pair with a language model.

Examples::

    darec explanations --data ml100k --split train --backend hf --model smollm2 --users 50 --seed 0 \\
        --out ctr/ml100k_explanations.jsonl
    darec explanations --data ml100k --split all --backend openai --model qwen2.5:7b \\
        --base-url http://localhost:11434/v1 --out ctr/ml100k_explanations.jsonl
    darec explanations --data path/to/ratings.csv --backend fake --limit 20 --out e.jsonl

It runs :class:`~darec.ctr.ExplanationJob` over the pairs of one split (or all) of a CTR data
set (:class:`~darec.ctr.CTRSamples`: each prompt lists the pair's liked and disliked *training*
items before it) and appends one JSON line per pair to ``--out``, the file
``CTRDataModule(explanations=...)`` reads. Run the same command again to resume. ``--users N
--seed S`` explains every pair of ``N`` users drawn with seed ``S`` (a subsample for a model too
slow for every pair).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "fake_explanation", "load_samples", "main", "user_rows"]

#: Exit statuses: 1 when some pairs failed, 2 for a bad argument or an unusable backend, 130 for Ctrl-C.
EXIT_FAILED, EXIT_USAGE, EXIT_SIGINT = 1, 2, 130

#: The names ``--data`` takes for :class:`~darec.ctr.MovieLens100KCTR`.
ML100K = ("ml100k", "ml-100k", "movielens100k")

SPLIT_CHOICES = ("train", "validate", "valid", "test", "all")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``darec explanations``."""
    from darec.llm.factory import BACKENDS

    parser = argparse.ArgumentParser(
        prog="darec explanations",
        description=(
            "Ask a language model for a one-sentence explanation of every (user, item) pair of a CTR data set "
            "(ExpCTR): how the user would see the item, given the items they liked and disliked before (training "
            "interactions only). The JSON-lines file is appended to and flushed after every batch: run the same "
            "command again to resume. Empty answers are asked again and listed in <out>.failed.jsonl. Use the file "
            "as --data.init_args.explanations of a CTR config."
        ),
    )
    parser.add_argument(
        "--data", required=True,
        help="'ml100k' (MovieLens-100K), or any CTRDataModule source: a TSV/CSV file with user, item, timestamp and "
        "rating (or label) columns, a RecBole or GroupLens folder",
    )  # fmt: skip
    parser.add_argument("--out", required=True, help="the explanation file (.jsonl), created or appended to")
    parser.add_argument("--split", default="train", choices=SPLIT_CHOICES, help="the pairs to explain (default: train)")
    parser.add_argument("--item-info", default=None, help="item metadata with titles, for a --data path without them")
    parser.add_argument("--positive-threshold", type=float, default=4.0, help="ratings at or above it are clicks (default: 4)")
    parser.add_argument("--max-liked", type=int, default=10, help="the most (latest) liked titles in a prompt (default: 10)")
    parser.add_argument("--max-disliked", type=int, default=10, help="the most (latest) disliked titles (default: 10)")
    parser.add_argument("--max-prompt-tokens", type=int, default=None, help="drop the oldest titles until the prompt fits")
    parser.add_argument("--template", default=None, help="a file whose text replaces the prompt ({liked}, {disliked}, {target}, ...)")
    parser.add_argument("--backend", default="hf", choices=BACKENDS, help="the language model backend (default: hf)")
    parser.add_argument(
        "--model", default=None,
        help="hf: a local model folder or 'smollm2' (the offline default); openai: the model name the server knows; "
        "fake: ignored",
    )  # fmt: skip
    parser.add_argument("--base-url", default=None, help="openai: the API root, e.g. http://localhost:8000/v1")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai: the environment variable with the key")
    parser.add_argument("--users", type=int, default=None, help="explain every pair of N users drawn with --seed")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --users (default: 0)")
    parser.add_argument(
        "--users-from", default=None, choices=("train", "valid", "test"),
        help="draw --users only among the users with a pair in this split (default: every user)",
    )  # fmt: skip
    parser.add_argument("--limit", type=int, default=None, help="only the first N pairs (to try things out)")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per batch; the file is flushed after each (default: 8)")
    parser.add_argument("--max-retries", type=int, default=2, help="further attempts for an empty answer (default: 2)")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="the most tokens per answer (default: 48)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 is greedy (default: 0)")
    parser.add_argument("--system", default=None, help="a system prompt")
    parser.add_argument("--threads", type=int, default=None, help="hf: CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def fake_explanation(prompt: str) -> str:
    """The ``fake`` backend's answer: one deterministic sentence naming the prompt's target and its hash.

    Example:
        >>> fake_explanation("A user liked:\\n1. Heat (1995)\\nTarget item: Up (2009)\\nIn one sentence ...")  # doctest: +ELLIPSIS
        'The user would see Up (2009) in the light of 1 earlier item(s) (fake ...).'
    """
    target = re.search(r"^Target item:\s*(.+)$", prompt, re.MULTILINE)
    shown = target.group(1).strip() if target else "the target item"
    listed = len(re.findall(r"^\s*\d+\.\s+\S", prompt, re.MULTILINE))
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:8]
    return f"The user would see {shown} in the light of {listed} earlier item(s) (fake {digest})."


def load_samples(
    data: str | os.PathLike[str], *, item_info: str | None = None, positive_threshold: float = 4.0, history_len: int = 10
) -> Any:
    """The :class:`~darec.ctr.CTRSamples` of ``data``: ``"ml100k"`` or any :class:`~darec.ctr.CTRDataModule` source.

    Raises:
        FileNotFoundError: ``data`` is neither ``"ml100k"`` nor an existing path.
    """
    from darec.ctr import CTRDataModule, MovieLens100KCTR

    settings = {"positive_threshold": positive_threshold, "history_len": history_len}
    if str(data).lower() in ML100K:
        if item_info is not None:
            raise ValueError("--item-info is for a --data path: ml100k has its own titles")
        dm: Any = MovieLens100KCTR(**settings)
    else:
        path = Path(data).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"no data at {path}: give a TSV/CSV file, a RecBole or GroupLens folder, or 'ml100k'")
        dm = CTRDataModule(str(path), item_info=item_info, **settings)
    return dm.samples


def user_rows(samples: Any, users: int, seed: int, among: str | None = None) -> list[int]:
    """Every row of ``users`` users of ``samples`` drawn with ``seed`` (:meth:`CTRSamples.user_sample
    <darec.ctr.CTRSamples.user_sample>`), as a list."""
    return samples.user_sample(users, seed, among).tolist()


def _one_line(err: BaseException) -> str:
    return "; ".join(part.strip() for part in str(err).splitlines() if part.strip()) or type(err).__name__


def _check(args: argparse.Namespace) -> None:
    """Fails on a bad number before any data or model is loaded."""
    for option in ("batch_size", "limit", "users", "max_new_tokens", "threads", "max_prompt_tokens"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise ValueError(f"--{option.replace('_', '-')} must be at least 1, got {value}")
    for option in ("max_retries", "max_liked", "max_disliked"):
        if getattr(args, option) < 0:
            raise ValueError(f"--{option.replace('_', '-')} must be at least 0, got {getattr(args, option)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``darec explanations`` with ``argv`` (default: ``sys.argv[2:]``) and returns the exit status."""
    from darec.ctr.explanation_job import ExplanationJob
    from darec.ctr.explanation_prompt import ExplanationPrompt
    from darec.llm import EndpointUnreachableError, ModelNotFoundError, make_backend

    args = build_parser().parse_args(sys.argv[2:] if argv is None else list(argv))
    debug = os.environ.get("DAREC_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    out = Path(args.out).expanduser()
    job = None
    try:
        _check(args)
        template = Path(args.template).expanduser().read_text(encoding="utf-8") if args.template else None
        prompt = ExplanationPrompt(
            template, max_liked=args.max_liked, max_disliked=args.max_disliked, max_tokens=args.max_prompt_tokens
        )
        options = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "system": args.system}
        samples = load_samples(
            args.data, item_info=args.item_info, positive_threshold=args.positive_threshold,
            history_len=max(1, args.max_liked, args.max_disliked),
        )  # fmt: skip
        pairs = None if args.users is None else user_rows(samples, args.users, args.seed, args.users_from)
        backend, _ = make_backend(
            args.backend, args.model, base_url=args.base_url, api_key_env=args.api_key_env,
            batch_size=args.batch_size, threads=args.threads, fake=fake_explanation,
        )  # fmt: skip
        job = ExplanationJob(
            backend, prompt, batch_size=args.batch_size, max_retries=args.max_retries, options=options,
            progress=not args.no_progress,
        )  # fmt: skip
        report = job.run(samples, args.split, out, pairs=pairs, limit=args.limit)
        if not report.requested:
            print(
                f"darec explanations: warning: no pair to explain in the {args.split} split"
                + (f" among the {args.users} sampled user(s) (--users draws from every user; most users of a "
                   "global time split have pairs in one split only): raise --users or use --split all"
                   if args.users is not None else ""),
                file=sys.stderr,
            )  # fmt: skip
    except KeyboardInterrupt:
        kept = f"; {job.report.written} pair(s) written by this run are kept in {out}" if job is not None else ""
        print(f"darec explanations: interrupted{kept}; run the same command again to resume", file=sys.stderr)
        return EXIT_SIGINT
    except (
        EndpointUnreachableError, ModelNotFoundError, PermissionError, ImportError, OSError, ValueError, TypeError,
        RuntimeError,
    ) as err:  # fmt: skip
        if debug:
            raise
        print(f"darec explanations: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    for failure in report.failed[:5]:
        print(f"darec explanations: failed after {failure['attempts']} attempt(s): {failure['error']}", file=sys.stderr)
    if report.failed:
        print(f"darec explanations: the failed pairs are listed in {job.failed_path(out)}", file=sys.stderr)
    print(f"darec explanations: {report}")
    return EXIT_FAILED if report.failed else 0
