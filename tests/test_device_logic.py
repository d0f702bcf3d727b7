"""The device and dtype logic of darec's path, checked on the CPU (CI has no GPU), and ``benchmarks/gpu_scale.py``.

A CUDA run breaks where a tensor is made on the CPU next to tensors on the GPU. Such a tensor is
made by a factory (``torch.zeros``, ``torch.arange``, ``torch.from_numpy`` ...) called without
``device=``; on the CPU nothing fails, but the call can be seen: a ``TorchFunctionMode`` records
every factory call without a device whose nearest caller is darec, over a fit of DaRec (both
alignments, per-side clusters with the Hungarian matching), a validation, a predict and a
``recommend``. Only the sites listed in ``CPU_BY_DESIGN`` may do so.

bfloat16 autocast (``precision="bf16-mixed"``) is the other half: what must stay in float32 does
(the graph product, k-means, the epoch sums of the losses, the metric states).

The tests marked ``cuda`` run the same pieces on a GPU when there is one.
"""

from __future__ import annotations

import importlib.util
import json
import traceback
from collections import Counter
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch_geometric.nn.models import LightGCN

import darec
from darec.backbones import graph_embedding, normalized_adjacency, symmetric_spmm
from darec.callbacks import GlobalStructureAlignment, LocalStructureAlignment
from darec.data import quiet_lightning_warnings
from darec.functional.clustering import kmeans
from darec.module import DaRecModule
from darec.module.epoch_losses import EpochLosses
from tests.module import conftest as _s

REPO = Path(__file__).resolve().parents[1]
DAREC = Path(darec.__file__).resolve().parent
TORCH = Path(torch.__file__).resolve().parent
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")

FACTORIES = {
    torch.zeros, torch.ones, torch.empty, torch.full, torch.arange, torch.tensor, torch.as_tensor, torch.from_numpy,
    torch.randperm, torch.randint, torch.rand, torch.randn, torch.eye, torch.linspace,
}  # fmt: skip
#: (file under darec/, function) that make CPU tensors on purpose; anything under data/ (the loaders
#: build batches on the CPU and Lightning moves them) and constructors (``__init__``: the module's
#: ``.to(device)`` moves what they make) are allowed too.
CPU_BY_DESIGN = {
    ("functional/clustering.py", "_kmeans_plus_plus"),  # a draw from the CPU generator, moved with .to(x.device)
    ("functional/clustering.py", "match_clusters"),  # K x K Hungarian matching on the CPU; the callback moves the result
    ("module/data.py", "_init_data"),  # the constructor's empty text buffers, moved with the module
}


class _FactoryAudit(TorchFunctionMode):
    """Counts ``(file, function)`` of darec's factory calls without ``device=``."""

    def __init__(self) -> None:
        super().__init__()
        self.sites: Counter = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and kwargs.get("device") is None and not (func is torch.as_tensor and isinstance(args[0], torch.Tensor)):
            for frame in reversed(traceback.extract_stack()[:-1]):
                path = Path(frame.filename).resolve()
                if path.is_relative_to(TORCH):
                    continue  # torch's own frames: look further out
                if path.is_relative_to(DAREC):
                    self.sites[(path.relative_to(DAREC).as_posix(), frame.name)] += 1
                break  # the nearest caller outside torch (Lightning's logging makes its own tensors)
        return func(*args, **kwargs)


def _fit_darec(root: Path, precision: str = "32-true", clustering: str = "fused", epochs: int = 1):
    L.seed_everything(0, verbose=False)
    dm = _s.make_datamodule(root / "data", batch_size=64)
    model = DaRecModule(LightGCN(_s.NUM_USERS + _s.NUM_ITEMS, 8, num_layers=2), alpha=1e-2, head_hidden_dim=8, predict_k=5)
    local = LocalStructureAlignment(num_clusters=4, weight=1e-2, clustering=clustering)
    callbacks = [GlobalStructureAlignment(weight=1e-2), local]
    trainer = _s.make_trainer(root / precision, max_epochs=epochs, precision=precision, callbacks=callbacks)
    with quiet_lightning_warnings():
        trainer.fit(model, datamodule=dm)
    return model, dm, trainer, local


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_no_implicit_cpu_tensor_in_fit_validate_predict_recommend(tmp_path):
    audit = _FactoryAudit()
    with audit:
        model, dm, trainer, _ = _fit_darec(tmp_path, clustering="per_side", epochs=2)
        with quiet_lightning_warnings():
            trainer.validate(model, datamodule=dm, verbose=False)
            trainer.predict(model, datamodule=dm)
        model.recommend([0, 1, 2], k=5, exclude="train")
    found = {
        site for site in audit.sites
        if site not in CPU_BY_DESIGN and not site[0].startswith("data/") and site[1] != "__init__"
    }  # fmt: skip
    assert not found, f"tensors made without device= (on the CPU next to GPU tensors under CUDA): {sorted(found)}"
    assert ("functional/clustering.py", "match_clusters") in audit.sites  # the audit saw the per-side clustering


def test_normalized_adjacency_is_built_on_the_device_of_its_edges():
    """All three parts of the CSR matrix on ``edge_index``'s device (the row pointers were made on the CPU)."""
    audit = _FactoryAudit()
    with audit:
        adj = normalized_adjacency(torch.tensor([[0, 1, 2], [3, 4, 4]]), num_nodes=5)
    assert not audit.sites
    assert adj.crow_indices().device == adj.col_indices().device == adj.values().device == torch.device("cpu")


def test_lightgcn_propagation_stays_float32_under_bfloat16_autocast():
    torch.manual_seed(0)
    model = LightGCN(5, 4, num_layers=2)
    adj = normalized_adjacency(torch.tensor([[0, 1, 2], [3, 4, 4]]), num_nodes=5)
    expected = graph_embedding(model, adj)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = graph_embedding(model, adj)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, expected)  # float32 throughout: the same numbers
    mixed.sum().backward()
    assert model.embedding.weight.grad.dtype == torch.float32


def test_kmeans_clusters_in_float32_where_the_points_are():
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(30, 3, generator=gen), torch.randn(30, 3, generator=gen) + 8]).to(torch.bfloat16)
    centres, assignment = kmeans(x, 2, generator=torch.Generator().manual_seed(0))
    assert centres.dtype == torch.float32 and assignment.dtype == torch.long
    assert centres.device == assignment.device == x.device
    warm, again = kmeans(x, 2, init=centres.double())  # a warm start from centres of another dtype
    assert warm.dtype == torch.float32
    assert torch.equal(again, assignment)


def test_epoch_losses_sum_bfloat16_terms_in_float32():
    """Under bf16-mixed the alignment terms and regularisers are bfloat16; their epoch sum was too,
    and at the Amazon-Book size (~440 steps of 4096) it stopped growing: the mean of a constant
    -3.3 came out as -2.31."""
    losses = EpochLosses()
    value = torch.tensor(-3.3, dtype=torch.bfloat16)
    for _ in range(443):
        losses.add({"train/uniformity": value, "train/double": torch.tensor(1.0, dtype=torch.float64)}, batch_size=4096)
    means = losses.means()
    assert means["train/uniformity"].dtype == torch.float32 and means["train/double"].dtype == torch.float64
    assert means["train/uniformity"].item() == pytest.approx(value.item(), rel=1e-6)
    # a checkpoint's sums (as an older darec wrote them, in bfloat16) are widened on resume
    state = {"epoch": 3, "sums": {"train/local": torch.tensor(8.0, dtype=torch.bfloat16)}, "count": 4}
    losses.reset()
    losses.resume_from(state)
    losses.resume(3, torch.device("cpu"))
    assert losses.sums["train/local"].dtype == torch.float32


def test_bf16_mixed_fit_keeps_assignments_metrics_and_outputs_on_the_module(tmp_path):
    model, dm, trainer, local = _fit_darec(tmp_path, precision="bf16-mixed")
    assert model.device.type == "cpu"
    for side, assignment in local.assignments.items():
        assert assignment.dtype == torch.long and assignment.device == model.device, side
        assert torch.equal(getattr(model.term("local"), f"assignment_{side}"), assignment)
    with quiet_lightning_warnings():
        trainer.validate(model, datamodule=dm, verbose=False)
        batches = trainer.predict(model, datamodule=dm)
    metric = model.val_metrics["recall@5"]
    assert metric.total.dtype == torch.float64 and metric.count.dtype == torch.long  # not lowered by autocast
    assert all(t.device.type == "cpu" for b in batches for t in b.values())  # predict hands back CPU tensors
    items, scores = model.recommend([0, 1], k=5)
    assert items.device == scores.device == model.device and scores.dtype == torch.float32


# -- benchmarks/gpu_scale.py ---------------------------------------------------------------------
def _gpu_scale():
    spec = importlib.util.spec_from_file_location("_gpu_scale_under_test", REPO / "benchmarks" / "gpu_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def gpu_scale(monkeypatch):
    """The script, with its ``ml100k-like`` size shrunk to 40 users x 120 items (one training step)."""
    module = _gpu_scale()
    monkeypatch.setitem(module.load_scale().SIZES, "small", (40, 120, 600))
    return module


def test_gpu_scale_runs_end_to_end_on_the_cpu(gpu_scale, tmp_path, capsys):
    out = tmp_path / "gpu_scale.json"
    argv = ["--device", "cpu", "--size", "ml100k-like", "--epochs", "1", "--precision", "bf16-mixed",
            "--no-warmup", "--predict-users", "4", "--data-root", str(tmp_path / "data"), "--out", str(out)]  # fmt: skip
    results = gpu_scale.main(argv)
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    assert results["errors"] == 0 and not results["stopped_early"] and not results["skipped"]
    assert results["environment"]["device"] == "cpu" and results["environment"]["torch"] == torch.__version__
    runs = results["runs"]["bf16-mixed"]
    assert set(runs) == {"plain", "darec"}
    for method, run in runs.items():
        assert run["complete"] and run["steps_per_epoch"] == 1 and len(run["epochs"]) == 1, method
        assert run["epoch_seconds"] > 0 and run["validation_seconds"] > 0 and run["predict_seconds"] > 0, method
        assert run["recommend_device"] == run["predict_output_device"] == "cpu"
        assert run["fit_peak_gpu_gib"] is None  # no GPU memory to report on a CPU
        assert 0 <= run["val/recall@20"] <= 1
    assert runs["darec"]["cluster_refresh_seconds"] > 0 and len(runs["darec"]["cluster_refresh_in_fit_seconds"]) == 1
    assert runs["darec"]["cluster_points"] == 40 + 120 and runs["darec"]["cluster_device"] == ["cpu"]
    assert "train/local" in runs["darec"]["train"]
    table = capsys.readouterr().out
    assert "bf16-mixed  darec" in table and "recall@20" in table


def test_gpu_scale_time_bound_writes_what_it_has(gpu_scale, tmp_path):
    out = tmp_path / "gpu_scale.json"
    argv = ["--device", "cpu", "--size", "ml100k-like", "--max-minutes", "0", "--data-root", str(tmp_path / "data"), "--out", str(out)]
    results = gpu_scale.main(argv)
    assert results["stopped_early"] and not any(results["runs"].values())
    assert results["skipped"] == ["32-true/plain", "32-true/darec", "bf16-mixed/plain", "bf16-mixed/darec"]
    assert json.loads(out.read_text())["counts"]["users"] == 40  # the data step was measured and written


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_gpu_scale_without_cuda_stops_at_once(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _gpu_scale().main(["--device", "cuda", "--size", "ml100k-like"])
    assert exit_info.value.code == 2
    assert "CUDA is not available" in capsys.readouterr().err


# -- on a GPU, when there is one ---------------------------------------------------------------
@cuda
def test_cuda_graph_product_and_kmeans():
    edges = torch.tensor([[0, 1, 2], [3, 4, 4]], device="cuda")
    adj = normalized_adjacency(edges, num_nodes=5)
    assert adj.device.type == "cuda"
    x = torch.randn(5, 3, device="cuda", requires_grad=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = symmetric_spmm(adj, x.to(torch.bfloat16))
    assert out.dtype == torch.float32 and out.device.type == "cuda"
    torch.testing.assert_close(out, adj.to_dense() @ x.to(torch.bfloat16).float())
    centres, assignment = kmeans(torch.randn(100, 4, device="cuda"), 3, generator=torch.Generator().manual_seed(0))
    assert centres.device.type == assignment.device.type == "cuda"


@cuda
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_cuda_fit_validate_predict(tmp_path, precision):
    L.seed_everything(0, verbose=False)
    dm = _s.make_datamodule(tmp_path / "data", batch_size=64)
    model = DaRecModule(LightGCN(_s.NUM_USERS + _s.NUM_ITEMS, 8, num_layers=2), alpha=1e-2, head_hidden_dim=8)
    callbacks = [GlobalStructureAlignment(weight=1e-2), LocalStructureAlignment(num_clusters=4, weight=1e-2, clustering="per_side")]
    trainer = _s.make_trainer(tmp_path, max_epochs=2, accelerator="gpu", precision=precision, callbacks=callbacks)
    with quiet_lightning_warnings():
        trainer.fit(model, datamodule=dm)
        metrics = trainer.validate(model, datamodule=dm, verbose=False)[0]
        batches = trainer.predict(model, datamodule=dm)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in trainer.callback_metrics.values())
    assert 0 <= metrics["val/recall@20"] <= 1 and batches[0]["item"].device.type == "cpu"
    items, _ = model.to("cuda").recommend([0, 1], k=5)
    assert items.device.type == "cuda"
