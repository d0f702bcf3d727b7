"""The ``darec`` command: configs, links, fit -> test -> predict on a tiny split directory."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from darec.cli import DaRecCLI, cli
from darec.data import write_split_dir
from darec.module import DaRecModule

REPO = Path(__file__).resolve().parents[2]
DAREC = Path(sys.executable).with_name("darec")

MODEL_CONFIG = """\
model:
  backbone:
    class_path: torch_geometric.nn.models.LightGCN
    init_args:
      embedding_dim: 8
      num_layers: 2
  lr: 0.01
trainer:
  enable_progress_bar: false
  enable_model_summary: false
  log_every_n_steps: 1
  num_sanity_val_steps: 0
"""


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: the tensors are tiny, and on a shared machine more threads only wait on each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "DAREC_HOME": str(tmp_path / "home"),
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    command = [str(DAREC)] if DAREC.exists() else [sys.executable, "-m", "darec.cli"]
    return subprocess.run(
        command + args, cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def split_dir(tmp_path, tiny_interactions) -> Path:
    return write_split_dir(tiny_interactions, tmp_path / "split")


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(MODEL_CONFIG)
    return path


def _data_args(split_dir: Path) -> list[str]:
    return [
        "--data", "darec.data.RecDataModule",
        "--data.source", str(split_dir),
        "--data.text_encoder", "null",
        "--data.batch_size", "4",
    ]  # fmt: skip


def test_print_config_of_example(tmp_path):
    result = _run(["fit", "--config", str(REPO / "examples/configs/ml100k_lightgcn.yaml"), "--print_config"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "class_path: torch_geometric.nn.models.LightGCN" in result.stdout
    assert "class_path: darec.data.MovieLens100K" in result.stdout
    assert "monitor: val/recall@20" in result.stdout  # the checkpoint defaults
    assert not (tmp_path / "lightning_logs").exists()  # nothing ran


def test_unknown_config_key_is_rejected(tmp_path, split_dir, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(MODEL_CONFIG.replace("  lr: 0.01\n", "  lr: 0.01\n  bogus_key: 3\n"))
    with pytest.raises(SystemExit) as info:
        cli(args=["fit", "--config", str(bad), *_data_args(split_dir)], run=True)
    assert info.value.code != 0
    assert "bogus_key" in capsys.readouterr().err


def test_links_sizes_from_the_data(config, split_dir, tiny_interactions):
    instance = cli(args=["--config", str(config), *_data_args(split_dir)], run=False)
    assert isinstance(instance, DaRecCLI)
    data, model = instance.datamodule, instance.model
    assert model.num_users == data.num_users == tiny_interactions.num_users
    assert model.num_items == data.num_items == tiny_interactions.num_items
    assert model.backbone.num_nodes == data.num_nodes == tiny_interactions.num_nodes  # no num_nodes in the config
    assert model.backbone.embedding.weight.shape == (data.num_nodes, 8)
    callbacks = {type(c).__name__ for c in instance.trainer.callbacks}
    assert {"ResumableCheckpoint", "PredictionWriter"} <= callbacks  # a ModelCheckpoint whose last.ckpt is the last epoch


def test_fit_test_predict_round_trip(tmp_path, config, split_dir, tiny_interactions):
    root = tmp_path / "run"
    common = ["--config", str(config), *_data_args(split_dir), "--trainer.default_root_dir", str(root)]
    result = _run(["fit", *common, "--trainer.max_epochs", "2", "--trainer.check_val_every_n_epoch", "1"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test/recall@20" in result.stdout + result.stderr  # the test of the best checkpoint ran
    log_dir = root / "lightning_logs" / "version_0"
    last = log_dir / "checkpoints" / "last.ckpt"
    assert last.is_file()
    assert any(p.name.startswith("best-") for p in (log_dir / "checkpoints").iterdir())
    header = (log_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "val/recall@20" in header and "train/loss" in header and "test/recall@20" in header
    assert not (tmp_path / "lightning_logs").exists()  # logs follow default_root_dir

    # predict from the checkpoint: raw ids, nothing the user has seen
    output = tmp_path / "predictions.tsv"
    cli(args=["predict", *common, "--ckpt_path", str(last), "--prediction.output", str(output)])
    with open(output, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    data = tiny_interactions
    seen = {(data.user_ids[u], data.item_ids[i]) for s in ("train", "valid", "test") for u, i in data.split(s)}
    assert {r["user"] for r in rows} == {"ua", "ub", "uc", "ud"}
    assert all(r["item"] in set(data.item_ids) for r in rows)
    assert not any((r["user"], r["item"]) in seen for r in rows)
    for user in ("ua", "ub", "uc", "ud"):
        unseen = sum((user, item) not in seen for item in data.item_ids)
        assert [int(r["rank"]) for r in rows if r["user"] == user] == list(range(1, unseen + 1))

    # test from the checkpoint
    tested = cli(args=["test", *common, "--ckpt_path", str(last)])
    assert "test/recall@20" in tested.trainer.callback_metrics

    # the checkpoint loads without the CLI, the data or the backbone
    model = DaRecModule.load_from_checkpoint(last)
    assert (model.num_users, model.num_items) == (data.num_users, data.num_items)
    assert model.backbone.num_nodes == data.num_nodes
    items, scores = model.recommend([0, 1, 2, 3], k=2)
    assert items.shape == (4, 2)
    train = {(int(u), int(i)) for u, i in data.train}
    assert not any((u, i) in train for u in range(4) for i in items[u].tolist())
    assert torch.isfinite(scores).all()


# -- which config key a failed constructor belongs to ---------------------------------------------
class _Part:
    def __init__(self, size: int) -> None:
        _check_size(size)


class _Other(_Part):
    pass


class _Inner:
    def __init__(self) -> None:
        raise ValueError("`depth` must be positive")


class _Outer:
    def __init__(self) -> None:
        _Inner()


def _check_size(size: int) -> None:
    if size <= 0:
        raise ValueError(f"`size` must be positive, got {size}")


def _error_of(build):
    try:
        build()
    except ValueError as error:
        return error
    raise AssertionError("no error")


def test_failed_constructor_is_found_by_code_not_by_frame_locals():
    from darec.cli import _failed_constructor

    classes = [("model", DaRecModule), ("data.init_args", _Part), ("trainer.callbacks[1].init_args", _Other)]
    # raised in a helper that the configured constructor called: the constructor's key
    assert _failed_constructor(_error_of(lambda: _Part(0)), classes) == "data.init_args"
    # a subclass without its own __init__ shares its parent's code: the first key that has it
    assert _failed_constructor(_error_of(lambda: _Other(0)), classes) == "data.init_args"
    # no configured class: the innermost constructor's class
    assert _failed_constructor(_error_of(_Outer), classes) == "_Inner"
    assert _failed_constructor(_error_of(lambda: _check_size(0)), classes) is None
