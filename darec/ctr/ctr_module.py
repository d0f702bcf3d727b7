"""The Lightning module of click-through-rate prediction: a CTR backbone, BCE, AUC and LogLoss."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryAUROC

from darec.utils.spec import build_from_spec, describe

__all__ = ["CTRModule"]


class CTRModule(L.LightningModule):
    r"""Trains a CTR backbone with binary cross-entropy and evaluates it by AUC and LogLoss.

    The backbone is any :class:`~torch.nn.Module` called as ``backbone(user, item, text=None)``
    on ``(B,)`` id tensors (and the optional ``(B, d)`` text feature) that returns ``(B,)``
    logits, e.g. :class:`~darec.ctr.FM`, :class:`~darec.ctr.DeepFM` or :class:`~darec.ctr.DCNv2`.
    Batches are the dicts of :class:`~darec.ctr.CTRDataModule`: ``user``, ``item`` (long),
    ``label`` (float, 0 or 1) and, with explanations, ``text``. The loss, optimised with Adam, is

    .. math::
        \mathcal{L} = -\frac{1}{B} \sum_{b} \big[y_b \log \sigma(\hat y_b)
            + (1 - y_b) \log(1 - \sigma(\hat y_b))\big].

    Logged: ``train/loss`` (per epoch); ``val/auc`` and ``val/logloss``, ``test/auc`` and
    ``test/logloss`` over the whole split. AUC is torchmetrics'
    :class:`~torchmetrics.classification.BinaryAUROC` (exact, ties count one half); LogLoss is
    the mean binary cross-entropy of the predicted probabilities :math:`\sigma(\hat y)`, computed
    from the logits for numerical stability. ``predict`` returns the click probabilities.

    Args:
        backbone (torch.nn.Module): the CTR model (or its ``class_path`` spec).
        lr (float): Adam learning rate. (default: :obj:`1e-3`)
        weight_decay (float): Adam weight decay (L2 on every parameter). (default: :obj:`0.0`)

    Example:
        >>> from darec.ctr import FM
        >>> model = CTRModule(FM(num_users=3, num_items=4, embedding_dim=8))
        >>> batch = {"user": torch.tensor([0, 2]), "item": torch.tensor([3, 1]), "label": torch.tensor([1.0, 0.0])}
        >>> model.loss(batch).shape, model(batch).shape
        (torch.Size([]), torch.Size([2]))
    """

    def __init__(self, backbone: nn.Module, lr: float = 1e-3, weight_decay: float = 0.0) -> None:
        super().__init__()
        if isinstance(backbone, dict):
            backbone = build_from_spec(backbone, what="the backbone")
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"the backbone must be a torch.nn.Module, got {type(backbone).__name__}")
        if lr <= 0:
            raise ValueError(f"`lr` must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"`weight_decay` must be non-negative, got {weight_decay}")
        self.backbone = backbone
        self.save_hyperparameters(ignore=["backbone"])
        spec = describe(self.backbone)
        if spec is not None:  # so that load_from_checkpoint(path) rebuilds the backbone
            self.hparams["backbone"] = spec
        self.val_auc, self.test_auc = BinaryAUROC(), BinaryAUROC()
        self.val_logloss, self.test_logloss = MeanMetric(), MeanMetric()

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """``(B,)`` logits of a batch ``{"user", "item"[, "text"]}``."""
        return self.backbone(batch["user"], batch["item"], batch.get("text"))

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The mean binary cross-entropy of a batch with ``label``."""
        return F.binary_cross_entropy_with_logits(self(batch).float(), batch["label"].float())

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["label"]))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    # -- evaluation ----------------------------------------------------------------------------
    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        logits = self(batch).float()
        label = batch["label"].float()
        auc, logloss = getattr(self, f"{stage}_auc"), getattr(self, f"{stage}_logloss")
        auc.update(logits.sigmoid(), label.long())
        logloss.update(F.binary_cross_entropy_with_logits(logits, label, reduction="none"))
        kwargs: dict[str, Any] = {"on_step": False, "on_epoch": True}
        self.log(f"{stage}/auc", auc, **kwargs)
        self.log(f"{stage}/logloss", logloss, **kwargs)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """``(B,)`` click probabilities."""
        return self(batch).float().sigmoid()

    # -- checkpoints ---------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Writes darec's ``"darec"`` entry (which ``darec test/predict --ckpt_path`` checks for): the
        backbone's sizes and, when the data module has them, the raw user and item ids of its rows."""
        state: dict[str, Any] = {"backbone": self.hparams.get("backbone"), "user_ids": None, "item_ids": None}
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        samples = getattr(datamodule, "samples", None)
        if samples is not None:
            state.update(user_ids=samples.user_ids.tolist(), item_ids=samples.item_ids.tolist())
        checkpoint["darec"] = state

    def on_fit_start(self) -> None:
        self._log_protocol()

    def on_test_start(self) -> None:
        self._log_protocol()

    def _log_protocol(self) -> None:
        from darec.loggers import log_data_protocol

        log_data_protocol(self)
