"""Switches on DaRec's global structure alignment."""

from __future__ import annotations

from darec.callbacks.alignment_callback import AlignmentCallback
from darec.losses import GlobalStructureAlignmentLoss
from darec.module.host import Sizes

__all__ = ["GlobalStructureAlignment"]


class GlobalStructureAlignment(AlignmentCallback):
    r"""Aligns the similarity structure of the shared CF and shared LLM representations.

    For the users of a batch (and separately for its items), :math:`A^C` and :math:`A^L` are the
    cosine-similarity matrices of the shared parts :math:`E^C_{sh}` and :math:`E^L_{sh}`; the term is
    :math:`\frac{1}{N^2}\lVert A^C - A^L \rVert_F^2` (``mode="mse"``) or the row-wise KL divergence of
    their softmaxes (``mode="kl"``, an OPEN point of the method). See
    :class:`~darec.losses.GlobalStructureAlignmentLoss`.

    Args:
        weight (float): :math:`\beta`, the weight of the term. (default: :obj:`1e-2`)
        mode (str): ``"mse"`` or ``"kl"``. (default: :obj:`"mse"`)
        temperature (float): softmax temperature of ``"kl"``. (default: :obj:`1.0`)
        warmup_epochs (int): linear warm-up of the weight. (default: :obj:`0`)

    Example:
        >>> import lightning as L
        >>> trainer = L.Trainer(callbacks=[GlobalStructureAlignment(weight=1e-2)], logger=False)
    """

    name = "global"

    def __init__(self, weight: float = 1e-2, mode: str = "mse", temperature: float = 1.0, warmup_epochs: int = 0) -> None:
        super().__init__(weight, warmup_epochs)
        GlobalStructureAlignmentLoss.check_arguments(mode, temperature)
        self.mode = mode
        self.temperature = temperature

    def build_term(self, sizes: Sizes) -> GlobalStructureAlignmentLoss:
        return GlobalStructureAlignmentLoss(mode=self.mode, temperature=self.temperature)
