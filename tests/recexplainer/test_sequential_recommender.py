"""SequentialRecommender: SASRec and LANE's fusion model as frozen targets, item ids shifted, and their checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from darec.backbones import SASRec
from darec.data import InteractionLog, SequenceDataModule
from darec.data.sequence_datamodule import left_pad
from darec.lane import PreferenceAttentionFusion
from darec.module import SequentialModule
from darec.recexplainer import AlignmentTaskBuilder, Recommender, SequentialRecommender, load_recommender
from tests.lane.conftest import GenreEncoder, genre_log, write_preferences
from tests.recexplainer.conftest import make_mf, save_checkpoint

HISTORIES = [[0, 1, 2], [8, 3], [5, 6, 7, 0, 1, 2]]  # item ids 0 .. 8 (the model's 1 .. 9)


def _sasrec(num_items: int = 9, dropout: float = 0.5, seed: int = 0) -> SequentialModule:
    torch.manual_seed(seed)
    return SequentialModule(SASRec(num_items=num_items, embedding_dim=8, max_len=4, dropout=dropout))


def _seq(histories, max_len=4) -> torch.Tensor:
    return torch.from_numpy(left_pad([np.asarray(h) + 1 for h in histories], max_len))


def _log(num_users: int = 8, num_items: int = 9, seed: int = 0) -> InteractionLog:
    rng = np.random.default_rng(seed)
    users, items, stamps = [], [], []
    for user in range(num_users):
        for t, item in enumerate(rng.permutation(num_items)[: rng.integers(4, 7)]):
            users.append(f"u{user}")
            items.append(f"i{item}")
            stamps.append(t)
    return InteractionLog(users, items, timestamps=stamps)


def test_scores_are_the_modules_scores_with_item_ids_shifted():
    module = _sasrec()
    target = SequentialRecommender(module, HISTORIES)
    users = torch.arange(3)
    assert torch.allclose(target.score(users), module.eval().score_items(_seq(HISTORIES)), atol=1e-6)
    assert torch.equal(target.item_embeddings(), module.backbone.item_embeddings()[1:])  # item i is the model's i + 1
    assert torch.allclose(target.score(users), target.user_embeddings(users) @ target.item_embeddings().T, atol=1e-6)
    assert torch.equal(target.score(users, torch.tensor([8, 0])), target.score(users)[:, [8, 0]])
    assert (target.num_users, target.num_items, target.dim, target.max_len) == (3, 9, 8, 4)
    assert isinstance(target, Recommender)


def test_only_the_latest_max_len_items_are_encoded():
    target = SequentialRecommender(_sasrec(), [[5, 6, 7, 0, 1, 2], [7, 0, 1, 2]])
    first, second = target.user_embeddings(torch.tensor([0, 1]))
    assert torch.allclose(first, second)


def test_dropout_stays_off_when_a_parent_trains():
    module = _sasrec(dropout=0.5)
    target = SequentialRecommender(module, HISTORIES)
    parent = nn.ModuleDict({"target": target, "connector": nn.Linear(8, 4)}).train()
    assert target.training and not module.training and not module.backbone.dropout.training
    users = torch.arange(3)
    assert torch.equal(target.user_embeddings(users), target.user_embeddings(users))  # no dropout noise
    assert not any(p.requires_grad for p in module.parameters())
    out = target.user_embeddings(users)
    assert not out.requires_grad and not torch.is_inference(out)
    parent["connector"](out).sum().backward()
    assert module.backbone.items.weight.grad is None


def test_lanes_fusion_model_encodes_with_the_users_preferences():
    torch.manual_seed(0)
    module = PreferenceAttentionFusion(SASRec(num_items=9, embedding_dim=8, max_len=4), preference_dim=5, num_heads=2)
    module.set_preferences(torch.randn(3, 2, 5))
    target = SequentialRecommender(module, HISTORIES)
    users = torch.arange(3)
    assert torch.allclose(target.score(users), module.eval().score_items(_seq(HISTORIES), users), atol=1e-6)
    before = target.score(users)
    module.set_preferences(torch.randn(3, 2, 5))  # other preferences, other user vectors
    assert not torch.allclose(target.score(users), before, atol=1e-3)
    module.set_preferences(torch.randn(2, 2, 5))
    with pytest.raises(ValueError, match="preferences for 2 users but there are 3 histories"):
        SequentialRecommender(module, HISTORIES)


def test_bad_histories_are_named():
    module = _sasrec()
    with pytest.raises(ValueError, match=r"1 user\(s\) have an empty history \(e\.g\. users \[1\]\)"):
        SequentialRecommender(module, [[0], []])
    with pytest.raises(ValueError, match=r"outside 0 \.\. 8 \(the model's 9 items\), e\.g\. user 1: 0 \.\. 9"):
        SequentialRecommender(module, [[0], [0, 9]])
    target = SequentialRecommender(module, HISTORIES)
    with pytest.raises(ValueError, match=r"user ids must be in \[0, 3\), got 1\.\.3"):
        target.user_embeddings(torch.tensor([1, 3]))
    with pytest.raises(TypeError, match="wraps a darec SequentialModule"):
        SequentialRecommender(nn.Linear(2, 2), HISTORIES)


def test_from_checkpoint_encodes_the_training_sequences(tmp_path):
    dm = SequenceDataModule.from_log(_log(), max_len=4)
    data = dm.sequences
    module = _sasrec(num_items=data.num_items)
    path = save_checkpoint(module, tmp_path / "sasrec.ckpt")
    target = load_recommender(path, dm)
    assert isinstance(target, SequentialRecommender) and type(target.module) is SequentialModule
    histories = [data.train_sequence(u) - 1 for u in range(data.num_users)]
    assert target.histories == [h.tolist() for h in histories]
    users = torch.arange(data.num_users)
    assert torch.allclose(target.score(users), module.eval().score_items(_seq(histories)), atol=1e-6)
    test = SequentialRecommender.from_checkpoint(path, dm, stage="test")
    assert test.histories[0] == (data.history(0, "test") - 1).tolist()
    catalog = [f"Item {raw}" for raw in data.item_ids]
    tasks = AlignmentTaskBuilder(target, catalog, target.histories, "behavior", tasks=["next_item"]).build()
    scores = target.score(users).numpy()
    for task in tasks:
        masked = scores[task.user].copy()
        masked[target.histories[task.user]] = -np.inf
        assert task.answer_items == (int(np.argmax(masked)),)


def test_a_checkpoint_with_another_item_count_is_refused(tmp_path):
    dm = SequenceDataModule.from_log(_log(num_items=9), max_len=4)
    path = save_checkpoint(_sasrec(num_items=12), tmp_path / "sasrec.ckpt")
    with pytest.raises(ValueError, match=r"sasrec.ckpt does not match the data: the checkpoint has 12 items, the data 9"):
        load_recommender(path, dm)
    with pytest.raises(ValueError, match="`stage` must be 'fit', 'validate' or 'test'"):
        SequentialRecommender.from_checkpoint(path, dm, stage="predict")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SequentialRecommender.from_checkpoint(tmp_path / "none.ckpt", dm)


def test_a_darec_checkpoint_is_not_a_sequential_one(tmp_path):
    dm = SequenceDataModule.from_log(_log(), max_len=4)
    path = save_checkpoint(make_mf(), tmp_path / "mf.ckpt")
    with pytest.raises(ValueError, match=r"is a DaRecModule checkpoint \(users x items\)"):
        load_recommender(path, dm)


def test_a_fusion_checkpoint_gets_the_datas_preferences(tmp_path):
    log, genre_of = genre_log(num_users=12)
    dm = SequenceDataModule.from_log(
        log, max_len=6, preferences=str(write_preferences(tmp_path / "prefs.jsonl", genre_of)),
        preference_encoder=GenreEncoder(), num_preferences=3, cache_dir=str(tmp_path),
    )  # fmt: skip
    torch.manual_seed(0)
    module = PreferenceAttentionFusion(SASRec(dm.num_items, 16, max_len=6), preference_dim=GenreEncoder.dim, num_heads=2)
    path = save_checkpoint(module, tmp_path / "lane.ckpt")
    target = load_recommender(path, dm)
    assert type(target.module) is PreferenceAttentionFusion
    module.set_preferences(dm.preference_embeddings)
    data = dm.sequences
    users = torch.arange(data.num_users)
    expected = module.eval().score_items(_seq([data.train_sequence(u) - 1 for u in range(data.num_users)], 6), users)
    assert torch.allclose(target.score(users), expected, atol=1e-5)
