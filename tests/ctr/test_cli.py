"""``darec fit`` on CTR configs: routing, links from the data, checkpoints by val/auc, the test after fit."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml

from darec.cli import cli
from darec.ctr.cli import CTRCLI, is_ctr_config
from tests.ctr.synthetic import random_log, write_explanations

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def test_routing_by_the_data_module():
    for name in ("ml100k_ctr_fm", "ml100k_ctr_deepfm", "ml100k_ctr_dcnv2"):
        assert is_ctr_config(["fit", "--config", str(CONFIGS / f"{name}.yaml")])
    assert not is_ctr_config(["fit", "--config", str(CONFIGS / "ml100k_mf.yaml")])
    assert not is_ctr_config(["fit", "--config", str(CONFIGS / "ml100k_sasrec.yaml")])


def _config(tmp_path: Path, backbone: str, **data: object) -> Path:
    log, clicks = random_log(num_users=12, num_items=30, num_pairs=300)
    source = tmp_path / "log.csv"
    rows = ["user,item,rating,timestamp"] + [
        f"{u},{i},{int(r)},{int(t)}" for u, i, r, t in zip(log.users, log.items, log.ratings, log.timestamps)
    ]
    source.write_text("\n".join(rows) + "\n")
    if data.pop("explained", False):
        data["explanations"] = str(write_explanations(tmp_path / "expl.jsonl", log, clicks))
    config = {
        "seed_everything": 0,
        "model": {"backbone": {"class_path": backbone, "init_args": {"embedding_dim": 4}}, "lr": 0.01},
        "data": {"class_path": "darec.ctr.CTRDataModule", "init_args": {"source": str(source), "batch_size": 64, **data}},
        "trainer": {"max_epochs": 2, "default_root_dir": str(tmp_path), "enable_progress_bar": False,
                    "enable_model_summary": False, "log_every_n_steps": 1},
    }  # fmt: skip
    path = tmp_path / "ctr.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_fit_and_test_from_a_config(tmp_path):
    config = _config(tmp_path, "darec.ctr.DeepFM")
    run = cli(["fit", "--config", str(config)])
    assert isinstance(run, CTRCLI)
    backbone, data = run.model.backbone, run.datamodule
    assert (backbone.fields.num_users, backbone.fields.num_items, backbone.text_dim) == (data.num_users, data.num_items, 0)
    best = Path(run.trainer.checkpoint_callback.best_model_path)
    assert best.name.startswith("best-epoch=") and "auc=" in best.name
    metrics = run.trainer.callback_metrics
    assert {"test/auc", "test/logloss"} <= set(metrics) and 0.0 <= float(metrics["test/auc"]) <= 1.0
    with open(Path(run.trainer.logger.log_dir) / "metrics.csv", newline="") as handle:
        logged = list(csv.DictReader(handle))
    assert {"train/loss", "val/auc", "val/logloss", "test/auc"} <= set(logged[0])
    assert sum(1 for row in logged if row["val/auc"]) == 2  # one validation per epoch
    saved = yaml.safe_load((Path(run.trainer.logger.log_dir) / "config.yaml").read_text())
    assert saved["data"]["class_path"] == "darec.ctr.CTRDataModule"
    # the best checkpoint tests again from the shell, with the same figures
    checkpoint = torch.load(best, map_location="cpu", weights_only=True)
    assert checkpoint["darec"]["user_ids"] == data.samples.user_ids.tolist()
    again = cli(["test", "--config", str(config), "--ckpt_path", str(best)])
    assert float(again.trainer.callback_metrics["test/auc"]) == pytest.approx(float(metrics["test/auc"]))


def test_explanations_link_the_text_width(tmp_path):
    path = _config(tmp_path, "darec.ctr.FM", explained=True,
                   text_encoder={"class_path": "tests.ctr.synthetic.KeywordEncoder"})  # fmt: skip
    run = cli(["fit", "--config", str(path), "--trainer.max_epochs", "1", "--test_after_fit", "false"])
    assert run.model.backbone.text_dim == run.datamodule.text_dim == 4
    assert "val/auc" in run.trainer.callback_metrics and "test/auc" not in run.trainer.callback_metrics


def test_a_rejected_argument_is_one_line(tmp_path, capsys):
    path = _config(tmp_path, "darec.ctr.FM", positive_threshold=9.0)
    with pytest.raises(SystemExit) as info:
        cli(["fit", "--config", str(path)])
    assert info.value.code == 2
    assert "positive_threshold=9 leaves one class empty" in capsys.readouterr().err
