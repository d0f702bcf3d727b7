"""``darec explain``: explain a LANE checkpoint's recommendations with a language model, from the shell.

Examples::

    darec explain --config examples/configs/ml100k_sasrec_lane.yaml --ckpt best.ckpt --user 13 --item 50 \\
        --backend hf --model smollm2 --out explanations.jsonl
    darec explain --config run/config.yaml --ckpt best.ckpt --user 13 --top-k 5 --backend openai \\
        --model qwen2.5:7b --base-url http://localhost:11434/v1 --out explanations.jsonl
    darec explain --config run/config.yaml --ckpt best.ckpt --user 13 --top-k 3 --backend fake --out out.jsonl

Every (user, item) pair becomes one JSON line, appended and flushed as soon as it is explained::

    {"user": "13", "item": "50", "title": "Star Wars (1977)", "stage": "test", "score": 4.21, "rank": 3,
     "num_ranked": 1459, "in_history": false, "preferences": [{"text": "...", "weight": 0.4125}, ...],
     "prompt": "...", "explanation": "<the answer>", "parsed": true, "verdict": "High",
     "fitness": [0.9, ...], "reason": "...", "recommendation": "...", "backend": "hf:smollm2"}

``rank`` is 1-based among the items outside the user's input history (the item itself always
counts), from the scores of the fused model.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

#: Exit statuses: 1 when some explanations failed, 2 for a bad argument or an unusable backend, 130 for Ctrl-C.
EXIT_FAILED, EXIT_USAGE, EXIT_SIGINT = 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``darec explain``."""
    parser = argparse.ArgumentParser(
        prog="darec explain",
        description=(
            "Explain the recommendations of a trained SASRec+LANE checkpoint (darec.lane.PreferenceAttentionFusion) "
            "with a language model: for each user and item (or the user's top-k), write the preferences with their "
            "weights, the model's score and rank, the explanation and its parsed verdict as JSON lines."
        ),
    )
    parser.add_argument("--config", required=True, help="the training config (YAML with a `data` section), e.g. the run's config.yaml")
    parser.add_argument("--ckpt", required=True, help="the checkpoint of the LANE model")
    parser.add_argument("--user", action="append", required=True, help="a raw user id (repeat for several users)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--item", action="append", help="a raw item id to explain (repeat for several items)")
    target.add_argument("--top-k", type=int, help="explain the user's top-k items instead")
    parser.add_argument("--out", required=True, help="the output file (.jsonl), appended to")
    parser.add_argument(
        "--stage", default="test", choices=("test", "predict"),
        help="the input history: 'test' (training and validation items, so the test item is the next one) or "
        "'predict' (the whole sequence) (default: test)",
    )  # fmt: skip
    parser.add_argument("--preferences", default=None, help="a preference file instead of the config's data.init_args.preferences")
    parser.add_argument("--backend", default="hf", choices=("hf", "openai", "fake"), help="the language model backend (default: hf)")
    parser.add_argument("--model", default=None, help="hf: a local model folder or 'smollm2' (default); openai: the served model name")
    parser.add_argument("--base-url", default=None, help="openai: the API root, e.g. http://localhost:8000/v1")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai: the environment variable with the key")
    parser.add_argument("--max-new-tokens", type=int, default=512, help="the most tokens per explanation (default: 512)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 is greedy (default: 0)")
    parser.add_argument("--max-history", type=int, default=50, help="the most (latest) history titles in a prompt (default: 50)")
    parser.add_argument("--threads", type=int, default=None, help="hf: CPU threads")
    return parser


def fake_answer(prompt: str) -> str:
    """The ``fake`` backend's answer: the response template filled from the prompt, for pipelines and tests."""
    m = prompt.count("(weight ")
    digest = hashlib.sha256(prompt.encode()).digest()
    fitness = [round(digest[k] / 255, 2) for k in range(m)]
    weights = [float(w) for w in _weights(prompt)]
    score = sum(f * w for f, w in zip(fitness, weights))
    verdict = "High" if score >= 0.66 else "Medium" if score >= 0.33 else "Low"
    lines = ["Step 1:", *(f"{k}. Shown by the history." for k in range(1, m + 1)), "Step 2:"]
    lines += [f"{k}. {f}" for k, f in enumerate(fitness, start=1)]
    lines += [f"Step 3: {verdict} - the weighted fitness is {score:.2f}.", "Step 4: Written by the fake backend."]
    return "\n".join(lines)


def _weights(prompt: str) -> list[str]:
    import re

    return re.findall(r"\(weight ([0-9.]+)\)", prompt)


def _backend(args: argparse.Namespace) -> tuple[Any, str]:
    """The backend of ``--backend`` and its label (:func:`darec.llm.make_backend`), e.g. ``"hf:smollm2"``."""
    from darec.llm import make_backend

    return make_backend(
        args.backend, args.model, base_url=args.base_url, api_key_env=args.api_key_env, threads=args.threads,
        fake=fake_answer,
    )  # fmt: skip


def load_data(config: str | os.PathLike[str], preferences: str | None = None) -> Any:
    """The :class:`~darec.data.SequenceDataModule` of a training config's ``data`` section, set up.

    Raises:
        ValueError: the config has no ``data`` section naming a sequence data module, or no preferences.
    """
    import yaml

    from darec.data.sequence_datamodule import SequenceDataModule

    text = yaml.safe_load(Path(config).expanduser().read_text())
    data = text.get("data") if isinstance(text, dict) else None
    if isinstance(text, dict) and "fit" in text and data is None:
        data = text["fit"].get("data")
    if not isinstance(data, dict) or not isinstance(data.get("class_path"), str):
        raise ValueError(f"{config} has no `data` section with a class_path (the data module of the training run)")
    module, _, name = data["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module or "darec.data"), name, None)
    if not (isinstance(cls, type) and issubclass(cls, SequenceDataModule)):
        raise ValueError(f"{config}: data.class_path {data['class_path']!r} is not a SequenceDataModule")
    init_args = dict(data.get("init_args") or {})
    if preferences is not None:
        init_args["preferences"] = preferences
    if not init_args.get("preferences"):
        raise ValueError(f"{config} gives the data no `preferences` file: pass --preferences")
    dm = cls(**init_args)
    dm.setup("test")
    return dm


def _index(ids: Sequence[str], raw: str, what: str, hint: str) -> int:
    try:
        return list(ids).index(str(raw))
    except ValueError:
        raise ValueError(f"{what} {raw!r} is not in the data{hint}") from None


def explain_records(model: Any, dm: Any, explainer: Any, args: argparse.Namespace, out: Any) -> tuple[int, int]:
    """Writes one line per (user, item) to the open file ``out``; returns (written, failed)."""
    import torch

    from darec.data.sequence_datamodule import left_pad

    data = dm.sequences
    user_ids, item_ids = data.user_ids.tolist(), data.item_ids.tolist()
    if data.item_titles is None:
        raise ValueError("the data have no item titles: an explanation needs them (give the data item metadata)")
    written = failed = 0
    for raw_user in args.user:
        u = _index(user_ids, raw_user, "user", " (users with fewer than min_length interactions, 3 at least, are dropped)")
        history = data.history(u, args.stage)
        seq = torch.from_numpy(left_pad([history], dm.max_len))
        users = torch.tensor([u])
        with torch.no_grad():
            scores = model.score_items(seq, users)[0]
            weights = model.preference_weights(seq, users)[0].tolist()
        if len(scores) != data.num_items:
            raise ValueError(
                f"the checkpoint scores {len(scores)} items but the data have {data.num_items}: give the config "
                "the model was trained with"
            )
        masked = scores.clone()
        seen = torch.as_tensor(sorted(set(history.tolist())), dtype=torch.long)
        masked[seen - 1] = float("-inf")
        if args.top_k is not None:
            targets = torch.topk(masked, min(args.top_k, int(torch.isfinite(masked).sum()))).indices.add(1).tolist()
        else:
            targets = [_index(item_ids, raw, "item", "") + 1 for raw in args.item]
        prefs = dm.preference_texts[u]
        titles = [data.item_titles[i - 1] for i in history.tolist()]
        for item in targets:
            title = data.item_titles[item - 1]
            ranked = masked.clone()
            ranked[item - 1] = scores[item - 1]
            rank = int((ranked > scores[item - 1]).sum()) + 1
            record: dict[str, Any] = {
                "user": str(raw_user), "item": item_ids[item - 1], "title": title, "stage": args.stage,
                "score": float(scores[item - 1]), "rank": rank, "num_ranked": int(torch.isfinite(ranked).sum()),
                "in_history": bool(item in set(history.tolist())),
                "preferences": [{"text": p, "weight": round(w, 4)} for p, w in zip(prefs, weights)],
            }  # fmt: skip
            try:
                record["prompt"] = explainer.prompt(titles, prefs, weights, title)
                result = explainer.explain(titles, prefs, weights, title)
            except (TimeoutError, ConnectionError, RuntimeError, ValueError) as err:
                record.update(parsed=False, error=f"user {raw_user}, item {item_ids[item - 1]}: {err}")
                print(f"darec explain: {record['error']}", file=sys.stderr)
                failed += 1
            else:
                parsed = result.as_dict()
                record["explanation"] = parsed.pop("text")
                record.update(parsed)
                written += 1
            record["backend"] = args.backend_name
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
    return written, failed


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``darec explain`` with ``argv`` (default: ``sys.argv[2:]``) and returns the exit status."""
    args = build_parser().parse_args(sys.argv[2:] if argv is None else list(argv))
    debug = os.environ.get("DAREC_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    written = failed = 0
    try:
        if args.top_k is not None and args.top_k < 1:
            raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
        from darec.lane import CoTExplainer, PreferenceAttentionFusion

        dm = load_data(args.config, args.preferences)
        if not Path(args.ckpt).expanduser().is_file():
            raise FileNotFoundError(f"no checkpoint at {args.ckpt}")
        model = PreferenceAttentionFusion.load_from_checkpoint(Path(args.ckpt).expanduser(), map_location="cpu")
        model.eval()
        model.set_preferences(dm.preference_embeddings)
        backend, args.backend_name = _backend(args)
        options = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature}
        explainer = CoTExplainer(backend, options=options, max_history=args.max_history)
        out = Path(args.out).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a", encoding="utf-8") as handle:
            written, failed = explain_records(model, dm, explainer, args, handle)
    except KeyboardInterrupt:
        print(f"darec explain: interrupted; the {written} explanation(s) written so far are kept in {args.out}", file=sys.stderr)
        return EXIT_SIGINT
    except (ImportError, OSError, ValueError, TypeError, RuntimeError, KeyError) as err:
        if debug:
            raise
        print(f"darec explain: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(f"darec explain: {written} explanation(s) written, {failed} failed; in {args.out}")
    return EXIT_FAILED if failed else 0
