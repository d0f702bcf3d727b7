"""Train and test darec configurations over several seeds; write the runs as JSON.

Usage::

    python benchmarks/run.py --config examples/configs/ml100k_lightgcn.yaml --seeds 0 1 2 \\
        --out results.json --data-dir ../shared/data/ml100k-implicit-v1

Each (config, seed) runs in its own process (so peak memory is per run), through the same
LightningCLI as the ``darec`` command: fit with early stopping on validation recall@20, then test at
the best validation epoch. The output is a JSON list with one object per run: config name, seed,
test metrics (``"recall@20"``, ``"ndcg@20"``, ... for K in 5, 10, 20), epochs run, best epoch,
mean training seconds per epoch, mean seconds per full validation pass, peak RSS and the protocol.
``--set key=value`` overrides any config entry (e.g. ``--set model.alpha=0.01``), which is how the
sweeps in this folder are run. A mean +- std table is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L

from report import grouped, table


class RunTimer(L.Callback):
    """Wall-clock seconds of every training epoch and validation pass, and the monitored validation
    metric (``val/recall@20`` for the graph recommenders, ``val/full/ndcg@10`` for the sequential ones)."""

    def __init__(self, monitor: str = "val/recall@20") -> None:
        self.monitor = monitor
        self.train_epochs: list[float] = []
        self.val_passes: list[float] = []
        self.val_recall: list[tuple[int, float]] = []
        self.curve: list[tuple[int, float, float]] = []  # (epoch, val recall@20, seconds since fit start)
        self._start = 0.0
        self._fit_start: float | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        self._fit_start = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.train_epochs.append(time.perf_counter() - self._start)

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._val_start = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.val_passes.append(time.perf_counter() - self._val_start)

    def on_validation_end(self, trainer, pl_module) -> None:  # after the module logged its metrics
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None:
            self.val_recall.append((trainer.current_epoch, float(value)))
            elapsed = time.perf_counter() - (self._fit_start or time.perf_counter())
            self.curve.append((trainer.current_epoch, float(value), round(elapsed, 3)))


def cli_args(config: str, data_dir: str | None, workdir: str) -> list[str]:
    """The LightningCLI arguments every benchmark script shares: the config, the split directory
    (if any), a quiet trainer and a throw-away working folder."""
    args = [
        "--config", config,
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.default_root_dir", workdir,
    ]
    if data_dir is not None:
        args += ["--data", "darec.data.RecDataModule", "--data.source", data_dir]
    return args


def _cli_args(config: str, seed: int, data_dir: str | None, overrides: list[str], workdir: str) -> list[str]:
    args = cli_args(config, data_dir, workdir) + [
        "--seed_everything", str(seed),
        "--trainer.logger.init_args.save_dir", workdir,
        "--prediction.output", os.path.join(workdir, "predictions.tsv"),
    ]
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        args += [f"--{key}", value]
    return args


def run_one(
    config: str,
    seed: int,
    data_dir: str | None,
    overrides: list[str],
    threads: int | None,
    keep: str | None = None,
    no_early_stopping: bool = False,
) -> dict[str, Any]:
    """Fits and tests one configuration with one seed in this process."""
    import torch

    from darec.cli import cli

    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="darec-bench-") as workdir:
        app = cli([*_cli_args(config, seed, data_dir, overrides, workdir)], run=False)
        sequential = "full/ndcg@10" in str(getattr(app.model, "monitor", "")) or hasattr(app.datamodule, "sequences")
        timer = RunTimer("val/full/ndcg@10" if sequential else "val/recall@20")
        if no_early_stopping:  # convergence studies: train to the epoch cap
            from lightning.pytorch.callbacks import EarlyStopping

            from darec.callbacks import WarmupEarlyStopping

            app.trainer.callbacks[:] = [
                c for c in app.trainer.callbacks if not isinstance(c, (EarlyStopping, WarmupEarlyStopping))
            ]
        app.trainer.callbacks.append(timer)
        start = time.perf_counter()
        app.trainer.fit(app.model, datamodule=app.datamodule)
        fit_seconds = time.perf_counter() - start
        (test,) = app.trainer.test(app.model, datamodule=app.datamodule, ckpt_path="best", verbose=False)
        if keep:
            import shutil

            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(app.trainer.checkpoint_callback.best_model_path, Path(keep) / f"{Path(config).stem}-seed{seed}.ckpt")
    best_epoch = max(timer.val_recall, key=lambda x: x[1])[0] if timer.val_recall else None
    train = timer.train_epochs[1:] or timer.train_epochs  # the first epoch includes warm-up
    return {
        "config": Path(config).stem,
        "overrides": overrides,
        "seed": seed,
        "early_stopping": not no_early_stopping,
        "test": {k.split("/", 1)[1]: v for k, v in sorted(test.items()) if k.startswith("test/")},
        "best_val_recall@20": None if sequential else max((v for _, v in timer.val_recall), default=None),
        "monitor": timer.monitor,
        "best_val": max((v for _, v in timer.val_recall), default=None),
        "epochs": len(timer.train_epochs),
        "best_epoch": best_epoch,
        "train_seconds_per_epoch": statistics.mean(train) if train else None,
        "validation_seconds": statistics.mean(timer.val_passes) if timer.val_passes else None,
        "fit_seconds": fit_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
        "protocol": app.datamodule.protocol,
        "curve": timer.curve,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True, help="a darec YAML config (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2024])
    parser.add_argument("--out", required=True, help="JSON file to write (a list of runs)")
    parser.add_argument("--data-dir", default=None, help="a ready split directory, e.g. ../shared/data/ml100k-implicit-v1")
    parser.add_argument("--set", action="append", default=[], dest="overrides", help="config override key=value")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (timings are only comparable with 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run")
    parser.add_argument("--keep-checkpoints", default=None, help="copy each run's best checkpoint into this folder")
    parser.add_argument("--no-early-stopping", action="store_true", help="drop early stopping: train to max_epochs")
    parser.add_argument("--resume", action="store_true", help="keep the runs already in --out and skip them")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:  # one run, result as JSON on the last stdout line
        result = run_one(
            args.config[0], args.seeds[0], args.data_dir, args.overrides, args.threads, args.keep_checkpoints,
            args.no_early_stopping,
        )
        print("DAREC_RESULT " + json.dumps(result))
        return

    jobs = [(c, s) for c in args.config for s in args.seeds]
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(), "jobs": args.jobs}

    def write(runs: list[dict[str, Any]]) -> None:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(runs, indent=1))
        os.replace(tmp, args.out)

    runs: list[dict[str, Any]] = []
    if args.resume and Path(args.out).exists():
        runs = json.loads(Path(args.out).read_text())
        done = {(r["config"], r["seed"], tuple(r["overrides"]), not r.get("early_stopping", True)) for r in runs}
        key = (tuple(args.overrides), args.no_early_stopping)
        jobs = [(c, s) for c, s in jobs if (Path(c).stem, s, *key) not in done]
        print(f"resuming: {len(runs)} runs kept, {len(jobs)} to go", flush=True)
    pending: list[tuple[tuple[str, int], subprocess.Popen, Any]] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def launch(config: str, seed: int) -> None:
        cmd = [sys.executable, __file__, "--worker", "--config", config, "--seeds", str(seed), "--out", "-"]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        for item in args.overrides:
            cmd += ["--set", item]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        if args.keep_checkpoints:
            cmd += ["--keep-checkpoints", args.keep_checkpoints]
        if args.no_early_stopping:
            cmd += ["--no-early-stopping"]
        log = tempfile.TemporaryFile(mode="w+")
        pending.append(((config, seed), subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))

    def collect(entry) -> None:
        (config, seed), proc, log = entry
        proc.wait()
        log.seek(0)
        output = log.read()
        lines = [l for l in output.splitlines() if l.startswith("DAREC_RESULT ")]
        if proc.returncode != 0 or not lines:
            raise SystemExit(f"run {config} seed {seed} failed (exit {proc.returncode}):\n{output[-3000:]}")
        result = json.loads(lines[-1][len("DAREC_RESULT "):])
        result["host"] = meta
        runs.append(result)
        write(runs)  # after every run, so an interrupted benchmark keeps what it finished
        t = result["test"]
        shown = ("recall@20", "ndcg@20") if "recall@20" in t else ("full/ndcg@10", "sampled/ndcg@10")
        print(
            f"{result['config']} seed={seed}: " + " ".join(f"{k}={t[k]:.4f}" for k in shown if k in t) + " "
            f"epochs={result['epochs']} best={result['best_epoch']} "
            f"s/epoch={result['train_seconds_per_epoch']:.3f} s/val={result['validation_seconds']:.3f}",
            flush=True,
        )

    for config, seed in jobs:
        while len(pending) >= max(1, args.jobs):
            collect(pending.pop(0))
        launch(config, seed)
    while pending:
        collect(pending.pop(0))

    write(runs)
    print(table(grouped(runs)))
    print(f"wrote {len(runs)} runs to {args.out}")


if __name__ == "__main__":
    main()
