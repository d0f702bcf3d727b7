"""A ModelCheckpoint to resume from: ``last.ckpt`` is the latest validated epoch, and an
interrupted fit leaves ``interrupted.ckpt``."""

from __future__ import annotations

import os
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_warn

__all__ = ["ResumableCheckpoint"]


class ResumableCheckpoint(ModelCheckpoint):
    """:class:`~lightning.pytorch.callbacks.ModelCheckpoint` for runs that may be interrupted and resumed.

    Two differences from Lightning's callback:

    - With ``save_last=True``, ``last.ckpt`` is written at every checkpoint opportunity (every
      validation, or every epoch end without validation), whether or not the monitored metric
      improved. Since Lightning 2.6, ``last.ckpt`` is only written together with a top-k checkpoint,
      so with ``save_top_k=1`` it is a copy of the *best* epoch and resuming from it silently
      repeats every epoch since the best one. Resuming from ``last.ckpt`` continues exactly where
      the uninterrupted run would be (see :doc:`/quickstart`).
    - When ``fit`` stops on an exception (Ctrl-C, SIGTERM, an error), the current state is saved to
      ``<dirpath>/interrupted.ckpt`` (``save_on_interrupt``), written atomically and never over a
      top-k or last checkpoint, unless ``last.ckpt`` already holds this very step. Resuming from it
      loses at most the interrupted epoch's progress. :attr:`resume_path` is the checkpoint to
      resume from after an interruption (or :obj:`None` when nothing was trained).

    A SIGTERM stops training after the current batch (Lightning alone waits for the end of the
    epoch), so that schedulers' grace periods suffice.

    Args:
        save_on_interrupt (bool): save ``interrupted.ckpt`` when ``fit`` stops on an exception.
            (default: :obj:`True`)
        **kwargs: as :class:`~lightning.pytorch.callbacks.ModelCheckpoint` (``monitor``, ``mode``,
            ``save_last``, ``filename``, ...).

    Example:
        >>> checkpoint = ResumableCheckpoint(monitor="val/recall@20", mode="max", save_last=True)
    """

    CHECKPOINT_NAME_INTERRUPTED = "interrupted"

    def __init__(self, *args: Any, save_on_interrupt: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.save_on_interrupt = save_on_interrupt
        self.resume_path: str | None = None
        self.interrupted_by: BaseException | None = None

    # -- last.ckpt at every opportunity ----------------------------------------------------------
    def _save_last_anyway(self, trainer: L.Trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):  # skipped when saved at this step
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_anyway(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_anyway(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        super().on_train_batch_end(trainer, *args, **kwargs)
        if getattr(trainer, "received_sigterm", False) and trainer.world_size == 1:
            raise SIGTERMException()  # Lightning checks it at epoch end only (in one process)

    # -- interruptions ---------------------------------------------------------------------------
    @property
    def interrupted_path(self) -> str | None:
        """Where an interrupted fit is saved (``<dirpath>/interrupted.ckpt``), once ``dirpath`` is known."""
        if self.dirpath is None:
            return None
        return os.path.join(self.dirpath, self.CHECKPOINT_NAME_INTERRUPTED + self.FILE_EXTENSION)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        super().on_exception(trainer, pl_module, exception)
        self.interrupted_by = exception
        self.resume_path = None
        if (
            not self.save_on_interrupt
            or trainer.state.fn != TrainerFn.FITTING
            or trainer.sanity_checking
            or bool(trainer.fast_dev_run)
            or self.interrupted_path is None
        ):
            return
        if self._last_global_step_saved == trainer.global_step and self.last_model_path:
            # nothing happened since last.ckpt (or nothing was trained at all)
            self.resume_path = self.last_model_path if os.path.isfile(self.last_model_path) else None
            return
        if trainer.global_step == 0:
            return
        try:
            trainer.save_checkpoint(self.interrupted_path)  # atomic: a temporary file, then a rename
        except Exception as error:  # never hide the exception that stopped the fit
            rank_zero_warn(f"could not save the interrupted run to {self.interrupted_path}: {error}")
            return
        self.resume_path = self.interrupted_path
