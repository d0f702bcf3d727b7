"""ExpCTR-Aug measured on a finished ExpCTR run: FM, DeepFM and DCN-v2, ids only or with each stage's explanations, 5 seeds.

Usage::

    python benchmarks/expctr.py --run runs/expctr --out benchmarks/results/expctr/ctr_seeds.json
    python benchmarks/expctr.py --run runs/expctr --out ... --models deepfm --seeds 0 1 --report

For every backbone and seed it trains, on the run's user subsample and split, the ID-only model
and one model per explanation file of the run (``explain-zs``: before RL, ``explain-lc-r``: after
the LC stage, ``explain-ic-r``: after the full round), each also with shuffled explanations (every
pair gets another pair's explanation of its split: the gain must vanish there, or the text
carries something else than the pair's content). Each model keeps its best epoch by validation
AUC, tested once. Results are appended as they come (``--out`` is resumable: finished cells are
skipped); ``--report`` prints mean ± std test AUC and LogLoss, RelaImpr over ID-only, and paired
differences (same seed) against ID-only and against the shuffled control with a paired t-test.

``--train-on-all`` trains every model on *all* training pairs of the data and evaluates on the
subsample's validation and test pairs (``users_scope="eval"``); pairs outside the subsample have
no explanation and get a zero text feature. The ID part is then as strong as on the whole data,
and the question is whether the explanations add anything where they exist.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

MODELS = ("fm", "deepfm", "dcnv2")


def _cells(run: Path, stages: list[str]) -> list[tuple[str, str | None, bool]]:
    cells: list[tuple[str, str | None, bool]] = [("ids", None, False)]
    for name in stages:
        if name.startswith("explain-"):
            path = run / name / "explanations.jsonl"
            tag = name[len("explain-"):]
            cells += [(tag, str(path), False), (f"{tag} shuffled", str(path), True)]
    return cells


def _done(out: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    if not out.is_file():
        return {}
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return {(r["model"], r["variant"], r["seed"]): r for r in rows}


def _train_on_all_data(config: Any):
    """A data factory: every training pair, the subsample's validation and test pairs, zeros where no explanation."""
    from darec.ctr import CTRDataModule, MovieLens100KCTR

    def make(**kwargs: Any) -> Any:
        kwargs.update(users_scope="eval", missing_explanations="zeros")
        if str(config.data).lower() in ("ml100k", "ml-100k", "movielens100k"):
            return MovieLens100KCTR(**kwargs)
        return CTRDataModule(config.data, item_info=config.item_info, **kwargs)

    return make


def measure(run: Path, out: Path, models: list[str], seeds: list[int], train_on_all: bool = False,
            overrides: dict[str, Any] | None = None) -> None:  # fmt: skip
    import warnings

    from darec.expctr import ExpCTRConfig, ExpCTRLoop

    warnings.filterwarnings("ignore", message=".*zero text feature.*")
    state = json.loads((run / "state.json").read_text())
    base = ExpCTRLoop(ExpCTRConfig.from_dict(state["config"]), run)
    cells = _cells(run, [name for name in base.stages() if name in state["done"]])
    done = _done(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work, open(out, "a") as handle:
        for model in models:
            for seed in seeds:
                config = ExpCTRConfig.from_dict({**state["config"], **(overrides or {}), "ctr_model": model, "seed": seed,
                                                 "progress": False})  # fmt: skip
                loop = ExpCTRLoop(config, run, data_factory=_train_on_all_data(config) if train_on_all else None)
                for variant, path, shuffle in cells:
                    if (model, variant, seed) in done:
                        continue
                    start = time.perf_counter()
                    info = loop.fit_ctr(Path(work) / f"{model}-{variant}-{seed}".replace(" ", "_"), path, shuffle)
                    row = {"model": model, "variant": variant, "seed": seed, "explanations": path, "shuffled": shuffle,
                           "train_on_all": train_on_all, **overrides,
                           **{k: info[k] for k in ("val_auc", "test_auc", "test_logloss", "ic_agreement")},
                           "seconds": round(time.perf_counter() - start, 1), "protocol": info["protocol"],
                           "host": platform.node()}  # fmt: skip
                    handle.write(json.dumps(row, default=str) + "\n")
                    handle.flush()
                    print(f"{model:7s} {variant:16s} seed {seed}: test AUC {row['test_auc']:.4f} LogLoss {row['test_logloss']:.4f}")


def _mean_std(values: list[float]) -> str:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return f"{mean:.4f} ± {std:.4f}"


def _paired(a: list[float], b: list[float]) -> str:
    from scipy import stats

    diff = [x - y for x, y in zip(a, b)]
    mean = sum(diff) / len(diff)
    p = stats.ttest_rel(a, b).pvalue if len(diff) > 1 and any(d != diff[0] for d in diff) else float("nan")
    return f"{mean:+.4f} (p {p:.2g})"


def report(out: Path) -> str:
    from darec.ctr import relative_auc_improvement

    rows = list(_done(out).values())
    lines = ["| model | explanations | test AUC | test LogLoss | RelaImpr | vs ID-only | vs shuffled |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for model in MODELS:
        mine = [r for r in rows if r["model"] == model]
        if not mine:
            continue
        by = {}
        for r in mine:
            by.setdefault(r["variant"], {})[r["seed"]] = r
        ids = by.get("ids", {})
        for variant, cells in by.items():
            seeds = sorted(cells)
            auc = [cells[s]["test_auc"] for s in seeds]
            loss = [cells[s]["test_logloss"] for s in seeds]
            base = [ids[s]["test_auc"] for s in seeds if s in ids]
            impr = (f"{100 * relative_auc_improvement(sum(auc) / len(auc), sum(base) / len(base)):+.1f}%"
                    if variant != "ids" and len(base) == len(auc) and sum(base) / len(base) > 0.5 else "-")  # fmt: skip
            vs_ids = _paired(auc, base) if variant != "ids" and len(base) == len(auc) else "-"
            shuffled = by.get(f"{variant} shuffled", {})
            vs_shuffled = (_paired(auc, [shuffled[s]["test_auc"] for s in seeds])
                           if not variant.endswith("shuffled") and variant != "ids" and all(s in shuffled for s in seeds) else "-")  # fmt: skip
            name = {"ids": "none (ID-only)", "zs": "zero-shot"}.get(variant, variant)
            lines.append(f"| {model} | {name} | {_mean_std(auc)} | {_mean_std(loss)} | {impr} | {vs_ids} | {vs_shuffled} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a finished (or partly finished) `darec expctr run` folder")
    parser.add_argument("--out", required=True, help="the JSON-lines results file (appended to; resumable)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--report", action="store_true", help="only print the table of --out")
    parser.add_argument("--train-on-all", action="store_true", help="train on every training pair (see above)")
    parser.add_argument("--batch-size", type=int, default=None, help="CTR batch size (default: the run's)")
    parser.add_argument("--epochs", type=int, default=None, help="CTR epochs (default: the run's)")
    args = parser.parse_args()
    out = Path(args.out)
    overrides = {k: v for k, v in (("ctr_batch_size", args.batch_size), ("ctr_epochs", args.epochs)) if v is not None}
    if not args.report:
        measure(Path(args.run), out, args.models, args.seeds, args.train_on_all, overrides)
    print(report(out))


if __name__ == "__main__":
    main()
