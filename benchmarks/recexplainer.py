"""RX-3 alignment metrics of a RecExplainer run on its held-out tasks, against random and zero-shot baselines.

Usage::

    python benchmarks/recexplainer.py --config runs/rx/lightning_logs/version_0/config.yaml \\
        --ckpt runs/rx/lightning_logs/version_0/checkpoints/last.ckpt --out results/recexplainer/intention.json
    python benchmarks/recexplainer.py --config <same> --zero-shot --out .../intention_zero_shot.json

The held-out tasks are those of the run's data module (the users and items held out by
``val_fraction``, rebuilt from the same seed: identical to the run's). ``--zero-shot`` evaluates the
same LLM without alignment (LoRA at its zero initialisation, the connectors untrained); every
file also holds the **random** baseline on the same cases (a random catalog title, a random order
of the candidates, a fair coin, random history titles; seeded). Metrics per task:

- ``next_item``: HR@1 and HR@5/NDCG@5 of the answer's titles against the target's top item;
- ``ranking``: graded NDCG of the answer's order of the 5 candidates (weights 1000/100/10/1/0);
- ``interest``: yes/no accuracy read from the generated text;
- ``item_title``: exact title match (intention/hybrid), ``similar_item``: HR@1;
- ``history``: history coverage ratio.

Each comes with its parse-failure rate. Generation is greedy. Every file also holds a
**popular** baseline: each case answered with its task's most frequent answer among the training
tasks (e.g. the title the target most often puts first), the string form of the paper's
popularity row. ``--baselines-only`` scores the random and popular baselines on every held-out
task without loading the LLM.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any


def _module(config: str, ckpt: str | None):
    import yaml
    from jsonargparse import ArgumentParser

    from darec.recexplainer import RecExplainerModule

    if ckpt:
        return RecExplainerModule.load_from_checkpoint(ckpt, map_location="cpu")
    section = yaml.safe_load(Path(config).read_text())["model"]
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(RecExplainerModule, "model")
    parsed = parser.parse_object({"model": section})
    return parser.instantiate_classes(parsed).model


def _random_answer(task, catalog: list[str], rng: random.Random, separator: str) -> str:
    if task.task in ("next_item", "similar_item", "item_title"):
        return catalog[rng.randrange(len(catalog))]
    if task.task == "ranking":
        names = [catalog[i] for i in task.items]
        rng.shuffle(names)
        return separator.join(names)
    if task.task == "interest":
        return rng.choice(["Yes", "No"])
    count = len(task.response.split(separator))
    return separator.join(catalog[rng.randrange(len(catalog))] for _ in range(count))


def popular_answers(train: list, cases: list) -> list[str]:
    """Each case's task's most frequent training answer (ties: the first seen)."""
    from collections import Counter

    counts: dict[str, Counter] = {}
    for task in train:
        counts.setdefault(task.task, Counter())[task.response] += 1
    return [counts[t.task].most_common(1)[0][0] if t.task in counts else "" for t in cases]


def score(tasks: list, answers: list[str], catalog: list[str], separator: str = "; ") -> dict[str, Any]:
    """The RX-3 metrics of ``answers`` to ``tasks``, by task, each with its parse-failure rate."""
    from darec.recexplainer import graded_ndcg_at_5, hit_ndcg_at_k, history_coverage_ratio, yes_no_accuracy_from_text
    from darec.recexplainer.alignment_metrics import normalize_title

    out: dict[str, Any] = {}
    by: dict[str, list[int]] = {}
    for k, task in enumerate(tasks):
        by.setdefault(task.task, []).append(k)

    def pack(name: str, value: Any) -> dict[str, Any]:
        return {"value": float(value.value), "parse_failure_rate": float(value.failure_rate), "cases": len(by[name])}

    for name, rows in by.items():
        got = [answers[k] for k in rows]
        want = [tasks[k] for k in rows]
        if name in ("next_item", "similar_item"):
            hit1, _ = hit_ndcg_at_k(got, [t.response for t in want], k=1, catalog=catalog, separator=separator)
            hit5, ndcg5 = hit_ndcg_at_k(got, [t.response for t in want], k=5, catalog=catalog, separator=separator)
            out[name] = {"hit@1": pack(name, hit1), "hit@5": pack(name, hit5), "ndcg@5": pack(name, ndcg5)}
        elif name == "ranking":
            orders = [t.response.split(separator) for t in want]
            out[name] = {"graded_ndcg@5": pack(name, graded_ndcg_at_5(got, orders, separator=separator))}
        elif name == "interest":
            out[name] = {"accuracy": pack(name, yes_no_accuracy_from_text(got, [t.response for t in want]))}
        elif name == "item_title":
            exact = [normalize_title(a) == normalize_title(t.response) for a, t in zip(got, want)]
            out[name] = {"exact_match": {"value": sum(exact) / len(exact), "parse_failure_rate": sum(not a.strip() for a in got) / len(got), "cases": len(got)}}
        elif name == "history":
            value = history_coverage_ratio(got, [t.response.split(separator) for t in want], catalog=catalog, separator=separator)
            out[name] = {"coverage": pack(name, value)}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the RecExplainer run's config.yaml (or a shipped config)")
    parser.add_argument("--ckpt", default=None, help="a checkpoint of the run (the aligned explainer)")
    parser.add_argument("--zero-shot", action="store_true", help="the same LLM without alignment (no checkpoint)")
    parser.add_argument("--max-cases", type=int, default=40, help="held-out cases per task (default: 40)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random baseline and the case sample")
    parser.add_argument("--baselines-only", action="store_true", help="score the random and popular baselines on every held-out task")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.baselines_only:
        baselines(args)
        return
    if bool(args.ckpt) == args.zero_shot:
        raise SystemExit("give --ckpt (the aligned explainer) or --zero-shot")

    import torch

    from darec.recexplainer import item_catalog
    from darec.recexplainer.cli import load_datamodule

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    dm = load_datamodule(args.config)
    module = _module(args.config, args.ckpt).eval()
    dm.set_tokenizer(module.injector.tokenizer)
    dm.max_length = module.injector.context_length
    dm.setup("validate")
    catalog = item_catalog(dm.data)
    rng = random.Random(args.seed)
    chosen: list = []
    by: dict[str, list] = {}
    for task in dm.val_tasks:
        by.setdefault(task.task, []).append(task)
    for name in sorted(by):
        cases = by[name]
        chosen += cases if len(cases) <= args.max_cases else rng.sample(cases, args.max_cases)
    answers: list[str] = []
    target = dm.target
    with torch.no_grad():
        items = torch.as_tensor(target.item_embeddings()).float()
        users = torch.as_tensor(target.user_embeddings(torch.arange(int(target.num_users)))).float()
    for first in range(0, len(chosen), args.batch_size):
        batch = chosen[first : first + args.batch_size]
        vectors = [
            torch.stack([(users if kind == "user" else items)[index] for kind, index in task.placeholders])
            if task.placeholders else None
            for task in batch
        ]  # fmt: skip
        answers += module.generate_text([t.prompt for t in batch], vectors, max_new_tokens=args.max_new_tokens)
        print(f"{len(answers)}/{len(chosen)} answered ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    baseline_rng = random.Random(args.seed + 1)
    random_answers = [_random_answer(t, catalog, baseline_rng, "; ") for t in chosen]
    result = {
        "config": args.config, "ckpt": args.ckpt, "kind": "zero-shot" if args.zero_shot else "aligned",
        "mode": dm.mode, "seed": args.seed, "max_new_tokens": args.max_new_tokens,
        "metrics": score(chosen, answers, catalog), "random": score(chosen, random_answers, catalog),
        "popular": score(chosen, popular_answers(dm.train_tasks, chosen), catalog),
        "answers": [{"task": t.task, "target": t.response, "answer": a} for t, a in zip(chosen, answers)],
        "examples": [{"task": t.task, "prompt": t.prompt, "target": t.response, "answer": a}
                     for t, a in list(zip(chosen, answers))[:: max(1, len(chosen) // 12)]],
        "seconds": time.perf_counter() - start, "threads": torch.get_num_threads(),
        "host": {"python": platform.python_version(), "machine": platform.machine()},
    }  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    for name, metrics in result["metrics"].items():
        for metric, value in metrics.items():
            base = result["random"][name][metric]["value"]
            print(f"{name:13s} {metric:14s} {value['value']:.3f} (random {base:.3f}; parse failures {value['parse_failure_rate']:.2f}, n={value['cases']})")


def baselines(args: argparse.Namespace) -> None:
    """The random and popular baselines on every held-out task of the config's data module (no LLM)."""
    from darec.recexplainer import item_catalog
    from darec.recexplainer.cli import load_datamodule

    dm = load_datamodule(args.config)
    train, val = dm.build_tasks()
    catalog = item_catalog(dm.data)
    rng = random.Random(args.seed + 1)
    result = {
        "config": args.config, "kind": "baselines", "mode": dm.mode, "held_out_tasks": len(val),
        "random": score(val, [_random_answer(t, catalog, rng, "; ") for t in val], catalog),
        "popular": score(val, popular_answers(train, val), catalog),
    }  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    for name, metrics in result["popular"].items():
        for metric, value in metrics.items():
            print(f"{name:13s} {metric:14s} popular {value['value']:.3f}  random {result['random'][name][metric]['value']:.3f} (n={value['cases']})")


if __name__ == "__main__":
    main()
