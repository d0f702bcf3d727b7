"""Collaborative-filtering backbones and the protocol darec expects from them."""

from torch_geometric.nn.models import LightGCN

from darec.backbones.base import Backbone
from darec.backbones.graph import (
    graph_embedding,
    normalized_adjacency,
    renormalizing_convs,
    symmetric_spmm,
    use_symmetric_spmm,
)
from darec.backbones.matrix_factorization import MatrixFactorization
from darec.backbones.protocol import CFBackbone, check_backbone
from darec.backbones.sasrec import SASRec

__all__ = [
    "Backbone",
    "CFBackbone",
    "LightGCN",
    "MatrixFactorization",
    "SASRec",
    "check_backbone",
    "graph_embedding",
    "normalized_adjacency",
    "renormalizing_convs",
    "symmetric_spmm",
    "use_symmetric_spmm",
]
