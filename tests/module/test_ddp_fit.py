"""DaRec under DDP: two CPU processes (gloo) fit for an epoch; one process is the reference.

The two processes are started as ``torchrun`` would start them (``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` set, one ``Trainer(strategy="ddp", devices=2)`` per process), so each rank's own
weights, cluster assignments and metrics can be inspected.

What is compared, and how closely:

- **The same weights give the same validation metrics** on one and on two processes (``abs=1e-6``,
  float32 round-off of a mean): the users are split between the ranks (unevenly here: 3 batches of
  16 users, two on rank 0 and one on rank 1) and the metric sums are added across ranks.
- **The ranks stay identical**: after the epoch every rank holds the same weights (DDP averages the
  gradients) and the same cluster assignments, rank 0's (each rank's ``LocalStructureAlignment`` has
  its own k-means seed, so only the broadcast can make them equal).
- **The ranks draw the same epochs without a common seed**: the data module's sampler takes rank
  0's global seed (processes seeded 100 and 101 both sample with 100).
- **BPR alone is the same computation**: with ``batch_size = B / 2`` per rank, step ``s`` of the two
  ranks covers exactly the triplets of step ``s`` of one process with ``batch_size = B`` (same seed,
  same permutation and negatives; rank ``r`` takes batch ``2 s + r``), and the average of the two
  ranks' gradients of their batch means is the gradient of the mean over ``B``. The weights agree up
  to float32 summation order (``atol=1e-5``), the validation metrics exactly (``abs=1e-6``).
- **DaRec's full objective is close, not equal**: the regularisers and alignment terms are not sums
  over triplets (uniformity and global alignment are pairwise over a batch's distinct users and
  items, local alignment uses their cluster centres), so each rank's terms over half a batch are not
  the terms over the whole batch. Both runs start from the same weights: Lightning's DDP strategy
  seeds every process again when it sets up the process group (``reset_seed``), after the model is
  built and before ``setup`` builds the heads, so the one-process reference does the same
  (``_ReseedAtSetup``); without it the heads start elsewhere and the runs are two different seeds.
  After one epoch (5 steps) every validation metric of the 2-process run is within ``abs=0.05`` of
  the one-process run's. With 40 users and 2 held-out items each, one hit more or less in one
  user's top k moves recall@k by 1/80 = 0.0125 (hit rate by 1/40); the largest difference measured
  when this test was written was 0.0125 (recall@5), so 0.05 allows four such hits. The trained
  embedding tables are 0.19 apart (relative L2; Adam moves every coordinate by about ``lr`` per
  step, so small gradient differences show); tolerance 0.5, while runs whose heads start from
  different weights were measured 0.95 apart.
"""

from __future__ import annotations

import math
import os
import socket
from datetime import timedelta
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lightning.fabric.utilities.seed import reset_seed
from lightning.pytorch.strategies import DDPStrategy
from torch_geometric.nn.models import LightGCN

from darec.callbacks import GlobalStructureAlignment, LocalStructureAlignment
from darec.data import RecDataModule, quiet_lightning_warnings
from darec.module import DaRecModule
from tests.module import conftest as _s

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo"
)

WORLD_SIZE = 2
BATCH = 64  # triplets per step of one process; each of the two ranks takes BATCH // 2
NUM_NODES = _s.NUM_USERS + _s.NUM_ITEMS
FULL_RUN_TOLERANCE = 0.05  # see the module docstring
SAME_WEIGHTS_TOLERANCE = 1e-6
EMBEDDING_TOLERANCE = 0.5  # relative L2 distance of the trained embedding tables; see the module docstring


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _val(metrics: dict) -> dict[str, float]:
    return {key: float(value) for key, value in metrics.items() if key.startswith("val/")}


def _fit(root: Path, batch_size: int, devices: int, darec: bool, kmeans_seed: int = 0):
    """One epoch of LightGCN, plain BPR or DaRec (alpha > 0, global and local alignment)."""
    L.seed_everything(0, verbose=False)
    dm = _s.make_datamodule(root, text=darec, batch_size=batch_size)
    torch.manual_seed(0)
    backbone = LightGCN(NUM_NODES, 8, num_layers=2)
    callbacks = []
    if darec:
        model = DaRecModule(backbone, lr=0.05, weight_decay=1e-4, alpha=1e-2, head_hidden_dim=8)
        callbacks = [GlobalStructureAlignment(weight=1e-2), LocalStructureAlignment(num_clusters=4, weight=1e-2, seed=kmeans_seed)]
    else:
        model = DaRecModule(backbone, lr=0.05, weight_decay=1e-4)
    if devices == 1:
        callbacks.append(_ReseedAtSetup())
    strategy = DDPStrategy(process_group_backend="gloo", timeout=timedelta(seconds=120)) if devices > 1 else "auto"
    trainer = _s.make_trainer(root, max_epochs=1, devices=devices, strategy=strategy, callbacks=callbacks)
    with quiet_lightning_warnings():
        trainer.fit(model, datamodule=dm)
    return trainer, model, dm, (callbacks[1] if darec else None)


class _ReseedAtSetup(L.Callback):
    """What Lightning's DDP strategy does in every process when it sets up the process group: seeds
    the global generator again (``reset_seed``), after the model was built and before ``setup``."""

    def setup(self, trainer, pl_module, stage):
        reset_seed()


def _weights(model: DaRecModule) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}


def _rank(rank: int, port: int, out_dir: str) -> None:
    """One DDP process, started as torchrun starts it: Lightning finds LOCAL_RANK and does not spawn."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LOCAL_RANK=str(rank), NODE_RANK="0")
    torch.set_num_threads(1)
    root = Path(out_dir) / f"rank{rank}"
    results = {}
    trainer, model, _, _ = _fit(root / "bpr", BATCH // WORLD_SIZE, WORLD_SIZE, darec=False)
    results["bpr"] = {"weights": _weights(model), "fit_val": _val(trainer.callback_metrics)}

    trainer, model, dm, local = _fit(root / "darec", BATCH // WORLD_SIZE, WORLD_SIZE, darec=True, kmeans_seed=rank)
    fit_val = _val(trainer.callback_metrics)
    losses = {key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("train/")}
    own = {side: a.cpu() for side, a in local.cluster(model).items()}  # this rank's k-means, for contrast
    with quiet_lightning_warnings():
        (validated,) = trainer.validate(model, datamodule=dm, verbose=False)
    results["darec"] = {
        "weights": _weights(model),
        "fit_val": fit_val,
        "validate": _val(validated),
        "assignments": {side: a.cpu() for side, a in local.assignments.items()},
        "own_clustering": own,
        "losses": losses,
    }
    # without a common seed (torchrun, no seed_everything) the ranks still draw the same epochs
    torch.manual_seed(100 + rank)
    dm = RecDataModule.from_interactions(_s.make_interactions(), batch_size=BATCH, text_encoder=None)
    dm.setup("fit")
    results["sampler_seed"] = dm._train_set.generator.initial_seed()
    torch.save(results, root.parent / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    """The two ranks' results and the one-process reference runs."""
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_rank, args=(_free_port(), str(out)), nprocs=WORLD_SIZE, join=True)
    ranks = [torch.load(out / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]

    single = {}
    trainer, model, _, _ = _fit(out / "single-bpr", BATCH, 1, darec=False)
    single["bpr"] = {"weights": _weights(model), "fit_val": _val(trainer.callback_metrics)}
    trainer, model, dm, _ = _fit(out / "single-darec", BATCH, 1, darec=True)
    single["darec"] = {"weights": _weights(model), "fit_val": _val(trainer.callback_metrics)}
    # rank 0's weights, validated by one process
    model.load_state_dict(ranks[0]["darec"]["weights"])
    with quiet_lightning_warnings():
        (validated,) = trainer.validate(model, datamodule=dm, verbose=False)
    single["rank0_weights_validate"] = _val(validated)
    return ranks, single


def _assert_close_metrics(got: dict[str, float], expected: dict[str, float], tolerance: float) -> None:
    assert got.keys() == expected.keys() and "val/recall@20" in got
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=tolerance), (key, got[key], value)


def test_same_weights_validate_the_same_on_one_and_two_processes(ddp_runs):
    ranks, single = ddp_runs
    for rank in ranks:  # every rank logs the metrics of all users, reduced across ranks
        _assert_close_metrics(rank["darec"]["validate"], single["rank0_weights_validate"], SAME_WEIGHTS_TOLERANCE)
        _assert_close_metrics(rank["darec"]["fit_val"], rank["darec"]["validate"], SAME_WEIGHTS_TOLERANCE)


def test_ranks_hold_identical_weights_and_clusters(ddp_runs):
    ranks, _ = ddp_runs
    first, second = ranks[0]["darec"], ranks[1]["darec"]
    for losses in (first["losses"], second["losses"]):
        assert {"train/loss", "train/bpr", "train/global", "train/local", "train/uniformity"} <= losses.keys()
        assert all(math.isfinite(value) for value in losses.values()), losses
    assert first["weights"].keys() == second["weights"].keys()
    assert any(key.startswith("heads.") for key in first["weights"])
    for key, value in first["weights"].items():
        assert torch.equal(value, second["weights"][key]), key
    assert set(first["assignments"]) == {"user", "item"}
    for side, assignment in first["assignments"].items():
        assert torch.equal(assignment, second["assignments"][side]), side
    # rank 1's own k-means (another seed) labels the clusters differently: the broadcast made them equal
    assert any(not torch.equal(second["own_clustering"][side], first["assignments"][side]) for side in ("user", "item"))


def test_ranks_sample_the_same_epochs_without_a_common_seed(ddp_runs):
    ranks, _ = ddp_runs
    assert [rank["sampler_seed"] for rank in ranks] == [100, 100]  # rank 0's global seed


def test_bpr_on_two_processes_is_the_one_process_computation(ddp_runs):
    ranks, single = ddp_runs
    for rank in ranks:
        for key, value in single["bpr"]["weights"].items():
            torch.testing.assert_close(rank["bpr"]["weights"][key], value, rtol=0, atol=1e-5, msg=key)
        _assert_close_metrics(rank["bpr"]["fit_val"], single["bpr"]["fit_val"], SAME_WEIGHTS_TOLERANCE)


def test_darec_on_two_processes_is_close_to_one_process(ddp_runs):
    ranks, single = ddp_runs
    _assert_close_metrics(ranks[0]["darec"]["fit_val"], single["darec"]["fit_val"], FULL_RUN_TOLERANCE)
    # the same start, different steps: the embeddings moved apart, but far less than from another start
    ours, theirs = ranks[0]["darec"]["weights"], single["darec"]["weights"]
    key = "backbone.embedding.weight"
    assert float((ours[key] - theirs[key]).norm() / theirs[key].norm()) < EMBEDDING_TOLERANCE

