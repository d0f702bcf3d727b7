"""The backbone of ``wrap_your_model.py``, in a module of its own so that checkpoints can find it.

A checkpoint of :class:`darec.DaRecModule` records the backbone's class by its import path
(``two_tower.TwoTowerGraph`` here) and the constructor arguments its ``darec_spec()`` returns, and
rebuilds it from them when loaded. A class defined in the script you run is recorded as
``__main__.TwoTowerGraph``, which no other program can import, so the model lives here and the
script imports it. To load a checkpoint of the example elsewhere, make this folder importable (run
from it, or put it on ``PYTHONPATH``) and name the class as trusted: darec imports no other class a
checkpoint names::

    PYTHONPATH=examples DAREC_TRUSTED_CLASSES=two_tower.TwoTowerGraph \
        python -c "import darec; darec.DaRecModule.load_from_checkpoint('best.ckpt')"
"""

import torch
from torch import nn

from darec.backbones import Backbone


class TwoTowerGraph(Backbone):
    """Free embeddings, mixed with one hop of the normalised graph, then a small MLP.

    Args:
        num_nodes: users plus items (one embedding row each, users first).
        embedding_dim: width of the embeddings. (default: ``32``)
    """

    def __init__(self, num_nodes: int, embedding_dim: int = 32) -> None:
        super().__init__()
        self.num_nodes, self.embedding_dim = num_nodes, embedding_dim
        self.embedding = nn.Embedding(num_nodes, embedding_dim)
        nn.init.normal_(self.embedding.weight, std=0.1)
        self.mlp = nn.Sequential(nn.Linear(embedding_dim, embedding_dim), nn.Tanh())

    def darec_spec(self) -> dict:
        """The constructor arguments, which a checkpoint records to rebuild the model."""
        return {"num_nodes": self.num_nodes, "embedding_dim": self.embedding_dim}

    def get_embedding(self, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None) -> torch.Tensor:
        """The ``(num_nodes, embedding_dim)`` embeddings; ``edge_index`` is the normalised adjacency."""
        x = self.embedding.weight
        return x + self.mlp(torch.sparse.mm(edge_index, x))
