"""Train your own collaborative-filtering model with DaRec's alignment, in about 40 lines.

Any ``nn.Module`` works as a backbone if it has ``get_embedding(edge_index, edge_weight=None)``
returning one row per user and then one row per item. darec passes the symmetrically normalised
training graph as a sparse ``(N, N)`` tensor; this model uses it for one propagation step.

    HF_HUB_OFFLINE=1 python examples/wrap_your_model.py --max-epochs 50
"""

import argparse

import lightning as L
import torch
from torch import nn

import darec


class TwoTowerGraph(nn.Module):
    """Free embeddings, mixed with one hop of the normalised graph, then a small MLP."""

    def __init__(self, num_nodes: int, embedding_dim: int = 32) -> None:
        super().__init__()
        self.num_nodes, self.embedding_dim = num_nodes, embedding_dim
        self.embedding = nn.Embedding(num_nodes, embedding_dim)
        nn.init.normal_(self.embedding.weight, std=0.1)
        self.mlp = nn.Sequential(nn.Linear(embedding_dim, embedding_dim), nn.Tanh())

    def get_embedding(self, edge_index, edge_weight=None):
        x = self.embedding.weight
        return x + self.mlp(torch.sparse.mm(edge_index, x))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-epochs", type=int, default=300)
    args = parser.parse_args()
    L.seed_everything(2024)
    data = darec.data.MovieLens100K()  # interactions, split, text; text encoded once and cached
    model = darec.DaRecModule(backbone=TwoTowerGraph(data.num_nodes), alpha=1e-2, head_hidden_dim=32)
    trainer = L.Trainer(
        max_epochs=args.max_epochs,
        check_val_every_n_epoch=min(10, args.max_epochs),
        callbacks=[
            darec.callbacks.GlobalStructureAlignment(weight=1e-2),
            darec.callbacks.LocalStructureAlignment(num_clusters=10, weight=1e-2),
            darec.callbacks.WarmupEarlyStopping("val/recall@20", mode="max", patience=10, start_epoch=100),
            L.pytorch.callbacks.ModelCheckpoint(monitor="val/recall@20", mode="max"),
        ],
    )
    trainer.fit(model, datamodule=data)
    trainer.test(model, datamodule=data, ckpt_path="best")
    items, scores = model.recommend([0, 1, 2], k=5)
    print("top-5 items (new ids) of users 0-2:", items.tolist())


if __name__ == "__main__":
    main()
