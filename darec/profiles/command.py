"""``darec profiles``: write user or item profiles with a language model, from the shell.

Examples::

    darec profiles --data ml100k --entity user --backend hf --model smollm2 --limit 20 --out users.jsonl
    darec profiles --data path/to/split --entity item --backend openai --model qwen2.5:7b \\
        --base-url http://localhost:11434/v1 --out items.jsonl
    darec profiles --data path/to/split --entity user --backend fake --out users.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["build_parser", "main"]

#: Exit statuses: 1 when some profiles failed, 2 for a bad argument or an unusable backend, 130 for Ctrl-C.
EXIT_FAILED, EXIT_USAGE, EXIT_SIGINT = 1, 2, 130

#: The repetition penalty of ``--backend hf`` by default: without it SmolLM2-135M loops in about
#: half of its greedy answers (the first 32 MovieLens items: 17 usable answers at 1.0, 32 at 1.3).
HF_REPETITION_PENALTY = 1.3


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``darec profiles``."""
    parser = argparse.ArgumentParser(
        prog="darec profiles",
        description=(
            "Write the profile of every user or item with a language model into a JSON-lines file, from the "
            "training interactions only. The file is appended to and flushed after every batch: run the same "
            "command again to resume, or after changing the template, model or options to write new profiles. "
            "Use the file as text with --data.init_args.user_profiles / item_profiles."
        ),
    )
    parser.add_argument("--data", required=True, help="a split directory (or any RecDataModule source), or 'ml100k'")
    parser.add_argument("--entity", required=True, choices=("user", "item"), help="whose profiles to write")
    parser.add_argument("--out", required=True, help="the profile file (.jsonl), created or appended to")
    parser.add_argument("--backend", default="hf", choices=("hf", "openai", "fake"), help="the language model backend (default: hf)")
    parser.add_argument(
        "--model",
        default=None,
        help="hf: a local model folder or 'smollm2' (the offline default, the default here); openai: the model name "
        "the server knows; fake: ignored",
    )
    parser.add_argument("--base-url", default=None, help="openai: the API root, e.g. http://localhost:8000/v1 (default: the OpenAI API)")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai: the environment variable with the key")
    parser.add_argument("--template", default=None, help="a file whose text replaces the prompt template of --entity")
    parser.add_argument("--system", default=None, help="a system prompt")
    parser.add_argument("--limit", type=int, default=None, help="only the first N entities (to try things out)")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per batch; the file is flushed after each (default: 8)")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="the most tokens per answer (default: 128)")
    parser.add_argument(
        "--prefill",
        action=argparse.BooleanOptionalAction,
        default=None,
        help='start every answer with {"summary": " for the model, which continues it: JSON from small models '
        "(default: on for --backend hf and fake, off for openai, whose chat API cannot prefill)",
    )
    parser.add_argument(
        "--repetition-penalty",
        type=float,
        default=None,
        help="divide the scores of tokens already written by this (1 is off): a guard against small models looping "
        "(default: 1.3 for --backend hf, 1 otherwise; the openai backend ignores it)",
    )
    parser.add_argument("--temperature", type=float, default=0.0, help="0 is greedy (default: 0)")
    parser.add_argument("--seed", type=int, default=None, help="seed of sampling")
    parser.add_argument("--max-retries", type=int, default=2, help="further attempts for unusable answers (default: 2)")
    parser.add_argument("--max-items", type=int, default=20, help="user prompts: the most training items listed (default: 20)")
    parser.add_argument("--order", default="rating", choices=("rating", "recent"), help="user prompts: which items first (default: rating)")
    parser.add_argument("--no-audience", action="store_true", help="item prompts: do not describe who liked the item in training")
    parser.add_argument("--threads", type=int, default=None, help="hf: CPU threads (1 is fastest on a busy machine)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _fake_answer(prompt: str) -> str:
    """The ``fake`` backend's answer: a JSON profile that depends on the prompt, for pipelines and tests."""
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:8]
    facts = [line[2:] for line in prompt.splitlines() if line.startswith("- ")][:3]
    summary = f"Profile {digest}: " + ("likes " + "; ".join(facts) if facts else " ".join(prompt.split())[:120])
    return json.dumps({"summary": summary, "reasoning": "written by the fake backend"})


def _prefill(args: argparse.Namespace) -> bool:
    return args.backend != "openai" if args.prefill is None else bool(args.prefill)


def _repetition_penalty(args: argparse.Namespace) -> float:
    if args.repetition_penalty is not None:
        return float(args.repetition_penalty)
    return HF_REPETITION_PENALTY if args.backend == "hf" else 1.0


def _fake_continuation(prompt: str) -> str:
    """The ``fake`` backend's answer after the prefill: what follows the prefix, as a prefilled model writes it."""
    from darec.profiles.profile_job import PREFILL

    return _fake_answer(prompt).removeprefix(PREFILL)


def _backend(args: argparse.Namespace) -> tuple[Any, str]:
    """The backend of ``--backend`` and its label (:func:`darec.llm.make_backend`)."""
    from darec.llm import make_backend

    fake = _fake_continuation if _prefill(args) else _fake_answer
    return make_backend(
        args.backend, args.model, base_url=args.base_url, api_key_env=args.api_key_env, batch_size=args.batch_size,
        threads=args.threads, fake=fake,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``darec profiles`` with ``argv`` (default: ``sys.argv[2:]``) and returns the exit status."""
    from darec.llm import EndpointUnreachableError, ModelNotFoundError
    from darec.profiles import ProfileJob, ProfilePrompts, ProfileSource

    args = build_parser().parse_args(sys.argv[2:] if argv is None else list(argv))
    debug = os.environ.get("DAREC_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    job = None
    try:
        settings = {"max_items": args.max_items, "order": args.order, "audience": not args.no_audience}
        prompts = (
            ProfilePrompts.from_file(args.template, args.entity, **settings) if args.template else ProfilePrompts(**settings)
        )
        options = {
            "max_new_tokens": args.max_new_tokens,
            "temperature": args.temperature,
            "seed": args.seed,
            "system": args.system,
        }
        options["repetition_penalty"] = _repetition_penalty(args)
        source = ProfileSource.load(args.data)
        backend, label = _backend(args)
        job = ProfileJob(
            backend, source, args.entity, args.out, prompts=prompts, options=options, model=_model_name(args, label),
            batch_size=args.batch_size, max_retries=args.max_retries, limit=args.limit, prefill=_prefill(args),
            progress=not args.no_progress,
        )  # fmt: skip
        report = job.run()
    except KeyboardInterrupt:
        kept = f"; {job.report.written} profile(s) written by this run are kept in {job.out}" if job is not None else ""
        print(f"darec profiles: interrupted{kept}; run the same command again to resume", file=sys.stderr)
        return EXIT_SIGINT
    except (EndpointUnreachableError, ModelNotFoundError, PermissionError, ImportError, OSError, ValueError, TypeError) as err:
        if debug:
            raise
        print(f"darec profiles: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    for failure in report.failed[:5]:
        print(f"darec profiles: failed after {failure.attempts} attempt(s): {failure.error}", file=sys.stderr)
    if report.failed:
        print(f"darec profiles: the failed {args.entity}s are listed in {job.failed_path}", file=sys.stderr)
    if report.truncated:
        print(f"darec profiles: {len(report.truncated)} prompt(s) were cut to fit the model's context", file=sys.stderr)
    print(f"darec profiles: {report}")
    return EXIT_FAILED if report.failed else 0


def _model_name(args: argparse.Namespace, label: str) -> str:
    """The model in the cache key: the backend's label without its kind (``"smollm2"``, ``"<model>@<endpoint>"``,
    ``"fake"``), as the keys of files written before :func:`darec.llm.make_backend` hashed it."""
    return label if args.backend == "fake" else label.split(":", 1)[1]
