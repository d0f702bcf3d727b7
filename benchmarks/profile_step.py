"""Profile one LightGCN training epoch outside Lightning: where the time goes, and the effect of
the symmetric sparse product.

    python benchmarks/profile_step.py --data-dir ../shared/data/ml100k-implicit-v1

Prints seconds per epoch (mean of 10, after one warm-up epoch) with darec's symmetric product and
with PyTorch's generic sparse backward, and the top operators of one epoch under torch.profiler.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
from torch_geometric.nn.models import LightGCN

import darec.backbones.graph as graph
from darec import DaRecModule
from darec.data import BPRTriplets, read_split_dir


@contextlib.contextmanager
def generic_backward(enabled: bool):
    """Within the block, LightGCN's propagation takes PyTorch's generic sparse product (and backward),
    layer by layer (not darec's fused ``_LayerSum``)."""
    original = graph.symmetric_spmm, graph._lightgcn_embedding
    if enabled:
        graph.symmetric_spmm, graph._lightgcn_embedding = torch.sparse.mm, graph._layerwise_lightgcn_embedding
    try:
        yield
    finally:
        graph.symmetric_spmm, graph._lightgcn_embedding = original


def epoch_seconds(symmetric: bool, data, epochs: int = 10) -> tuple[float, object]:
    torch.manual_seed(0)
    model = DaRecModule(LightGCN(data.num_nodes, 32, num_layers=3), num_users=data.num_users, num_items=data.num_items)
    model.set_graph(torch.from_numpy(data.train))
    model.log_dict = lambda *args, **kwargs: None
    batches = BPRTriplets(data.train, data.num_items, 4096, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch():
        for batch in batches:
            loss = model.training_step(batch, 0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    with generic_backward(not symmetric):
        epoch()
        start = time.perf_counter()
        for _ in range(epochs):
            epoch()
        seconds = (time.perf_counter() - start) / epochs
        with torch.profiler.profile() as prof:
            epoch()
    return seconds, prof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    data = read_split_dir(args.data_dir)
    for symmetric in (False, True):
        seconds, prof = epoch_seconds(symmetric, data)
        label = "symmetric product" if symmetric else "generic sparse backward"
        print(f"\n== {label}: {seconds:.4f} s/epoch (torch threads: {torch.get_num_threads()})")
        print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=8, max_name_column_width=40))


if __name__ == "__main__":
    main()
