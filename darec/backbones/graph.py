"""Graph preparation shared by graph backbones."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

__all__ = ["normalized_adjacency"]


def normalized_adjacency(edge_index: Tensor, num_nodes: int) -> Tensor:
    r"""Symmetrically normalised adjacency of the undirected user-item graph, as sparse CSR.

    .. math::
        \tilde A = D^{-1/2} A D^{-1/2}, \qquad A = \begin{pmatrix} 0 & R \\ R^\top & 0 \end{pmatrix}

    where :math:`R` is the binary user x item training matrix. No self-loops are added (LightGCN's
    propagation). Computed once per fit: graph backbones then receive it in place of a raw
    ``edge_index`` and skip their own per-step normalisation.

    Args:
        edge_index (torch.Tensor): ``(2, E)`` user -> item edges in node ids (items offset by the
            number of users), each pair once.
        num_nodes (int): number of users plus items.

    Returns:
        torch.Tensor: sparse CSR ``(num_nodes, num_nodes)`` float tensor with ``2 E`` entries.

    Example:
        >>> adj = normalized_adjacency(torch.tensor([[0, 1], [2, 2]]), num_nodes=3)
        >>> adj.to_dense()
        tensor([[0.0000, 0.0000, 0.7071],
                [0.0000, 0.0000, 0.7071],
                [0.7071, 0.7071, 0.0000]])
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"`edge_index` must have shape (2, E), got {tuple(edge_index.shape)}")
    if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
        raise ValueError(f"`edge_index` has node ids outside [0, {num_nodes})")
    row = torch.cat([edge_index[0], edge_index[1]])
    col = torch.cat([edge_index[1], edge_index[0]])
    deg = torch.bincount(row, minlength=num_nodes).to(torch.float32)
    inv_sqrt = deg.pow(-0.5)
    inv_sqrt[deg == 0] = 0.0
    value = inv_sqrt[row] * inv_sqrt[col]
    order = torch.argsort(row * num_nodes + col)
    row, col, value = row[order], col[order], value[order]
    crow = torch.zeros(num_nodes + 1, dtype=torch.long)
    crow[1:] = torch.cumsum(torch.bincount(row, minlength=num_nodes), 0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        return torch.sparse_csr_tensor(
            crow, col, value, size=(num_nodes, num_nodes), check_invariants=False
        )


class _SymmetricSpMM(torch.autograd.Function):
    """``adj @ x`` for a symmetric sparse ``adj``; the backward reuses ``adj`` as its own transpose."""

    @staticmethod
    def forward(ctx, adj: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor]:  # type: ignore[override]
        return None, torch.sparse.mm(ctx.adj, grad)


def symmetric_spmm(adj: Tensor, x: Tensor) -> Tensor:
    r"""Sparse-dense product :math:`\tilde A x` for a **symmetric** sparse :math:`\tilde A`.

    The gradient with respect to ``x`` is :math:`\tilde A^\top g = \tilde A g`, so the backward pass
    multiplies by ``adj`` itself instead of transposing it. For a CSR matrix, PyTorch's generic
    backward converts the transpose back to CSR (a sort of all non-zeros) on every call, which
    took about half of a LightGCN training step on MovieLens-100K.

    Example:
        >>> adj = normalized_adjacency(torch.tensor([[0, 1], [2, 2]]), num_nodes=3)
        >>> x = torch.randn(3, 2, requires_grad=True)
        >>> torch.allclose(symmetric_spmm(adj, x), adj.to_dense() @ x)
        True
    """
    return _SymmetricSpMM.apply(adj, x)


class _SymmetricAggregation:
    """Replacement of ``LGConv.message_and_aggregate`` for a symmetric sparse adjacency (picklable)."""

    def __init__(self, aggr: str) -> None:
        self.aggr = aggr

    def __call__(self, adj_t, x: Tensor) -> Tensor:
        if isinstance(adj_t, Tensor) and adj_t.layout in (torch.sparse_csr, torch.sparse_coo):
            return symmetric_spmm(adj_t, x)
        from torch_geometric.utils import spmm

        return spmm(adj_t, x, reduce=self.aggr)


def use_symmetric_spmm(backbone: torch.nn.Module) -> int:
    """Makes every sum-aggregating ``LGConv`` in ``backbone`` take a pre-normalised symmetric adjacency.

    Sets ``normalize=False`` (darec normalises the graph once) and routes the layer's sparse
    aggregation through :func:`symmetric_spmm`. Returns the number of layers changed. Only the
    instances are changed, never the class; the layers then expect the symmetric normalised
    adjacency that :class:`~darec.DaRecModule` passes.
    """
    from torch_geometric.nn.conv import LGConv

    changed = 0
    for module in backbone.modules():
        if isinstance(module, LGConv):
            module.normalize = False
            if getattr(module, "aggr", None) in ("add", "sum"):
                module.message_and_aggregate = _SymmetricAggregation(module.aggr)
            changed += 1
    return changed
