"""Two CPU processes (gloo) each evaluate part of the users; compute() must match one process."""

import os
import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from darec.metrics import rank_items, ranking_metrics

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo"
)

WORLD_SIZE = 2


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _evaluate(rank, port, scores, exclude, target, splits, out_dir):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE, timeout=timedelta(seconds=60))
    try:
        rows = slice(*splits[rank])  # uneven halves: the user counts differ between ranks
        metrics = ranking_metrics(ks=(5, 10, 20))
        for start in range(rows.start, rows.stop, 8):
            batch = slice(start, min(start + 8, rows.stop))
            metrics.update(rank_items(scores[batch], metrics.max_k, exclude=exclude[batch]), target[batch])
        values = {name: value.item() for name, value in metrics.compute().items()}
        torch.save(values, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_ddp_compute_equals_single_process(tmp_path, make_ranking_problem):
    scores, exclude, target = make_ranking_problem(num_users=41, seed=3)
    single = ranking_metrics(ks=(5, 10, 20))
    single.update(rank_items(scores, single.max_k, exclude=exclude), target)
    expected = {name: value.item() for name, value in single.compute().items()}

    splits = [(0, 17), (17, 41)]
    mp.spawn(
        _evaluate,
        args=(_free_port(), scores, exclude, target, splits, str(tmp_path)),
        nprocs=WORLD_SIZE,
        join=True,
    )
    for rank in range(WORLD_SIZE):
        values = torch.load(tmp_path / f"rank{rank}.pt")
        assert values.keys() == expected.keys()
        for name, value in expected.items():
            assert values[name] == pytest.approx(value, abs=1e-6), (rank, name)
