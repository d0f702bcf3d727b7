"""DaRecModule: plain BPR path, evaluation, recommend(), checkpoints and the disentangling heads."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch_geometric.nn.conv import LGConv
from torch_geometric.nn.models import LightGCN

from darec.backbones import MatrixFactorization
from darec.callbacks import GlobalStructureAlignment
from darec.data import RecDataModule
from darec.module import DaRecModule


from tests.module import conftest as _s  # the shared helpers of the module tests

NUM_USERS, NUM_ITEMS, TEXT_DIM = _s.NUM_USERS, _s.NUM_ITEMS, _s.TEXT_DIM
CountingEncoder, epoch_values, read_metrics = _s.CountingEncoder, _s.epoch_values, _s.read_metrics
make_datamodule, make_interactions, make_trainer = _s.make_datamodule, _s.make_interactions, _s.make_trainer

NUM_NODES = NUM_USERS + NUM_ITEMS


def _backbone(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "lightgcn":
        return LightGCN(NUM_NODES, 8, num_layers=2)
    return MatrixFactorization(NUM_NODES, 8)


def _train_pairs() -> torch.Tensor:
    return torch.from_numpy(make_interactions().train)


class FixedInitBackbone(nn.Module):
    """A custom backbone that keeps a tensor argument: its spec cannot be recorded."""

    def __init__(self, init: torch.Tensor) -> None:
        super().__init__()
        self.init = init.clone()
        self.weight = nn.Parameter(init.clone())

    def get_embedding(self, edge_index, edge_weight=None):
        return self.weight


class NoEmbedding(nn.Module):
    def forward(self, x):
        return x


class EncoderGuard(L.Callback):
    """Forbids the data module's text encoder to run while training."""

    def __init__(self, encoder: CountingEncoder) -> None:
        self.encoder = encoder
        self.calls_at_start: int | None = None

    def on_train_start(self, trainer, pl_module):
        self.calls_at_start = self.encoder.calls
        self.encoder.forbidden = True

    def on_train_end(self, trainer, pl_module):
        self.encoder.forbidden = False


# -- a module-scoped fitted model per backbone ----------------------------------------------------
@pytest.fixture(scope="module", params=["lightgcn", "mf"])
def fitted(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"fit-{request.param}")
    dm = make_datamodule(text=False)
    model = DaRecModule(_backbone(request.param), lr=0.05, weight_decay=1e-4)
    checkpoint = ModelCheckpoint(dirpath=root / "ckpt", monitor="val/recall@20", mode="max", save_last=True)
    trainer = make_trainer(root, max_epochs=2, enable_checkpointing=True, callbacks=[checkpoint])
    trainer.fit(model, datamodule=dm)
    users = torch.arange(NUM_USERS)
    reference = model.recommend(users, k=10)
    return {
        "kind": request.param,
        "model": model,
        "dm": dm,
        "trainer": trainer,
        "checkpoint": checkpoint,
        "reference": reference,
        "metrics": dict(trainer.callback_metrics),
    }


def test_fit_logs_validation_metrics(fitted):
    metrics = fitted["metrics"]
    for key in ("val/recall@20", "val/ndcg@10", "val/recall@5", "val/ndcg@20", "val/hit_rate@10"):
        assert key in metrics, key
        assert 0.0 <= float(metrics[key]) <= 1.0
    assert "train/loss" in metrics and "train/bpr" in metrics
    assert torch.isfinite(metrics["train/loss"])


def test_the_backbone_is_not_patched_by_setup(fitted):
    """darec propagates PyG's LightGCN on its normalised graph itself: the user's layers stay as built."""
    convs = [m for m in fitted["model"].backbone.modules() if isinstance(m, LGConv)]
    if fitted["kind"] == "lightgcn":
        assert convs and all(conv.normalize is True and "message_and_aggregate" not in vars(conv) for conv in convs)
    else:
        assert not convs


def test_test_at_best_checkpoint(fitted):
    trainer, model, dm = fitted["trainer"], fitted["model"], fitted["dm"]
    best = fitted["checkpoint"].best_model_path
    assert best and Path(best).is_file()
    results = trainer.test(model, datamodule=dm, ckpt_path="best", verbose=False)
    assert "test/recall@20" in results[0] and "test/ndcg@10" in results[0]
    assert 0.0 <= results[0]["test/recall@20"] <= 1.0


def test_load_from_checkpoint_rebuilds_backbone(fitted):
    last = fitted["checkpoint"].last_model_path
    loaded = DaRecModule.load_from_checkpoint(last)  # no data module, no backbone
    expected_type = LightGCN if fitted["kind"] == "lightgcn" else MatrixFactorization
    assert isinstance(loaded.backbone, expected_type)
    assert (loaded.num_users, loaded.num_items) == (NUM_USERS, NUM_ITEMS)
    items, scores = loaded.recommend(torch.arange(NUM_USERS), k=10)
    ref_items, ref_scores = fitted["reference"]
    assert torch.equal(items, ref_items)
    torch.testing.assert_close(scores, ref_scores)
    if fitted["kind"] == "lightgcn":  # the reloaded graph convolutions are not patched either
        assert all(m.normalize is True for m in loaded.backbone.modules() if isinstance(m, LGConv))


def test_recommend_excludes_training_items_and_sorts(fitted):
    model = fitted["model"]
    train = make_interactions().train
    seen = {(int(u), int(i)) for u, i in train}
    users = torch.tensor([3, 0, 17, 39])
    items, scores = model.recommend(users, k=15, exclude="train")
    assert items.shape == scores.shape == (4, 15)
    for row, user in enumerate(users.tolist()):
        assert not any((user, i) in seen for i in items[row].tolist())
        assert len(set(items[row].tolist())) == 15
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    # The scores are the dot products of the embeddings:
    emb = model()
    torch.testing.assert_close(scores[0], emb[3] @ emb[NUM_USERS + items[0]].T)


def test_recommend_without_exclusion_returns_training_items(fitted):
    model = fitted["model"]
    seen = {(int(u), int(i)) for u, i in make_interactions().train}
    items, scores = model.recommend(torch.arange(NUM_USERS), k=NUM_ITEMS, exclude=None)
    assert items.shape == (NUM_USERS, NUM_ITEMS)
    hits = sum((u, i) in seen for u in range(NUM_USERS) for i in items[u, :10].tolist())
    assert hits > 0  # trained: the training items rank high once they are not masked
    assert (scores[:, :-1] >= scores[:, 1:]).all()


@pytest.mark.parametrize("users", [[0, NUM_USERS], [-1], [NUM_USERS + 5]])
def test_recommend_rejects_bad_user_ids(fitted, users):
    with pytest.raises(ValueError, match="user ids must be in"):
        fitted["model"].recommend(users, k=5)


def test_recommend_needs_a_graph():
    model = DaRecModule(MatrixFactorization(NUM_NODES, 4), num_users=NUM_USERS, num_items=NUM_ITEMS)
    with pytest.raises(RuntimeError, match="no training graph"):
        model.recommend([0], k=5)


# -- the graph ------------------------------------------------------------------------------------
def test_prenormalised_graph_is_exact_for_lightgcn():
    backbone = _backbone("lightgcn")
    untouched = copy.deepcopy(backbone)
    model = DaRecModule(backbone, num_users=NUM_USERS, num_items=NUM_ITEMS)
    pairs = _train_pairs()
    model.set_graph(pairs)
    assert all(conv.normalize is True and "message_and_aggregate" not in vars(conv) for conv in backbone.convs)
    edge_index = torch.stack([pairs[:, 0], pairs[:, 1] + NUM_USERS])
    raw = torch.cat([edge_index, edge_index.flip(0)], dim=1)  # undirected, as PyG's LightGCN expects
    torch.testing.assert_close(model(), untouched.get_embedding(raw), atol=1e-5, rtol=1e-5)


def test_set_graph_refuses_layers_that_would_normalise_the_graph_again():
    class Wrapped(nn.Module):  # not PyG's LightGCN: its LGConv layers would run as built
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(NUM_NODES, 4)
            self.conv = LGConv()  # normalize=True

        def get_embedding(self, edge_index, edge_weight=None):
            return self.conv(self.embedding.weight, edge_index)

    model = DaRecModule(Wrapped(), num_users=NUM_USERS, num_items=NUM_ITEMS)
    with pytest.raises(ValueError, match=r"LGConv layers \['conv'\] would normalise the graph a second time"):
        model.set_graph(_train_pairs())
    model.backbone.conv.normalize = False
    model.set_graph(_train_pairs())


def test_set_graph_rejects_out_of_range_ids():
    model = DaRecModule(MatrixFactorization(NUM_NODES, 4), num_users=NUM_USERS, num_items=NUM_ITEMS)
    with pytest.raises(ValueError, match="outside"):
        model.set_graph(torch.tensor([[0, 1], [NUM_USERS, 2]]))
    with pytest.raises(ValueError, match="outside"):
        model.set_graph(torch.tensor([[0, NUM_ITEMS]]))
    with pytest.raises(ValueError, match="outside"):
        model.set_graph(torch.tensor([[-1, 0]]))
    with pytest.raises(ValueError, match="shape"):
        model.set_graph(torch.tensor([0, 1, 2]))


def test_fit_without_graph_raises_helpful_error(tmp_path):
    model = DaRecModule(MatrixFactorization(NUM_NODES, 4), num_users=NUM_USERS, num_items=NUM_ITEMS)
    batches = [{"user": torch.tensor([0]), "pos": torch.tensor([1]), "neg": torch.tensor([2])}]
    with pytest.raises(RuntimeError, match=r"no training graph.*set_graph"):
        make_trainer(tmp_path, max_epochs=1).fit(model, train_dataloaders=batches)


def test_num_users_mismatch_raises(tmp_path):
    model = DaRecModule(MatrixFactorization(NUM_NODES + 1, 4), num_users=NUM_USERS + 1)
    with pytest.raises(ValueError, match=rf"num_users={NUM_USERS + 1}"):
        make_trainer(tmp_path, max_epochs=1).fit(model, datamodule=make_datamodule(text=False))


def test_backbone_without_get_embedding_raises():
    with pytest.raises(TypeError, match="get_embedding"):
        DaRecModule(NoEmbedding())
    with pytest.raises(TypeError, match="torch.nn.Module"):
        DaRecModule(object())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": 0.0}, "lr"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"alpha": -0.1}, "alpha"),
        ({"predict_k": 0}, "predict_k"),
        ({"score_with": "text"}, "score_with"),
        ({"l2_on": "everything"}, "l2_on"),
        ({"init_std": 0.0}, "init_std"),
    ],
)
def test_constructor_validates_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DaRecModule(MatrixFactorization(NUM_NODES, 4), **kwargs)


# -- training -------------------------------------------------------------------------------------
def test_training_loss_decreases_and_beats_random(tmp_path):
    dm = make_datamodule(text=False)
    torch.manual_seed(0)
    model = DaRecModule(MatrixFactorization(NUM_NODES, 16), lr=0.05, weight_decay=0.0, ks=(5,))
    trainer = make_trainer(
        tmp_path, max_epochs=20, logger=CSVLogger(tmp_path), check_val_every_n_epoch=20
    )
    trainer.fit(model, datamodule=dm)
    losses = epoch_values(read_metrics(trainer.logger.log_dir), "train/loss")
    assert len(losses) == 20
    assert losses[-1] < 0.5 * losses[0]
    # A random ranking finds about 5 / 52 of the held-out items in the top 5; the groups are easy:
    recall = float(trainer.callback_metrics["val/recall@5"])
    assert recall > 0.3


def test_init_std_reinitialises_embeddings():
    for backbone in (MatrixFactorization(NUM_NODES, 32), LightGCN(NUM_NODES, 32, num_layers=1)):
        DaRecModule(backbone, init_std=0.1)
        table = next(m for m in backbone.modules() if isinstance(m, nn.Embedding)).weight
        assert abs(table.std().item() - 0.1) < 0.01
        assert abs(table.mean().item()) < 0.01


def test_l2_on_batch_and_params_differ():
    torch.manual_seed(0)
    backbone = MatrixFactorization(NUM_NODES, 8)
    batch = {"user": torch.tensor([0, 1, 2, 2]), "pos": torch.tensor([3, 4, 5, 6]), "neg": torch.tensor([7, 8, 9, 10])}
    losses, models = {}, {}
    for l2_on in ("params", "batch"):
        model = DaRecModule(copy.deepcopy(backbone), weight_decay=0.1, l2_on=l2_on)
        model.set_graph(_train_pairs(), NUM_USERS, NUM_ITEMS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # self.log without a trainer
            losses[l2_on] = model.training_step(batch, 0)
        models[l2_on] = model
    emb = backbone.embedding.weight.detach()
    eu, ep, en = emb[batch["user"]], emb[batch["pos"] + NUM_USERS], emb[batch["neg"] + NUM_USERS]
    bpr = -torch.nn.functional.logsigmoid((eu * ep).sum(-1) - (eu * en).sum(-1)).mean()
    rows = torch.cat([batch["user"], batch["pos"] + NUM_USERS, batch["neg"] + NUM_USERS])
    # "batch": the LightGCN authors' penalty is part of the loss; "params": Adam applies it
    torch.testing.assert_close(losses["batch"].detach(), bpr + 0.1 * emb[rows].pow(2).sum() / 8)
    torch.testing.assert_close(losses["params"].detach(), bpr)
    assert models["batch"].configure_optimizers().defaults["weight_decay"] == 0.0
    assert models["params"].configure_optimizers().defaults["weight_decay"] == pytest.approx(0.2)


def test_l2_on_params_is_the_gradient_of_the_penalty():
    """Adam with weight_decay=2*lambda takes the same step as Adam on BPR + lambda * ||theta||^2."""
    torch.manual_seed(0)
    backbone = MatrixFactorization(NUM_NODES, 8)
    batch = {"user": torch.tensor([0, 1, 2, 2]), "pos": torch.tensor([3, 4, 5, 6]), "neg": torch.tensor([7, 8, 9, 10])}
    reference = copy.deepcopy(backbone)
    model = DaRecModule(backbone, weight_decay=0.05, lr=0.01)
    model.set_graph(_train_pairs(), NUM_USERS, NUM_ITEMS)
    optimizer = model.configure_optimizers()
    ref_optimizer = torch.optim.Adam(reference.parameters(), lr=0.01)
    for _ in range(3):
        optimizer.zero_grad()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.training_step(batch, 0).backward()
        optimizer.step()
        ref_optimizer.zero_grad()
        emb = reference.embedding.weight
        eu, ep, en = emb[batch["user"]], emb[batch["pos"] + NUM_USERS], emb[batch["neg"] + NUM_USERS]
        bpr = -torch.nn.functional.logsigmoid((eu * ep).sum(-1) - (eu * en).sum(-1)).mean()
        (bpr + 0.05 * emb.pow(2).sum()).backward()
        ref_optimizer.step()
    torch.testing.assert_close(backbone.embedding.weight, reference.embedding.weight)


def test_forward_disentangled_needs_heads():
    model = DaRecModule(MatrixFactorization(NUM_NODES, 4), score_with="disentangled")
    model.set_graph(_train_pairs(), NUM_USERS, NUM_ITEMS)
    with pytest.raises(RuntimeError, match="needs the disentangling heads"):
        model()


# -- disentangling --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def disentangled(tmp_path_factory):
    root = tmp_path_factory.mktemp("disentangled")
    dm = make_datamodule(root)
    torch.manual_seed(0)
    model = DaRecModule(MatrixFactorization(NUM_NODES, 8), alpha=0.01, align_dim=6, score_with="disentangled")
    trainer = make_trainer(root, max_epochs=1, logger=CSVLogger(root))
    trainer.fit(model, datamodule=dm)
    path = root / "model.ckpt"
    trainer.save_checkpoint(path)
    return {"model": model, "dm": dm, "trainer": trainer, "path": path, "root": root}


def test_alpha_builds_four_heads_and_logs_regularisers(disentangled):
    model, trainer = disentangled["model"], disentangled["trainer"]
    # one stacked head per side: head 0 the shared part, head 1 the specific part, separate weights
    assert set(model.heads) == {"cf", "llm"}
    assert model.heads["llm"].num_heads == 2 and model.heads["llm"].in_dim == TEXT_DIM
    assert (model.heads["cf"].num_heads, model.heads["cf"].in_dim, model.heads["cf"].out_dim) == (2, 8, 6)
    assert not torch.equal(model.heads["cf"].weight1[0], model.heads["cf"].weight1[1])
    rows = read_metrics(trainer.logger.log_dir)
    for key in ("train/orthogonality", "train/uniformity"):
        assert key in trainer.callback_metrics
        assert epoch_values(rows, key)
    # score_with="disentangled": concatenated shared and specific CF parts, and evaluation runs on them
    assert model().shape == (NUM_NODES, 12)
    assert "val/recall@20" in trainer.callback_metrics
    # the heads are optimised: they are parameters of the module
    head_params = {id(p) for p in model.heads.parameters()}
    optimised = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert head_params <= optimised


def test_disentangled_scores_are_what_the_bpr_loss_trains(disentangled):
    model = disentangled["model"]
    seen = []
    hook = model.bpr.register_forward_hook(lambda module, inputs, output: seen.append(inputs))
    try:
        users, pos, neg = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), torch.tensor([3, 4, 0])
        model.training_step({"user": users, "pos": pos, "neg": neg}, 0)
    finally:
        hook.remove()
    positive, negative = seen[0]
    with torch.no_grad():
        emb = model()  # the scoring embeddings: concatenated shared and specific CF parts
    torch.testing.assert_close(positive.detach(), (emb[users] * emb[pos + NUM_USERS]).sum(-1))
    torch.testing.assert_close(negative.detach(), (emb[users] * emb[neg + NUM_USERS]).sum(-1))
    model.zero_grad()
    (negative - positive).sum().backward()
    assert model.heads["cf"].weight1.grad.abs().sum() > 0  # the ranking loss reaches the CF heads
    model.zero_grad()


def test_text_embeddings_are_non_persistent_buffers(disentangled):
    model = disentangled["model"]
    user_path, item_path = disentangled["dm"].user_embeddings_path, disentangled["dm"].item_embeddings_path
    torch.testing.assert_close(model.text_user, torch.load(user_path))
    torch.testing.assert_close(model.text_item, torch.load(item_path))
    assert not model.text_user.requires_grad
    keys = model.state_dict().keys()
    assert not any(k.startswith("text_") for k in keys)
    checkpoint = torch.load(disentangled["path"], weights_only=False)
    assert not any(k.startswith("text_") for k in checkpoint["state_dict"])


def test_load_from_checkpoint_rebuilds_heads(disentangled):
    model = disentangled["model"]
    loaded = DaRecModule.load_from_checkpoint(disentangled["path"])
    assert loaded.heads is not None and set(loaded.heads) == set(model.heads)
    for name in model.heads:
        for (key, value), (key2, value2) in zip(
            model.heads[name].state_dict().items(), loaded.heads[name].state_dict().items()
        ):
            assert key == key2 and value.shape == value2.shape
            torch.testing.assert_close(value, value2)
    torch.testing.assert_close(loaded(), model())
    a, b = loaded.recommend(torch.arange(5), k=7), model.recommend(torch.arange(5), k=7)
    assert torch.equal(a[0], b[0])


def test_alignment_without_text_raises(tmp_path):
    model = DaRecModule(MatrixFactorization(NUM_NODES, 8), alpha=0.01)
    with pytest.raises(ValueError, match="alignment needs text embeddings"):
        make_trainer(tmp_path, max_epochs=1).fit(model, datamodule=make_datamodule(text=False))


def test_encoder_runs_only_in_prepare_and_setup(tmp_path):
    encoder = CountingEncoder()
    dm = RecDataModule.from_interactions(
        make_interactions(text=True), text_encoder=encoder, batch_size=64, eval_batch_size=16, seed=0
    )
    model = DaRecModule(MatrixFactorization(NUM_NODES, 8), alpha=0.01)
    guard = EncoderGuard(encoder)
    make_trainer(tmp_path, max_epochs=2, callbacks=[guard]).fit(model, datamodule=dm)
    assert guard.calls_at_start == encoder.calls == 2  # users and items, once each (then cached)
    assert model.text_user.shape == (NUM_USERS, TEXT_DIM) and model.text_item.shape == (NUM_ITEMS, TEXT_DIM)


def test_no_disentangling_ablation_builds_only_llm_head(tmp_path):
    model = DaRecModule(MatrixFactorization(NUM_NODES, 8), disentangle=False)
    trainer = make_trainer(tmp_path, max_epochs=1, callbacks=[GlobalStructureAlignment(weight=0.1)])
    trainer.fit(model, datamodule=make_datamodule(tmp_path))
    assert set(model.heads) == {"llm"}
    assert model.heads["llm"].num_heads == 1 and model.heads["llm"].out_dim == 8  # into the CF space itself
    assert "train/global" in trainer.callback_metrics


def test_alpha_with_disentangle_false_raises(tmp_path):
    model = DaRecModule(MatrixFactorization(NUM_NODES, 8), alpha=0.01, disentangle=False)
    with pytest.raises(ValueError, match="disentangle=False"):
        make_trainer(tmp_path, max_epochs=1).fit(model, datamodule=make_datamodule(tmp_path))


# -- custom backbones -----------------------------------------------------------------------------
def test_custom_backbone_loads_with_explicit_backbone(tmp_path):
    torch.manual_seed(0)
    init = torch.randn(NUM_NODES, 8) * 0.1
    model = DaRecModule(FixedInitBackbone(init), lr=0.05)
    assert "backbone" not in model.hparams  # its spec cannot be recorded
    trainer = make_trainer(tmp_path, max_epochs=1)
    trainer.fit(model, datamodule=make_datamodule(text=False))
    path = tmp_path / "custom.ckpt"
    trainer.save_checkpoint(path)
    with pytest.raises(TypeError, match="backbone"):
        DaRecModule.load_from_checkpoint(path)
    loaded = DaRecModule.load_from_checkpoint(path, backbone=FixedInitBackbone(torch.zeros(NUM_NODES, 8)))
    torch.testing.assert_close(loaded.backbone.weight, model.backbone.weight)
    users = torch.arange(NUM_USERS)
    assert torch.equal(loaded.recommend(users, k=5)[0], model.recommend(users, k=5)[0])


def test_train_losses_are_logged_once_per_epoch_as_batch_weighted_means(tmp_path):
    class Recorder(L.Callback):
        def __init__(self):
            self.steps = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.steps.append((trainer.current_epoch, float(outputs["loss"]), len(batch["user"])))

    recorder = Recorder()
    model = DaRecModule(MatrixFactorization(NUM_NODES, 8), lr=0.01, alpha=0.01)
    trainer = make_trainer(tmp_path, max_epochs=2, logger=CSVLogger(tmp_path), callbacks=[recorder])
    trainer.fit(model, datamodule=make_datamodule(tmp_path, batch_size=70))  # the last batch is smaller
    rows = read_metrics(trainer.logger.log_dir)
    logged = epoch_values(rows, "train/loss")
    assert len(logged) == 2
    for epoch, value in enumerate(logged):
        steps = [(loss, n) for e, loss, n in recorder.steps if e == epoch]
        assert len(steps) > 1 and len({n for _, n in steps}) > 1  # uneven batches: the weighting matters
        expected = sum(loss * n for loss, n in steps) / sum(n for _, n in steps)
        assert value == pytest.approx(expected, rel=1e-5)
    assert len(epoch_values(rows, "train/uniformity")) == len(epoch_values(rows, "train/orthogonality")) == 2


def test_checkpoint_stores_the_sizes_of_the_heads(disentangled):
    """The heads are rebuilt from the sizes the checkpoint records, not from the shapes of their weights."""
    checkpoint = torch.load(disentangled["path"], weights_only=True)
    assert checkpoint["darec"]["heads"] == {"cf_dim": 8, "text_dim": TEXT_DIM, "align_dim": 6, "full": True, "hidden_dim": None}
    assert not any(key.startswith("objective.") for key in checkpoint["state_dict"])  # regularisers have no weights


@pytest.mark.parametrize("on_shared", [False, True])
@pytest.mark.parametrize("equal_sides", [True, False])
def test_regularisers_match_one_side_and_part_at_a_time(on_shared, equal_sides):
    """The batched regularisers equal the sum over sides and over the CF/LLM parts of one call each,
    whether both sides have as many rows (one batched call) or not (one call per side)."""
    from darec.functional import orthogonality, uniformity

    torch.manual_seed(0)
    model = DaRecModule(MatrixFactorization(NUM_NODES, 8), alpha=0.01, uniformity_on_shared=on_shared, align_batch_size=None)
    model.set_graph(_train_pairs(), NUM_USERS, NUM_ITEMS)
    model.set_text_embeddings(torch.randn(NUM_USERS, TEXT_DIM), torch.randn(NUM_ITEMS, TEXT_DIM))
    model._build_heads(8, TEXT_DIM, 6)
    model._add_regularizers()
    assert model.objective.regularizers == ["orthogonality", "uniformity"] and not model.objective.alignment_terms
    users = torch.tensor([0, 1, 2, 3]) if equal_sides else torch.tensor([0, 1, 2, 2])
    batch = {"user": users, "pos": torch.tensor([3, 4, 4, 5]), "neg": torch.tensor([6, 6, 5, 3])}
    views = model._step_views(model._propagate(), batch, None)
    assert (views.sizes[0] == views.sizes[1]) is equal_sides
    regs = {name: model.term(name)(views) for name in ("orthogonality", "uniformity")}
    orth = sum(orthogonality(v.cf_shared, v.cf_specific) + orthogonality(v.llm_shared, v.llm_specific) for v in views.values())
    unif = sum(uniformity(v.cf_specific) + uniformity(v.llm_specific) for v in views.values())
    if on_shared:
        unif = unif + sum(uniformity(v.cf_shared) + uniformity(v.llm_shared) for v in views.values())
    torch.testing.assert_close(regs["orthogonality"], orth)
    torch.testing.assert_close(regs["uniformity"], unif)
