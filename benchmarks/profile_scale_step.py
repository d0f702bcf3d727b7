"""Where a training step's time goes at scale, against the sparse-product floor of ``scale.py``.

Usage::

    python benchmarks/profile_scale_step.py --sizes 10x amazon --methods plain darec --threads 1 \\
        --data-root /tmp/scale-data --before /tmp/base --out benchmarks/results/profile_scale_step.json

(``--before``: a tree of the code before a change, e.g. a clean clone; its ``graph.py``
propagation and adjacency are timed interleaved with the current code's.)

Builds the seeded synthetic data of :mod:`scale` (``--data-root`` keeps it between runs; the
amazon size takes about 100 s to generate the first time), fits a fresh LightGCN (32-d, 3 layers,
batch 4096) under Lightning, and after each of the first ``--repeats`` timed Lightning steps runs,
in the same process and interleaved (so that a loaded machine slows all of them alike):

* ``floor``: the sparse floor of :mod:`scale`, 6 products ``A @ X`` (3 layers, forward and
  backward) with the normalised adjacency as the CSR tensor ``scale.sparse_floor`` builds;
* ``tight floor``: the same 6 products with the model's own adjacency (int32 indices) and darec's
  product (``graph._product``), the fastest form of the product here;
* ``manual step``: the step Lightning runs, outside it (``training_step``, ``zero_grad``,
  ``backward``, ``optimizer.step``), with the fit's own optimizer;
* the parts of one more such step, each timed: propagation (``_training_propagation``), the
  rest of ``training_step`` (gather + BPR; with DaRec the heads' views and the objective's terms
  separately), ``EpochLosses.add``, ``zero_grad``, ``backward``, the Adam step;
* micro-benchmarks on the same tensors: the 3 forward products alone, the layer mean of
  LightGCN's forward (``out = x0 a0 + x1 a1 + ...``) alone, fused Adam alone over a copy of the
  embedding table with and without weight decay.

Medians over the repeats; then ``torch.profiler`` over ``--profile-steps`` manual steps (top
operators by self CPU time, per step). Ratios are within one run; absolute seconds depend on the
machine and its load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402  (the data, the data module, the trainer and the floor's adjacency)

clock = time.perf_counter


def load_before(tree: str):
    """``darec/backbones/graph.py`` of another tree (e.g. a clean clone of the code before a change), as its own module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("before_graph", Path(tree) / "darec/backbones/graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def code_of(model, before) -> None:
    """Within the block the module propagates with ``before``'s ``graph_embedding`` on ``before``'s adjacency
    (``before=None``: unchanged)."""
    if before is None:
        yield
        return
    import darec.module.step_views as step_views

    if not hasattr(model, "_before_graph"):
        pairs = model._train_pairs
        model._before_graph = before.normalized_adjacency(torch.stack([pairs[:, 0], pairs[:, 1] + model.num_users]), model.num_users + model.num_items)
    saved = step_views.graph_embedding, model._graph
    step_views.graph_embedding, model._graph = before.graph_embedding, model._before_graph
    try:
        yield
    finally:
        step_views.graph_embedding, model._graph = saved


def floor_adjacency(dm, num_nodes: int) -> torch.Tensor:
    """The CSR adjacency of ``scale.sparse_floor`` (the same construction)."""
    from torch_geometric.utils import to_torch_csr_tensor

    train = torch.as_tensor(dm.interactions.train)
    num_users = dm.interactions.num_users
    edge = torch.cat([torch.stack([train[:, 0], train[:, 1] + num_users]), torch.stack([train[:, 1] + num_users, train[:, 0]])], 1)
    degree = torch.bincount(edge[0], minlength=num_nodes).float().clamp(min=1)
    weight = degree[edge[0]].rsqrt() * degree[edge[1]].rsqrt()
    return to_torch_csr_tensor(edge, weight, size=(num_nodes, num_nodes))


@contextmanager
def timed_methods(obj, names: list[str], into: dict[str, float]):
    """Within the block, calls of ``obj.<name>`` add their seconds to ``into[name]`` (instance attributes, removed after)."""
    for name in names:
        original = getattr(obj, name)

        def wrapper(*args, _original=original, _name=name, **kwargs):
            start = clock()
            out = _original(*args, **kwargs)
            into[_name] = into.get(_name, 0.0) + clock() - start
            return out

        obj.__dict__[name] = wrapper
    try:
        yield
    finally:
        for name in names:
            obj.__dict__.pop(name, None)


def manual_step(model, optimizer, batch, idx: int) -> None:
    loss = model.training_step(batch, idx)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def step_parts(model, optimizer, batch, idx: int) -> dict[str, float]:
    """One manual step with each part timed (seconds)."""
    inner: dict[str, float] = {}
    wraps = [(model, ["_training_propagation", "_step_views"]), (model.epoch_losses, ["add"]), (model.objective, ["forward"])]
    with timed_methods(*wraps[0], inner), timed_methods(*wraps[1], inner), timed_methods(*wraps[2], inner):
        t0 = clock()
        loss = model.training_step(batch, idx)
        t1 = clock()
    optimizer.zero_grad()
    t2 = clock()
    loss.backward()
    t3 = clock()
    optimizer.step()
    t4 = clock()
    parts = {"propagation (forward)": inner.get("_training_propagation", 0.0)}
    if model.heads is not None:
        parts["heads: step views"] = inner.get("_step_views", 0.0)
    if len(model.objective):
        parts["objective terms"] = inner.get("forward", 0.0)
    parts["EpochLosses.add"] = inner.get("add", 0.0)
    parts["gather + BPR (rest of training_step)"] = (t1 - t0) - sum(parts.values())
    parts.update({"zero_grad": t2 - t1, "backward": t3 - t2, "Adam step": t4 - t3})
    return parts


def layer_mean_old(xs: list[torch.Tensor], alpha: torch.Tensor) -> torch.Tensor:
    """LightGCN's layer mean as PyG (and darec before issue 12) writes it: a new tensor per operation."""
    out = xs[0] * alpha[0]
    for i, x in enumerate(xs[1:], 1):
        out = out + x * alpha[i]
    return out


class Interleave(L.Callback):
    """Times Lightning's steps and, after each timed one, the floor, a manual step and its parts."""

    def __init__(self, adj, repeats: int, before=None, warmup: int = 2) -> None:
        self.adj, self.repeats, self.before, self.warmup = adj, repeats, before, warmup
        self.samples: dict[str, list[float]] = {}
        self.parts: list[dict[str, float]] = []
        self.parts_before: list[dict[str, float]] = []

    def add(self, name: str, seconds: float) -> None:
        self.samples.setdefault(name, []).append(seconds)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = clock()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        seconds = clock() - self._start
        if batch_idx < self.warmup or batch_idx >= self.warmup + self.repeats:
            return
        self.add("Lightning step", seconds)
        model, optimizer = pl_module, trainer.optimizers[0]
        x = torch.randn(self.adj.size(0), scale.EMBEDDING_DIM)
        start = clock()
        for _ in range(6):
            self.adj @ x
        self.add("floor: 6 products A @ X", clock() - start)
        from darec.backbones.graph import _product

        graph = model._graph_on_device()
        start = clock()
        for _ in range(6):
            _product(graph, x)
        self.add(f"tight floor: 6 products, the model's graph ({graph.col_indices().dtype}), darec's product", clock() - start)
        start = clock()
        manual_step(model, optimizer, batch, batch_idx)
        self.add("manual step", clock() - start)
        if self.before is not None:
            with code_of(model, self.before):
                start = clock()
                manual_step(model, optimizer, batch, batch_idx)
                self.add("manual step, code before", clock() - start)
                self.parts_before.append(step_parts(model, optimizer, batch, batch_idx))
        self.parts.append(step_parts(model, optimizer, batch, batch_idx))
        # micro-benchmarks on the model's own tensors
        table = model.backbone.embedding.weight.detach()
        with torch.no_grad():
            start = clock()
            xs = [table]
            for _ in range(scale.NUM_LAYERS):
                xs.append(_product(graph, xs[-1]))
            self.add("micro: 3 forward products (tight)", clock() - start)
            start = clock()
            layer_mean_old(xs, model.backbone.alpha)
            self.add("micro: layer mean, 4 mul + 3 add (forward)", clock() - start)
        for decay in (0.0, 2e-7):
            param = torch.nn.Parameter(table.clone())
            param.grad = torch.randn_like(param)
            adam = torch.optim.Adam([param], lr=1e-3, weight_decay=decay, fused=True)
            adam.step()  # the state is created in the first step
            start = clock()
            adam.step()
            self.add(f"micro: fused Adam over the table, weight_decay={decay:g}", clock() - start)


def settings(method: str):
    from darec.callbacks import ContrastiveAlignment, GlobalStructureAlignment, LocalStructureAlignment

    return {  # as in scale.measure_train
        "plain": ({}, []),
        "rlmrec_con": ({}, [ContrastiveAlignment(weight=0.5)]),
        "darec": ({"alpha": 0.01, "head_hidden_dim": 32},
                  [GlobalStructureAlignment(weight=0.01), LocalStructureAlignment(num_clusters=10, weight=0.01)]),
    }[method]  # fmt: skip


def profile(model, optimizer, batch, steps: int) -> dict:
    """``steps`` manual steps under torch.profiler: the top operators by self CPU time (seconds per step) and the table."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            manual_step(model, optimizer, batch, i)
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    top = {
        e.key: {"self": e.self_cpu_time_total / 1e6 / steps, "total": e.cpu_time_total / 1e6 / steps, "calls_per_step": e.count / steps}
        for e in rows[:18]
    }  # fmt: skip
    return {"top_ops_per_step": top, "table": prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=44)}


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(p[name] for p in samples) for name in samples[0]} if samples else {}


def measure(size: str, method: str, root: Path, seed: int, repeats: int, profile_steps: int, before=None) -> dict:
    from darec.module import DaRecModule

    directory, counts = scale.make_split_dir(size, root, seed)
    num_users, num_items = counts["users"], counts["items"]
    dm = scale.datamodule(directory, root, size, text=method != "plain")
    kwargs, callbacks = settings(method)
    L.seed_everything(0, verbose=False)
    model = DaRecModule(scale.lightgcn(num_users + num_items), **kwargs)
    dm.setup("fit")
    adj = floor_adjacency(dm, num_users + num_items)
    probe = Interleave(adj, repeats, before)
    profiled: dict = {}

    class Profile(L.Callback):  # a few manual steps under torch.profiler, at the end of the fit
        def on_train_end(self, trainer, pl_module) -> None:
            batch = next(iter(trainer.train_dataloader))
            profiled["profile"] = profile(pl_module, trainer.optimizers[0], batch, profile_steps)
            if before is not None:
                with code_of(pl_module, before):
                    profiled["profile_before"] = profile(pl_module, trainer.optimizers[0], batch, profile_steps)

    tr = scale.trainer(root, max_epochs=1, limit_train_batches=repeats + 2, limit_val_batches=0, callbacks=[*callbacks, probe, Profile()])
    tr.fit(model, datamodule=dm)
    med = {name: statistics.median(v) for name, v in probe.samples.items()}
    floor = med["floor: 6 products A @ X"]
    steps_per_epoch = -(-counts["train"] // scale.TRAIN_BATCH)
    ratios = {name: value / floor for name, value in med.items() if "step" in name}
    return {
        "size": size, "method": method, "repeats": repeats, "train_edges": counts["train"], "steps_per_epoch": steps_per_epoch,
        "median_seconds": med, "over_floor": ratios, "parts_median_seconds": medians(probe.parts),
        "parts_before_median_seconds": medians(probe.parts_before),
        "epoch_seconds_per_million_edges": med["Lightning step"] * steps_per_epoch / (counts["train"] / 1e6),
        "samples": probe.samples, "parts_samples": probe.parts, "parts_before_samples": probe.parts_before, **profiled,
    }  # fmt: skip


def report(r: dict) -> str:
    med, floor = r["median_seconds"], r["median_seconds"]["floor: 6 products A @ X"]
    step = med["manual step"]
    lines = [f"\n== {r['size']} / {r['method']}: median of {r['repeats']} interleaved repeats, torch threads {torch.get_num_threads()}",
             "| what | seconds | share of the manual step | x floor |", "| --- | --- | --- | --- |"]  # fmt: skip
    for name, value in med.items():
        if not name.startswith("micro"):
            lines.append(f"| {name} | {value:.4f} | {value / step:.0%} | {value / floor:.2f} |")
    for label, key in (("part", "parts_median_seconds"), ("part, code before", "parts_before_median_seconds")):
        parts = r[key]
        base = med["manual step" if label == "part" else "manual step, code before"] if parts else step
        for name, value in parts.items():
            lines.append(f"| {label}: {name} | {value:.4f} | {value / base:.0%} | {value / floor:.2f} |")
        if parts:
            total = sum(parts.values())
            lines.append(f"| {label}s, sum | {total:.4f} | {total / base:.0%} | {total / floor:.2f} |")
    for name, value in med.items():
        if name.startswith("micro"):
            lines.append(f"| {name} | {value:.4f} | {value / step:.0%} | {value / floor:.2f} |")
    lines.append(f"epoch estimate: {r['epoch_seconds_per_million_edges']:.1f} s per million training edges "
                 f"({r['steps_per_epoch']} steps x {med['Lightning step']:.4f} s / {r['train_edges'] / 1e6:.2f} M edges)")  # fmt: skip
    for key, label in (("profile", "current code"), ("profile_before", "code before")):
        if key in r:
            lines.append(f"torch.profiler, {r['method']}, {label}, top operators by self CPU time (all steps together):\n{r[key]['table']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["amazon"], choices=list(scale.SIZES))
    parser.add_argument("--methods", nargs="+", default=["plain", "darec"], choices=["plain", "rlmrec_con", "darec"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--profile-steps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default="/tmp/scale-data")
    parser.add_argument("--out", default="benchmarks/results/profile_scale_step.json")
    parser.add_argument("--before", help="a tree of the code before a change (e.g. a clean clone): its graph.py's "
                        "propagation and adjacency are timed interleaved with the current code's")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    before = load_before(args.before) if args.before else None
    root = Path(args.data_root)
    root.mkdir(parents=True, exist_ok=True)
    results = []
    for size in args.sizes:
        for method in args.methods:
            r = measure(size, method, root, args.seed, args.repeats, args.profile_steps, before)
            print(report(r), flush=True)
            results.append(r)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"torch_threads": torch.get_num_threads(), "torch": torch.__version__, "results": results}, indent=1))


if __name__ == "__main__":
    main()
