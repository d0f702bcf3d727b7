"""Plot the shared space of a trained DaRec model (PCA to 2-D), coloured by preference cluster.

Usage::

    python benchmarks/plot_shared_space.py CHECKPOINT --data-dir ../shared/data/ml100k-implicit-v1 \\
        --out benchmarks/results/shared_space.png

Left: items' shared CF parts; right: their shared text parts; colours: k-means clusters of the fused
shared space, as LocalStructureAlignment computes them.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import darec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--num-clusters", type=int, default=10)
    parser.add_argument("--side", choices=("user", "item"), default="item")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = darec.data.RecDataModule(args.data_dir)
    data.setup("fit")
    model = darec.DaRecModule.load_from_checkpoint(args.checkpoint, map_location="cpu")
    model.set_text_embeddings(data.text_embeddings.get("user"), data.text_embeddings.get("item"))
    model.eval()
    cf, llm = model.shared_spaces()[args.side]
    cf, llm = F.normalize(cf, dim=1), F.normalize(llm, dim=1)
    fused = (cf + llm) / 2
    _, clusters = darec.functional.kmeans(fused, args.num_clusters, generator=torch.Generator().manual_seed(0))
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, x, title in ((axes[0], cf, "shared CF part"), (axes[1], llm, "shared text part")):
        _, _, v = torch.pca_lowrank(x - x.mean(0), q=2, center=False)
        xy = (x - x.mean(0)) @ v[:, :2]
        ax.scatter(xy[:, 0], xy[:, 1], c=clusters, cmap="tab10", s=6)
        ax.set_title(f"{args.side}s: {title} (PCA)")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"DaRec shared space, {args.num_clusters} preference clusters of the fused space")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
