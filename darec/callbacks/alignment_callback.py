"""The shared mechanics of the alignment callbacks: register a term, schedule its weight."""

from __future__ import annotations

import lightning as L
from torch import nn

from darec.module.host import AlignmentHost, Sizes

__all__ = ["AlignmentCallback"]


class AlignmentCallback(L.Callback):
    """Registers one alignment term on a :class:`~darec.DaRecModule` and schedules its weight.

    Lightning ignores what callbacks return, so a callback cannot add to the loss itself: in
    :meth:`setup` it registers its term (a loss module, see :mod:`darec.losses`) with the module
    through :class:`~darec.module.AlignmentHost` (``add_term(name, build_term, weight)``); the
    module builds it with the sizes of the data in its own ``setup``, adds ``weight * term(views)``
    to every training step and logs ``train/<name>``. The callback then only schedules: an
    optional linear warm-up of the weight over ``warmup_epochs``, and whatever state the term
    needs (cluster refreshes).

    Subclasses set :attr:`name` and implement :meth:`build_term`; see
    :doc:`/tutorials/custom_alignment`.

    Args:
        weight (float): the term's weight once warmed up.
        warmup_epochs (int): epochs over which the weight grows linearly from ``weight /
            warmup_epochs`` to ``weight``; 0 applies the full weight at once. (default: :obj:`0`)
    """

    #: Name of the term; also its log key ``train/<name>``.
    name: str = "alignment"

    def __init__(self, weight: float, warmup_epochs: int = 0) -> None:
        super().__init__()
        if weight < 0:
            raise ValueError(f"`weight` must be non-negative, got {weight}")
        if warmup_epochs < 0:
            raise ValueError(f"`warmup_epochs` must be non-negative, got {warmup_epochs}")
        self.weight = float(weight)
        self.warmup_epochs = warmup_epochs

    def build_term(self, sizes: Sizes) -> nn.Module:  # pragma: no cover - abstract
        """The term (a loss module whose ``forward(views)`` returns a scalar), given the :class:`~darec.module.Sizes`."""
        raise NotImplementedError

    @property
    def state_key(self) -> str:
        return self._generate_state_key(name=self.name, weight=self.weight)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if not isinstance(pl_module, AlignmentHost):
            raise TypeError(f"{type(self).__name__} works with darec.DaRecModule, got {type(pl_module).__name__}")
        if sum(isinstance(c, type(self)) for c in trainer.callbacks) > 1:
            raise ValueError(f"{type(self).__name__} was added more than once; add each alignment callback once")
        pl_module.add_term(self.name, self.build_term, self.current_weight(0))  # a module fitted before keeps its term

    def current_weight(self, epoch: int) -> float:
        """The scheduled weight at ``epoch`` (0-based)."""
        if self.warmup_epochs == 0:
            return self.weight
        return self.weight * min(1.0, (epoch + 1) / self.warmup_epochs)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.set_term_weight(self.name, self.current_weight(trainer.current_epoch))
