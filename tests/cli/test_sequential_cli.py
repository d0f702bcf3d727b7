"""Tests of darec.sequential_cli: routing by data module, links, a tiny fit and test from a config."""

from __future__ import annotations

from pathlib import Path

import yaml

from darec.sequential_cli import is_sequential_config, sequential_cli
from tests.module.test_sequential_module import cyclic_log

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def test_routing_by_the_data_module():
    assert is_sequential_config(["fit", "--config", str(CONFIGS / "ml100k_sasrec.yaml")])
    assert is_sequential_config(["fit", f"--config={CONFIGS / 'ml100k_sasrec_titles.yaml'}"])
    assert not is_sequential_config(["fit", "--config", str(CONFIGS / "ml100k_mf.yaml")])
    assert is_sequential_config(["fit", "--data", "SequenceDataModule"])
    assert not is_sequential_config(["fit", "--config", "does-not-exist.yaml"])


def test_fit_and_test_from_a_config(tmp_path, capsys):
    log = cyclic_log(40)
    source = tmp_path / "log.tsv"
    rows = ["user\titem\ttimestamp"] + [f"{u}\t{i}\t{int(t)}" for u, i, t in zip(log.users, log.items, log.timestamps)]
    source.write_text("\n".join(rows) + "\n")
    config = {
        "seed_everything": 0,
        "model": {"backbone": {"class_path": "darec.backbones.SASRec", "init_args": {"embedding_dim": 16}},
                  "ks": [5, 10], "sampled_ks": [5, 10]},
        "data": {"class_path": "darec.data.SequenceDataModule",
                 "init_args": {"source": str(source), "max_len": 8, "eval_negatives": 10}},
        "trainer": {"max_epochs": 2, "default_root_dir": str(tmp_path), "enable_progress_bar": False},
    }  # fmt: skip
    path = tmp_path / "seq.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = sequential_cli(["fit", "--config", str(path)])
    backbone = cli.model.backbone
    assert backbone.num_items == cli.datamodule.num_items == 60 and backbone.max_len == 8  # linked from the data
    best = cli.trainer.checkpoint_callback.best_model_path
    assert "ndcg@10=" in Path(best).name
    metrics = cli.trainer.callback_metrics
    assert "test/full/ndcg@10" in metrics and "test/sampled/hit_rate@10" in metrics


def test_predict_from_a_checkpoint_writes_raw_ids(tmp_path):
    import csv

    from darec.cli import cli

    log = cyclic_log(12)
    source = tmp_path / "log.tsv"
    rows = ["user\titem\ttimestamp"] + [f"{u}\t{i}\t{int(t)}" for u, i, t in zip(log.users, log.items, log.timestamps)]
    source.write_text("\n".join(rows) + "\n")
    config = {
        "seed_everything": 0,
        "model": {"backbone": {"class_path": "darec.backbones.SASRec", "init_args": {"embedding_dim": 8}},
                  "ks": [10], "sampled_ks": [5], "predict_k": 4},
        "data": {"class_path": "darec.data.SequenceDataModule",
                 "init_args": {"source": str(source), "max_len": 5, "eval_negatives": 10}},
        "trainer": {"max_epochs": 1, "default_root_dir": str(tmp_path), "enable_progress_bar": False,
                    "enable_model_summary": False},
    }  # fmt: skip
    path = tmp_path / "seq.yaml"
    path.write_text(yaml.safe_dump(config))
    fitted = sequential_cli(["fit", "--config", str(path), "--test_after_fit", "false"])
    last = fitted.trainer.checkpoint_callback.last_model_path
    output = tmp_path / "out" / "predictions.tsv"
    cli(["predict", "--config", str(path), "--ckpt_path", last, "--prediction.output", str(output)])  # routed here
    with open(output, newline="") as handle:
        written = list(csv.DictReader(handle, delimiter="\t"))
    data = fitted.datamodule.sequences
    known = {(data.user_ids[u], data.item_ids[i - 1]) for u in range(data.num_users) for i in data.sequences[u]}
    assert {r["user"] for r in written} == {f"u{k}" for k in range(12)}  # raw ids
    for user in {r["user"] for r in written}:
        mine = [r for r in written if r["user"] == user]
        assert [int(r["rank"]) for r in mine] == [1, 2, 3, 4]  # predict_k
        assert all(r["item"] in set(data.item_ids) and (user, r["item"]) not in known for r in mine)
        assert len({r["item"] for r in mine}) == 4
