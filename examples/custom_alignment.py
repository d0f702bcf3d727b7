"""Write your own alignment method: a loss module and a thin callback, nothing else in darec changes.

``CosineAlignment`` pulls each user's and item's CF embedding towards a learned linear map of its
text embedding (mean cosine distance, summed over users and items). From Python, on a small
synthetic data set with random "text" embeddings::

    python examples/custom_alignment.py --max-epochs 2

From YAML (the callback is found as ``custom_alignment.CosineAlignment``, so this folder must be
on the Python path)::

    PYTHONPATH=examples darec fit --config examples/custom_alignment.yaml

See docs/tutorials/custom_alignment.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from darec.callbacks import AlignmentCallback
from darec.module import Sizes, StepViews


class CosineAlignmentLoss(nn.Module):
    """Mean cosine distance between CF embeddings and a linear map of the text embeddings, per side."""

    needs_shared = False  # reads view.cf and view.llm: DaRec's disentangling heads are not needed

    def __init__(self, text_dim: int, cf_dim: int) -> None:
        super().__init__()
        self.projector = nn.Linear(text_dim, cf_dim)

    def forward(self, views: StepViews) -> torch.Tensor:
        distances = [1 - F.cosine_similarity(view.cf, self.projector(view.llm), dim=-1).mean() for view in views.values()]
        return torch.stack(distances).sum()


class CosineAlignment(AlignmentCallback):
    """Switches the cosine alignment on; logged as ``train/cosine``."""

    name = "cosine"

    def __init__(self, weight: float = 0.1, warmup_epochs: int = 0) -> None:
        super().__init__(weight, warmup_epochs)

    def build_term(self, sizes: Sizes) -> CosineAlignmentLoss:
        return CosineAlignmentLoss(sizes.text_dim, sizes.cf_dim)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Trains LightGCN with the cosine alignment on synthetic data; returns the test metrics."""
    import argparse
    import tempfile
    from pathlib import Path

    import lightning as L
    import numpy as np
    from torch_geometric.nn.models import LightGCN

    from darec import DaRecModule
    from darec.data import Interactions, RecDataModule

    parser = argparse.ArgumentParser(description="LightGCN + a user-defined cosine alignment, on synthetic data")
    parser.add_argument("--max-epochs", type=int, default=20)
    args = parser.parse_args(argv)
    L.seed_everything(0, verbose=False)
    num_users, num_items, rng = 50, 80, np.random.default_rng(0)
    pairs = np.array([(u, i) for u in range(num_users) for i in rng.choice(num_items, 10, replace=False)])
    rng.shuffle(pairs)
    data = Interactions(num_users, num_items, train=pairs[:400], valid=pairs[400:450], test=pairs[450:])
    with tempfile.TemporaryDirectory() as tmp:
        user, item = Path(tmp) / "user.pt", Path(tmp) / "item.pt"
        torch.save(torch.randn(num_users, 16), user)
        torch.save(torch.randn(num_items, 16), item)
        dm = RecDataModule.from_interactions(data, batch_size=128, text_encoder=None, user_embeddings=str(user), item_embeddings=str(item))
        model = DaRecModule(LightGCN(num_users + num_items, 16, num_layers=2), lr=0.01)
        trainer = L.Trainer(max_epochs=args.max_epochs, callbacks=[CosineAlignment(weight=0.1)], logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp)  # fmt: skip
        trainer.fit(model, datamodule=dm)
        print(f"train/cosine: {float(trainer.callback_metrics['train/cosine']):.4f}")
        return trainer.test(model, datamodule=dm)[0]


if __name__ == "__main__":
    main()
