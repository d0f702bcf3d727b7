"""PredictionWriter: top-k recommendations in raw ids, written atomically."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from darec.backbones import MatrixFactorization
from darec.callbacks import PredictionWriter
from darec.data import Interactions, RecDataModule
from darec.module import DaRecModule


from tests.module import conftest as _s  # the shared helpers of the module tests

_one_thread = _s._one_thread  # autouse: one intra-op thread for these tiny tensors
NUM_USERS, NUM_ITEMS = _s.NUM_USERS, _s.NUM_ITEMS
NUM_NODES = NUM_USERS + NUM_ITEMS
K = 7


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    model, dm, _ = _s.fit_mf(tmp_path_factory.mktemp("predict-fit"), predict_k=K)
    return model, dm


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_predictions_in_raw_ids_without_seen_items(tmp_path, fitted):
    model, dm = fitted
    output = tmp_path / "out" / "predictions.tsv"
    trainer = _s.make_trainer(tmp_path, callbacks=[PredictionWriter(output=str(output))])
    trainer.predict(model, datamodule=dm, return_predictions=False)
    assert output.is_file()
    assert output.read_text().splitlines()[0].split("\t") == ["user", "item", "rank", "score"]
    rows = _read(output)
    data = dm.interactions
    seen = {
        (data.user_ids[u], data.item_ids[i])
        for split in ("train", "valid", "test")
        for u, i in data.split(split)
    }
    by_user: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_user.setdefault(row["user"], []).append(row)
    assert set(by_user) == {f"u{k}" for k in range(NUM_USERS)}  # every user, raw ids
    for user, user_rows in by_user.items():
        assert [int(r["rank"]) for r in user_rows] == list(range(1, K + 1))
        assert all(r["item"].startswith("i") and r["item"][1:].isdigit() for r in user_rows)
        assert not any((user, r["item"]) in seen for r in user_rows)
        assert len({r["item"] for r in user_rows}) == K
        scores = [float(r["score"]) for r in user_rows]
        assert scores == sorted(scores, reverse=True)
    # the same ranking as recommend() and recommend_raw(), which mask every known item by default too
    items, _ = model.recommend([0], k=K)
    assert [r["item"] for r in by_user["u0"]] == [data.item_ids[i] for i in items[0].tolist()]
    raw_items, _ = model.recommend_raw(["u0", "u5"], k=K)
    assert raw_items.tolist() == [[r["item"] for r in by_user[user]] for user in ("u0", "u5")]
    # written atomically: nothing but the result in the folder
    assert sorted(p.name for p in output.parent.iterdir()) == ["predictions.tsv"]


def test_relative_output_goes_under_default_root_dir(tmp_path, fitted):
    model, dm = fitted
    trainer = _s.make_trainer(tmp_path, callbacks=[PredictionWriter(output="preds/p.tsv")])
    trainer.predict(model, datamodule=dm, return_predictions=False)
    assert (tmp_path / "preds" / "p.tsv").is_file()


def test_failed_write_leaves_old_file_and_no_temp_files(tmp_path, fitted, monkeypatch):
    model, dm = fitted
    output = tmp_path / "predictions.tsv"
    output.write_text("old\n")
    # An id map that breaks half-way through the file:
    monkeypatch.setattr(dm.interactions, "item_ids", dm.interactions.item_ids[:5])
    trainer = _s.make_trainer(tmp_path, callbacks=[PredictionWriter(output=str(output))])
    with pytest.raises(IndexError):
        trainer.predict(model, datamodule=dm, return_predictions=False)
    assert output.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["predictions.tsv"]


def test_users_with_few_unseen_items_get_fewer_rows(tmp_path):
    # user 0 has seen 4 of 5 items: one item is left to recommend, never a seen one
    data = Interactions(
        2,
        5,
        train=[[0, 0], [0, 1], [1, 0]],
        valid=[[0, 2], [1, 1]],
        test=[[0, 3], [1, 2]],
        user_ids=["alice", "bob"],
        item_ids=["a", "b", "c", "d", "e"],
    )
    dm = RecDataModule.from_interactions(data, text_encoder=None, batch_size=8, seed=0)
    model = DaRecModule(MatrixFactorization(7, 4), predict_k=3)
    output = tmp_path / "p.tsv"
    trainer = _s.make_trainer(tmp_path, max_epochs=1, callbacks=[PredictionWriter(output=str(output))])
    trainer.fit(model, datamodule=dm)
    trainer.predict(model, datamodule=dm, return_predictions=False)
    rows = _read(output)
    assert [(r["user"], r["item"], r["rank"]) for r in rows if r["user"] == "alice"] == [("alice", "e", "1")]
    assert sorted(r["item"] for r in rows if r["user"] == "bob") == ["d", "e"]
    # recommend() masks the same known items and pads such users with -1 / -inf
    items, scores = model.recommend([0], k=4)
    assert items[0].tolist() == [4, -1, -1, -1]
    assert torch.isfinite(scores[0, :1]).all() and (scores[0, 1:] == float("-inf")).all()
    # with the training items masked only, the held-out ones come back
    items, scores = model.recommend([0], k=4, exclude="train")
    assert set(items[0, :3].tolist()) == {2, 3, 4} and items[0, 3].item() == -1
    assert torch.isfinite(scores[0, :3]).all() and scores[0, 3].item() == float("-inf")
    raw_items, _ = model.recommend_raw(["alice"], k=10)  # k > 5 items: 5 columns, None where nothing is left
    assert raw_items.tolist() == [["e", None, None, None, None]]


def test_predict_exclude_train_masks_training_items_only(tmp_path, fitted):
    model, dm = fitted
    data = dm.interactions
    output = tmp_path / "train_only.tsv"
    model.hparams.predict_exclude = "train"
    try:
        trainer = _s.make_trainer(tmp_path, callbacks=[PredictionWriter(output=str(output))])
        trainer.predict(model, datamodule=dm, return_predictions=False)
    finally:
        model.hparams.predict_exclude = "known"
    rows = _read(output)
    train = {(data.user_ids[u], data.item_ids[i]) for u, i in data.train}
    held_out = {(data.user_ids[u], data.item_ids[i]) for u, i in np.concatenate([data.valid, data.test])}
    pairs = {(r["user"], r["item"]) for r in rows}
    assert not pairs & train
    assert pairs & held_out  # the fitted model ranks some held-out items in its top K
    items, _ = model.recommend_raw(["u0"], k=K, exclude="train")
    assert [r["item"] for r in rows if r["user"] == "u0"] == items[0].tolist()


def test_raw_ids_without_a_data_module_come_from_the_checkpoint(tmp_path):
    from torch.utils.data import DataLoader

    from darec.data.sampling import RankingUsers

    dm = _s.make_datamodule(text=False)
    trainer = _s.make_trainer(tmp_path, max_epochs=1)
    trainer.fit(DaRecModule(MatrixFactorization(NUM_NODES, 8), predict_k=3), datamodule=dm)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    model = DaRecModule.load_from_checkpoint(tmp_path / "model.ckpt")
    data = dm.interactions
    known = np.concatenate([data.train, data.valid, data.test])
    loader = DataLoader(RankingUsers(NUM_USERS, known, None, 16), batch_size=None)
    output = tmp_path / "plain.tsv"
    _s.make_trainer(tmp_path, callbacks=[PredictionWriter(output=str(output))]).predict(
        model, dataloaders=loader, return_predictions=False
    )
    rows = _read(output)
    assert {r["user"] for r in rows} == {f"u{k}" for k in range(NUM_USERS)}  # raw ids, from the checkpoint
    items, _ = model.recommend_raw(["u7"], k=3)
    assert [r["item"] for r in rows if r["user"] == "u7"] == items[0].tolist()
