"""Training-speed ratios of the alignment methods against the plain backbone, measured in one run.

Usage::

    python benchmarks/speed.py --data-dir ../shared/data/ml100k-implicit-v1 --epochs 40 \\
        --out benchmarks/results/speed.json

Every config trains for ``--epochs`` epochs (no early stopping, validation every 10 epochs) in
this one process, one after the other, on the same machine; the epoch time includes everything a
callback does at the start of an epoch (the cluster refresh of the local alignment). The cluster
refresh itself is timed separately. With ``--repeats R`` the whole list runs R times in turn, so
that slow phases of a shared machine hit every config alike; a config's figure is the median over
all its timed epochs. Ratios are relative to the first config (the plain backbone).
Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L

from darec.callbacks import LocalStructureAlignment
from run import cli_args

DEFAULT_CONFIGS = [
    "examples/configs/ml100k_lightgcn.yaml",
    "examples/configs/ml100k_lightgcn_rlmrec_con.yaml",
    "examples/configs/ml100k_lightgcn_rlmrec_gen.yaml",
    "examples/configs/ml100k_lightgcn_darec.yaml",
]


class EpochTimer(L.Callback):
    """Wall-clock time of whole training epochs (put first, so it includes other callbacks' epoch-start work)."""

    def __init__(self) -> None:
        self.epochs: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epochs.append(time.perf_counter() - self._start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", default=None)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=1, help="run the list of configs this many times in turn")
    parser.add_argument("--batch-size", type=int, nargs="+", default=None, help="run every config at each of these batch sizes")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.threads:
        __import__("torch").set_num_threads(args.threads)

    from darec.cli import cli

    refresh: list[float] = []
    original = LocalStructureAlignment.cluster

    def timed_cluster(self, pl_module):
        start = time.perf_counter()
        out = original(self, pl_module)
        refresh.append(time.perf_counter() - start)
        return out

    LocalStructureAlignment.cluster = timed_cluster
    runs = [(c, b) for c in (args.config or DEFAULT_CONFIGS) for b in (args.batch_size or [None])]
    configs = [f"{c}@{b}" if b else c for c, b in runs]
    epoch_times: dict[str, list[float]] = {config: [] for config in configs}
    refresh_times: dict[str, list[float]] = {config: [] for config in configs}
    first_refresh: dict[str, list[float]] = {config: [] for config in configs}
    for _ in range(args.repeats):
        for config, (path, batch) in zip(configs, runs):
            with tempfile.TemporaryDirectory() as workdir:
                app = cli(
                    cli_args(path, args.data_dir, workdir)
                    + [
                        "--trainer.max_epochs", str(args.epochs),
                        "--trainer.check_val_every_n_epoch", "10",
                        "--trainer.logger.init_args.save_dir", workdir,
                    ]
                    + (["--data.batch_size", str(batch)] if batch else []),
                    run=False,
                )
                timer = EpochTimer()
                app.trainer.callbacks.insert(0, timer)
                refresh.clear()
                app.trainer.fit(app.model, datamodule=app.datamodule)
            epoch_times[config] += timer.epochs[2:]  # drop warm-up epochs
            refresh_times[config] += refresh[1:]  # later refreshes start from the previous centres
            first_refresh[config] += refresh[:1]  # the first one seeds k-means from scratch
            print(Path(path).stem, batch or "", f"{statistics.median(timer.epochs[2:]):.4f} s/epoch", flush=True)
    results = [
        {
            "config": Path(config.split("@")[0]).stem + (f"@{config.split('@')[1]}" if "@" in config else ""),
            "seconds_per_epoch": statistics.median(epoch_times[config]),
            "cluster_refresh_seconds": statistics.median(refresh_times[config]) if refresh_times[config] else None,
            "first_refresh_seconds": statistics.median(first_refresh[config]) if first_refresh[config] else None,
            "epochs_timed": len(epoch_times[config]),
        }
        for config in configs
    ]
    base = results[0]["seconds_per_epoch"]
    for r in results:
        r["ratio_to_first"] = r["seconds_per_epoch"] / base
        if r["cluster_refresh_seconds"] is not None:
            r["refresh_fraction_of_epoch"] = r["cluster_refresh_seconds"] / r["seconds_per_epoch"]
            r["first_refresh_fraction_of_epoch"] = r["first_refresh_seconds"] / r["seconds_per_epoch"]
    meta = {
        "cpus": os.cpu_count(),
        "epochs": args.epochs,
        "repeats": args.repeats,
        "torch_threads": __import__("torch").get_num_threads(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"host": meta, "runs": results}, indent=1))
    for r in results:
        extra = (
            f", refresh {r['cluster_refresh_seconds']:.4f} s = {r['refresh_fraction_of_epoch']:.1%} of an epoch"
            f" (first, from scratch: {r['first_refresh_seconds']:.4f} s = {r['first_refresh_fraction_of_epoch']:.1%})"
            if r["cluster_refresh_seconds"]
            else ""
        )
        print(f"{r['config']}: {r['seconds_per_epoch']:.4f} s/epoch, {r['ratio_to_first']:.2f}x{extra}")


if __name__ == "__main__":
    main()
