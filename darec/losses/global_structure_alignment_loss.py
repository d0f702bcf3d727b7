"""Module form of :func:`darec.functional.global_structure_alignment`."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from darec.functional.alignment import GLOBAL_MODES, global_structure_alignment
from darec.losses._checks import positive_float

__all__ = ["GlobalStructureAlignmentLoss"]


class GlobalStructureAlignmentLoss(nn.Module):
    r"""Aligns the batch's similarity structure in the CF and LLM shared spaces (DaRec, global).

    With :math:`A^C` and :math:`A^L` the :math:`N \times N` cosine-similarity matrices of the
    shared CF and shared LLM rows, mode ``"mse"`` (the paper's form) is

    .. math::
        \mathcal{L}_{\mathrm{global}} = \frac{1}{N^2} \lVert A^C - A^L \rVert_F^2

    and mode ``"kl"`` is the row-averaged
    :math:`\mathrm{KL}(\mathrm{softmax}(A^L / T) \,\|\, \mathrm{softmax}(A^C / T))`, the LLM side
    being the target distribution. See :func:`darec.functional.global_structure_alignment`.

    - [0] DaRec, Yang et al., ICDE 2025, arXiv:2408.08231

    Args:
        mode (str, optional): ``"mse"`` or ``"kl"``. (default: ``"mse"``)
        temperature (float, optional): the softmax temperature :math:`T > 0` of mode ``"kl"``.
            (default: ``1.0``)

    Raises:
        ValueError: if ``mode`` is unknown or ``temperature`` is not a finite positive number.

    Example:
        >>> import torch
        >>> from darec.losses import GlobalStructureAlignmentLoss
        >>> _ = torch.manual_seed(0)
        >>> loss = GlobalStructureAlignmentLoss(mode="mse")
        >>> cf, llm = torch.randn(16, 32), torch.randn(16, 384)
        >>> loss(cf, llm).shape
        torch.Size([])
        >>> loss(cf, cf).item()
        0.0
    """

    def __init__(self, mode: Literal["mse", "kl"] = "mse", temperature: float = 1.0) -> None:
        super().__init__()
        if mode not in GLOBAL_MODES:
            raise ValueError(f"`mode` must be one of {GLOBAL_MODES}, got {mode!r}")
        self.mode = mode
        self.temperature = positive_float(temperature, "temperature")

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, temperature={self.temperature}"

    def forward(self, cf_shared: Tensor, llm_shared: Tensor) -> Tensor:
        """Computes the loss.

        Args:
            cf_shared (Tensor): ``(N, d_1)`` shared CF representations, or a batch ``(*, N, d_1)``.
            llm_shared (Tensor): ``(N, d_2)`` (or ``(*, N, d_2)``) shared LLM representations of the same entities.

        Returns:
            Tensor: the alignment loss: a scalar, or ``(*)`` for batched inputs.
        """
        return global_structure_alignment(cf_shared, llm_shared, mode=self.mode, temperature=self.temperature)
