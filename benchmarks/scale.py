"""Scale benchmark: evaluation, cluster refresh and training steps against their arithmetic floors.

Usage::

    python benchmarks/scale.py --sizes small 10x amazon --what eval,cluster,train-steps \\
        --out benchmarks/results/scale.json

Seeded synthetic power-law data (Zipf-like user degrees and item popularity, at least 5 positives
per user, split 3:1:1 per user) at three sizes: ``small`` (ML-100K-like), ``10x`` and ``amazon``
(Amazon-Book size: 52,643 users, 91,599 items, ~2.98 M interactions), written with
:func:`darec.data.write_split_dir` and read back by :class:`darec.data.RecDataModule`, with random
384-d text embeddings as ``.pt`` files. Everything runs in this one process, one size after the
other, so the ratios (measured / floor) are comparable; absolute seconds depend on the machine.

Per size:

* ``eval``: one ``trainer.validate`` pass of a fresh LightGCN (32-d, 3 layers, random weights),
  against the *dense-product floor*: ``U_b @ I.T`` for every evaluation batch of the same size
  (and, separately, one ``torch.topk`` per batch on that product);
* ``cluster``: one ``LocalStructureAlignment.cluster`` (K = 10, from scratch) on a DaRec module
  whose heads are built (after its timed steps);
* ``train-steps``: seconds per training step of plain LightGCN, RLMRec-Con and DaRec (median of
  ``--steps`` timed steps after 2 warm-up steps, batch 4096), the epoch estimate
  ``steps_per_epoch x s/step``, and the sparse-product floor of a step: 6 products
  ``A @ X`` (3 layers, forward and backward) timed on the same adjacency.

Peak RSS (``resource.getrusage``) is recorded after each phase.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

SIZES = {  # users, items, interactions
    "small": (943, 1682, 100_000),
    "10x": (9_430, 16_820, 1_000_000),
    "amazon": (52_643, 91_599, 2_984_108),
}
EMBEDDING_DIM, NUM_LAYERS, TEXT_DIM, EVAL_BATCH, TRAIN_BATCH = 32, 3, 384, 1024, 4096


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def power_law_pairs(num_users: int, num_items: int, total: int, seed: int) -> np.ndarray:
    """``(E, 2)`` unique pairs: Zipf-like user degrees (>= 5) summing to about ``total``, items drawn by Zipf-like popularity."""
    rng = np.random.default_rng(seed)
    raw = rng.pareto(1.2, num_users) + 1.0
    cap, scale = num_items // 5, total / raw.sum()
    for _ in range(20):  # rescale the uncapped users until the capped degrees sum to about `total`
        degree = np.clip(np.round(raw * scale), 5, cap).astype(np.int64)
        scale *= 1 + (total - degree.sum()) / max(int(degree[(degree > 5) & (degree < cap)].sum()), 1)
    degree = np.clip(np.round(raw * scale), 5, cap).astype(np.int64)
    popularity = 1.0 / np.arange(1, num_items + 1) ** 0.8
    popularity = rng.permutation(popularity / popularity.sum())
    have = np.zeros(num_users, dtype=np.int64)
    keys = np.empty(0, dtype=np.int64)
    while True:
        need = degree - have
        if need.sum() == 0:
            break
        users = np.repeat(np.arange(num_users), need + need // 4 + 1)
        items = rng.choice(num_items, size=len(users), p=popularity)
        keys = np.unique(np.concatenate([keys, users * num_items + items]))
        users_of = keys // num_items
        # keep at most degree[u] pairs per user (a random subset: keys are in item order within a user)
        order = np.lexsort((rng.random(len(keys)), users_of))
        keys, users_of = keys[order], users_of[order]
        start = np.searchsorted(users_of, np.arange(num_users))
        rank = np.arange(len(keys)) - start[users_of]
        keys = np.sort(keys[rank < degree[users_of]])
        have = np.bincount(keys // num_items, minlength=num_users)
    return np.stack([keys // num_items, keys % num_items], axis=1)


def make_split_dir(size: str, root: Path, seed: int) -> tuple[Path, dict]:
    from darec.data import Interactions, write_split_dir

    if (root / f"{size}_item.pt").is_file() and (root / size / "train.tsv").is_file():  # made by an earlier run
        counts = json.loads((root / f"{size}_counts.json").read_text())
        return root / size, counts | {"reused": True}  # generate_seconds is then only the reading of the counts
    num_users, num_items, total = SIZES[size]
    pairs = power_law_pairs(num_users, num_items, total, seed)
    rng = np.random.default_rng(seed + 1)
    order = np.lexsort((rng.random(len(pairs)), pairs[:, 0]))
    pairs = pairs[order]
    counts = np.bincount(pairs[:, 0], minlength=num_users)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(pairs)) - start[pairs[:, 0]]
    fraction = rank / counts[pairs[:, 0]]
    splits = {"train": pairs[fraction < 0.6], "valid": pairs[(fraction >= 0.6) & (fraction < 0.8)], "test": pairs[fraction >= 0.8]}
    data = Interactions(num_users, num_items, **splits)
    directory = root / size
    write_split_dir(data, directory, overwrite=True)
    gen = torch.Generator().manual_seed(seed)
    torch.save(torch.randn(num_users, TEXT_DIM, generator=gen), root / f"{size}_user.pt")
    torch.save(torch.randn(num_items, TEXT_DIM, generator=gen), root / f"{size}_item.pt")
    counts = {name: len(p) for name, p in splits.items()} | {"users": num_users, "items": num_items}
    (root / f"{size}_counts.json").write_text(json.dumps(counts))
    return directory, counts


def datamodule(directory: Path, root: Path, size: str, text: bool):
    from darec.data import RecDataModule

    extra = {"user_embeddings": str(root / f"{size}_user.pt"), "item_embeddings": str(root / f"{size}_item.pt")} if text else {}
    return RecDataModule(str(directory), text_encoder=None, batch_size=TRAIN_BATCH, eval_batch_size=EVAL_BATCH, seed=0, **extra)


def trainer(root: Path, **kwargs) -> L.Trainer:
    return L.Trainer(
        default_root_dir=str(root), logger=False, accelerator="cpu", devices=1, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0, **kwargs,
    )  # fmt: skip


def lightgcn(num_nodes: int):
    from torch_geometric.nn.models import LightGCN

    return LightGCN(num_nodes, EMBEDDING_DIM, num_layers=NUM_LAYERS)


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_eval(directory: Path, root: Path, size: str) -> dict:
    from darec.module import DaRecModule

    num_users, num_items, _ = SIZES[size]
    dm = datamodule(directory, root, size, text=False)
    L.seed_everything(0, verbose=False)
    model = DaRecModule(lightgcn(num_users + num_items))
    tr = trainer(root)
    tr.validate(model, datamodule=dm, verbose=False)  # warm-up (reads the data, builds the graph)
    start = time.perf_counter()
    metrics = tr.validate(model, datamodule=dm, verbose=False)[0]
    seconds = time.perf_counter() - start
    # the floor: the same products on the same embedding, batch by batch, and a top-k of each
    with torch.no_grad():
        emb = model()
    users = dm.val_dataloader().dataset.user_ids
    user_emb, item_emb = emb[:num_users], emb[num_users:]

    def products(topk: bool) -> None:
        for b in range(0, len(users), EVAL_BATCH):
            scores = user_emb[users[b : b + EVAL_BATCH]] @ item_emb.T
            if topk:
                scores.topk(20, dim=1)

    with torch.no_grad():
        forward = best_of(lambda: model(), 2)
        product = best_of(lambda: products(False), 2)
        product_topk = best_of(lambda: products(True), 2)
    return {
        "validation_seconds": seconds, "eval_users": len(users), "forward_seconds": forward,
        "dense_product_floor_seconds": product, "product_plus_topk_seconds": product_topk,
        "ratio_to_dense_floor": seconds / product, "ratio_to_product_topk_forward": seconds / (product_topk + forward),
        "val_recall@20": float(metrics["val/recall@20"]), "peak_rss_gib": peak_rss_gib(),
    }  # fmt: skip


class StepTimer(L.Callback):
    def __init__(self) -> None:
        self.steps: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps.append(time.perf_counter() - self._start)


def sparse_floor(dm, num_nodes: int) -> float:
    """Seconds of one ``A @ X`` with the normalised symmetric adjacency of the training graph (``X``: (N, 32))."""
    from torch_geometric.utils import to_torch_csr_tensor

    train = torch.as_tensor(dm.interactions.train)
    num_users = dm.interactions.num_users
    edge = torch.cat([torch.stack([train[:, 0], train[:, 1] + num_users]), torch.stack([train[:, 1] + num_users, train[:, 0]])], 1)
    degree = torch.bincount(edge[0], minlength=num_nodes).float().clamp(min=1)
    weight = degree[edge[0]].rsqrt() * degree[edge[1]].rsqrt()
    adj = to_torch_csr_tensor(edge, weight, size=(num_nodes, num_nodes))
    x = torch.randn(num_nodes, EMBEDDING_DIM)
    return best_of(lambda: adj @ x, 5)


def measure_train(directory: Path, root: Path, size: str, method: str, steps: int) -> tuple[dict, object]:
    from darec.callbacks import (
        ContrastiveAlignment,
        GlobalStructureAlignment,
        LocalStructureAlignment,
    )
    from darec.module import DaRecModule

    num_users, num_items, _ = SIZES[size]
    settings = {
        "plain": ({}, []),
        "rlmrec_con": ({}, [ContrastiveAlignment(weight=0.5)]),
        "darec": ({"alpha": 0.01, "head_hidden_dim": 32}, [GlobalStructureAlignment(weight=0.01), LocalStructureAlignment(num_clusters=10, weight=0.01)]),
    }
    kwargs, callbacks = settings[method]
    dm = datamodule(directory, root, size, text=method != "plain")
    L.seed_everything(0, verbose=False)
    model = DaRecModule(lightgcn(num_users + num_items), **kwargs)
    timer = StepTimer()
    tr = trainer(root, max_epochs=1, limit_train_batches=steps + 2, limit_val_batches=0, callbacks=[*callbacks, timer])
    tr.fit(model, datamodule=dm)
    per_step = statistics.median(timer.steps[2:])
    steps_per_epoch = -(-len(dm.interactions.train) // TRAIN_BATCH)
    out = {"seconds_per_step": per_step, "timed_steps": len(timer.steps) - 2, "steps_per_epoch": steps_per_epoch,
           "epoch_estimate_seconds": per_step * steps_per_epoch, "peak_rss_gib": peak_rss_gib()}  # fmt: skip
    local = next((c for c in callbacks if isinstance(c, LocalStructureAlignment)), None)
    return out, (model, local, dm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["small", "10x"], choices=list(SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--what", default="eval,cluster,train-steps")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per method (after 2 warm-up steps)")
    parser.add_argument("--out", default="benchmarks/results/scale.json")
    parser.add_argument("--data-root", help="keep the generated data here and reuse it in later runs (default: a temporary folder)")
    args = parser.parse_args()
    what = set(args.what.split(","))

    results = {"host": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                        "eval_batch": EVAL_BATCH, "train_batch": TRAIN_BATCH, "embedding_dim": EMBEDDING_DIM}, "sizes": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data_root or tmp)
        root.mkdir(parents=True, exist_ok=True)
        for size in args.sizes:
            start = time.perf_counter()
            directory, counts = make_split_dir(size, root, args.seed)
            entry: dict = {"counts": counts, "generate_seconds": time.perf_counter() - start}
            print(size, counts, flush=True)
            if "eval" in what:
                entry["eval"] = measure_eval(directory, root, size)
                print(size, "eval", entry["eval"], flush=True)
            if "train-steps" in what or "cluster" in what:
                methods = ["plain", "rlmrec_con", "darec"] if "train-steps" in what else ["darec"]
                entry["train"] = {}
                for method in methods:
                    out, (model, local, dm) = measure_train(directory, root, size, method, args.steps)
                    entry["train"][method] = out
                    print(size, method, out, flush=True)
                    if method == "plain" and "train-steps" in what:
                        floor = 6 * sparse_floor(dm, dm.interactions.num_users + dm.interactions.num_items)
                        entry["sparse_step_floor_seconds"] = floor
                    if local is not None and "cluster" in what:
                        times = []
                        for _ in range(3):
                            local.centres.clear()  # from scratch, as the first refresh
                            t0 = time.perf_counter()
                            local.cluster(model)
                            times.append(time.perf_counter() - t0)
                        entry["cluster_refresh_seconds"] = min(times)
                        entry["cluster_points"] = dm.interactions.num_users + dm.interactions.num_items
                        print(size, "cluster", min(times), flush=True)
                if "sparse_step_floor_seconds" in entry:
                    for out in entry["train"].values():
                        out["ratio_to_sparse_floor"] = out["seconds_per_step"] / entry["sparse_step_floor_seconds"]
            entry["peak_rss_gib"] = peak_rss_gib()
            results["sizes"][size] = entry
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
