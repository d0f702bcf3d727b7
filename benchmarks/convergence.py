"""Convergence curves, time-to-accuracy and early-stopping rules, from run.py's JSON (``curve`` per run).

Usage::

    # the study: every method trained to a fixed cap without early stopping
    python benchmarks/convergence.py study.json [more.json ...] --out results/convergence.json \\
        --plot results/convergence.png
    # a faster recipe against the study (time-to-accuracy), and early-stopping rules on all curves
    python benchmarks/convergence.py study.json --recipe recipe.json --out results/convergence.json

For each run (a config, its encoder and a seed) the curve is validation recall@20 every 10 epochs.
Reported per group (method x backbone x encoder, over seeds):

- ``best``: the run's best validation recall@20 and its epoch;
- ``converged_epoch``: the first epoch whose value is within 1% (relative) of the run's best, and
  ``seconds_to_converge`` the wall time from the start of fit to that validation (the run's own
  clock: runs in parallel share the machine, so compare epochs, or seconds within one table);
- ``longest_plateau``: the most epochs between two new bests before the converged epoch;
  ``largest_dip``: the largest relative drop below the running best before the converged epoch
  (a curve that falls and recovers);
- the early-stopping rules (``--rules``): for each ``patience`` (checks) x ``min_delta`` x
  ``start_epoch``, the epoch at which Lightning's criterion (as :class:`darec.callbacks.WarmupEarlyStopping`
  applies it) would stop each run, and the *regret*: how far the best value up to that stop is below
  the run's best. A rule is safe on the study when no run loses more than ``--tolerance`` (0.5%
  relative by default).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
from pathlib import Path
from typing import Any


def encoder_of(run: dict[str, Any]) -> str:
    for item in run.get("overrides", []):
        if item.startswith("data.text_encoder="):
            return Path(item.split("=", 1)[1]).name
    return "all-MiniLM-L6-v2"


def group_key(run: dict[str, Any]) -> str:
    """``config`` plus the encoder, plus any other override than the epoch cap and the encoder."""
    rest = [o for o in run.get("overrides", []) if not o.startswith(("data.text_encoder=", "trainer.max_epochs="))]
    name = run["config"]
    if run["config"] not in ("ml100k_lightgcn", "ml100k_mf"):  # the plain models do not read text
        name += f" / {encoder_of(run)}"
    return name + (f" [{', '.join(rest)}]" if rest else "")


def batch_size(run: dict[str, Any]) -> int:
    for item in run.get("overrides", []):
        if item.startswith("data.batch_size="):
            return int(item.split("=", 1)[1])
    return 4096  # the shipped configs'


def steps_per_epoch(run: dict[str, Any]) -> int:
    train = run["protocol"]["counts"]["train"]
    return -(-train // batch_size(run))


def dedupe(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One run per (group, seed): the longest (a run to a higher cap repeats a shorter one's curve)."""
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for run in runs:
        key = (group_key(run), run["seed"])
        if key not in best or run["epochs"] > best[key]["epochs"]:
            best[key] = run
    return list(best.values())


def curve_stats(curve: list[list[float]], within: float = 0.01) -> dict[str, Any]:
    epochs = [int(c[0]) for c in curve]
    values = [float(c[1]) for c in curve]
    seconds = [float(c[2]) for c in curve]
    best = max(values)
    k_best = values.index(best)
    k_conv = next(k for k, v in enumerate(values) if v >= (1 - within) * best)
    plateau, dip, running, last_new = 0, 0.0, -1.0, epochs[0]
    for k in range(k_conv + 1):
        if values[k] > running:
            plateau = max(plateau, epochs[k] - last_new)
            running, last_new = values[k], epochs[k]
        else:
            dip = max(dip, (running - values[k]) / running)
    return {
        "best": best,
        "best_epoch": epochs[k_best],
        "converged_epoch": epochs[k_conv],
        "seconds_to_converge": seconds[k_conv],
        "last_epoch": epochs[-1],
        "longest_plateau": plateau,
        "largest_dip": dip,
    }


def early_stop(curve: list[list[float]], patience: int, min_delta: float, start_epoch: int) -> tuple[int, float]:
    """``(stop epoch, best value up to it)`` under WarmupEarlyStopping's rule (mode max)."""
    best, wait, kept = float("-inf"), 0, float("-inf")
    for epoch, value, *_ in curve:
        kept = max(kept, value)
        if value - min_delta > best:
            best, wait = value, 0
            continue
        wait += 1
        if wait >= patience:
            if epoch < start_epoch:
                wait = 0
                continue
            return int(epoch), kept
    return int(curve[-1][0]), kept


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    out = {}
    for name, members in groups.items():
        stats = [curve_stats(r["curve"]) | {"steps_per_epoch": steps_per_epoch(r)} for r in members]
        out[name] = {
            "seeds": [r["seed"] for r in members],
            "runs": stats,
            "mean_best": statistics.mean(s["best"] for s in stats),
            "mean_best_epoch": statistics.mean(s["best_epoch"] for s in stats),
            "mean_converged_epoch": statistics.mean(s["converged_epoch"] for s in stats),
            "max_converged_epoch": max(s["converged_epoch"] for s in stats),
            "mean_steps_to_converge": statistics.mean((s["converged_epoch"] + 1) * s["steps_per_epoch"] for s in stats),
            "mean_seconds_to_converge": statistics.mean(s["seconds_to_converge"] for s in stats),
            "longest_plateau": max(s["longest_plateau"] for s in stats),
            "largest_dip": max(s["largest_dip"] for s in stats),
            "cap": max(s["last_epoch"] for s in stats) + 1,
            "train_seconds_per_epoch": statistics.mean(r["train_seconds_per_epoch"] for r in members),
        }
    return out


def evaluate_rules(runs: list[dict[str, Any]], patiences, deltas, starts, tolerance: float) -> list[dict[str, Any]]:
    rules = []
    for patience, delta, start in itertools.product(patiences, deltas, starts):
        regrets, stops, worst = [], [], None
        for run in runs:
            best = max(c[1] for c in run["curve"])
            stop, kept = early_stop(run["curve"], patience, delta, start)
            regret = (best - kept) / best
            regrets.append(regret)
            stops.append(stop + 1)
            if worst is None or regret > worst[0]:
                worst = (regret, f"{group_key(run)} seed {run['seed']}")
        rules.append({
            "patience": patience, "min_delta": delta, "start_epoch": start,
            "safe": max(regrets) <= tolerance, "max_regret": max(regrets), "mean_regret": statistics.mean(regrets),
            "worst_run": worst[1], "mean_epochs": statistics.mean(stops),
        })  # fmt: skip
    return rules


def markdown(summary: dict[str, Any], title: str) -> str:
    lines = [
        f"**{title}**", "",
        "| run | seeds | cap | best val recall@20 | best epoch | converged (1%) epoch: mean / max | steps to 1% | longest plateau (epochs) | largest dip |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for name, g in summary.items():
        lines.append(
            f"| {name} | {len(g['seeds'])} | {g['cap']} | {g['mean_best']:.4f} | {g['mean_best_epoch']:.0f} | "
            f"{g['mean_converged_epoch']:.0f} / {g['max_converged_epoch']} | {g['mean_steps_to_converge']:,.0f} | "
            f"{g['longest_plateau']} | {100 * g['largest_dip']:.1f}% |"
        )
    return "\n".join(lines)


def plot(runs_by_title: dict[str, list[dict[str, Any]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(t, r["config"].split("_")[1]) for t, runs in runs_by_title.items() for r in runs})
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.5), squeeze=False)
    for ax, (title, backbone) in zip(axes[0], panels):
        colours: dict[str, Any] = {}
        for run in runs_by_title[title]:
            if run["config"].split("_")[1] != backbone:
                continue
            name = group_key(run).replace("ml100k_", "")
            colour = colours.setdefault(name, f"C{len(colours)}")
            xs, ys = [c[0] + 1 for c in run["curve"]], [c[1] for c in run["curve"]]
            ax.plot(xs, ys, color=colour, lw=0.9, label=name if run["seed"] == min(r["seed"] for r in runs_by_title[title]) else None)
        ax.set_title(f"{backbone} ({title})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation recall@20")
        ax.set_ylim(bottom=0.2)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", nargs="+", help="run.py JSON files of the study (no early stopping)")
    parser.add_argument("--recipe", nargs="*", default=[], help="run.py JSON files of a faster recipe")
    parser.add_argument("--out", required=True)
    parser.add_argument("--plot", default=None)
    parser.add_argument("--patience", type=int, nargs="+", default=[5, 10, 15, 20, 30, 40, 60])
    parser.add_argument("--min-delta", type=float, nargs="+", default=[0.0, 0.0005, 0.001])
    parser.add_argument("--start-epoch", type=int, nargs="+", default=[0, 100, 300])
    parser.add_argument("--tolerance", type=float, default=0.005)
    args = parser.parse_args()

    study = dedupe([r for path in args.study for r in json.loads(Path(path).read_text())])
    recipe = dedupe([r for path in args.recipe for r in json.loads(Path(path).read_text())])
    result: dict[str, Any] = {"study": summarise(study)}
    print(markdown(result["study"], "Study"))
    if recipe:
        result["recipe"] = summarise(recipe)
        print()
        print(markdown(result["recipe"], "Recipe"))
    rules = evaluate_rules(study + recipe, args.patience, args.min_delta, args.start_epoch, args.tolerance)
    result["rules"] = rules
    safe = sorted((r for r in rules if r["safe"]), key=lambda r: r["mean_epochs"])
    print("\nEarly-stopping rules safe on every curve (fewest epochs first):")
    for r in safe[:8]:
        print(
            f"  patience {r['patience']} checks, min_delta {r['min_delta']}, start {r['start_epoch']}: "
            f"max regret {100 * r['max_regret']:.2f}%, mean epochs {r['mean_epochs']:.0f}"
        )
    unsafe = [r for r in rules if not r["safe"]]
    if unsafe:
        r = min(unsafe, key=lambda r: r["max_regret"])
        print(f"  (least unsafe of the rest: {r})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    if args.plot:
        titles = {"study": study, **({"recipe": recipe} if recipe else {})}
        plot(titles, args.plot)


if __name__ == "__main__":
    main()
