"""Collaborative-filtering backbones and the protocol darec expects from them."""

from torch_geometric.nn.models import LightGCN

from darec.backbones.graph import normalized_adjacency, symmetric_spmm, use_symmetric_spmm
from darec.backbones.matrix_factorization import MatrixFactorization
from darec.backbones.protocol import CFBackbone, check_backbone

__all__ = ["CFBackbone", "LightGCN", "MatrixFactorization", "check_backbone", "normalized_adjacency", "symmetric_spmm", "use_symmetric_spmm"]
