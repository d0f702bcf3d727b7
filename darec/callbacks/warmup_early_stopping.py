"""Early stopping that makes no decision before a given epoch."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping

__all__ = ["WarmupEarlyStopping"]


class WarmupEarlyStopping(EarlyStopping):
    """:class:`~lightning.pytorch.callbacks.EarlyStopping` whose patience only starts at ``start_epoch``.

    Recommenders trained with BPR from a small initialisation often get *worse* on validation for a
    while (after a quick popularity phase) before they improve, and alignment losses can slow the
    first epochs further. Lightning's ``EarlyStopping`` combined with ``Trainer(min_epochs=...)``
    does not help there: once patience runs out before ``min_epochs``, the stop request stays set
    and training ends at ``min_epochs`` even if the model has improved since. Here, validations
    before ``start_epoch`` update the best score but never count towards ``patience``; a
    non-finite metric still stops at once.

    Args:
        start_epoch (int): first epoch at which a stop may be decided. (default: :obj:`0`)
        **kwargs: as :class:`~lightning.pytorch.callbacks.EarlyStopping` (``monitor``, ``mode``, ``patience``, ...).

    Example:
        >>> stop = WarmupEarlyStopping(monitor="val/recall@20", mode="max", patience=10, start_epoch=300)
    """

    def __init__(self, *args: Any, start_epoch: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if start_epoch < 0:
            raise ValueError(f"`start_epoch` must be non-negative, got {start_epoch}")
        self.start_epoch = start_epoch
        self._epoch = 0

    def _run_early_stopping_check(self, trainer: L.Trainer) -> None:
        self._epoch = trainer.current_epoch
        super()._run_early_stopping_check(trainer)

    def _evaluate_stopping_criteria(self, current: torch.Tensor) -> tuple[bool, str | None]:
        should_stop, reason = super()._evaluate_stopping_criteria(current)
        if should_stop and self._epoch < self.start_epoch and torch.isfinite(current):
            self.wait_count = 0
            return False, None
        return should_stop, reason
