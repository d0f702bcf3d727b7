"""Tables of a comparison run under one protocol, paired tests, and time to accuracy (issue 14).

    python benchmarks/compare_protocols.py results/v3/lightgcn_minilm.json results/v3/lightgcn_mpnet.json \\
        results/v3/mf_minilm.json results/v3/mf_mpnet.json --old results/comparison_v2.json \\
        --speed results/convergence/speed_batch.json --markdown results/v3/tables.md --out results/v3/summary.json

For every configuration (config name plus overrides, as ``report.py`` groups them): test
recall@20 and ndcg@20 (mean ± std over seeds), the epochs trained, the best epoch, and the epochs
until validation recall@20 first came within 1% of the run's best (from each run's validation
curve). With ``--speed`` (``speed.py`` output whose configs are named ``<config>@<batch>``), those
epochs times the idle seconds per epoch give the seconds to 1%.

Paired tests (two-sided paired t over the seeds both runs share): each aligned method against the
plain backbone and against RLMRec-Con, all-mpnet-base-v2 against all-MiniLM-L6-v2 per method, and,
with ``--old``, each configuration against the same configuration under the earlier protocol.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from report import group_name, load, mean_std  # benchmarks/report.py: the same grouping as its tables

MPNET = "data.text_encoder=all-mpnet-base-v2"


def groups_of(runs: list[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for run in runs:
        out.setdefault(group_name(run), {})[run["seed"]] = run
    return out


def epochs_to(run: dict[str, Any], fraction: float = 0.99) -> int | None:
    curve = run.get("curve")
    if not curve:
        return None
    best = max(point[1] for point in curve)
    return next(int(point[0]) + 1 for point in curve if point[1] >= fraction * best)


def paired(base: dict[int, dict], cand: dict[int, dict], key: str) -> dict[str, Any] | None:
    from scipy.stats import ttest_rel

    seeds = sorted(set(base) & set(cand))
    if len(seeds) < 2:
        return None
    b = [base[s]["test"][key] for s in seeds]
    c = [cand[s]["test"][key] for s in seeds]
    diffs = [y - x for x, y in zip(b, c)]
    return {
        "seeds": seeds,
        "mean_difference": statistics.mean(diffs),
        "wins": sum(d > 0 for d in diffs),
        "p_value": float(ttest_rel(c, b).pvalue),
    }


def batch_size(run: dict[str, Any], default: int | None = None) -> int | None:
    """The run's batch size: an override, else ``default``, else its config in examples/configs or benchmarks/configs."""
    for override in run.get("overrides") or []:
        if override.startswith("data.batch_size=") or override.startswith("data.init_args.batch_size="):
            return int(override.split("=", 1)[1])
    if default is not None:
        return default
    import yaml

    root = Path(__file__).resolve().parent
    for folder in (root.parent / "examples" / "configs", root / "configs"):
        path = folder / f"{run['config']}.yaml"
        if path.is_file():
            return yaml.safe_load(path.read_text())["data"]["init_args"].get("batch_size")
    return None


def idle_seconds(speed: dict[str, float], run: dict[str, Any], default_batch: int | None = None) -> float | None:
    return speed.get(f"{run['config']}@{batch_size(run, default_batch)}")


def pairs_for(names: list[str]) -> list[tuple[str, str]]:
    """(baseline, candidate) pairs: aligned vs plain, vs RLMRec-Con, and mpnet vs MiniLM."""
    out = []
    for cand in names:
        config = cand.split(" [")[0]
        backbone = config.split("_")[1]  # ml100k_<backbone>[_method]
        plain = f"ml100k_{backbone}"
        con = f"ml100k_{backbone}_rlmrec_con" + (f" [{MPNET}]" if MPNET in cand else "")
        if cand != plain and plain in names:
            out.append((plain, cand))
        if config not in (plain, f"ml100k_{backbone}_rlmrec_con") and con in names:
            out.append((con, cand))
        if MPNET in cand and config in names:
            out.append((config, cand))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="run.py JSON files of the protocol to report")
    parser.add_argument("--old", nargs="*", default=[], help="run.py JSON files of the earlier protocol")
    parser.add_argument("--speed", default=None, help="speed.py JSON with <config>@<batch> entries (idle s/epoch)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="batch size of runs without a batch-size override (default: from today's config files)")
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    groups = groups_of(load(args.results))
    old = groups_of(load(args.old)) if args.old else {}
    speed = {}
    if args.speed:
        speed = {r["config"]: r["seconds_per_epoch"] for r in json.loads(Path(args.speed).read_text())["runs"]}

    rows, summary = [], {"groups": {}, "paired": [], "vs_old_protocol": []}
    head = (
        "| run | seeds | test recall@20 | test ndcg@20 | epochs | best epoch | epochs to 1% | idle s to 1% |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    for group, runs in groups.items():
        seeds = sorted(runs)
        recall = mean_std([runs[s]["test"]["recall@20"] for s in seeds])
        ndcg = mean_std([runs[s]["test"]["ndcg@20"] for s in seeds])
        epochs = statistics.mean(runs[s]["epochs"] for s in seeds)
        best = statistics.mean(runs[s]["best_epoch"] for s in seeds)
        to1 = [epochs_to(runs[s]) for s in seeds]
        to1_mean = statistics.mean(to1) if all(v is not None for v in to1) else None
        per_epoch = idle_seconds(speed, runs[seeds[0]], args.batch_size)
        seconds = None if (per_epoch is None or to1_mean is None) else to1_mean * per_epoch
        summary["groups"][group] = {
            "seeds": seeds, "recall@20": recall, "ndcg@20": ndcg, "epochs": epochs, "best_epoch": best,
            "epochs_to_1pct": to1, "idle_seconds_per_epoch": per_epoch, "idle_seconds_to_1pct": seconds,
            "protocol": runs[seeds[0]].get("protocol"),
        }
        rows.append(
            f"| {group} | {len(seeds)} | {recall[0]:.4f} ± {recall[1]:.4f} | {ndcg[0]:.4f} ± {ndcg[1]:.4f} | "
            f"{epochs:.0f} | {best:.0f} | {'-' if to1_mean is None else f'{to1_mean:.0f}'} | "
            f"{'-' if seconds is None else f'{seconds:.0f}'} |"
        )
    lines = [head, *rows, "", "| baseline | candidate | seeds | Δ recall@20 (wins) | p | Δ ndcg@20 (wins) | p |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for base, cand in pairs_for(list(groups)):
        r, n = paired(groups[base], groups[cand], "recall@20"), paired(groups[base], groups[cand], "ndcg@20")
        if r is None:
            continue
        summary["paired"].append({"baseline": base, "candidate": cand, "recall@20": r, "ndcg@20": n})
        lines.append(
            f"| {base} | {cand} | {len(r['seeds'])} | {r['mean_difference']:+.4f} ({r['wins']}) | {r['p_value']:.3f} | "
            f"{n['mean_difference']:+.4f} ({n['wins']}) | {n['p_value']:.3f} |"
        )
    if old:
        lines += ["", "| configuration | seeds | earlier protocol recall@20 | this protocol | Δ (wins) | p | Δ ndcg@20 (wins) | p |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for group in groups:
            if group not in old:
                continue
            r, n = paired(old[group], groups[group], "recall@20"), paired(old[group], groups[group], "ndcg@20")
            if r is None:
                continue
            before = statistics.mean(old[group][s]["test"]["recall@20"] for s in r["seeds"])
            after = statistics.mean(groups[group][s]["test"]["recall@20"] for s in r["seeds"])
            summary["vs_old_protocol"].append({"configuration": group, "recall@20": r, "ndcg@20": n})
            lines.append(
                f"| {group} | {len(r['seeds'])} | {before:.4f} | {after:.4f} | {r['mean_difference']:+.4f} ({r['wins']}) | "
                f"{r['p_value']:.3f} | {n['mean_difference']:+.4f} ({n['wins']}) | {n['p_value']:.3f} |"
            )
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
