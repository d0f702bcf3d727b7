"""GPU scale check: full training epochs, a validation pass, a cluster refresh and a predict on one device.

Usage (on a machine with a GPU and this repository; nothing else is downloaded)::

    python benchmarks/gpu_scale.py --size amazon-book --out gpu_scale.json
    python benchmarks/gpu_scale.py --size amazon-book --precision bf16-mixed --epochs 2 --max-minutes 6
    python benchmarks/gpu_scale.py --device cpu --size ml100k-like --epochs 1   # the same logic on a CPU

The data are those of ``benchmarks/scale.py`` (imported from it): seeded synthetic power-law
interactions at ``ml100k-like`` (943 users x 1,682 items, 100k pairs), ``10x`` or ``amazon-book``
(52,643 x 91,599, ~2.98 M pairs), split 3:1:1 per user, written with
:func:`darec.data.write_split_dir`, read back by :class:`darec.data.RecDataModule`, with random
384-d text embeddings. Everything runs through darec's real path: ``DaRecModule`` with PyG's
LightGCN (32-d, 3 layers; darec's symmetric sparse product), a Lightning ``Trainer`` with
``accelerator="gpu", devices=1`` (``"cpu"`` with ``--device cpu``), batch 4096, evaluation batch
1024 users.

For each precision (``32-true`` and ``bf16-mixed``, or the one given) and each method, ``plain``
LightGCN and ``darec`` (disentangling heads, alpha 0.01, global and local structure alignment with
K = 10 clusters):

* ``--epochs`` full training epochs (``epoch_seconds``: the last whole epoch, from its start,
  cluster refresh included, to the end of its last step; ``seconds_per_step`` of that epoch;
  ``complete`` is false when the time bound cut the fit short, and ``epoch_seconds`` is then
  ``null`` if no epoch was whole; ``epochs`` lists every epoch);
* one ``trainer.validate`` pass (``validation_seconds``: from the start of the validation epoch,
  propagation included, to the logged metrics; ``val_recall@20`` ...);
* DaRec only: the cluster refreshes of the fit (``cluster_refresh_in_fit_seconds``, the first one
  from scratch) and one more refresh from scratch after the fit (``cluster_refresh_seconds``);
* a ``trainer.predict`` of the top 20 items of ``--predict-users`` users, and ``recommend`` of
  the same users on the device (``predict_recommend_agreement``: the fraction of equal items,
  position by position; ``predict_recommend_overlap``: of equal top-20 sets; under ``bf16-mixed``
  predict scores in bfloat16 and ``recommend`` in float32, so near ties can swap);
* the peak GPU memory of each phase (``torch.cuda.max_memory_allocated``; ``null`` on a CPU) and
  the process's peak RSS.

Times are wall-clock seconds with the GPU drained (``torch.cuda.synchronize``) at both ends. A
short warm-up fit (2 steps, 1 validation batch, each precision) runs first, so the first
measurement does not pay for CUDA's start. Results go to ``--out`` (JSON) after every measurement,
with the device name and the torch, CUDA and Lightning versions, and a table is printed at the end.

``--max-minutes`` (default 8) bounds the wall time: when it is spent the script finishes the
current measurement (a training epoch is cut at the next step), skips the rest, and writes what
it has (``stopped_early``; the skipped measurements are listed). The data generation of
``amazon-book`` alone takes about 100 s on one CPU core; ``--data-root`` keeps the data for the next
run. ``--device cuda`` without CUDA stops at once with a message (exit status 2).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

SIZE_NAMES = {"ml100k-like": "small", "10x": "10x", "amazon-book": "amazon"}  # this script's names -> scale.py's
PRECISIONS = ("32-true", "bf16-mixed")
METHODS = ("plain", "darec")
TOP_K = 20


def load_scale():
    """``benchmarks/scale.py`` as a module (its data generation, data module and LightGCN)."""
    name = "_darec_benchmarks_scale"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().with_name("scale.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# -- clocks, budget, environment ---------------------------------------------------------------
class Clock:
    """Wall time with the device drained at each reading, and the device's peak memory."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float | None:
        return torch.cuda.max_memory_allocated(self.device) / 2**30 if self.cuda else None


class Budget:
    """The wall-time bound: ``left()`` seconds until ``minutes`` after its creation."""

    def __init__(self, minutes: float) -> None:
        self.end = time.monotonic() + 60 * minutes

    def left(self) -> float:
        return self.end - time.monotonic()

    def over(self) -> bool:
        return self.left() <= 0


def environment(device: torch.device) -> dict[str, Any]:
    import torch_geometric

    import darec

    info: dict[str, Any] = {
        "device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda, "lightning": L.__version__,
        "torch_geometric": torch_geometric.__version__, "darec": darec.__version__, "python": platform.python_version(),
        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(), "git_commit": _git_commit(),
    }  # fmt: skip
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            device_name=torch.cuda.get_device_name(device), device_memory_gib=props.total_memory / 2**30,
            capability=f"{props.major}.{props.minor}", cudnn=torch.backends.cudnn.version(),
            bf16_supported=torch.cuda.is_bf16_supported(),
        )  # fmt: skip
    else:
        info["device_name"] = platform.processor() or platform.machine()
    return info


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def peak_rss_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


# -- timing callbacks --------------------------------------------------------------------------
class EpochTimer(L.Callback):
    """Each training epoch: seconds from its start (before the other callbacks' epoch-start hooks,
    so a cluster refresh counts) to the end of its last step, the steps run, and the seconds from
    the first step's start."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start, self._first, self._steps = self.clock.now(), None, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._first is None:
            self._first = self.clock.now()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._steps += 1

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        end = self.clock.now()
        first = end if self._first is None else self._first
        self.epochs.append({"epoch_seconds": end - self._start, "steps": self._steps, "steps_seconds": end - first})


class ValidationTimer(L.Callback):
    """Seconds of a validation pass: from the start of its epoch (before the module propagates the
    graph) to the end of validation (metrics computed and logged)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.seconds: float | None = None

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._start = self.clock.now()

    def on_validation_end(self, trainer, pl_module) -> None:
        self.seconds = self.clock.now() - self._start


def time_refreshes(local, clock: Clock, seconds: list[float]):
    """Makes ``local.cluster`` append its seconds to ``seconds``; returns the original method."""
    inner = local.cluster

    def cluster(pl_module):
        start = clock.now()
        result = inner(pl_module)
        seconds.append(clock.now() - start)
        return result

    local.cluster = cluster
    return inner


# -- the measurements --------------------------------------------------------------------------
def make_trainer(accelerator: str, precision: str, root: Path, **kwargs: Any) -> L.Trainer:
    return L.Trainer(
        default_root_dir=str(root), logger=False, accelerator=accelerator, devices=1, precision=precision,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
        **kwargs,
    )  # fmt: skip


def build(method: str, num_nodes: int, seed: int):
    """The module and callbacks of ``method`` (``plain`` or ``darec``, as in ``scale.py``) and the
    local alignment callback (``None`` for ``plain``)."""
    from darec.callbacks import GlobalStructureAlignment, LocalStructureAlignment
    from darec.module import DaRecModule

    scale = load_scale()
    L.seed_everything(seed, verbose=False)
    if method == "plain":
        return DaRecModule(scale.lightgcn(num_nodes)), [], None
    local = LocalStructureAlignment(num_clusters=10, weight=0.01)
    model = DaRecModule(scale.lightgcn(num_nodes), alpha=0.01, head_hidden_dim=32)
    return model, [GlobalStructureAlignment(weight=0.01), local], local


def warm_up(dm, precision: str, accelerator: str, root: Path, seed: int) -> float:
    """A 2-step fit with 1 validation batch: CUDA's context, cuBLAS and cuSPARSE start here."""
    model, callbacks, _ = build("plain", dm.interactions.num_users + dm.interactions.num_items, seed)
    start = time.perf_counter()
    trainer = make_trainer(accelerator, precision, root, max_epochs=1, limit_train_batches=2, limit_val_batches=1, callbacks=callbacks)
    trainer.fit(model, datamodule=dm)
    return time.perf_counter() - start


def measure(method: str, precision: str, dm, args, clock: Clock, budget: Budget, root: Path, save) -> dict[str, Any]:
    """One method at one precision; ``save(out)`` after each measurement, ``out["skipped"]`` lists
    what the time bound left out."""
    data = dm.interactions
    accelerator = "gpu" if clock.cuda else "cpu"
    out: dict[str, Any] = {}
    model, callbacks, local = build(method, data.num_users + data.num_items, args.seed)

    # training epochs
    timer, refreshes = EpochTimer(clock), []
    cluster = time_refreshes(local, clock, refreshes) if local is not None else None
    clock.reset_peak()
    trainer = make_trainer(
        accelerator, precision, root, max_epochs=args.epochs, limit_val_batches=0, callbacks=[timer, *callbacks],
        max_time=timedelta(seconds=max(budget.left(), 1.0)),
    )  # fmt: skip
    start = clock.now()
    trainer.fit(model, datamodule=dm)
    out["fit_seconds"] = clock.now() - start  # setup and teardown included
    steps = int(trainer.num_training_batches)
    whole = [e for e in timer.epochs if e["steps"] == steps]  # an epoch cut by the time bound is no epoch time
    last = (whole or timer.epochs or [{"epoch_seconds": None, "steps": 0, "steps_seconds": 0.0}])[-1]
    out.update(
        epoch_seconds=last["epoch_seconds"] if whole else None, steps_per_epoch=steps,
        seconds_per_step=last["steps_seconds"] / last["steps"] if last["steps"] else None,
        epochs=timer.epochs, complete=len(timer.epochs) == args.epochs and all(e["steps"] == steps for e in timer.epochs),
        train={key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("train/")},
        fit_peak_gpu_gib=clock.peak_gib(),
    )  # fmt: skip
    if local is not None:
        out["cluster_refresh_in_fit_seconds"] = refreshes
    save(out)
    del trainer

    phases = ["validation", "cluster_refresh", "predict"] if local is not None else ["validation", "predict"]
    for phase in phases:
        if budget.over():
            out["skipped"] = phases[phases.index(phase) :]
            break
        clock.reset_peak()
        if phase == "validation":
            val_timer = ValidationTimer(clock)
            trainer = make_trainer(accelerator, precision, root, callbacks=[val_timer])
            start = clock.now()
            metrics = trainer.validate(model, datamodule=dm, verbose=False)[0]
            out["validation_call_seconds"] = clock.now() - start  # with the loader's construction
            out["validation_seconds"] = val_timer.seconds
            out["validation_users"] = int(len(np.unique(data.valid[:, 0])))
            out.update({key: float(metrics[key]) for key in (f"val/recall@{TOP_K}", f"val/ndcg@{TOP_K}") if key in metrics})
        elif phase == "cluster_refresh":
            model.to(clock.device)  # the trainer's teardown moved it back to the CPU
            local.centres.clear()  # from scratch, as the first refresh of a fit
            start = clock.now()
            assignments = cluster(model)
            out["cluster_refresh_seconds"] = clock.now() - start
            out["cluster_points"] = int(sum(a.shape[0] for a in assignments.values()))
            out["cluster_device"] = sorted({str(a.device) for a in assignments.values()})
        else:
            out.update(predict(model, dm, precision, accelerator, clock, root, args.predict_users))
        out[f"{phase}_peak_gpu_gib"] = clock.peak_gib()
        save(out)
    out["peak_rss_gib"] = peak_rss_gib()
    return out


def predict(model, dm, precision: str, accelerator: str, clock: Clock, root: Path, count: int) -> dict[str, Any]:
    """``trainer.predict`` of the top ``TOP_K`` items of the first ``count`` users (all known items
    masked, the module's default), and ``recommend`` of the same users on the device."""
    from torch.utils.data import DataLoader

    from darec.data import RankingUsers

    data = dm.interactions
    users = np.arange(min(count, data.num_users))
    known = np.concatenate([data.split(name) for name in ("train", "valid", "test")])
    loader = DataLoader(RankingUsers(data.num_users, known, None, batch_size=len(users), users=users), batch_size=None)
    trainer = make_trainer(accelerator, precision, root)
    start = clock.now()
    batches = trainer.predict(model, dataloaders=loader)
    seconds = clock.now() - start
    predicted = torch.cat([batch["item"][:, :TOP_K] for batch in batches])
    model.to(clock.device)
    start = clock.now()
    items, _ = model.recommend(torch.as_tensor(users), k=TOP_K)
    recommend_seconds = clock.now() - start
    return {
        "predict_seconds": seconds, "predict_users": len(users), "recommend_seconds": recommend_seconds,
        "recommend_device": str(items.device), "predict_output_device": str(batches[0]["item"].device),
        "predict_recommend_agreement": float((predicted == items.cpu()).float().mean()),
        "predict_recommend_overlap": float(np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(predicted.tolist(), items.tolist())])),
    }  # fmt: skip


# -- the command -------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sizes = list(dict.fromkeys([*SIZE_NAMES, *SIZE_NAMES.values()]))  # scale.py's own names work too
    parser.add_argument("--size", default="amazon-book", choices=sizes, help="amazon-book = scale.py's amazon, ml100k-like = its small")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--precision", choices=PRECISIONS, help="one precision (default: both)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated, from plain,darec")
    parser.add_argument("--epochs", type=int, default=1, help="full training epochs per run (the last is reported)")
    parser.add_argument("--predict-users", type=int, default=16)
    parser.add_argument("--max-minutes", type=float, default=8.0, help="wall-time bound; the current measurement ends, the rest is skipped")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-warmup", action="store_true", help="skip the 2-step warm-up fit")
    parser.add_argument("--data-root", help="keep the generated data here and reuse it (default: a temporary folder)")
    parser.add_argument("--out", default="benchmarks/results/gpu_scale.json")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    if not methods or set(methods) - set(METHODS):
        parser.error(f"--methods must be a comma-separated subset of {','.join(METHODS)}, got {args.methods!r}")
    args.methods = methods
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error(
            f"--device cuda, but CUDA is not available (torch {torch.__version__}, built with CUDA "
            f"{torch.version.cuda}); run on a machine with a GPU, or check the logic here with --device cpu"
        )
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    budget = Budget(args.max_minutes)
    scale = load_scale()
    size = SIZE_NAMES.get(args.size, args.size)
    device = torch.device("cuda", torch.cuda.current_device()) if args.device == "cuda" else torch.device("cpu")
    clock = Clock(device)
    precisions = [args.precision] if args.precision else list(PRECISIONS)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)

    results: dict[str, Any] = {
        "config": {"size": args.size, "scale_size": size, "users_items_interactions": scale.SIZES[size], "device": args.device,
                   "precisions": precisions, "methods": args.methods, "epochs": args.epochs, "seed": args.seed,
                   "max_minutes": args.max_minutes, "train_batch": scale.TRAIN_BATCH, "eval_batch": scale.EVAL_BATCH,
                   "embedding_dim": scale.EMBEDDING_DIM, "num_layers": scale.NUM_LAYERS, "top_k": TOP_K},
        "environment": environment(device), "runs": {}, "skipped": [], "stopped_early": False,
    }  # fmt: skip
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def save(_: Any = None) -> None:
        results["wall_seconds"] = time.perf_counter() - started
        tmp = out_path.with_name(out_path.name + ".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        os.replace(tmp, out_path)

    from darec.data import quiet_lightning_warnings

    with tempfile.TemporaryDirectory() as tmp, quiet_lightning_warnings(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        root = Path(args.data_root or tmp)
        root.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        directory, counts = scale.make_split_dir(size, root, args.seed)
        results["counts"], results["generate_seconds"] = counts, time.perf_counter() - start
        print(f"{args.size}: {counts} ({results['generate_seconds']:.1f} s)", flush=True)
        save()
        dms = {method: scale.datamodule(directory, root, size, text=method != "plain") for method in args.methods}
        accelerator = "gpu" if clock.cuda else "cpu"
        if not args.no_warmup and not budget.over():
            dm = dms.get("plain") or scale.datamodule(directory, root, size, text=False)
            results["warmup_seconds"] = {p: warm_up(dm, p, accelerator, root, args.seed) for p in precisions}
            save()
        errors = 0
        for precision in precisions:
            if precision == "bf16-mixed" and clock.cuda and not torch.cuda.is_bf16_supported():
                results["skipped"].append(f"{precision}: this GPU has no bfloat16")
                continue
            runs = results["runs"].setdefault(precision, {})
            for method in args.methods:
                if budget.over():
                    results["skipped"].append(f"{precision}/{method}")
                    results["stopped_early"] = True
                    continue
                runs[method] = {}

                def keep(out: dict[str, Any], runs: dict = runs, method: str = method) -> None:
                    runs[method] = out
                    save()

                try:
                    runs[method] = measure(method, precision, dms[method], args, clock, budget, root, keep)
                except Exception as error:  # noqa: BLE001 - keep what the other runs measure
                    errors += 1
                    runs[method]["error"] = "".join(traceback.format_exception_only(type(error), error)).strip()
                    runs[method]["traceback"] = traceback.format_exc()
                    print(f"{precision}/{method} failed: {runs[method]['error']}", file=sys.stderr, flush=True)
                if runs[method].get("skipped") or not runs[method].get("complete", True):
                    results["stopped_early"] = True
                gc.collect()
                if clock.cuda:
                    torch.cuda.empty_cache()
                brief = {k: v for k, v in runs[method].items() if k not in ("epochs", "train", "traceback")}
                print(f"{precision}/{method}: {json.dumps(brief)}", flush=True)
                save()
        results["errors"] = errors
        save()
    print(table(results), flush=True)
    print(f"written to {out_path}", flush=True)
    return results


def table(results: dict[str, Any]) -> str:
    env, counts = results["environment"], results.get("counts", {})
    head = (
        f"{results['config']['size']}: {counts.get('users', '?')} users x {counts.get('items', '?')} items, "
        f"{counts.get('train', '?')} training pairs; {env.get('device_name')} ({env['device']}), torch {env['torch']}, "
        f"CUDA {env['cuda']}; {results['config']['epochs']} epoch(s)"
    )
    columns = [("epoch s", "epoch_seconds", 2), ("steps", "steps_per_epoch", 0), ("s/step", "seconds_per_step", 4),
               ("val s", "validation_seconds", 2), ("refresh s", "cluster_refresh_seconds", 3), ("predict s", "predict_seconds", 3),
               ("peak GiB", "peak_gpu_gib", 2), (f"recall@{TOP_K}", f"val/recall@{TOP_K}", 4)]  # fmt: skip
    lines = [head, f"{'precision':<11} {'method':<6} " + " ".join(f"{title:>10}" for title, _, _ in columns)]
    for precision, runs in results["runs"].items():
        for method, run in runs.items():
            peaks = [v for k, v in run.items() if k.endswith("_peak_gpu_gib") and v is not None]
            run = {**run, "peak_gpu_gib": max(peaks) if peaks else None}
            cells = []
            for _, key, digits in columns:
                value = run.get(key)
                cells.append(f"{value:>10.{digits}f}" if isinstance(value, (int, float)) else f"{'error' if 'error' in run else '-':>10}")
            lines.append(f"{precision:<11} {method:<6} " + " ".join(cells))
    if results["skipped"]:
        lines.append("skipped (time bound or device): " + ", ".join(results["skipped"]))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(1 if main()["errors"] else 0)
