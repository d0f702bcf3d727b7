"""The alignment callbacks: registering terms, logging them, scheduling their weights, optimising them."""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch_geometric.nn.models import LightGCN

from darec.backbones import MatrixFactorization
from darec.callbacks import (
    AlignmentCallback,
    ContrastiveAlignment,
    GenerativeAlignment,
    GlobalStructureAlignment,
    LocalStructureAlignment,
)
from darec.losses import (
    ContrastiveAlignmentLoss,
    GenerativeAlignmentLoss,
    GlobalStructureAlignmentLoss,
    LocalStructureAlignmentLoss,
)
from darec.module import AlignmentHost, DaRecModule


from tests.module import conftest as _s  # the shared helpers of the module tests

_one_thread = _s._one_thread  # autouse: one intra-op thread for these tiny tensors
NUM_USERS, NUM_ITEMS, TEXT_DIM = _s.NUM_USERS, _s.NUM_ITEMS, _s.TEXT_DIM
NUM_NODES = NUM_USERS + NUM_ITEMS
make_datamodule, make_trainer, read_metrics, epoch_values = (
    _s.make_datamodule,
    _s.make_trainer,
    _s.read_metrics,
    _s.epoch_values,
)

CASES = {
    "global": (lambda **kw: GlobalStructureAlignment(weight=0.5, **kw), GlobalStructureAlignmentLoss),
    "local": (lambda **kw: LocalStructureAlignment(num_clusters=3, weight=0.5, **kw), LocalStructureAlignmentLoss),
    "contrastive": (lambda **kw: ContrastiveAlignment(weight=0.5, **kw), ContrastiveAlignmentLoss),
    "generative": (lambda **kw: GenerativeAlignment(weight=0.5, mask_ratio=0.2, **kw), GenerativeAlignmentLoss),
}


def _model(**kwargs) -> DaRecModule:
    torch.manual_seed(0)
    return DaRecModule(MatrixFactorization(NUM_NODES, 8), lr=0.01, **kwargs)


def _fit(tmp_path, callbacks, model=None, max_epochs=2, dm=None):
    model = model or _model()
    trainer = make_trainer(tmp_path, max_epochs=max_epochs, logger=CSVLogger(tmp_path), callbacks=callbacks)
    trainer.fit(model, datamodule=dm or make_datamodule(tmp_path))
    return model, trainer


class NotDaRec(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class SplitTables(nn.Module):
    """A backbone with separate user and item tables: no (num_nodes, d) input table to mask."""

    def __init__(self, num_users: int, num_items: int, dim: int = 8) -> None:
        super().__init__()
        self.num_users, self.num_items, self.dim = num_users, num_items, dim
        self.users = nn.Parameter(torch.randn(num_users, dim) * 0.1)
        self.items = nn.Parameter(torch.randn(num_items, dim) * 0.1)

    def get_embedding(self, edge_index, edge_weight=None):
        return torch.cat([self.users, self.items])


@pytest.mark.parametrize("name", list(CASES))
def test_callback_registers_term_logs_it_and_optimises_it(tmp_path, name):
    make_callback, term_type = CASES[name]
    callback = make_callback()
    assert callback.name == name
    model = _model()
    model, trainer = _fit(tmp_path, [callback], model=model, max_epochs=1)
    # registered
    assert name in model.objective
    term = model.objective.terms[name]
    assert isinstance(term, term_type)
    assert model.objective.weights[name] == 0.5
    # logged, per epoch
    assert f"train/{name}" in trainer.callback_metrics
    assert torch.isfinite(trainer.callback_metrics[f"train/{name}"])
    values = epoch_values(read_metrics(trainer.logger.log_dir), f"train/{name}")
    assert len(values) == 1 and values[0] > 0
    # the term is part of the module and its parameters are optimised
    module_params = {id(p) for p in model.parameters()}
    optimised = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert {id(p) for p in term.parameters()} <= module_params & optimised
    # heads only where the term needs the shared parts
    if term_type.needs_shared:
        assert set(model.heads) == {"cf", "llm"} and model.heads["cf"].num_heads == 2
    else:
        assert model.heads is None


@pytest.mark.parametrize("name", ["contrastive", "generative"])
def test_term_parameters_change_during_fit(tmp_path, name):
    make_callback, _ = CASES[name]
    callback = make_callback()
    model = _model()

    class Snapshot(L.Callback):
        def on_train_start(self, trainer, pl_module):
            self.before = {k: v.detach().clone() for k, v in pl_module.objective.terms[name].named_parameters()}

    snapshot = Snapshot()
    _fit(tmp_path, [callback, snapshot], model=model, max_epochs=1)
    after = dict(model.objective.terms[name].named_parameters())
    assert snapshot.before  # the MLP (and the mask token) exist
    changed = [k for k, v in snapshot.before.items() if not torch.equal(v, after[k].detach())]
    assert changed == list(snapshot.before)  # every parameter of the term received gradients
    if name == "generative":
        assert "mask_token" in changed


def test_warmup_schedules_the_weight(tmp_path):
    callback = GlobalStructureAlignment(weight=0.4, warmup_epochs=4)
    assert [callback.current_weight(e) for e in range(6)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4])
    model, trainer = _fit(tmp_path, [callback], max_epochs=5)
    weights = epoch_values(read_metrics(trainer.logger.log_dir), "train/weight_global")
    assert weights == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4])
    assert model.objective.weights["global"] == pytest.approx(0.4)


def test_no_warmup_applies_full_weight(tmp_path):
    callback = ContrastiveAlignment(weight=0.3)
    _, trainer = _fit(tmp_path, [callback], max_epochs=2)
    assert epoch_values(read_metrics(trainer.logger.log_dir), "train/weight_contrastive") == pytest.approx([0.3, 0.3])


def test_same_callback_twice_raises(tmp_path):
    callbacks = [GlobalStructureAlignment(weight=0.1), GlobalStructureAlignment(weight=0.2)]
    with pytest.raises(ValueError, match="more than once"):
        _fit(tmp_path, callbacks, max_epochs=1)


def test_callbacks_need_a_darec_module(tmp_path):
    trainer = make_trainer(tmp_path, max_epochs=1, callbacks=[GlobalStructureAlignment()])
    with pytest.raises(TypeError, match="works with darec.DaRecModule"):
        trainer.fit(NotDaRec(), train_dataloaders=[torch.ones(2, 2)])


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: GlobalStructureAlignment(weight=-1.0), "weight"),
        (lambda: GlobalStructureAlignment(warmup_epochs=-1), "warmup_epochs"),
        (lambda: GlobalStructureAlignment(mode="cosine"), "mode"),
        (lambda: LocalStructureAlignment(num_clusters=1), "num_clusters"),
        (lambda: LocalStructureAlignment(every_n_epochs=0), "every_n_epochs"),
        (lambda: LocalStructureAlignment(clustering="spectral"), "clustering"),
        (lambda: ContrastiveAlignment(weight=-0.5), "weight"),
        (lambda: GenerativeAlignment(mask_ratio=0.0), "mask_ratio"),
        (lambda: GenerativeAlignment(mask_ratio=1.5), "mask_ratio"),
        (lambda: ContrastiveAlignment(temperature=0.0), "temperature"),
        (lambda: LocalStructureAlignment(temperature=-1.0), "temperature"),
    ],
)
def test_bad_arguments_raise(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_second_fit_reuses_the_term(tmp_path):
    model = _model()
    dm = make_datamodule(tmp_path)
    _fit(tmp_path / "a", [ContrastiveAlignment(weight=0.2)], model=model, max_epochs=1, dm=dm)
    term = model.objective.terms["contrastive"]
    trained = {k: v.detach().clone() for k, v in term.state_dict().items()}
    _, trainer = _fit(tmp_path / "b", [ContrastiveAlignment(weight=0.2)], model=model, max_epochs=1, dm=dm)
    assert model.objective.terms["contrastive"] is term
    assert len(model.objective) == 1
    assert "train/contrastive" in trainer.callback_metrics
    assert any(not torch.equal(v, term.state_dict()[k]) for k, v in trained.items())  # trained on


def test_checkpoint_keeps_the_terms_for_the_callbacks_that_register_them(tmp_path):
    """Terms do not change scores: a module loaded for inference holds none (and no unexpected keys);
    a later fit whose callbacks register them again continues from their saved weights."""
    callbacks = [ContrastiveAlignment(weight=0.2), GenerativeAlignment(weight=0.3)]
    model, trainer = _fit(tmp_path, callbacks, max_epochs=1)
    path = tmp_path / "terms.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)["darec"]["terms"]
    assert {name: entry["weight"] for name, entry in saved.items()} == pytest.approx({"contrastive": 0.2, "generative": 0.3})
    loaded = DaRecModule.load_from_checkpoint(path)  # strict: no unexpected keys
    assert len(loaded.objective) == 0
    users = torch.arange(NUM_USERS)
    assert torch.equal(loaded.recommend(users, k=5)[0], model.recommend(users, k=5)[0])

    class Snapshot(L.Callback):
        def on_train_start(self, trainer, pl_module):
            self.terms = {name: copy.deepcopy(pl_module.term(name).state_dict()) for name in ("contrastive", "generative")}

    snapshot = Snapshot()
    again = [ContrastiveAlignment(weight=0.2), GenerativeAlignment(weight=0.3), snapshot]
    _fit(tmp_path / "again", again, model=loaded, max_epochs=1)
    assert set(loaded.objective.terms) == {"contrastive", "generative"}
    assert loaded.objective.weights == pytest.approx({"contrastive": 0.2, "generative": 0.3})
    for name in ("contrastive", "generative"):
        for key, value in model.objective.terms[name].state_dict().items():
            torch.testing.assert_close(snapshot.terms[name][key], value)


def test_generative_masking_changes_output_without_touching_the_table():
    torch.manual_seed(0)
    backbone = LightGCN(NUM_NODES, 8, num_layers=2)
    model = DaRecModule(backbone)
    model.set_graph(torch.from_numpy(_s.make_interactions().train), NUM_USERS, NUM_ITEMS)
    table = backbone.embedding.weight
    before, version = table.detach().clone(), table._version
    token = nn.Parameter(torch.full((1, 8), 0.5))
    masked_nodes = torch.tensor([0, 5, NUM_USERS + 3])
    plain = model._propagate()
    name, input_table = model._input_table()
    assert input_table is table
    masked = model._propagate((name, table.index_put((masked_nodes,), token.expand(3, -1))))
    assert not torch.allclose(plain, masked)
    # propagation spreads the change to neighbours: more rows differ than were masked
    changed_rows = (~torch.isclose(plain, masked).all(dim=1)).sum().item()
    assert changed_rows > len(masked_nodes)
    # equals LightGCN run on a copy of the table with the masked rows replaced
    reference = LightGCN(NUM_NODES, 8, num_layers=2)
    reference.load_state_dict(backbone.state_dict())
    with torch.no_grad():
        reference.embedding.weight[masked_nodes] = 0.5
    for conv in reference.convs:
        conv.normalize = False
    torch.testing.assert_close(masked, reference.get_embedding(model._graph))
    # gradients reach the token and the table; the table itself is untouched
    masked.sum().backward()
    assert token.grad is not None and token.grad.abs().sum() > 0
    assert table.grad is not None
    assert torch.equal(table.detach(), before) and table._version == version


def test_generative_needs_an_input_table(tmp_path):
    torch.manual_seed(0)
    model = DaRecModule(SplitTables(NUM_USERS, NUM_ITEMS))
    with pytest.raises(ValueError, match="input embedding table"):
        _fit(tmp_path, [GenerativeAlignment(weight=0.1)], model=model, max_epochs=1)


def test_alignment_callback_is_the_common_base():
    assert isinstance(_model(), AlignmentHost)  # the interface the callbacks use
    for make_callback, _ in CASES.values():
        assert isinstance(make_callback(), AlignmentCallback)
    assert GlobalStructureAlignment().state_key != LocalStructureAlignment().state_key
