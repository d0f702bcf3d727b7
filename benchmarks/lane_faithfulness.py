"""Faithfulness of LANE's explanations: does the LLM's Low/Medium/High verdict follow the model's scores?

Usage::

    python benchmarks/lane_faithfulness.py --config configs/lane_smollm2_or_titles.yaml \\
        --ckpt <a LANE checkpoint> --users 100 --out results/lane/faithfulness.jsonl --threads 2
    python benchmarks/lane_faithfulness.py --report results/lane/faithfulness.jsonl

For ``--users`` users (a seeded sample) two items are explained with ``darec explain``'s code
(:class:`darec.lane.CoTExplainer`, the test-stage history): one drawn from the model's top 10 and
one from the bottom 10% of its ranking (history excluded), so every user gives a pair. Lines are
appended as they are written; running the command again skips the users already in the file.

``--report`` prints the parse-failure rate, the Spearman correlation between the verdict
(Low 0, Medium 1, High 2) and the model's score (and its rank), the verdicts of top and bottom
items, and, over users whose two explanations both parsed, the share where the top item got the
higher verdict, the same one, or the lower one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

VERDICTS = {"low": 0, "medium": 1, "high": 2}


def _done(out: Path) -> set[str]:
    if not out.is_file():
        return set()
    users: dict[str, int] = {}
    for line in out.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        users[record["user"]] = users.get(record["user"], 0) + 1
    return {u for u, n in users.items() if n >= 2}


def run(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from darec.data.sequence_datamodule import left_pad
    from darec.lane import CoTExplainer, PreferenceAttentionFusion
    from darec.lane.command import explain_records, fake_answer, load_data
    from darec.llm import make_backend

    if args.threads:
        torch.set_num_threads(args.threads)
    dm = load_data(args.config)
    model = PreferenceAttentionFusion.load_from_checkpoint(args.ckpt, map_location="cpu").eval()
    model.set_preferences(dm.preference_embeddings)
    data = dm.sequences
    rng = np.random.default_rng(args.seed)
    users = rng.choice(data.num_users, min(args.users, data.num_users), replace=False).tolist()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _done(out)
    backend, name = make_backend(args.backend, args.model, threads=args.threads, fake=fake_answer)
    explainer = CoTExplainer(backend, options={"max_new_tokens": args.max_new_tokens, "temperature": 0.0}, max_history=args.max_history)
    start = time.perf_counter()
    for k, u in enumerate(users):
        raw = str(data.user_ids[u])
        if raw in done:
            continue
        history = data.history(u, "test")
        with torch.no_grad():
            scores = model.score_items(torch.from_numpy(left_pad([history], dm.max_len)), torch.tensor([u]))[0]
        masked = scores.clone()
        masked[torch.as_tensor(sorted(set(history.tolist()))) - 1] = float("-inf")
        order = torch.argsort(masked, descending=True)
        ranked = int(torch.isfinite(masked).sum())
        top = int(order[rng.integers(0, 10)]) + 1
        bottom = int(order[ranked - 1 - rng.integers(0, max(1, ranked // 10))]) + 1
        ns = argparse.Namespace(user=[raw], item=[str(data.item_ids[top - 1]), str(data.item_ids[bottom - 1])],
                                top_k=None, stage="test", backend_name=name)  # fmt: skip
        with open(out, "a", encoding="utf-8") as handle:
            explain_records(model, dm, explainer, ns, handle)
        print(f"{k + 1}/{len(users)} users ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)


def report(path: Path) -> dict[str, Any]:
    from scipy.stats import spearmanr

    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by_user: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_user.setdefault(r["user"], []).append(r)
    pairs = [rs[:2] for rs in by_user.values() if len(rs) >= 2]
    parsed = [r for r in records if r.get("parsed") and str(r.get("verdict", "")).lower() in VERDICTS]
    level = lambda r: VERDICTS[str(r["verdict"]).lower()]  # noqa: E731
    rho_score = spearmanr([level(r) for r in parsed], [r["score"] for r in parsed]) if len(parsed) > 2 else None
    rho_rank = spearmanr([level(r) for r in parsed], [r["rank"] for r in parsed]) if len(parsed) > 2 else None
    groups = {"top10": [p[0] for p in pairs], "bottom10%": [p[1] for p in pairs]}
    verdicts = {
        g: {v: sum(1 for r in rs if r.get("parsed") and str(r.get("verdict", "")).lower() == v) for v in VERDICTS}
        | {"unparsed": sum(1 for r in rs if not (r.get("parsed") and str(r.get("verdict", "")).lower() in VERDICTS))}
        for g, rs in groups.items()
    }  # fmt: skip
    both = [(level(a), level(b)) for a, b in pairs if a in parsed and b in parsed]
    result = {
        "file": str(path), "backend": sorted({r.get("backend") for r in records}), "explanations": len(records),
        "users": len(pairs), "parse_failure_rate": 1 - len(parsed) / max(1, len(records)),
        "spearman_verdict_score": None if rho_score is None else {"rho": float(rho_score.statistic), "p": float(rho_score.pvalue), "n": len(parsed)},
        "spearman_verdict_rank": None if rho_rank is None else {"rho": float(rho_rank.statistic), "p": float(rho_rank.pvalue), "n": len(parsed)},
        "verdicts": verdicts,
        "pairs_both_parsed": len(both),
        "top_higher": sum(a > b for a, b in both) / max(1, len(both)),
        "same": sum(a == b for a, b in both) / max(1, len(both)),
        "top_lower": sum(a < b for a, b in both) / max(1, len(both)),
    }  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="the LANE training config")
    parser.add_argument("--ckpt", help="the LANE checkpoint")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="hf", choices=("hf", "openai", "fake"))
    parser.add_argument("--model", default=None, help="hf: 'smollm2' (default) or a folder; openai: the model name")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--max-history", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", help="the explanation file (.jsonl), appended to")
    parser.add_argument("--report", default=None, help="only report on this explanation file")
    args = parser.parse_args(argv)
    if args.report:
        print(json.dumps(report(Path(args.report)), indent=1))
        return
    if not (args.config and args.ckpt and args.out):
        raise SystemExit("give --config, --ckpt and --out (or --report FILE)")
    run(args)
    print(json.dumps(report(Path(args.out)), indent=1))


if __name__ == "__main__":
    main()
