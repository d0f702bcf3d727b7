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
