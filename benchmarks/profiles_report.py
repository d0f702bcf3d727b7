"""What a profile run produced: counts, failures, lengths, and samples, from its files alone.

    python benchmarks/profiles_report.py benchmarks/profiles/ml100k-items.jsonl benchmarks/profiles/ml100k-users.jsonl

For each ``darec profiles`` output file: how many entities have a profile (the last line of each
id counts, as the data modules read it), how many are listed in ``<stem>.failed.jsonl``, the
run's ``<stem>.summary.json`` when the run finished (seconds, answers, options), the length of
the summaries in words, how many summaries only repeat the item's title or are near copies of
one another, and a few samples chosen with a fixed seed.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from collections import Counter
from pathlib import Path


def read_last(path: Path) -> dict[int, dict]:
    """The last complete line of each id (a line cut by a killed run is skipped, as the readers do)."""
    rows: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        rows[int(row["id"])] = row
    return rows


def report(path: Path, samples: int, seed: int) -> dict:
    rows = read_last(path)
    stem = path.with_suffix("") if path.suffix == ".jsonl" else path
    failed_path = stem.parent / f"{stem.name}.failed.jsonl"
    summary_path = stem.parent / f"{stem.name}.summary.json"
    failed = [json.loads(line) for line in failed_path.read_text().splitlines()] if failed_path.exists() else []
    words = [len(row["summary"].split()) for row in rows.values()]
    openings = Counter(" ".join(row["summary"].split()[:2]).lower() for row in rows.values())
    with_reasoning = sum(bool(row.get("reasoning")) and not row["reasoning"].startswith("<") for row in rows.values())
    picked = random.Random(seed).sample(sorted(rows), min(samples, len(rows)))
    out = {
        "file": str(path),
        "profiles": len(rows),
        "failed": len(failed),
        "summary_words": {
            "mean": round(statistics.fmean(words), 1) if words else None,
            "median": statistics.median(words) if words else None,
            "max": max(words, default=None),
            "under_5": sum(w < 5 for w in words),
        },
        "with_usable_reasoning": with_reasoning,
        "most_common_openings": [[text, count] for text, count in openings.most_common(3)],
        "run": json.loads(summary_path.read_text()) if summary_path.exists() else None,
        "samples": [{"raw_id": rows[k]["raw_id"], "summary": rows[k]["summary"]} for k in picked],
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the report as JSON")
    args = parser.parse_args()
    reports = [report(path, args.samples, args.seed) for path in args.files]
    for item in reports:
        print(json.dumps({k: v for k, v in item.items() if k != "run"}, indent=1, ensure_ascii=False))
    if args.out:
        args.out.write_text(json.dumps(reports, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
