import copy

import pytest
import torch
from torch_geometric.nn.models import LightGCN
from torch_geometric.utils import to_undirected

from darec.backbones import graph_embedding, normalized_adjacency, renormalizing_convs, symmetric_spmm, use_symmetric_spmm


def _graph(num_users=7, num_items=9, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pairs = torch.unique(torch.stack([torch.randint(num_users, (30,), generator=gen),
                                      torch.randint(num_items, (30,), generator=gen)], 1), dim=0)
    return torch.stack([pairs[:, 0], pairs[:, 1] + num_users]), num_users + num_items


def test_normalized_adjacency_matches_dense_formula():
    edge_index, n = _graph()
    dense = torch.zeros(n, n)
    dense[edge_index[0], edge_index[1]] = 1.0
    dense = dense + dense.T
    deg = dense.sum(1)
    inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    expected = inv[:, None] * dense * inv[None, :]
    assert torch.allclose(normalized_adjacency(edge_index, n).to_dense(), expected, atol=1e-6)


def test_normalized_adjacency_rejects_bad_input():
    with pytest.raises(ValueError, match=r"shape \(2, E\)"):
        normalized_adjacency(torch.zeros(3, 4, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="outside"):
        normalized_adjacency(torch.tensor([[0], [9]]), 5)


def test_symmetric_spmm_forward_and_gradient_equal_dense():
    edge_index, n = _graph()
    adj = normalized_adjacency(edge_index, n)
    x = torch.randn(n, 4, dtype=torch.float32, requires_grad=True)
    y = torch.randn(n, 4)
    (symmetric_spmm(adj, x) * y).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    ((adj.to_dense() @ x2) * y).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-6)


def test_use_symmetric_spmm_keeps_lightgcn_exact():
    edge_index, n = _graph()
    torch.manual_seed(0)
    reference = LightGCN(n, 8, num_layers=3)
    fast = copy.deepcopy(reference)
    assert use_symmetric_spmm(fast) == 3
    assert all(not conv.normalize for conv in fast.convs)
    raw = to_undirected(edge_index, num_nodes=n)
    out_ref = reference.get_embedding(raw)
    out_fast = fast.get_embedding(normalized_adjacency(edge_index, n))
    assert torch.allclose(out_ref, out_fast, atol=1e-5)
    out_ref.pow(2).sum().backward()
    out_fast.pow(2).sum().backward()
    assert torch.allclose(reference.embedding.weight.grad, fast.embedding.weight.grad, atol=1e-5)
    # Only the instances changed, not the class:
    assert "message_and_aggregate" not in vars(LightGCN(n, 8, num_layers=1).convs[0])


def _state(module):
    return {name: dict(vars(m)) for name, m in module.named_modules()}


def test_graph_embedding_equals_the_opt_in_path_bit_for_bit_and_leaves_the_model_alone():
    edge_index, n = _graph()
    adj = normalized_adjacency(edge_index, n)
    torch.manual_seed(0)
    model = LightGCN(n, 8, num_layers=3, alpha=0.3)
    patched = copy.deepcopy(model)
    use_symmetric_spmm(patched)
    before = _state(model)
    out, ref = graph_embedding(model, adj), patched.get_embedding(adj)
    assert torch.equal(out, ref)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    (ref * weights).sum().backward()
    assert torch.equal(model.embedding.weight.grad, patched.embedding.weight.grad)
    assert _state(model).keys() == before.keys()
    assert all(vars(m) == before[name] for name, m in model.named_modules())  # nothing set, nothing replaced
    assert all(conv.normalize is True for conv in model.convs)
    assert renormalizing_convs(model) == []  # darec propagates it itself
    # PyG's own path on the raw undirected graph agrees (up to rounding):
    torch.testing.assert_close(out, model.get_embedding(to_undirected(edge_index, num_nodes=n)))


def test_graph_embedding_with_swapped_parameters():
    edge_index, n = _graph()
    adj = normalized_adjacency(edge_index, n)
    model = LightGCN(n, 4, num_layers=2)
    patched = copy.deepcopy(model)
    use_symmetric_spmm(patched)
    table = torch.randn(n, 4)

    class Call(torch.nn.Module):
        def __init__(self, backbone, fn):
            super().__init__()
            self.backbone, self.fn = backbone, fn

        def forward(self, graph):
            return self.fn(self.backbone, graph)

    out = torch.func.functional_call(Call(model, graph_embedding), {"backbone.embedding.weight": table}, (adj,))
    ref = torch.func.functional_call(Call(patched, lambda b, g: b.get_embedding(g)), {"backbone.embedding.weight": table}, (adj,))
    assert torch.equal(out, ref)


def test_graph_embedding_defers_to_models_it_does_not_know():
    edge_index, n = _graph()
    adj = normalized_adjacency(edge_index, n)
    model = LightGCN(n, 4, num_layers=2)
    calls = []
    handle = model.convs[0].register_forward_hook(lambda module, args, out: calls.append(1))
    assert renormalizing_convs(model) == ["convs.0", "convs.1"]  # would normalise the adjacency again
    use_symmetric_spmm(model)  # the explicit opt-in for such models
    assert renormalizing_convs(model) == []
    torch.testing.assert_close(graph_embedding(model, adj), model.get_embedding(adj))
    assert len(calls) == 2  # the model's own code ran, hooks included
    handle.remove()

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = LightGCN(n, 4, num_layers=1)

        def get_embedding(self, edge_index, edge_weight=None):
            return self.inner.get_embedding(edge_index)

    assert renormalizing_convs(Wrapper()) == ["inner.convs.0"]
