"""darec.loggers.CSVLogger: Lightning's CSV files, continued across a resumed run."""

from __future__ import annotations

import csv

import torch
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger

from darec.loggers import CSVLogger


def _rows(logger):
    with open(logger.experiment.metrics_file_path, newline="") as handle:
        return list(csv.DictReader(handle))


def _log(logger, epochs, key="val/loss"):
    for epoch in epochs:
        logger.log_metrics({key: torch.tensor(float(epoch)), "epoch": epoch}, step=epoch * 10)
    logger.save()


def test_fresh_run_writes_what_lightning_writes(tmp_path):
    ours, theirs = CSVLogger(tmp_path / "a", version=0), LightningCSVLogger(tmp_path / "b", version=0)
    for logger in (ours, theirs):
        logger.log_hyperparams({"lr": 0.1})
        _log(logger, [0, 1])
        _log(logger, [2], key="val/recall")  # a wider header: the file is rewritten
        logger.finalize("success")
    assert (tmp_path / "a/lightning_logs/version_0/metrics.csv").read_text() == (
        tmp_path / "b/lightning_logs/version_0/metrics.csv"
    ).read_text()
    assert (tmp_path / "a/lightning_logs/version_0/hparams.yaml").read_text() == (
        tmp_path / "b/lightning_logs/version_0/hparams.yaml"
    ).read_text()


def test_resumed_run_keeps_earlier_epochs_and_hparams(tmp_path):
    first = CSVLogger(tmp_path, version=0)
    first.log_hyperparams({"lr": 0.1})
    _log(first, [0, 1, 2, 3])
    resumed = CSVLogger(tmp_path, version=0)
    resumed.log_hyperparams({"resumed": True})
    _log(resumed, [2, 3, 4])
    rows = _rows(resumed)
    assert [row["epoch"] for row in rows] == ["0", "1", "2", "3", "4"]
    assert [row["step"] for row in rows] == ["0", "10", "20", "30", "40"]
    hparams = (tmp_path / "lightning_logs/version_0/hparams.yaml").read_text()
    assert "lr: 0.1" in hparams and "resumed: true" in hparams
    assert not list((tmp_path / "lightning_logs/version_0").glob(".metrics.*"))  # no temporary file left
