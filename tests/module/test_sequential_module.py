"""Tests of darec.module.SequentialModule: SASRec learns a next-item pattern; metric names; titles; checkpoints."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from darec.backbones import SASRec
from darec.data import InteractionLog, SequenceDataModule
from darec.module import SequentialModule

NUM_ITEMS = 60


def cyclic_log(num_users: int = 120, seed: int = 0) -> InteractionLog:
    """Every user walks the items in a fixed cycle (i -> i + 1 mod 60) from a random start: the
    next item is a deterministic function of the last one."""
    rng = np.random.default_rng(seed)
    users, items, stamps = [], [], []
    for user in range(num_users):
        start, length = rng.integers(NUM_ITEMS), rng.integers(8, 15)
        for t in range(length):
            users.append(f"u{user}")
            items.append(f"i{(start + t) % NUM_ITEMS:02d}")
            stamps.append(t)
    info = {f"i{k:02d}": {"title": f"Film {k % 30}"} for k in range(NUM_ITEMS)}  # pairs of items share a title
    return InteractionLog(users, items, timestamps=stamps, item_info=info)


def _trainer(tmp_path, epochs: int) -> L.Trainer:
    return L.Trainer(
        default_root_dir=tmp_path, max_epochs=epochs, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, enable_checkpointing=False,
    )  # fmt: skip


def test_sasrec_learns_a_deterministic_next_item_pattern(tmp_path):
    L.seed_everything(0)
    dm = SequenceDataModule.from_log(cyclic_log(), max_len=10, batch_size=32, eval_negatives=20, seed=0)
    model = SequentialModule(SASRec(dm.num_items, 32, max_len=10, dropout=0.1), lr=5e-3, ks=(1, 5), sampled_ks=(1, 5))
    trainer = _trainer(tmp_path, 12)
    trainer.fit(model, dm)
    assert {"val/full/ndcg@5", "val/sampled/ndcg@5", "train/loss"} <= set(trainer.callback_metrics)
    result = trainer.test(model, dm, verbose=False)[0]
    # chance: 1/60 for full ranking at 1, 1/21 for sampled ranking at 1
    assert result["test/full/hit_rate@1"] > 0.8
    assert result["test/sampled/hit_rate@1"] > 0.8
    assert set(result) == {
        *(f"test/full/{m}@{k}" for m in ("recall", "ndcg", "hit_rate") for k in (1, 5)),
        *(f"test/sampled/{m}@{k}" for m in ("hit_rate", "ndcg") for k in (1, 5)),
    }


def test_an_untrained_model_is_near_chance(tmp_path):
    L.seed_everything(0)
    dm = SequenceDataModule.from_log(cyclic_log(), max_len=10, eval_negatives=20, seed=0)
    model = SequentialModule(SASRec(dm.num_items, 32, max_len=10), ks=(1,), sampled_ks=(1,))
    result = _trainer(tmp_path, 1).test(model, dm, verbose=False)[0]
    assert result["test/full/hit_rate@1"] < 0.2 and result["test/sampled/hit_rate@1"] < 0.3


def test_loss_gradients_reach_the_item_table():
    model = SequentialModule(SASRec(num_items=5, embedding_dim=8, max_len=4, dropout=0.0))
    batch = {"seq": torch.tensor([[0, 1, 2, 3]]), "pos": torch.tensor([[0, 2, 3, 4]]), "neg": torch.tensor([[0, 5, 5, 1]])}
    model.loss(batch).backward()
    grad = model.backbone.items.weight.grad
    assert grad[[1, 2, 3, 4, 5]].abs().sum(1).gt(0).all() and grad[0].abs().sum() == 0


def test_item_init_titles_copies_the_title_embeddings_at_fit(tmp_path):
    class Toy:
        cache_key = {"kind": "toy-title-init"}

        def encode(self, texts):
            return torch.stack([torch.full((8,), float(len(t))) + torch.arange(8.0) for t in texts])

    dm = SequenceDataModule.from_log(cyclic_log(20), max_len=5, eval_negatives=5, title_encoder=Toy(), cache_dir=str(tmp_path))
    backbone = SASRec(dm.num_items, 8, max_len=5)
    model = SequentialModule(backbone, item_init="titles", ks=(1,), sampled_ks=(1,))
    trainer = L.Trainer(max_steps=0, logger=False, enable_progress_bar=False, enable_checkpointing=False, num_sanity_val_steps=0)
    trainer.fit(model, dm)
    table = backbone.item_embeddings().detach()
    assert torch.equal(table, dm.title_embeddings) and torch.all(table[0] == 0)
    # "Film 1" is the title of items i01 and i31: identical rows
    ids = dm.sequences.item_ids.tolist()
    assert torch.equal(table[ids.index("i01") + 1], table[ids.index("i31") + 1])


def test_item_init_titles_without_title_embeddings_is_an_error(tmp_path):
    dm = SequenceDataModule.from_log(cyclic_log(20), max_len=5, eval_negatives=5)
    model = SequentialModule(SASRec(dm.num_items, 8, max_len=5), item_init="titles")
    with pytest.raises(ValueError, match="title_encoder"):
        _trainer(tmp_path, 1).fit(model, dm)


def test_checkpoint_rebuilds_the_backbone(tmp_path):
    model = SequentialModule(SASRec(num_items=9, embedding_dim=8, max_len=4), lr=0.01)
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": L.__version__}, path)  # fmt: skip
    loaded = SequentialModule.load_from_checkpoint(path)
    assert isinstance(loaded.backbone, SASRec) and loaded.hparams.lr == 0.01
    assert torch.equal(loaded.backbone.item_embeddings(), model.backbone.item_embeddings())


def test_a_backbone_without_sequence_states_is_refused():
    with pytest.raises(TypeError, match="sequence_states"):
        SequentialModule(torch.nn.Linear(2, 2))
