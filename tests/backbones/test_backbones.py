"""Backbones: matrix factorisation, the backbone protocol and the normalised adjacency."""

from __future__ import annotations

import pytest
import torch
import torch_geometric
from torch import nn

from darec.backbones import CFBackbone, LightGCN, MatrixFactorization, check_backbone, normalized_adjacency
from darec.utils.spec import build_from_spec, describe


def test_lightgcn_is_pyg_lightgcn():
    assert LightGCN is torch_geometric.nn.models.LightGCN


def test_matrix_factorization_embeddings_and_scores():
    torch.manual_seed(0)
    mf = MatrixFactorization(num_nodes=10, embedding_dim=4)
    emb = mf.get_embedding(None)
    assert emb.shape == (10, 4)
    assert emb is mf.get_embedding(torch.tensor([[0, 1], [1, 0]]))  # the graph is ignored
    pairs = torch.tensor([[0, 1, 2], [5, 6, 9]])
    torch.testing.assert_close(mf(pairs), (emb[pairs[0]] * emb[pairs[1]]).sum(-1))
    assert repr(mf) == "MatrixFactorization(10, 4)"
    # Xavier-uniform bound, like PyG's LightGCN:
    bound = (6 / (10 + 4)) ** 0.5
    assert emb.abs().max() <= bound


@pytest.mark.parametrize(("kwargs", "match"), [({"num_nodes": 0}, "num_nodes"), ({"num_nodes": 3, "embedding_dim": 0}, "embedding_dim")])
def test_matrix_factorization_rejects_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MatrixFactorization(**kwargs)


def test_matrix_factorization_spec_round_trip():
    spec = describe(MatrixFactorization(12, 6))
    assert spec == {"class_path": "darec.backbones.matrix_factorization.MatrixFactorization", "init_args": {"num_nodes": 12, "embedding_dim": 6}}
    rebuilt = build_from_spec(spec)
    assert isinstance(rebuilt, MatrixFactorization) and rebuilt.embedding.weight.shape == (12, 6)


def test_backbone_protocol():
    assert isinstance(MatrixFactorization(3, 2), CFBackbone)
    assert isinstance(LightGCN(3, 2, num_layers=1), CFBackbone)
    assert not isinstance(nn.Linear(2, 2), CFBackbone)


def test_check_backbone():
    mf = MatrixFactorization(3, 2)
    assert check_backbone(mf) is mf
    with pytest.raises(TypeError, match="get_embedding"):
        check_backbone(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        check_backbone(lambda graph: graph)

    class NotCallable(nn.Module):
        get_embedding = None

    with pytest.raises(TypeError, match="get_embedding"):
        check_backbone(NotCallable())


def test_normalized_adjacency_matches_dense_formula():
    # 2 users, 3 items; user 0 likes items 0 and 1, user 1 likes item 1; item 2 is isolated
    edge_index = torch.tensor([[0, 0, 1], [2, 3, 3]])
    adj = normalized_adjacency(edge_index, num_nodes=5)
    assert adj.layout == torch.sparse_csr
    dense_a = torch.zeros(5, 5)
    dense_a[edge_index[0], edge_index[1]] = 1
    dense_a = dense_a + dense_a.T
    deg = dense_a.sum(1)
    inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    expected = inv[:, None] * dense_a * inv[None, :]
    torch.testing.assert_close(adj.to_dense(), expected)
    assert adj._nnz() == 2 * edge_index.size(1)
    assert torch.equal(adj.to_dense(), adj.to_dense().T)
    assert adj.to_dense()[4].abs().sum() == 0  # isolated node: no NaN, no self-loop


def test_normalized_adjacency_drives_lightgcn_like_gcn_norm():
    torch.manual_seed(0)
    edge_index = torch.tensor([[0, 0, 1, 2, 2], [3, 4, 4, 5, 3]])
    model = LightGCN(6, 4, num_layers=2)
    raw = model.get_embedding(torch.cat([edge_index, edge_index.flip(0)], dim=1))
    for conv in model.convs:
        conv.normalize = False
    torch.testing.assert_close(model.get_embedding(normalized_adjacency(edge_index, 6)), raw, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("edge_index", "match"),
    [(torch.tensor([0, 1, 2]), "shape"), (torch.tensor([[0], [7]]), "outside"), (torch.tensor([[-1], [2]]), "outside")],
)
def test_normalized_adjacency_rejects_bad_input(edge_index, match):
    with pytest.raises(ValueError, match=match):
        normalized_adjacency(edge_index, num_nodes=5)
