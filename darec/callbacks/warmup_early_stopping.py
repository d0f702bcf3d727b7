"""Early stopping that makes no decision before a given epoch."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.rank_zero import rank_prefixed_message, rank_zero_warn
from torch import Tensor

__all__ = ["WarmupEarlyStopping"]

log = logging.getLogger(__name__)


class WarmupEarlyStopping(Callback):
    """Lightning's :class:`~lightning.pytorch.callbacks.EarlyStopping` criterion, whose patience only starts at ``start_epoch``.

    Recommenders trained with BPR from a small initialisation often get *worse* on validation for a
    while (after a quick popularity phase) before they improve, and alignment losses can slow the
    first epochs further. Lightning's ``EarlyStopping`` combined with ``Trainer(min_epochs=...)``
    does not help there: once patience runs out before ``min_epochs``, the stop request stays set
    and training ends at ``min_epochs`` even if the model has improved since. Here, validations
    before ``start_epoch`` update the best score but never count towards ``patience``; a
    non-finite metric still stops at once.

    The criterion, its arguments and its checkpointed state are those of ``EarlyStopping``
    (Lightning 2.x), re-stated here on Lightning's public callback hooks; it is a
    :class:`~lightning.pytorch.callbacks.Callback`, not an ``EarlyStopping`` subclass, so
    ``trainer.early_stopping_callback`` does not list it.

    Args:
        monitor (str): the logged metric to watch.
        min_delta (float): smallest change that counts as an improvement. (default: :obj:`0.0`)
        patience (int): checks without improvement before stopping. (default: :obj:`3`)
        verbose (bool): log each decision. (default: :obj:`False`)
        mode (str): ``"min"`` or ``"max"``. (default: ``"min"``)
        strict (bool): raise if ``monitor`` is not logged. (default: :obj:`True`)
        check_finite (bool): stop when the metric is NaN or infinite. (default: :obj:`True`)
        stopping_threshold (float, optional): stop once the metric is better than this.
        divergence_threshold (float, optional): stop once the metric is worse than this.
        check_on_train_epoch_end (bool, optional): check at the end of the training epoch rather
            than after validation; by default, when validation runs once every epoch.
        log_rank_zero_only (bool): log on rank 0 only. (default: :obj:`False`)
        start_epoch (int): first epoch at which a stop may be decided. (default: :obj:`0`)

    Example:
        >>> stop = WarmupEarlyStopping(monitor="val/recall@20", mode="max", patience=10, start_epoch=300)
    """

    mode_dict = {"min": torch.lt, "max": torch.gt}
    order_dict = {"min": "<", "max": ">"}

    def __init__(
        self,
        monitor: str,
        min_delta: float = 0.0,
        patience: int = 3,
        verbose: bool = False,
        mode: str = "min",
        strict: bool = True,
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_on_train_epoch_end: bool | None = None,
        log_rank_zero_only: bool = False,
        start_epoch: int = 0,
    ) -> None:
        super().__init__()
        if mode not in self.mode_dict:
            raise MisconfigurationException(f"`mode` can be {', '.join(self.mode_dict.keys())}, got {mode}")
        if start_epoch < 0:
            raise ValueError(f"`start_epoch` must be non-negative, got {start_epoch}")
        self.monitor, self.mode, self.patience, self.verbose, self.strict = monitor, mode, patience, verbose, strict
        self.check_finite, self.log_rank_zero_only = check_finite, log_rank_zero_only
        self.stopping_threshold, self.divergence_threshold = stopping_threshold, divergence_threshold
        self.min_delta = min_delta if self.monitor_op == torch.gt else -min_delta
        self.start_epoch = start_epoch
        self.wait_count = 0
        self.stopped_epoch = 0
        self.stopping_reason = EarlyStoppingReason.NOT_STOPPED
        self.stopping_reason_message: str | None = None
        self.best_score = torch.tensor(torch.inf if self.monitor_op == torch.lt else -torch.inf)
        self._check_on_train_epoch_end = check_on_train_epoch_end

    @property
    def monitor_op(self) -> Any:
        return self.mode_dict[self.mode]

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode)

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait_count": self.wait_count,
            "stopped_epoch": self.stopped_epoch,
            "best_score": self.best_score,
            "patience": self.patience,
            "stopping_reason": self.stopping_reason.value,
            "stopping_reason_message": self.stopping_reason_message,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.wait_count = state_dict["wait_count"]
        self.stopped_epoch = state_dict["stopped_epoch"]
        self.best_score = state_dict["best_score"]
        self.patience = state_dict["patience"]
        self.stopping_reason = EarlyStoppingReason(state_dict.get("stopping_reason", EarlyStoppingReason.NOT_STOPPED.value))
        self.stopping_reason_message = state_dict.get("stopping_reason_message")

    # -- hooks -------------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._check_on_train_epoch_end is None:
            # validation more or less often than once an epoch: check after validation instead
            self._check_on_train_epoch_end = trainer.val_check_interval == 1.0 and trainer.check_val_every_n_epoch == 1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._check_on_train_epoch_end and not self._skips(trainer):
            self._run_early_stopping_check(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._check_on_train_epoch_end and not self._skips(trainer):
            self._run_early_stopping_check(trainer)

    @staticmethod
    def _skips(trainer: L.Trainer) -> bool:
        return trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking

    # -- the criterion -----------------------------------------------------------------------
    def _run_early_stopping_check(self, trainer: L.Trainer) -> None:
        """Tells the trainer to stop if the monitored metric says so (never for patience before ``start_epoch``)."""
        logs = trainer.callback_metrics
        if trainer.fast_dev_run or not self._has_metric(logs):
            return
        current = logs[self.monitor].squeeze()
        should_stop, reason = self._evaluate(current)
        if should_stop and trainer.current_epoch < self.start_epoch and torch.isfinite(current):
            self.wait_count = 0  # warm-up: patience starts afresh
            should_stop, reason = False, None
        # stop every process if any process decides to stop
        should_stop = trainer.strategy.reduce_boolean_decision(should_stop, all=False)
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop:
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason_message = reason
        if reason and self.verbose:
            rank = trainer.global_rank if trainer.world_size > 1 else None
            if rank is None or not self.log_rank_zero_only or rank == 0:
                log.info(rank_prefixed_message(reason, rank))

    def _has_metric(self, logs: dict[str, Tensor]) -> bool:
        if logs.get(self.monitor) is not None:
            return True
        message = (
            f"Early stopping conditioned on metric `{self.monitor}` which is not available. Pass in or modify "
            f"your `WarmupEarlyStopping` callback to use any of the following: `{'`, `'.join(logs)}`"
        )
        if self.strict:
            raise RuntimeError(message)
        if self.verbose:
            rank_zero_warn(message, category=RuntimeWarning)
        return False

    def _evaluate(self, current: Tensor) -> tuple[bool, str | None]:
        """EarlyStopping's decision for one check: ``(stop?, why)``; updates the best score and the wait count."""
        if self.check_finite and not torch.isfinite(current):
            self.stopping_reason = EarlyStoppingReason.NON_FINITE_METRIC
            return True, (
                f"Monitored metric {self.monitor} = {current} is not finite."
                f" Previous best value was {self.best_score:.3f}. Signaling Trainer to stop."
            )
        if self.stopping_threshold is not None and self.monitor_op(current, self.stopping_threshold):
            self.stopping_reason = EarlyStoppingReason.STOPPING_THRESHOLD
            return True, (
                f"Stopping threshold reached: {self.monitor} = {current} {self.order_dict[self.mode]}"
                f" {self.stopping_threshold}. Signaling Trainer to stop."
            )
        if self.divergence_threshold is not None and self.monitor_op(-current, -self.divergence_threshold):
            self.stopping_reason = EarlyStoppingReason.DIVERGENCE_THRESHOLD
            return True, (
                f"Divergence threshold reached: {self.monitor} = {current} {self.order_dict[self.mode]}"
                f" {self.divergence_threshold}. Signaling Trainer to stop."
            )
        if self.monitor_op(current - self.min_delta, self.best_score.to(current.device)):
            improved = f" by {abs(self.best_score - current):.3f} >= min_delta = {abs(self.min_delta)}."
            reason = f"Metric {self.monitor} improved{improved if torch.isfinite(self.best_score) else '.'}"
            self.best_score, self.wait_count = current, 0
            return False, f"{reason} New best score: {current:.3f}"
        self.wait_count += 1
        if self.wait_count < self.patience:
            return False, None
        self.stopping_reason = EarlyStoppingReason.PATIENCE_EXHAUSTED
        return True, (
            f"Monitored metric {self.monitor} did not improve in the last {self.wait_count} records."
            f" Best score: {self.best_score:.3f}. Signaling Trainer to stop."
        )
