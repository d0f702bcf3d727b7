"""DaRec with ``precision="bf16-mixed"`` on the CPU: the device logic of mixed precision without a GPU.

Lightning runs the training and evaluation steps under ``torch.autocast`` (bfloat16 on the CPU),
keeping the weights and the optimizer in float32. The graph product of LightGCN is taken in float32
(:func:`~darec.backbones.symmetric_spmm` leaves autocast for it: the CPU's sparse kernel has no
bfloat16 version); the heads and the losses run in bfloat16; the scores that rank items stay float32.

Tolerances: bfloat16 keeps 8 significant bits (relative rounding 2**-9, about 0.2%), and over an
epoch of Adam steps the weights drift apart a little. Losses (the epoch means) must be finite and
within ``rel=0.02`` (``abs=0.01`` for those near 0) of the float32 run's; the measured differences
were below 0.2%. Every validation metric must be within ``abs=0.05`` of float32: with 40 users and 2
held-out items each, one hit more or less in one user's top k moves recall@k by 1/80 = 0.0125 and
hit rate by 1/40 = 0.025; the measured differences were at most 0.025 (hit_rate@5 with LightGCN,
one user) and 0.0125 for recall while scores were ranked in bfloat16, and 0.05 (hit_rate@5, two
users) since they are ranked in float32 (the weights trained under bfloat16 are what differs). The
tolerance allows three users' hits, 0.075.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch
from torch_geometric.nn.models import LightGCN

from darec.backbones import MatrixFactorization, normalized_adjacency, symmetric_spmm
from darec.callbacks import GlobalStructureAlignment, LocalStructureAlignment
from darec.data import quiet_lightning_warnings
from darec.module import DaRecModule
from tests.module import conftest as _s

NUM_NODES = _s.NUM_USERS + _s.NUM_ITEMS
METRIC_TOLERANCE = 0.075
LOSS_REL, LOSS_ABS = 0.02, 0.01


def _fit(root: Path, kind: str, precision: str) -> tuple[dict[str, float], DaRecModule]:
    L.seed_everything(0, verbose=False)
    dm = _s.make_datamodule(root / "data", batch_size=64)
    torch.manual_seed(0)
    backbone = LightGCN(NUM_NODES, 8, num_layers=2) if kind == "lightgcn" else MatrixFactorization(NUM_NODES, 8)
    model = DaRecModule(backbone, lr=0.05, weight_decay=1e-4, alpha=1e-2, head_hidden_dim=8)
    callbacks = [GlobalStructureAlignment(weight=1e-2), LocalStructureAlignment(num_clusters=4, weight=1e-2)]
    trainer = _s.make_trainer(root / precision, max_epochs=1, precision=precision, callbacks=callbacks)
    with quiet_lightning_warnings():
        trainer.fit(model, datamodule=dm)
    return {key: float(value) for key, value in trainer.callback_metrics.items()}, model


@pytest.mark.parametrize("kind", ["lightgcn", "mf"])
def test_bf16_mixed_fit_is_close_to_float32(tmp_path, kind):
    reference, _ = _fit(tmp_path, kind, "32-true")
    mixed, model = _fit(tmp_path, kind, "bf16-mixed")
    assert mixed.keys() == reference.keys()
    assert {"train/loss", "train/bpr", "train/orthogonality", "train/uniformity", "train/global", "train/local"} <= mixed.keys()
    for key, value in reference.items():
        assert math.isfinite(mixed[key]), key
        if key.startswith("val/"):
            assert mixed[key] == pytest.approx(value, abs=METRIC_TOLERANCE), (key, mixed[key], value)
        elif not key.startswith("train/weight_"):
            assert mixed[key] == pytest.approx(value, rel=LOSS_REL, abs=LOSS_ABS), (key, mixed[key], value)
    # mixed precision keeps the weights (and the frozen text) in float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.text_user.dtype == model.text_item.dtype == torch.float32


def test_symmetric_spmm_under_autocast_is_float32():
    adj = normalized_adjacency(torch.tensor([[0, 1, 2], [3, 4, 4]]), num_nodes=5)
    x = torch.randn(5, 3, requires_grad=True)
    expected = adj.to_dense() @ x
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = symmetric_spmm(adj, x.to(torch.bfloat16))  # what a bfloat16 layer would hand on
        plain = symmetric_spmm(adj, x)
    assert out.dtype == plain.dtype == torch.float32
    torch.testing.assert_close(plain, expected)
    torch.testing.assert_close(out, expected, rtol=1e-2, atol=1e-2)  # the input's bfloat16 rounding only
    plain.sum().backward()
    torch.testing.assert_close(x.grad, adj.to_dense().sum(0).unsqueeze(1).expand(5, 3))


def test_ranking_scores_are_float32_under_autocast():
    """Scores in bfloat16 reorder near ties: the ranking product leaves autocast."""
    from darec import DaRecModule
    from darec.backbones import MatrixFactorization

    torch.manual_seed(0)
    model = DaRecModule(MatrixFactorization(num_nodes=50, embedding_dim=16), num_users=10, num_items=40)
    model.set_graph(torch.tensor([[0, 1], [2, 3]]))
    users = torch.arange(10)
    expected = model._scores(users)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = model._scores(users)
    assert scores.dtype == torch.float32
    assert torch.equal(scores, expected)
