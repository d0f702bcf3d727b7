"""A CSV logger that a resumed run can continue."""

from __future__ import annotations

import csv
import os
from typing import Any

from lightning.pytorch.core.saving import load_hparams_from_yaml, save_hparams_to_yaml
from lightning.pytorch.loggers import CSVLogger as _LightningCSVLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from torch import Tensor

from darec.utils.io import atomic_write

__all__ = ["CSVLogger", "log_data_protocol"]


class _ContinuingWriter:
    """The writer of :class:`CSVLogger`: Lightning's CSV writer's interface and files, except that an
    existing ``metrics.csv`` is continued instead of deleted.

    The rows of the epochs that the new run logs again (those after the checkpoint it resumed
    from) are replaced by the new run's rows; every other row is kept. Rewrites go through a
    temporary file and a rename, so an interruption never leaves a truncated file. Written with
    Lightning's public API only (it does not derive from Lightning's writer)."""

    NAME_METRICS_FILE = "metrics.csv"
    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.metrics_file_path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        self.metrics: list[dict[str, Any]] = []
        self.metrics_keys: list[str] = []
        self.hparams: dict[str, Any] = {}
        self._previous: list[dict[str, str]] | None = None
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as handle:
                reader = csv.DictReader(handle)
                self._previous = list(reader)
                self.metrics_keys = sorted(reader.fieldnames or [])
        os.makedirs(log_dir, exist_ok=True)
        hparams = os.path.join(log_dir, self.NAME_HPARAMS_FILE)
        if self._previous is not None and os.path.isfile(hparams):
            try:
                self.hparams.update(load_hparams_from_yaml(hparams) or {})
            except Exception:  # unreadable: the new run's hparams replace it, as with Lightning's writer
                pass

    def log_hparams(self, params: dict[str, Any]) -> None:
        """Adds ``params`` to ``hparams.yaml``."""
        self.hparams.update(params)
        save_hparams_to_yaml(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE), self.hparams)

    def log_metrics(self, metrics_dict: dict[str, Any], step: int | None = None) -> None:
        """Records one row (written by :meth:`save`)."""
        row = {key: value.item() if isinstance(value, Tensor) else value for key, value in metrics_dict.items()}
        row["step"] = len(self.metrics) if step is None else step
        self.metrics.append(row)

    def save(self) -> None:
        """Writes the recorded rows to ``metrics.csv``."""
        if not self.metrics:
            return
        new_keys = set().union(*self.metrics) - set(self.metrics_keys)
        self.metrics_keys = sorted([*self.metrics_keys, *new_keys])
        exists = os.path.isfile(self.metrics_file_path)
        if self._previous is not None:  # the first save of a resumed run
            epochs = [float(row["epoch"]) for row in self.metrics if row.get("epoch") is not None]
            start = min(epochs) if epochs else float("inf")
            kept = [row for row in self._previous if row.get("epoch") in (None, "") or float(row["epoch"]) < start]
            self._previous = None
            self._write_all(kept + self.metrics)
        elif new_keys and exists:  # a wider header: the whole file again
            with open(self.metrics_file_path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            self._write_all(rows + self.metrics)
        else:
            with open(self.metrics_file_path, "a" if exists else "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=self.metrics_keys)
                if not exists:
                    writer.writeheader()
                writer.writerows(self.metrics)
        self.metrics = []

    def _write_all(self, rows: list[dict[str, Any]]) -> None:
        with atomic_write(self.metrics_file_path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)


class CSVLogger(_LightningCSVLogger):
    """:class:`lightning.pytorch.loggers.CSVLogger` that continues an existing version's files.

    Lightning's logger deletes ``metrics.csv`` when it writes into an existing version folder.
    This one keeps it: a fit resumed into the same version (the ``darec`` command does so when
    ``--ckpt_path`` lies in ``<save_dir>/<name>/version_N/checkpoints/``) appends its rows, and only
    the rows of epochs it logs again (those after its checkpoint) are replaced. ``hparams.yaml``
    keeps its earlier entries. Local file systems only (as the CLI's default logger).

    Args: as :class:`lightning.pytorch.loggers.CSVLogger`.
    """

    @property
    @rank_zero_experiment
    def experiment(self) -> _ContinuingWriter:
        if self._experiment is not None:
            return self._experiment
        os.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment


def log_data_protocol(module: Any, **extra: Any) -> None:
    """Records the data module's ``protocol`` (how the data were built and evaluated) in the logger's hparams.

    Every darec LightningModule calls it at fit and test start, so that each result file carries
    its split, filtering, masking and metrics. Nothing happens without a logger or a protocol.

    Args:
        module (LightningModule): a module attached to a trainer.
        **extra: more hyper-parameters logged with it (e.g. ``ks``).
    """
    protocol = getattr(getattr(module.trainer, "datamodule", None), "protocol", None)
    if module.logger is not None and protocol is not None:
        module.logger.log_hyperparams({"protocol": protocol, **extra})
