"""Turn benchmark JSON files (from run.py) into tables, paired tests and plots.

Usage::

    python benchmarks/report.py results/*.json --baseline ml100k_lightgcn_rlmrec_con \\
        --candidate ml100k_lightgcn_darec --markdown results/table.md --plot results/comparison.png

Runs are grouped by configuration name plus overrides. For each group the table gives mean +- std
over seeds of the test metrics. ``--baseline``/``--candidate`` (repeatable, paired by position)
add a paired comparison over the seeds both groups share: the mean difference, its standard
deviation and a two-sided paired t-test p-value (scipy).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

KEYS = ("recall@20", "ndcg@20", "recall@10", "ndcg@10", "recall@5", "ndcg@5")
#: The test metrics of the sequential recommenders: full ranking and the sampled protocol (1 + 100).
SEQUENTIAL_KEYS = ("full/ndcg@10", "full/hit_rate@10", "full/ndcg@20", "sampled/ndcg@5", "sampled/hit_rate@5",
                   "sampled/ndcg@10", "sampled/hit_rate@10")  # fmt: skip


def keys_of(runs: list[dict[str, Any]]) -> tuple[str, ...]:
    """:data:`KEYS` for graph runs, :data:`SEQUENTIAL_KEYS` when the runs are sequential."""
    return SEQUENTIAL_KEYS if runs and all("full/ndcg@10" in r["test"] for r in runs) else KEYS


def load(paths: list[str]) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for path in paths:
        runs.extend(json.loads(Path(path).read_text()))
    return runs


def group_name(run: dict[str, Any]) -> str:
    return run["config"] + ("" if not run.get("overrides") else " [" + ", ".join(run["overrides"]) + "]")


def grouped(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(group_name(run), []).append(run)
    return groups


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def table(groups: dict[str, list[dict[str, Any]]], keys: tuple[str, ...] | None = None, validation_only: bool = False) -> str:
    if keys is None:
        keys = keys_of([r for runs in groups.values() for r in runs])
    if validation_only:  # for selecting hyper-parameters: no test figure is shown
        lines = ["| run | seeds | best val recall@20 | best epoch | epochs |", "|---|---|---|---|---|"]
        for name, runs in groups.items():
            m, s = mean_std([r["best_val_recall@20"] for r in runs])
            b, _ = mean_std([r["best_epoch"] for r in runs])
            e, _ = mean_std([r["epochs"] for r in runs])
            lines.append(f"| {name} | {len(runs)} | {m:.4f} ± {s:.4f} | {b:.0f} | {e:.0f} |")
        return "\n".join(lines)
    head = "| method | seeds | " + " | ".join(keys) + " | s/epoch | epochs |"
    lines = [head, "|" + "---|" * (len(keys) + 4)]
    for name, runs in groups.items():
        cells = []
        for key in keys:
            m, s = mean_std([r["test"][key] for r in runs])
            cells.append(f"{m:.4f} ± {s:.4f}")
        t, _ = mean_std([r["train_seconds_per_epoch"] for r in runs])
        e, _ = mean_std([r["epochs"] for r in runs])
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + f" | {t:.3f} | {e:.0f} |")
    return "\n".join(lines)


def paired(groups: dict[str, list[dict[str, Any]]], baseline: str, candidate: str, key: str) -> dict[str, Any]:
    from scipy.stats import ttest_rel

    base = {r["seed"]: r["test"][key] for r in groups[baseline]}
    cand = {r["seed"]: r["test"][key] for r in groups[candidate]}
    seeds = sorted(set(base) & set(cand))
    if len(seeds) < 2:
        raise SystemExit(f"need at least two shared seeds to pair {candidate} with {baseline}")
    diffs = [cand[s] - base[s] for s in seeds]
    p = float(ttest_rel([cand[s] for s in seeds], [base[s] for s in seeds]).pvalue)
    m, sd = mean_std(diffs)
    return {"baseline": baseline, "candidate": candidate, "metric": key, "seeds": seeds,
            "differences": diffs, "mean_difference": m, "std_difference": sd, "p_value": p}


def plot(groups: dict[str, list[dict[str, Any]]], path: str, keys: tuple[str, ...] = ("recall@20", "ndcg@20")) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(groups)
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 0.45 * len(names) + 1.8))
    for ax, key in zip(axes if len(keys) > 1 else [axes], keys):
        stats = [mean_std([r["test"][key] for r in groups[n]]) for n in names]
        ax.barh(range(len(names)), [m for m, _ in stats], xerr=[s for _, s in stats], capsize=3, color="tab:blue")
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.invert_yaxis()
        low = min(m - s for m, s in stats)
        ax.set_xlim(max(0.0, low - 0.02), max(m + s for m, s in stats) + 0.01)
        ax.set_xlabel(f"test {key} (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+")
    parser.add_argument("--baseline", action="append", default=[])
    parser.add_argument("--candidate", action="append", default=[])
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--plot", default=None)
    parser.add_argument("--validation-only", action="store_true", help="only validation figures (for sweeps)")
    args = parser.parse_args(argv)
    groups = grouped(load(args.results))
    out = [table(groups, validation_only=args.validation_only)]
    if args.baseline:
        if len(args.baseline) != len(args.candidate):
            raise SystemExit("give one --candidate per --baseline")
        out.append("\n| candidate vs baseline | metric | mean diff ± std | paired t-test p | seeds |\n|---|---|---|---|---|")
        sequential = keys_of([r for runs in groups.values() for r in runs]) == SEQUENTIAL_KEYS
        paired_keys = ("full/ndcg@10", "full/hit_rate@10", "sampled/ndcg@10", "sampled/hit_rate@10") if sequential else ("recall@20", "ndcg@20")
        for base, cand in zip(args.baseline, args.candidate):
            for key in paired_keys:
                r = paired(groups, base, cand, key)
                out.append(
                    f"| {cand} vs {base} | {key} | {r['mean_difference']:+.4f} ± {r['std_difference']:.4f} "
                    f"| {r['p_value']:.3g} | {len(r['seeds'])} |"
                )
    text = "\n".join(out)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.plot:
        plot(groups, args.plot)


if __name__ == "__main__":
    main()
