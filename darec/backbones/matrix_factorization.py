"""Matrix factorisation as a darec backbone."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from darec.backbones.base import Backbone

__all__ = ["MatrixFactorization"]


class MatrixFactorization(Backbone):
    r"""Matrix factorisation (BPR-MF): one free embedding per user and per item.

    The score of a pair is the dot product :math:`\hat y_{ui} = \langle e_u, e_i \rangle`. The graph
    passed to :meth:`get_embedding` is ignored; the signature matches PyG's
    :class:`~torch_geometric.nn.models.LightGCN` so that the two are interchangeable, and nodes are
    numbered the same way (users first, then items).

    - [0] Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009.

    Args:
        num_nodes (int): number of users plus number of items.
        embedding_dim (int): embedding width. (default: :obj:`64`)

    Example:
        >>> mf = MatrixFactorization(num_nodes=10, embedding_dim=4)
        >>> mf.get_embedding(None).shape
        torch.Size([10, 4])
    """

    def __init__(self, num_nodes: int, embedding_dim: int = 64) -> None:
        super().__init__()
        if num_nodes <= 0:
            raise ValueError(f"`num_nodes` must be positive, got {num_nodes}")
        if embedding_dim <= 0:
            raise ValueError(f"`embedding_dim` must be positive, got {embedding_dim}")
        self.num_nodes = num_nodes
        self.embedding_dim = embedding_dim
        self.embedding = nn.Embedding(num_nodes, embedding_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform initialisation, as PyG's LightGCN uses."""
        nn.init.xavier_uniform_(self.embedding.weight)

    def get_embedding(self, edge_index: Any = None, edge_weight: Any = None) -> Tensor:
        """Returns the ``(num_nodes, embedding_dim)`` embedding table."""
        return self.embedding.weight

    def darec_spec(self) -> dict[str, Any]:
        """``num_nodes`` and ``embedding_dim``, which rebuild it."""
        return {"num_nodes": self.num_nodes, "embedding_dim": self.embedding_dim}

    def forward(self, edge_label_index: Tensor) -> Tensor:
        """Scores the ``(2, E)`` node pairs in ``edge_label_index``."""
        emb = self.embedding.weight
        return (emb[edge_label_index[0]] * emb[edge_label_index[1]]).sum(-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.num_nodes}, {self.embedding_dim})"


