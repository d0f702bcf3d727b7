"""Tests of darec.module.SequentialModule: SASRec learns a next-item pattern; metric names; titles; checkpoints."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from darec.backbones import SASRec
from darec.data import InteractionLog, SequenceDataModule
from darec.data.sequence_datamodule import left_pad
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


# -- predict and recommend ------------------------------------------------------------------------
def _tiny(num_items: int = 12, max_len: int = 4) -> tuple[SequentialModule, SequenceDataModule]:
    """5 users over 12 items (one with 10 distinct items, one with a repeat), a random SASRec in eval mode."""
    from darec.data import UserSequences

    data = UserSequences(
        [np.array([1, 2, 3, 4, 5]), np.array([6, 7, 6, 8]), np.array([2, 9, 10]),
         np.arange(1, 11), np.array([12, 11, 3, 4, 5, 6])],
        num_items=num_items, user_ids=["ann", "bob", "cid", "dee", "eve"], item_ids=[f"i{k}" for k in range(1, 13)],
    )  # fmt: skip
    torch.manual_seed(0)
    model = SequentialModule(SASRec(num_items, 8, max_len=max_len, dropout=0.0), predict_k=3).eval()
    dm = SequenceDataModule.from_sequences(data, max_len=max_len, eval_batch_size=2)
    model.set_sequences(dm.sequences)
    return model, dm


def _predict(model: SequentialModule, dm: SequenceDataModule) -> dict[str, torch.Tensor]:
    outs = [model.predict_step(batch, k) for k, batch in enumerate(dm.predict_dataloader())]
    return {key: torch.cat([o[key] for o in outs]) for key in ("user", "item", "score")}


def test_predict_ranks_as_score_items_with_the_whole_sequence_masked():
    model, dm = _tiny()
    out = _predict(model, dm)
    data = dm.sequences
    assert out["user"].tolist() == [0, 1, 2, 3, 4] and out["item"].shape == out["score"].shape == (5, 3)
    for user in range(5):
        sequence = data.sequences[user]
        seq = torch.from_numpy(left_pad([sequence], 4))
        assert seq[0, -len(sequence[-4:]) :].tolist() == sequence[-4:].tolist()  # validation and test items too
        scores = model.score_items(seq)[0]
        scores[torch.from_numpy(np.unique(sequence)) - 1] = float("-inf")  # the naive reference
        order = torch.argsort(scores, descending=True)[:3]
        expected = [int(c) + 1 if torch.isfinite(scores[c]) else -1 for c in order]  # -1: nothing left
        items = out["item"][user].tolist()
        assert items == expected
        found = [i for i in items if i > 0]
        assert len(set(found)) == len(found) == (3 if user != 3 else 2)  # user 3 has 2 items left
        assert not set(found) & set(sequence.tolist()) and 0 not in items
        assert torch.allclose(out["score"][user][: len(found)], scores[torch.tensor(found) - 1])


def test_recommend_agrees_with_predict_and_fills_exhausted_rows():
    model, dm = _tiny()
    out = _predict(model, dm)
    items, scores = model.recommend([0, 1, 2, 3, 4], k=3)
    assert torch.equal(items, out["item"]) and torch.allclose(scores, out["score"])
    # by sequence: the same ranking as by user
    given = [dm.sequences.sequences[u].tolist() for u in (2, 4)]
    assert torch.equal(model.recommend(sequences=given, k=3)[0], out["item"][[2, 4]])
    assert torch.equal(model.recommend(sequences=torch.from_numpy(left_pad([np.array(given[0])], 4)), k=3)[0],
                       out["item"][[2]])  # fmt: skip
    # user 3 has 10 of the 12 items: two left, then -1 with score -inf; k above the catalogue is clamped
    items, scores = model.recommend([3], k=20)
    assert items.shape == (1, 12) and sorted(items[0, :2].tolist()) == [11, 12]
    assert (items[0, 2:] == -1).all() and torch.isinf(scores[0, 2:]).all()


def test_exclude_train_and_none():
    model, dm = _tiny()
    # user 0: train 1, 2, 3; validation 4 and test 5 may come back with exclude="train"
    items = model.recommend([0], k=12, exclude="train")[0][0].tolist()
    assert sorted(items[:9]) == [4, 5, 6, 7, 8, 9, 10, 11, 12] and items[9:] == [-1, -1, -1]
    everything = model.recommend([0], k=12, exclude=None)[0][0].tolist()
    assert sorted(everything) == list(range(1, 13))  # every item, never padding
    model.hparams.predict_exclude = "train"
    assert _predict(model, dm)["item"][0].tolist() == items[:3]


def test_bad_recommend_input_is_a_clear_error():
    model, _ = _tiny()
    with pytest.raises(ValueError, match="`k` must be a positive integer, got 0"):
        model.recommend([0], k=0)
    with pytest.raises(ValueError, match=r"unknown user id\(s\) \[5, 9\]: user ids must be in \[0, 5\)"):
        model.recommend([0, 5, 9])
    with pytest.raises(TypeError, match="internal user ids"):
        model.recommend(["ann"])
    with pytest.raises(TypeError, match="`users`.*or `sequences`"):
        model.recommend()
    with pytest.raises(ValueError, match="`exclude` must be"):
        model.recommend([0], exclude="seen")
    with pytest.raises(ValueError, match="exclude='train' needs `users`"):
        model.recommend(sequences=[[1, 2]], exclude="train")
    with pytest.raises(ValueError, match=r"must be in 1 \.\. 12"):
        model.recommend(sequences=[[1, 13]])
    with pytest.raises(ValueError, match="hold no item"):
        model.recommend(sequences=[[1], []])
    with pytest.raises(ValueError, match="predict_k"):
        SequentialModule(SASRec(5, 8, max_len=4), predict_k=0)
    with pytest.raises(ValueError, match="predict_exclude"):
        SequentialModule(SASRec(5, 8, max_len=4), predict_exclude="all")
    bare = SequentialModule(SASRec(12, 8, max_len=4))
    with pytest.raises(RuntimeError, match="no user sequences"):
        bare.recommend([0])
    with pytest.raises(ValueError, match="13 items but the model's item table has 12"):
        from darec.data import UserSequences

        bare.set_sequences(UserSequences([np.array([1, 2, 13])], num_items=13))


def test_predict_writes_raw_ids_and_checkpoints_keep_the_sequences(tmp_path):
    import csv

    from darec.callbacks import PredictionWriter
    from darec.module import read_checkpoint

    model, dm = _tiny()
    output = tmp_path / "predictions.tsv"
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[PredictionWriter(output=str(output))])  # fmt: skip
    # plain dataloaders: the raw ids come from the module's sequences (items from 1, 0 being padding)
    trainer.predict(model, dataloaders=dm.predict_dataloader(), return_predictions=False)
    with open(output, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    expected = model.recommend([0, 1, 2, 3, 4], k=3)[0]
    for user, raw in enumerate(["ann", "bob", "cid", "dee", "eve"]):
        assert [r["item"] for r in rows if r["user"] == raw] == [f"i{i}" for i in expected[user].tolist() if i > 0]
    # the checkpoint keeps sequences and raw ids: recommend() from it alone
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    assert read_checkpoint(path)["darec"]["sequences"]["user_ids"][0] == "ann"
    loaded = SequentialModule.load_from_checkpoint(path).eval()
    assert loaded.user_sequences.user_ids.tolist() == ["ann", "bob", "cid", "dee", "eve"]
    assert loaded.hparams.predict_k == 3
    assert torch.equal(loaded.recommend([0, 1, 2, 3, 4], k=3)[0], expected)
