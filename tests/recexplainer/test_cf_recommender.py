"""CFRecommender: a DaRecModule (MF, LightGCN with DaRec alignment) as a frozen target, and its checkpoint checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch_geometric.nn.models import LightGCN

from darec.backbones import MatrixFactorization
from darec.callbacks import GlobalStructureAlignment
from darec.data import Interactions, RecDataModule
from darec.module import DaRecModule
from darec.module.checkpoint import CheckpointError
from darec.recexplainer import AlignmentTaskBuilder, CFRecommender, Recommender, load_recommender
from tests.module import conftest as _s
from tests.recexplainer.conftest import make_mf as _mf
from tests.recexplainer.conftest import save_checkpoint

NUM_USERS, NUM_ITEMS = _s.NUM_USERS, _s.NUM_ITEMS
NUM_NODES = NUM_USERS + NUM_ITEMS


@pytest.fixture(scope="module")
def darec_lightgcn(tmp_path_factory):
    """LightGCN with DaRec's heads, scoring with the disentangled parts, fitted for one epoch; its checkpoint."""
    root = tmp_path_factory.mktemp("darec-lightgcn")
    torch.manual_seed(0)
    model = DaRecModule(LightGCN(NUM_NODES, 8, num_layers=2), alpha=0.01, head_hidden_dim=8, score_with="disentangled")
    dm = _s.make_datamodule(root)
    trainer = _s.make_trainer(root, max_epochs=1, callbacks=[GlobalStructureAlignment(weight=0.1)])
    trainer.fit(model, datamodule=dm)
    path = root / "darec.ckpt"
    trainer.save_checkpoint(path)
    return model.eval(), dm, path


def test_scores_are_the_modules_ranking_scores():
    model = _mf()
    target = CFRecommender(model)
    users = torch.tensor([0, 5, 39])
    items, scores = model.recommend(users, k=NUM_ITEMS, exclude=None)
    assert torch.allclose(target.score(users).gather(1, items), scores)
    assert torch.allclose(target.score(users), target.user_embeddings(users) @ target.item_embeddings().T)
    table = model.backbone.embedding.weight
    assert torch.equal(target.item_embeddings(), table[NUM_USERS:]) and torch.equal(target.user_embeddings(users), table[users])
    assert (target.num_users, target.num_items, target.dim) == (NUM_USERS, NUM_ITEMS, 8)
    assert isinstance(target, Recommender)


def test_items_may_be_given_for_all_users_or_per_user():
    target = CFRecommender(_mf())
    users = torch.tensor([1, 2])
    full = target.score(users)
    assert torch.equal(target.score(users, torch.tensor([4, 0, 9])), full[:, [4, 0, 9]])
    per_user = torch.tensor([[3, 4], [5, 6]])
    assert torch.equal(target.score(users, per_user), full.gather(1, per_user))
    with pytest.raises(ValueError, match=r"item ids must be in \[0, 60\), got 0\.\.60"):
        target.score(users, torch.tensor([0, 60]))
    with pytest.raises(ValueError, match=r"user ids must be in \[0, 40\), got -1\.\.1"):
        target.score(torch.tensor([-1, 1]))
    with pytest.raises(ValueError, match=r"`items` must be \(m,\) or \(n, m\) with n = 2 users, got shape \(3, 2\)"):
        target.score(users, torch.zeros(3, 2, dtype=torch.long))


def test_the_target_is_frozen_and_stays_in_eval_mode():
    model = _mf()
    target = CFRecommender(model)
    parent = nn.ModuleDict({"target": target, "connector": nn.Linear(8, 4)})
    parent.train()
    assert target.training and not model.training  # a parent's train() does not unfreeze the target
    assert not any(p.requires_grad for p in model.parameters())
    for out in (target.score(torch.tensor([0])), target.user_embeddings(torch.tensor([0])), target.item_embeddings()):
        assert not out.requires_grad and not torch.is_inference(out)
    loss = parent["connector"](target.user_embeddings(torch.tensor([0, 1]))).sum()
    loss.backward()  # a trainable connector takes the vectors as input
    assert model.backbone.embedding.weight.grad is None
    assert "embeddings" not in target.state_dict()  # the computed vectors are not saved, the module's weights are


def test_histories_are_the_training_items():
    target = CFRecommender(_mf())
    train = _s.make_interactions().train
    for user in (0, 17):
        assert target.histories[user] == sorted(train[train[:, 0] == user, 1].tolist())
    assert len(target.histories) == NUM_USERS


def test_a_module_without_sizes_is_refused():
    with pytest.raises(TypeError, match="has no `num_users`"):
        CFRecommender(nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"has no `num_users` \(a DaRecModule takes its sizes from its data"):
        CFRecommender(DaRecModule(MatrixFactorization(NUM_NODES, 8)))


def test_darec_lightgcn_checkpoint_scores_as_the_fitted_model(darec_lightgcn):
    model, dm, path = darec_lightgcn
    target = CFRecommender.from_checkpoint(path, dm)
    assert target.module.hparams.score_with == "disentangled" and target.module.heads is not None
    with torch.no_grad():
        emb = model()
    users = torch.arange(NUM_USERS)
    assert target.dim == 16  # the concatenated shared and specific parts
    assert torch.allclose(target.score(users), emb[:NUM_USERS] @ emb[NUM_USERS:].T, atol=1e-5)
    items, scores = target.module.recommend(users, k=5, exclude=None)
    assert torch.allclose(target.score(users).gather(1, items), scores, atol=1e-5)
    assert target.histories == [sorted(dm.interactions.train[dm.interactions.train[:, 0] == u, 1].tolist()) for u in range(NUM_USERS)]
    assert isinstance(load_recommender(path, dm), CFRecommender)


def test_tasks_from_a_loaded_checkpoint_are_labelled_by_it(darec_lightgcn):
    _, dm, path = darec_lightgcn
    target = load_recommender(path, dm)
    catalog = [f"Film {i:02d}" for i in range(NUM_ITEMS)]
    tasks = AlignmentTaskBuilder(target, catalog, target.histories, "intention", tasks=["next_item"]).build()
    scores = target.score(torch.arange(NUM_USERS)).numpy()
    for task in tasks:
        masked = scores[task.user].copy()
        masked[target.histories[task.user]] = -np.inf
        assert task.answer_items == (int(np.argmax(masked)),)


def _data(num_users=NUM_USERS, num_items=NUM_ITEMS, item_ids=None, seed=0) -> RecDataModule:
    base = _s.make_interactions(seed)
    data = Interactions(
        num_users, num_items, train=base.train, valid=base.valid, test=base.test,
        user_ids=[f"u{k}" for k in range(num_users)], item_ids=item_ids or [f"i{k}" for k in range(num_items)],
        allow_cold_users=True,
    )  # fmt: skip
    return RecDataModule.from_interactions(data, text_encoder=None)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (lambda: _data(num_items=61), "does not match the data: the checkpoint has 60 items, the data 61"),
        (lambda: _data(num_users=1_200), "the checkpoint has 40 users, the data 1,200"),
        (lambda: _data(item_ids=[f"i{k}" for k in [1, 0, *range(2, NUM_ITEMS)]]),
         r"2 of the 60 items have other raw ids \(internal item 0 is 'i0' in the checkpoint, 'i1' in the data\)"),
        (lambda: _data(seed=1), "the checkpoint was trained on 320 training pairs, the data's training split has 320 other ones"),
    ],
)  # fmt: skip
def test_a_checkpoint_that_does_not_match_the_data_is_refused(tmp_path, data, match):
    path = save_checkpoint(_mf(), tmp_path / "mf.ckpt")
    assert CFRecommender.from_checkpoint(path, _data()).num_items == NUM_ITEMS  # the matching data load
    with pytest.raises(ValueError, match=match):
        CFRecommender.from_checkpoint(path, data())
    with pytest.raises(ValueError, match=match):
        load_recommender(path, data())


def test_files_that_are_not_darec_checkpoints_are_named(tmp_path):
    notes = tmp_path / "notes.ckpt"
    notes.write_text("best epoch: 3")
    with pytest.raises(CheckpointError, match="notes.ckpt is not a darec checkpoint"):
        CFRecommender.from_checkpoint(notes, _data())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_recommender(tmp_path / "none.ckpt", _data())
    with pytest.raises(TypeError, match="load_recommender needs the data the model was trained on"):
        load_recommender(notes, object())
