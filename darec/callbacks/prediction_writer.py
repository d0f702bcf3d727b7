"""Writes top-k recommendations in the caller's raw ids."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from darec.data.user_sequences import UserSequences
from darec.utils.io import atomic_write

__all__ = ["PredictionWriter"]


def _id_maps(trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[Any, Any, int]:
    """``(user_ids, item_ids, first_item)``: the raw ids of the users and items that ``predict_step``
    returns, item ``i`` being ``item_ids[i - first_item]``; :obj:`None` maps where none is known.

    Looked for in the data module (:class:`~darec.data.Interactions`, items from 0; or
    :class:`~darec.data.UserSequences`, items from 1, 0 being padding), then in the module
    (:class:`~darec.DaRecModule`'s maps, or a :class:`~darec.module.SequentialModule`'s sequences).
    """
    datamodule = getattr(trainer, "datamodule", None)
    candidates = (
        getattr(datamodule, "interactions", None),
        getattr(datamodule, "sequences", None),
        pl_module,
        getattr(pl_module, "user_sequences", None),
    )
    for maps in candidates:
        if maps is not None and getattr(maps, "user_ids", None) is not None and getattr(maps, "item_ids", None) is not None:
            return maps.user_ids, maps.item_ids, 1 if isinstance(maps, UserSequences) else 0
    return None, None, 0


class PredictionWriter(BasePredictionWriter):
    """Writes ``predict`` outputs as a TSV with columns ``user``, ``item``, ``rank``, ``score``.

    Users and items are written in their raw ids, ranks start at 1: the data module's id maps
    (:class:`~darec.data.RecDataModule`'s interactions or :class:`~darec.data.SequenceDataModule`'s
    sequences), or else the module's own (:attr:`DaRecModule.user_ids <darec.DaRecModule.user_ids>`,
    :attr:`SequentialModule.user_sequences <darec.module.SequentialModule.user_sequences>`, kept in
    their checkpoints), so that prediction from plain dataloaders writes raw ids too; internal ids
    only when neither has them. Which items are left out is the module's ``predict_exclude`` (by
    default every known interaction: train, valid and test). A user with fewer than ``k`` items
    left to recommend gets fewer rows.
    The file is written atomically once prediction ends, so an interrupted run never leaves a
    truncated file. Under several processes each rank writes ``<stem>.rank<r>.tsv``.

    Args:
        output (str): path of the TSV file; relative paths are resolved against the trainer's
            ``default_root_dir``. (default: :obj:`"predictions.tsv"`)
    """

    def __init__(self, output: str = "predictions.tsv") -> None:
        super().__init__(write_interval="epoch")
        self.output = output

    def path(self, trainer: L.Trainer) -> Path:
        path = Path(self.output).expanduser()
        if not path.is_absolute():
            path = Path(trainer.default_root_dir) / path
        if trainer.world_size > 1:
            path = path.with_name(f"{path.stem}.rank{trainer.global_rank}{path.suffix}")
        return path

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        if not predictions:
            return
        batches = predictions[0] if isinstance(predictions[0], list) else predictions
        users = torch.cat([b["user"] for b in batches])
        items = torch.cat([b["item"] for b in batches])
        scores = torch.cat([b["score"] for b in batches])
        user_ids, item_ids, first_item = _id_maps(trainer, pl_module)
        path = self.path(trainer)
        with atomic_write(path, "w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(["user", "item", "rank", "score"])
            for row, user in enumerate(users.tolist()):
                raw_user = user_ids[user] if user_ids is not None else user
                for rank, (item, score) in enumerate(zip(items[row].tolist(), scores[row].tolist()), start=1):
                    if item < 0:  # padding: the user has fewer than k items left to recommend
                        break
                    raw_item = item_ids[item - first_item] if item_ids is not None else item
                    writer.writerow([raw_user, raw_item, rank, f"{score:.6g}"])
        if trainer.is_global_zero:
            print(f"wrote {len(users)} users x {items.size(1)} recommendations to {os.fspath(path)}")
