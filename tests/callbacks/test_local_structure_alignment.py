"""LocalStructureAlignment: cluster refreshes, assignments, and their checkpointing."""

from __future__ import annotations


import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from darec.backbones import MatrixFactorization
from darec.callbacks import GlobalStructureAlignment, LocalStructureAlignment
from darec.module import DaRecModule


from tests.module import conftest as _s  # the shared helpers of the module tests

_one_thread = _s._one_thread  # autouse: one intra-op thread for these tiny tensors
NUM_USERS, NUM_ITEMS = _s.NUM_USERS, _s.NUM_ITEMS
NUM_NODES = NUM_USERS + NUM_ITEMS
K = 4


def _model() -> DaRecModule:
    torch.manual_seed(0)
    return DaRecModule(MatrixFactorization(NUM_NODES, 8), lr=0.01)


def _count_clusters(monkeypatch, callback):
    """Wraps ``callback.cluster`` and records the epoch of every call."""
    calls: list[int] = []
    original = callback.cluster

    def wrapped(pl_module):
        calls.append(pl_module.current_epoch)
        return original(pl_module)

    monkeypatch.setattr(callback, "cluster", wrapped)
    return calls


def _check_assignment(assignment: torch.Tensor, n: int, per_side: bool) -> None:
    assert assignment.dtype == torch.long
    assert assignment.shape == ((n, 2) if per_side else (n,))
    assert assignment.min() >= 0 and assignment.max() < K
    assert len(assignment.flatten().unique()) > 1


def test_refreshes_every_n_epochs(tmp_path, monkeypatch):
    callback = LocalStructureAlignment(num_clusters=K, every_n_epochs=2, weight=0.1)
    calls = _count_clusters(monkeypatch, callback)
    _s.make_trainer(tmp_path, max_epochs=4, callbacks=[callback]).fit(_model(), datamodule=_s.make_datamodule(tmp_path))
    assert calls == [0, 2]
    assert callback.refreshed_at == 2


@pytest.mark.parametrize("clustering", ["fused", "per_side"])
def test_assignments_cover_every_user_and_item(tmp_path, clustering):
    callback = LocalStructureAlignment(num_clusters=K, weight=0.1, clustering=clustering)
    model = _model()
    trainer = _s.make_trainer(tmp_path, max_epochs=1, callbacks=[callback])
    trainer.fit(model, datamodule=_s.make_datamodule(tmp_path))
    per_side = clustering == "per_side"
    assert set(callback.assignments) == {"user", "item"}
    _check_assignment(callback.assignments["user"], NUM_USERS, per_side)
    _check_assignment(callback.assignments["item"], NUM_ITEMS, per_side)
    # the term holds the assignment in its buffers
    term = model.objective.terms["local"]
    assert torch.equal(term.assignment_user, callback.assignments["user"])
    assert torch.equal(term.assignment_item, callback.assignments["item"])
    assert float(trainer.callback_metrics["train/local"]) > 0


def test_cluster_is_deterministic_for_a_seed(tmp_path):
    model = _model()
    _s.make_trainer(tmp_path, max_epochs=1, callbacks=[LocalStructureAlignment(num_clusters=K)]).fit(
        model, datamodule=_s.make_datamodule(tmp_path)
    )
    a = LocalStructureAlignment(num_clusters=K, seed=3).cluster(model)
    b = LocalStructureAlignment(num_clusters=K, seed=3).cluster(model)
    assert all(torch.equal(a[side], b[side]) for side in ("user", "item"))


class Spy(L.Callback):
    """Records the local-alignment callback's state when training (re)starts and after the first epoch start."""

    def __init__(self, callback: LocalStructureAlignment) -> None:
        self.callback = callback

    def on_train_start(self, trainer, pl_module):
        self.at_start = {k: v.clone() for k, v in self.callback.assignments.items()}
        self.refreshed_at_start = self.callback.refreshed_at
        self.start_epoch = trainer.current_epoch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not hasattr(self, "in_term"):
            term = pl_module.objective.terms["local"]
            self.in_term = {"user": term.assignment_user.clone(), "item": term.assignment_item.clone()}


def test_assignment_is_checkpointed_and_restored(tmp_path, monkeypatch):
    dm = _s.make_datamodule(tmp_path)
    first = LocalStructureAlignment(num_clusters=K, every_n_epochs=5, weight=0.1)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = _s.make_trainer(tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=[first, checkpoint])
    trainer.fit(_model(), datamodule=dm)
    saved = {k: v.clone() for k, v in first.assignments.items()}
    assert first.refreshed_at == 0
    last = tmp_path / "ckpt" / "last.ckpt"
    state = torch.load(last, weights_only=False)["callbacks"][first.state_key]
    assert torch.equal(state["assignments"]["user"], saved["user"]) and state["refreshed_at"] == 0

    # Resume with a new module, a new trainer and a new callback:
    second = LocalStructureAlignment(num_clusters=K, every_n_epochs=5, weight=0.1)
    assert second.assignments == {} and second.refreshed_at is None
    calls = _count_clusters(monkeypatch, second)
    spy = Spy(second)
    trainer = _s.make_trainer(tmp_path, max_epochs=3, callbacks=[second, spy])
    trainer.fit(_model(), datamodule=dm, ckpt_path=str(last))
    assert spy.start_epoch == 2
    assert spy.refreshed_at_start == 0
    assert set(spy.at_start) == {"user", "item"}
    assert all(torch.equal(spy.at_start[side], saved[side]) for side in saved)
    assert calls == []  # epoch 2 < refreshed_at + every_n_epochs: no refresh, the restored clusters are used
    assert all(torch.equal(spy.in_term[side], saved[side]) for side in saved)


def test_state_dict_round_trip():
    callback = LocalStructureAlignment(num_clusters=K)
    callback.assignments = {"user": torch.tensor([0, 1, 2]), "item": torch.tensor([[1, 0], [2, 2]])}
    callback.centres = {"user": torch.randn(K, 3)}
    callback.refreshed_at = 7
    state = callback.state_dict()
    other = LocalStructureAlignment(num_clusters=K, seed=99)
    other.load_state_dict(state)
    assert other.refreshed_at == 7
    assert torch.equal(other.assignments["item"], callback.assignments["item"])
    assert torch.equal(other.centres["user"], callback.centres["user"])
    assert torch.equal(other.generator.get_state(), callback.generator.get_state())


@pytest.mark.parametrize("warm_start", [True, False])
def test_refreshes_warm_start_from_the_previous_centres(tmp_path, monkeypatch, warm_start):
    import darec.callbacks.local_structure_alignment as module

    inits = []
    original = module.kmeans

    def spy(x, k, num_iters, generator=None, init=None):
        inits.append(init)
        return original(x, k, num_iters, generator=generator, init=init)

    monkeypatch.setattr(module, "kmeans", spy)
    callback = LocalStructureAlignment(num_clusters=K, weight=0.1, warm_start=warm_start)
    _s.make_trainer(tmp_path, max_epochs=2, callbacks=[callback]).fit(_model(), datamodule=_s.make_datamodule(tmp_path))
    assert len(inits) == 4  # two refreshes x (users, items)
    assert inits[0] is None and inits[1] is None  # the first refresh seeds with k-means++
    if warm_start:
        assert all(init is not None and init.shape[0] == K for init in inits[2:])
    else:
        assert inits[2] is None and inits[3] is None
    assert set(callback.centres) == {"user", "item"}


def test_callback_survives_pickling_with_its_generator_state():
    import pickle

    callback = LocalStructureAlignment(num_clusters=K, seed=5)
    torch.randint(10, (3,), generator=callback.generator)  # advance the generator
    copy = pickle.loads(pickle.dumps(callback))
    assert torch.equal(copy.generator.get_state(), callback.generator.get_state())
    assert copy.num_clusters == K and copy.assignments == {}


def test_two_process_ddp_fit_with_alignment(tmp_path):
    """Two CPU processes (gloo): rank 0 clusters and broadcasts, validation is sharded and synchronised."""
    dm = _s.make_datamodule(tmp_path)
    torch.manual_seed(0)
    model = DaRecModule(MatrixFactorization(NUM_NODES, 8), lr=0.01, alpha=0.01)
    callbacks = [GlobalStructureAlignment(weight=0.1), LocalStructureAlignment(num_clusters=K, weight=0.1)]
    trainer = _s.make_trainer(tmp_path, max_epochs=1, devices=2, strategy="ddp_spawn", callbacks=callbacks)
    trainer.fit(model, datamodule=dm)
    metrics = trainer.callback_metrics
    for key in ("val/recall@20", "val/ndcg@10", "train/global", "train/local", "train/orthogonality"):
        assert key in metrics and torch.isfinite(metrics[key]), key
    # The metrics cover every user once: a single process scoring the same weights agrees.
    single = _s.make_trainer(tmp_path, max_epochs=1).validate(model, datamodule=dm, verbose=False)[0]
    assert single["val/recall@20"] == pytest.approx(float(metrics["val/recall@20"]), abs=1e-6)
    assert single["val/ndcg@10"] == pytest.approx(float(metrics["val/ndcg@10"]), abs=1e-6)
