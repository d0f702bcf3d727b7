"""LightGCN's fused propagation (``_LayerSum``, int32 CSR indices, darec's product) is bit for bit the
naive autograd graph: PyG's layer mean with one node per operation and ``torch.sparse.mm`` on int64 indices."""

from __future__ import annotations

import copy

import pytest
import torch
from torch_geometric.nn.models import LightGCN

import darec.module.step_views as step_views
from darec.backbones import graph_embedding, normalized_adjacency
from darec.backbones.graph import _product
from darec.module import DaRecModule

NUM_USERS, NUM_ITEMS = 120, 170


def _pairs(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    pairs = torch.stack([torch.randint(NUM_USERS, (2500,), generator=gen), torch.randint(NUM_ITEMS, (2500,), generator=gen)], 1)
    return torch.unique(pairs, dim=0)


def _edge_index(pairs: torch.Tensor) -> torch.Tensor:
    return torch.stack([pairs[:, 0], pairs[:, 1] + NUM_USERS])


def _int64(adj: torch.Tensor) -> torch.Tensor:
    """The same matrix with int64 indices (what ``normalized_adjacency`` returned before)."""
    return torch.sparse_csr_tensor(adj.crow_indices().long(), adj.col_indices().long(), adj.values(), adj.shape)


class _NaiveSpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, adj, x):
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad):
        return None, torch.sparse.mm(ctx.adj, grad)


def naive_embedding(model: LightGCN, adj: torch.Tensor) -> torch.Tensor:
    """PyG's ``LightGCN.get_embedding`` written out, each operation its own autograd node."""
    x = model.embedding.weight
    out = x * model.alpha[0]
    for i in range(model.num_layers):
        x = _NaiveSpMM.apply(adj, x)
        out = out + x * model.alpha[i + 1]
    return out


def test_normalized_adjacency_has_int32_indices_and_the_same_products():
    adj = normalized_adjacency(_edge_index(_pairs()), NUM_USERS + NUM_ITEMS)
    assert adj.crow_indices().dtype == adj.col_indices().dtype == torch.int32
    x = torch.randn(NUM_USERS + NUM_ITEMS, 16)
    reference = torch.sparse.mm(_int64(adj), x)
    assert torch.equal(torch.sparse.mm(adj, x), reference)
    assert torch.equal(_product(adj, x), reference)
    assert torch.equal(_product(_int64(adj), x), reference)


@pytest.mark.parametrize(
    "num_layers, alpha",
    [(3, None), (2, None), (1, None), (3, torch.tensor([0.1, 0.3, 0.2, 0.4])), (3, torch.tensor([0.3, 0.3, 0.2, 0.2])), (2, torch.tensor([0.5, -0.0, 0.0]))],
)
def test_fused_propagation_is_the_naive_graph_bit_for_bit(num_layers, alpha):
    adj = normalized_adjacency(_edge_index(_pairs()), NUM_USERS + NUM_ITEMS)
    torch.manual_seed(0)
    model = LightGCN(NUM_USERS + NUM_ITEMS, 16, num_layers=num_layers, alpha=alpha)
    naive = copy.deepcopy(model)
    rows = torch.randint(NUM_USERS + NUM_ITEMS, (300,))
    weights = torch.randn(300, 16)
    outs = []
    for m, propagate, graph in ((model, graph_embedding, adj), (naive, naive_embedding, _int64(adj))):
        out = propagate(m, graph)
        # the table is also used outside the propagation (as l2_on="batch" does): three gradient parts
        loss = (out.index_select(0, rows) * weights).sum() + 1e-2 * m.embedding.weight[rows].pow(2).sum()
        loss.backward()
        outs.append((out.detach(), m.embedding.weight.grad))
    assert torch.equal(outs[0][0], outs[1][0])
    assert torch.equal(outs[0][1], outs[1][1])
    with torch.no_grad():
        assert torch.equal(graph_embedding(model, adj), naive_embedding(naive, _int64(adj)))


def test_the_comparison_sees_rounding():
    """The data are rich enough for a reassociated layer sum to differ: the equalities above are not vacuous."""
    adj = normalized_adjacency(_edge_index(_pairs()), NUM_USERS + NUM_ITEMS)
    torch.manual_seed(0)
    model = LightGCN(NUM_USERS + NUM_ITEMS, 16, num_layers=3)
    with torch.no_grad():
        x0 = model.embedding.weight
        x1 = torch.sparse.mm(adj, x0)
        x2 = torch.sparse.mm(adj, x1)
        x3 = torch.sparse.mm(adj, x2)
        a = model.alpha
        reassociated = x0 * a[0] + (x1 * a[1] + (x2 * a[2] + x3 * a[3]))
        assert not torch.equal(graph_embedding(model, adj), reassociated)


@pytest.mark.parametrize("settings", [{}, {"l2_on": "batch", "weight_decay": 1e-3}])
def test_training_step_gradients_are_those_of_the_naive_graph(settings):
    """A DaRecModule step (BPR, optionally the batch L2 on the table) gives the same loss and gradients
    with the fused propagation as with the naive graph on int64 indices."""
    pairs = _pairs(1)
    torch.manual_seed(0)
    model = DaRecModule(LightGCN(NUM_USERS + NUM_ITEMS, 16, num_layers=3), num_users=NUM_USERS, num_items=NUM_ITEMS, **settings)
    model.set_graph(pairs)
    naive = copy.deepcopy(model)
    naive._graph = _int64(model._graph)
    gen = torch.Generator().manual_seed(0)
    batch = {
        "user": torch.randint(NUM_USERS, (256,), generator=gen),
        "pos": torch.randint(NUM_ITEMS, (256,), generator=gen),
        "neg": torch.randint(NUM_ITEMS, (256,), generator=gen),
    }
    loss = model.training_step(batch, 0)
    loss.backward()
    patched = step_views.graph_embedding
    step_views.graph_embedding = naive_embedding
    try:
        naive_loss = naive.training_step(batch, 0)
        naive_loss.backward()
    finally:
        step_views.graph_embedding = patched
    assert torch.equal(loss, naive_loss)
    for (name, p), q in zip(model.named_parameters(), naive.parameters()):
        assert torch.equal(p.grad, q.grad), name
