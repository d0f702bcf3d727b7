"""Tests of darec.lane.PreferenceAttentionFusion: weights, gradients, and that preferences that name
the next items' genre make it beat the backbone alone (sampled HR@10, 1 + 100)."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from darec.backbones import SASRec
from darec.data import SequenceDataModule
from darec.lane import PreferenceAttentionFusion
from darec.module import SequentialModule
from tests.lane.conftest import GenreEncoder, genre_log, write_preferences


def _trainer(tmp_path, epochs: int) -> L.Trainer:
    return L.Trainer(
        default_root_dir=tmp_path, max_epochs=epochs, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, enable_checkpointing=False, check_val_every_n_epoch=1000,
    )  # fmt: skip


def _data(tmp_path, log, prefs, **kwargs) -> SequenceDataModule:
    return SequenceDataModule.from_log(
        log, max_len=10, batch_size=64, eval_negatives=100, seed=0, preferences=str(prefs),
        preference_encoder=GenreEncoder(), num_preferences=3, cache_dir=str(tmp_path), **kwargs,
    )  # fmt: skip


def test_preference_weights_have_one_row_per_user_summing_to_one():
    model = PreferenceAttentionFusion(SASRec(num_items=6, embedding_dim=8, max_len=4), preference_dim=5, num_heads=2).eval()
    model.set_preferences(torch.randn(4, 3, 5))
    batch = {"user": torch.tensor([3, 0, 1]), "seq": torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4], [0, 0, 0, 5]])}
    weights = model.preference_weights(batch)
    assert weights.shape == (3, 3) and torch.allclose(weights.sum(-1), torch.ones(3))
    assert torch.equal(weights, model.preference_weights(batch["seq"], batch["user"]))


def test_gradients_reach_the_backbone_and_the_attention():
    torch.manual_seed(0)
    model = PreferenceAttentionFusion(SASRec(num_items=6, embedding_dim=8, max_len=4, dropout=0.0), preference_dim=5,
                                      num_heads=2, dropout=0.0)  # fmt: skip
    model.set_preferences(torch.randn(2, 3, 5))
    batch = {"user": torch.tensor([0, 1]), "seq": torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]),
             "pos": torch.tensor([[0, 2, 3, 4], [2, 3, 4, 5]]), "neg": torch.tensor([[0, 6, 6, 6], [6, 6, 1, 1]])}  # fmt: skip
    model.loss(batch).backward()
    for name in ("backbone.items.weight", "backbone.blocks.0.self_attn.in_proj_weight", "fusion.query.weight",
                 "fusion.key.weight", "fusion.value.weight", "fusion.out.weight", "fusion.ffn.0.weight"):  # fmt: skip
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_users_preferences_change_the_scores():
    torch.manual_seed(0)
    model = PreferenceAttentionFusion(SASRec(num_items=6, embedding_dim=8, max_len=4), preference_dim=5, num_heads=2).eval()
    model.set_preferences(torch.randn(2, 3, 5))
    seq = torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]])
    scores = model.score_items(seq, torch.tensor([0, 1]))
    assert scores.shape == (2, 6) and not torch.allclose(scores[0], scores[1])


@pytest.fixture
def one_thread():
    """Small models train fastest on one thread (and CI machines are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_fusion_beats_the_backbone_when_preferences_name_the_genre(tmp_path, one_thread):
    log, genre_of = genre_log(signal=0.5)
    prefs = write_preferences(tmp_path / "prefs.jsonl", genre_of)
    results = {}
    for name in ("backbone", "lane"):
        L.seed_everything(0)
        dm = _data(tmp_path, log, prefs)
        backbone = SASRec(dm.num_items, 32, num_blocks=1, max_len=10, dropout=0.2)
        if name == "backbone":
            model = SequentialModule(backbone, lr=5e-3, ks=(10,), sampled_ks=(10,))
        else:
            model = PreferenceAttentionFusion(backbone, preference_dim=GenreEncoder.dim, num_heads=2, dropout=0.1,
                                              lr=5e-3, ks=(10,), sampled_ks=(10,))  # fmt: skip
        trainer = _trainer(tmp_path, 30)
        trainer.fit(model, dm)
        results[name] = trainer.test(model, dm, verbose=False)[0]["test/sampled/hit_rate@10"]
    # seed 0: about 0.25 for the backbone, 0.44 with the preferences (chance: 10 / 101)
    assert results["lane"] >= results["backbone"] + 0.10, results


def test_a_data_module_without_preferences_is_an_error(tmp_path):
    log, _ = genre_log(num_users=20)
    dm = SequenceDataModule.from_log(log, max_len=10, eval_negatives=5)
    model = PreferenceAttentionFusion(SASRec(dm.num_items, 8, max_len=10), preference_dim=16, num_heads=2, ks=(1,),
                                      sampled_ks=(1,))  # fmt: skip
    with pytest.raises(ValueError, match="preferences"):
        _trainer(tmp_path, 1).fit(model, dm)


def test_preferences_of_the_wrong_width_are_named():
    model = PreferenceAttentionFusion(SASRec(num_items=6, embedding_dim=8, max_len=4), preference_dim=5, num_heads=2)
    with pytest.raises(ValueError, match="preference_dim"):
        model.set_preferences(torch.randn(2, 3, 384))


def test_checkpoint_round_trip(tmp_path):
    model = PreferenceAttentionFusion(SASRec(num_items=6, embedding_dim=8, max_len=4), preference_dim=5, num_heads=2, dropout=0.3)
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": L.__version__}, path)  # fmt: skip
    loaded = PreferenceAttentionFusion.load_from_checkpoint(path)
    assert loaded.hparams.num_heads == 2 and loaded.hparams.dropout == 0.3 and loaded.fusion.preference_dim == 5
    assert torch.equal(loaded.fusion.query.weight, model.fusion.query.weight)


def test_predict_and_recommend_use_the_users_preferences(tmp_path):
    log, genre_of = genre_log(num_users=6)
    dm = _data(tmp_path, log, write_preferences(tmp_path / "prefs.jsonl", genre_of))
    torch.manual_seed(0)
    model = PreferenceAttentionFusion(SASRec(dm.num_items, 8, max_len=10), preference_dim=GenreEncoder.dim, num_heads=2,
                                      predict_k=4)  # fmt: skip
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False, enable_model_summary=False)
    out = trainer.predict(model, dm)  # setup gives the module the preferences and the sequences
    users = torch.cat([o["user"] for o in out])
    items, scores = torch.cat([o["item"] for o in out]), torch.cat([o["score"] for o in out])
    assert users.tolist() == list(range(6)) and items.shape == (6, 4)
    data = dm.sequences
    for user in range(6):
        assert not set(items[user].tolist()) & set(data.sequences[user].tolist()) and (items[user] > 0).all()
    model.eval()
    mine, my_scores = model.recommend(list(range(6)), k=4)
    assert torch.equal(mine, items) and torch.allclose(my_scores, scores)
    # by sequence, with the users whose preferences to use: the same as by user
    given = [data.sequences[u].tolist() for u in (1, 4)]
    assert torch.equal(model.recommend([1, 4], k=4, sequences=given)[0], items[[1, 4]])
    with pytest.raises(TypeError, match="needs the users of the sequences"):
        model.recommend(sequences=given)
