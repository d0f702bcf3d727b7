"""``darec expctr``: run ExpCTR's three-stage loop from a config file, and explain a pair with a trained run.

Examples::

    darec expctr run --config examples/expctr/ml100k_loop.yaml --out runs/expctr
    darec expctr run --config examples/expctr/ml100k_loop.yaml --out runs/expctr --until ctr-zs
    darec expctr status --out runs/expctr
    darec expctr explain --out runs/expctr --user 903 --item 56

``run`` resumes a run folder where it stopped (the done stages are in ``<out>/state.json``);
``--set key=value`` overrides a config field. ``explain`` prints the trained generator's
explanation of a (user, item) pair (raw ids), the CTR score with it (ExpCTR-Aug) and without it
(the ID-only model), and the LC verdict (the frozen LLM's p(click) from the explanation alone).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

EXIT_USAGE, EXIT_SIGINT = 2, 130


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``darec expctr``."""
    parser = argparse.ArgumentParser(
        prog="darec expctr",
        description="ExpCTR: train an explanation generator inside CTR prediction (LC and IC alignment rewards, "
        "TRL GRPO/RLOO on LoRA weights), resumable stage by stage; then explain pairs with it.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) the loop of a config")
    run.add_argument("--config", required=True, help="a YAML file of ExpCTRConfig fields")
    run.add_argument("--out", required=True, help="the run folder (created; resumed when it holds a run)")
    run.add_argument("--until", default=None, help="stop after this stage (see `darec expctr status`)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field (YAML value)")
    status = sub.add_parser("status", help="list a run's stages and which are done")
    status.add_argument("--out", required=True, help="the run folder")
    explain = sub.add_parser("explain", help="explain a (user, item) pair with a finished run")
    explain.add_argument("--out", required=True, help="the run folder")
    explain.add_argument("--user", required=True, help="the raw user id")
    explain.add_argument("--item", required=True, help="the raw item id")
    explain.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def _overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``--set key=value`` pairs as a dict, each value read as YAML (``users=10`` is an int)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return out


def _make_loop(config: Any, out: Path) -> Any:
    """The loop of a config and a run folder (one place, so that tests can give it stand-in parts)."""
    from darec.expctr import ExpCTRLoop

    return ExpCTRLoop(config, out)


def _loop_of_run(out: Path) -> Any:
    from darec.expctr import ExpCTRConfig

    state = out / "state.json"
    if not state.is_file():
        raise FileNotFoundError(f"{out} holds no ExpCTR run (no state.json); start one with `darec expctr run`")
    config = ExpCTRConfig.from_dict(json.loads(state.read_text(encoding="utf-8"))["config"], where=str(state))
    return _make_loop(config, out)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``darec expctr`` with ``argv`` (default: ``sys.argv[2:]``) and returns the exit status."""
    from darec.expctr import ExpCTRConfig

    args = build_parser().parse_args(sys.argv[2:] if argv is None else list(argv))
    debug = os.environ.get("DAREC_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    out = Path(args.out).expanduser()
    try:
        if args.command == "run":
            loop = _make_loop(ExpCTRConfig.from_file(args.config, **_overrides(args.set)), out)
            done = loop.run(until=args.until)
            print(f"darec expctr: {len(done)} of {len(loop.stages())} stages done in {out}")
            if "evaluate" in done:
                print((out / "results.md").read_text(encoding="utf-8"))
        elif args.command == "status":
            loop = _loop_of_run(out)
            done = loop.state()["done"]
            for name in loop.stages():
                mark = f"done ({done[name].get('seconds', '?')} s)" if name in done else "to do"
                print(f"{name:16s} {mark}")
        else:
            result = _loop_of_run(out).explain(args.user, args.item)
            if args.json:
                print(json.dumps(result, default=str))
            else:
                print(_describe(result))
    except KeyboardInterrupt:
        print(f"darec expctr: interrupted; the done stages are kept in {out}/state.json: run again to resume", file=sys.stderr)
        return EXIT_SIGINT
    except (ImportError, OSError, ValueError, TypeError, RuntimeError) as err:
        if debug:
            raise
        message = "; ".join(part.strip() for part in str(err).splitlines() if part.strip()) or type(err).__name__
        print(f"darec expctr: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _describe(result: dict[str, Any]) -> str:
    def pct(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}"

    label = {None: "not in the data", 1: "clicked (liked)", 0: "not clicked"}[result["label"]]
    lines = [
        f"user {result['user']}, item {result['item']} ({label})",
        f"explanation ({result['stages']['generator'] or 'untrained generator'}): {result['explanation'] or '(empty)'}",
        f"CTR with the explanation ({result['stages']['ctr']}): {pct(result.get('ctr_with'))}",
        f"CTR without it (ID-only model):       {pct(result['ctr_without'])}",
        f"LC verdict, p(click) from the explanation alone: {pct(result['lc_verdict'])}",
    ]
    return "\n".join(lines)
