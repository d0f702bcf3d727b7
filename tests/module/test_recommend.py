"""recommend(), recommend_raw() and predict: one masking default, raw ids from a checkpoint alone, shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darec.backbones import MatrixFactorization
from darec.data import Interactions, RecDataModule
from darec.module import DaRecModule
from tests.module import conftest as _s

_one_thread = _s._one_thread  # autouse: one intra-op thread for these tiny tensors
NUM_USERS, NUM_ITEMS = _s.NUM_USERS, _s.NUM_ITEMS
NUM_NODES = NUM_USERS + NUM_ITEMS


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A matrix factorisation fitted on the synthetic data, and its checkpoint."""
    root = tmp_path_factory.mktemp("recommend")
    model, dm, trainer = _s.fit_mf(root, predict_k=NUM_ITEMS)
    path = root / "model.ckpt"
    trainer.save_checkpoint(path)
    return {"model": model, "dm": dm, "data": dm.interactions, "path": path, "root": root}


def _pairs_of(rows: np.ndarray, user: int) -> set[int]:
    return {int(i) for u, i in rows if u == user}


def test_recommend_masks_every_known_item_by_default(fitted):
    model, data = fitted["model"], fitted["data"]
    items, scores = model.recommend(torch.arange(NUM_USERS), k=NUM_ITEMS)
    known = np.concatenate([data.train, data.valid, data.test])
    for user in range(NUM_USERS):
        allowed = NUM_ITEMS - len(_pairs_of(known, user))
        row = items[user].tolist()
        assert not set(row[:allowed]) & _pairs_of(known, user)  # neither train nor valid nor test items
        assert row[allowed:] == [-1] * (NUM_ITEMS - allowed)  # then padding
        assert (scores[user, allowed:] == float("-inf")).all()


def test_recommend_and_predict_share_the_default(fitted):
    model, dm = fitted["model"], fitted["dm"]
    batches = _s.make_trainer(fitted["root"]).predict(model, datamodule=dm)
    predicted = torch.cat([b["item"] for b in batches])
    users = torch.cat([b["user"] for b in batches])
    items, _ = model.recommend(users, k=model.hparams.predict_k)
    assert torch.equal(items.cpu(), predicted)


def test_train_only_masking_stays_available(fitted):
    model, data = fitted["model"], fitted["data"]
    items, _ = model.recommend(torch.arange(NUM_USERS), k=20, exclude="train")
    held_out = np.concatenate([data.valid, data.test])
    hits = 0
    for user in range(NUM_USERS):
        row = set(items[user].tolist())
        assert not row & _pairs_of(data.train, user)
        hits += len(row & _pairs_of(held_out, user))
    assert hits > 0  # held-out items are allowed again, and the fitted model ranks some of them high
    with pytest.warns(FutureWarning, match="exclude_seen"):
        old, _ = model.recommend(torch.arange(NUM_USERS), k=20, exclude_seen=True)
    assert torch.equal(old, items)


def test_recommend_rejects_bad_arguments(fitted):
    model = fitted["model"]
    with pytest.raises(ValueError, match="`exclude` must be 'known', 'train' or None"):
        model.recommend([0], exclude="seen")
    with pytest.raises(ValueError, match="`k` must be a positive integer"):
        model.recommend([0], k=0)
    with pytest.raises(ValueError, match="`predict_exclude`"):
        DaRecModule(MatrixFactorization(NUM_NODES, 8), predict_exclude="all")


@pytest.mark.parametrize("exclude", ["known", "train", None])
def test_k_beyond_the_catalogue_gives_num_items_columns(fitted, exclude):
    model = fitted["model"]
    items, scores = model.recommend([0, 1, 2], k=NUM_ITEMS + 25, exclude=exclude)
    assert items.shape == scores.shape == (3, NUM_ITEMS)
    assert "two ``(B, min(k, num_items))`` tensors" in DaRecModule.recommend.__doc__  # as documented
    raw, raw_scores = model.recommend_raw(["u0", "u1", "u2"], k=NUM_ITEMS + 25, exclude=exclude)
    assert raw.shape == raw_scores.shape == (3, NUM_ITEMS)


def test_known_items_and_raw_ids_come_back_from_the_checkpoint(fitted):
    model, data = fitted["model"], fitted["data"]
    loaded = DaRecModule.load_from_checkpoint(fitted["path"])  # no data module
    users = torch.arange(NUM_USERS)
    for exclude in ("known", "train", None):
        assert torch.equal(loaded.recommend(users, k=15, exclude=exclude)[0], model.recommend(users, k=15, exclude=exclude)[0])
    # the held-out pairs are masked, never part of the graph
    assert torch.equal(loaded._train_pairs, torch.from_numpy(data.train))
    assert loaded._graph._nnz() == 2 * len(data.train)
    assert loaded.user_ids.tolist() == data.user_ids.tolist()
    assert loaded.item_ids.tolist() == data.item_ids.tolist()


def test_recommend_raw_translates_both_ways(fitted):
    loaded = DaRecModule.load_from_checkpoint(fitted["path"])
    data = fitted["data"]
    raw, scores = loaded.recommend_raw(["u3", "u0"], k=5)
    items, expected_scores = loaded.recommend([3, 0], k=5)
    assert isinstance(raw, np.ndarray) and raw.dtype == object and raw.shape == (2, 5)
    assert raw.tolist() == [[data.item_ids[i] for i in row] for row in items.tolist()]
    torch.testing.assert_close(scores, expected_scores)


def test_recommend_raw_compares_ids_as_strings(tmp_path):
    data = Interactions(
        3, 4, train=[[0, 0], [1, 1], [2, 3]], valid=[[1, 0]], test=[[0, 2]], user_ids=[196, 186, 22], item_ids=[242, 302, 377, 51]
    )
    model = DaRecModule(MatrixFactorization(7, 4), predict_k=2)
    _s.make_trainer(tmp_path, max_epochs=1).fit(model, datamodule=RecDataModule.from_interactions(data, text_encoder=None))
    by_int, _ = model.recommend_raw([196], k=4)
    by_str, _ = model.recommend_raw(["196"], k=4)
    assert by_int.tolist() == by_str.tolist() and set(by_int[0, :2]) == {"302", "51"}
    assert by_int[0, 2:].tolist() == [None, None]  # items 242 (train) and 377 (test) are known


def test_recommend_raw_without_id_maps_says_so():
    model = DaRecModule(MatrixFactorization(7, 4), num_users=3, num_items=4)
    model.set_graph(torch.tensor([[0, 0], [1, 1], [2, 3]]))
    with pytest.raises(RuntimeError, match="raw ids are unknown"):
        model.recommend_raw(["0"])
    model.set_graph(torch.tensor([[0, 0], [1, 1], [2, 3]]), user_ids=["a", "b", "c"], item_ids=list("wxyz"))
    assert model.recommend_raw(["a"], k=1)[0].shape == (1, 1)
    with pytest.raises(TypeError, match="sequence of raw user ids"):
        model.recommend_raw("a")  # one string is not a list of users
