"""Bit-identity check of training: every step's loss, the epoch means and the test metrics of the four methods.

Run it under two trees and compare the JSON files with ``==`` (no tolerance)::

    PYTHONPATH=/tmp/base python benchmarks/bit_identity.py --out /tmp/base.json
    python benchmarks/bit_identity.py --out /tmp/new.json --compare /tmp/base.json

The data are a small synthetic split (40 users x 60 items in 4 groups, random frozen text
embeddings), a LightGCN backbone and a fixed seed; DaRec uses the regularisers (alpha), a hidden
head width, a subsampled align batch and both structure alignments, RLMRec-Gen masks nodes, and
``darec_options`` switches on the method's open options.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch_geometric.nn.models import LightGCN

from darec.callbacks import ContrastiveAlignment, GenerativeAlignment, GlobalStructureAlignment, LocalStructureAlignment
from darec.data import Interactions, RecDataModule
from darec.module import DaRecModule

NUM_USERS, NUM_ITEMS, TEXT_DIM, GROUPS = 40, 60, 12, 4


def _interactions() -> Interactions:
    rng = np.random.default_rng(0)
    splits: dict[str, list[tuple[int, int]]] = {"train": [], "valid": [], "test": []}
    per_group = NUM_ITEMS // GROUPS
    for user in range(NUM_USERS):
        pool = np.arange((user % GROUPS) * per_group, (user % GROUPS + 1) * per_group)
        chosen = rng.choice(pool, 12, replace=False)
        splits["train"] += [(user, int(i)) for i in chosen[:8]]
        splits["valid"] += [(user, int(i)) for i in chosen[8:10]]
        splits["test"] += [(user, int(i)) for i in chosen[10:]]
    return Interactions(NUM_USERS, NUM_ITEMS, **{k: np.array(v) for k, v in splits.items()})


# name -> (DaRecModule settings, the alignment callbacks); "darec_options" switches on the open
# options: separate regulariser weights, uniformity on the shared parts, the batch L2, disentangled
# scoring, the KL global loss, per-side clustering and a weight warm-up.
SETTINGS = {
    "plain": ({}, lambda: []),
    "rlmrec_con": ({}, lambda: [ContrastiveAlignment(weight=0.5)]),
    "rlmrec_gen": ({}, lambda: [GenerativeAlignment(weight=0.5, mask_ratio=0.2)]),
    "darec": (
        {"alpha": 0.01, "head_hidden_dim": 16, "align_batch_size": 16},
        lambda: [GlobalStructureAlignment(weight=0.5), LocalStructureAlignment(num_clusters=3, weight=0.5)],
    ),
    "darec_options": (
        {"alpha": 0.01, "orthogonality_weight": 0.05, "uniformity_on_shared": True, "l2_on": "batch",
         "weight_decay": 1e-4, "score_with": "disentangled", "align_dim": 6},
        lambda: [GlobalStructureAlignment(weight=0.5, mode="kl", warmup_epochs=2),
                 LocalStructureAlignment(num_clusters=3, weight=0.5, clustering="per_side")],
    ),
}  # fmt: skip
METHODS = tuple(SETTINGS)


class _Record(L.Callback):
    def __init__(self) -> None:
        self.steps: list[float] = []
        self.epochs: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps.append(float(outputs["loss"]))

    def on_train_epoch_end(self, trainer, pl_module):
        self.epochs.append({k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith("train/")})


def run(method: str, root: Path, seed: int, epochs: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    user, item = root / "user.pt", root / "item.pt"
    torch.save(torch.randn(NUM_USERS, TEXT_DIM, generator=gen), user)
    torch.save(torch.randn(NUM_ITEMS, TEXT_DIM, generator=gen), item)
    L.seed_everything(seed, verbose=False)
    kwargs, callbacks = SETTINGS[method][0], SETTINGS[method][1]()
    model = DaRecModule(LightGCN(NUM_USERS + NUM_ITEMS, 8, num_layers=2), lr=0.01, **kwargs)
    text = {} if method == "plain" else {"user_embeddings": str(user), "item_embeddings": str(item)}
    dm = RecDataModule.from_interactions(_interactions(), batch_size=64, eval_batch_size=16, text_encoder=None, **text)
    record = _Record()
    trainer = L.Trainer(
        default_root_dir=str(root), max_epochs=epochs, logger=False, accelerator="cpu", devices=1,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        num_sanity_val_steps=0, callbacks=[*callbacks, record],
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    test = trainer.test(model, datamodule=dm, verbose=False)[0]
    return {"steps": record.steps, "epochs": record.epochs, "test": {k: float(v) for k, v in sorted(test.items())}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--compare", help="a JSON file of another tree: exit 1 unless every value is equal")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = {}
    for method in args.methods:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                results[f"{method}/seed{seed}"] = run(method, Path(tmp), seed, args.epochs)
    Path(args.out).write_text(json.dumps(results, indent=1))
    if args.compare is None:
        return 0
    other = json.loads(Path(args.compare).read_text())
    failed = False
    for key, value in results.items():
        same = other.get(key) == value
        failed |= not same
        steps = len(value["steps"])
        print(f"{key}: {'identical' if same else 'DIFFERENT'} ({steps} steps, test {value['test'].get('test/recall@20')})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
