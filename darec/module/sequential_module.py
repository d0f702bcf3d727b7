"""The Lightning module of next-item recommendation: a sequential backbone, BCE, both ranking protocols."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from darec.metrics import rank_items, ranking_metrics
from darec.utils.spec import build_from_spec, describe

__all__ = ["SequentialModule"]

_ITEM_INIT = ("random", "titles")


class SequentialModule(L.LightningModule):
    r"""Trains a sequential recommender for the next item, and evaluates it by full and sampled ranking.

    The backbone is any :class:`~torch.nn.Module` with ``sequence_states(seq)`` (``(B, L)``
    left-padded item ids, ``0`` padding -> ``(B, L, d)`` causal states) and ``item_embeddings()``
    (the ``(num_items + 1, d)`` item table, row 0 padding), e.g. :class:`~darec.backbones.SASRec`.
    A position's score for item :math:`i` is :math:`h_t \cdot e_i`. Training is SASRec's binary
    cross-entropy over every non-padded position :math:`t` with its next item :math:`p_t` and one
    sampled negative :math:`n_t` (from :class:`~darec.data.SequenceDataModule`):

    .. math::
        \mathcal{L} = -\frac{1}{|T|} \sum_{t \in T} \big[\log \sigma(h_t \cdot e_{p_t})
            + \log(1 - \sigma(h_t \cdot e_{n_t}))\big],

    optimised with Adam (:math:`\beta = (0.9, 0.98)`, as SASRec).

    Validation and test score the user's next item from the state after the input sequence,
    in two protocols, whose logged names say which:

    - ``val/full/recall@k``, ``val/full/ndcg@k``, ``val/full/hit_rate@k`` (and ``test/full/...``):
      all items ranked, the input history masked (the target itself never is);
    - ``val/sampled/hit_rate@k`` and ``val/sampled/ndcg@k`` for ``k`` in ``sampled_ks``: the
      target among the data module's fixed, seeded sampled items
      (:class:`~darec.metrics.SampledRankingEvaluator`), LANE's protocol.

    With ``item_init="titles"`` the backbone's item table is initialised in :meth:`setup` (at the
    start of ``fit``) from the data module's :attr:`~darec.data.SequenceDataModule.title_embeddings`
    through the backbone's ``init_item_embeddings(matrix)`` (LANE, LN-1); a resumed fit keeps the
    checkpoint's trained table.

    Args:
        backbone (torch.nn.Module): the sequential model (or its ``class_path`` spec).
        lr (float): Adam learning rate. (default: :obj:`1e-3`)
        weight_decay (float): Adam weight decay. (default: :obj:`0.0`)
        ks (Sequence[int]): cut-offs of the full-ranking metrics. (default: ``(5, 10, 20)``)
        sampled_ks (Sequence[int]): cut-offs of the sampled-ranking metrics. (default: ``(5, 10)``)
        item_init (str): ``"random"`` (the backbone's own initialisation) or ``"titles"``.
            (default: :obj:`"random"`)

    Example:
        >>> from darec.backbones import SASRec
        >>> model = SequentialModule(SASRec(num_items=5, embedding_dim=8, max_len=4))
        >>> batch = {"seq": torch.tensor([[0, 1, 2, 3]]), "pos": torch.tensor([[0, 2, 3, 4]]),
        ...          "neg": torch.tensor([[0, 5, 5, 5]])}
        >>> model.loss(batch).shape
        torch.Size([])
    """

    def __init__(
        self,
        backbone: nn.Module,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        ks: Sequence[int] = (5, 10, 20),
        sampled_ks: Sequence[int] = (5, 10),
        item_init: str = "random",
    ) -> None:
        super().__init__()
        if isinstance(backbone, dict):
            backbone = build_from_spec(backbone, what="the backbone")
        missing = [name for name in ("sequence_states", "item_embeddings") if not callable(getattr(backbone, name, None))]
        if missing:
            raise TypeError(f"the backbone {type(backbone).__name__} lacks {', '.join(missing)}(): see darec.backbones.SASRec")
        if lr <= 0:
            raise ValueError(f"`lr` must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"`weight_decay` must be non-negative, got {weight_decay}")
        if item_init not in _ITEM_INIT:
            raise ValueError(f"`item_init` must be one of {_ITEM_INIT}, got {item_init!r}")
        if item_init == "titles" and not callable(getattr(backbone, "init_item_embeddings", None)):
            raise TypeError(f"item_init='titles' needs a backbone with init_item_embeddings(matrix); {type(backbone).__name__} has none")
        self.backbone = backbone
        self.save_hyperparameters(ignore=["backbone"])
        spec = describe(self.backbone)
        if spec is not None:  # so that load_from_checkpoint(path) rebuilds the backbone
            self.hparams["backbone"] = spec
        self.val_full = ranking_metrics(ks, names=("recall", "ndcg", "hit_rate"), prefix="val/full/")
        self.test_full = ranking_metrics(ks, names=("recall", "ndcg", "hit_rate"), prefix="test/full/")
        self.val_sampled: nn.Module | None = None  # built in setup from the data module
        self.test_sampled: nn.Module | None = None

    # -- setup ---------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None:
            return
        if stage == "fit" and self.hparams.item_init == "titles":
            titles = getattr(datamodule, "title_embeddings", None)
            if titles is None:
                raise ValueError(
                    "item_init='titles' needs title embeddings, but the data module has none: give it a "
                    "title_encoder (e.g. 'all-MiniLM-L6-v2')"
                )
            self.backbone.init_item_embeddings(titles)
        if hasattr(datamodule, "sampled_evaluator"):
            ks = tuple(self.hparams.sampled_ks)
            if self.val_sampled is None:
                self.val_sampled = datamodule.sampled_evaluator(prefix="val/sampled/", ks=ks).to(self.device)
            if self.test_sampled is None:
                self.test_sampled = datamodule.sampled_evaluator(prefix="test/sampled/", ks=ks).to(self.device)

    # -- training ------------------------------------------------------------------------------
    def forward(self, seq: Tensor) -> Tensor:
        """``(B, d)``: the state after the last position of the left-padded ``(B, L)`` ``seq``."""
        return self.backbone.sequence_states(seq)[:, -1]

    def sequence_states(self, batch: dict[str, Tensor]) -> Tensor:
        """``(B, L, d)``: the states that score the items of ``batch`` (``"seq"``, and ``"user"`` where given).

        The backbone's states of ``batch["seq"]``; the training loss and both rankings use them,
        so a subclass that changes them (:class:`~darec.lane.PreferenceAttentionFusion` fuses
        the user's preferences in) changes training and evaluation alike.
        """
        return self.backbone.sequence_states(batch["seq"])

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The BCE of a training batch ``{"seq", "pos", "neg"}``, averaged over non-padded positions."""
        states = self.sequence_states(batch)
        table = self.backbone.item_embeddings()
        pos = (states * table[batch["pos"]]).sum(-1)
        neg = (states * table[batch["neg"]]).sum(-1)
        real = batch["pos"] != 0
        pos, neg = pos[real], neg[real]
        return F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + F.binary_cross_entropy_with_logits(
            neg, torch.zeros_like(neg)
        )

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["seq"]))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            self.parameters(), lr=self.hparams.lr, betas=(0.9, 0.98), weight_decay=self.hparams.weight_decay
        )

    # -- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def score_items(self, seq: Tensor) -> Tensor:
        """``(B, num_items)`` float32 scores of items ``1 .. num_items`` (column ``i - 1``) after ``seq``."""
        states = self(seq).float()
        return states @ self.backbone.item_embeddings()[1:].float().T

    def _evaluation_step(self, batch: dict[str, Tensor], full: Any, sampled: Any) -> None:
        users, target = batch["user"], batch["target"]
        states = self.sequence_states(batch)[:, -1].float()
        table = self.backbone.item_embeddings().float()
        scores = states @ table[1:].T
        exclude = batch["exclude"]
        if exclude.numel():
            scores.index_put_((exclude[0], exclude[1] - 1), scores.new_full((), float("-inf")))
        relevant = torch.zeros_like(scores, dtype=torch.bool)
        relevant[torch.arange(len(target), device=scores.device), target - 1] = True
        full.update(rank_items(scores, full.max_k), relevant, num_relevant=torch.ones_like(target))
        if sampled is not None:
            candidates, keep = sampled.candidates(users, target)
            if keep.any():
                sampled.update(torch.einsum("bd,bcd->bc", states[keep], table[candidates]))

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, self.val_full, self.val_sampled)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, self.test_full, self.test_sampled)

    def _evaluation_end(self, full: Any, sampled: Any) -> None:
        values = full.compute()
        full.reset()
        if sampled is not None:
            values.update(sampled.compute())
            sampled.reset()
        self.log_dict(values)

    def on_validation_epoch_end(self) -> None:
        self._evaluation_end(self.val_full, self.val_sampled)

    def on_test_epoch_end(self) -> None:
        self._evaluation_end(self.test_full, self.test_sampled)

    def on_fit_start(self) -> None:
        self._log_protocol()

    def on_test_start(self) -> None:
        self._log_protocol()

    def _log_protocol(self) -> None:
        protocol = getattr(getattr(self.trainer, "datamodule", None), "protocol", None)
        if self.logger is not None and protocol is not None:
            self.logger.log_hyperparams({"protocol": protocol})
