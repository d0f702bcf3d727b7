"""DaRec's global structure alignment, a term of the module's objective."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from darec.functional._checks import positive_float
from darec.functional.alignment import check_global_mode, global_structure_alignment
from darec.losses.views import StepViews, shared, sum_over_sides

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

    As a term of :class:`~darec.DaRecModule`'s objective (registered by
    :class:`~darec.callbacks.GlobalStructureAlignment`), it is summed over the sides of the step
    (users and items are aligned separately), on the views' shared parts.

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
        >>> from darec.losses.views import SideViews, StepViews
        >>> _ = torch.manual_seed(0)
        >>> loss = GlobalStructureAlignmentLoss(mode="mse")
        >>> cf, llm = torch.randn(16, 32), torch.randn(16, 384)
        >>> def views(cf, llm):
        ...     side = SideViews(index=torch.arange(16), cf=cf, llm=llm, cf_shared=cf, llm_shared=llm)
        ...     return StepViews({"user": side})
        >>> loss(views(cf, llm)).shape
        torch.Size([])
        >>> loss(views(cf, cf)).item()
        0.0
    """

    #: The term reads the shared parts: the module builds its disentangling heads.
    needs_shared = True

    def __init__(self, mode: Literal["mse", "kl"] = "mse", temperature: float = 1.0) -> None:
        super().__init__()
        self.check_arguments(mode, temperature)
        self.mode = mode
        self.temperature = float(temperature)

    @staticmethod
    def check_arguments(mode: str = "mse", temperature: float = 1.0) -> None:
        """Raises ``ValueError`` for arguments the constructor refuses (callbacks check theirs early)."""
        check_global_mode(mode)
        positive_float(temperature, "temperature")

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, temperature={self.temperature}"

    def forward(self, views: StepViews) -> Tensor:
        """Computes the loss, summed over the sides of ``views``.

        Args:
            views (StepViews): the step's views; each side's ``cf_shared`` ``(N, d_1)`` and
                ``llm_shared`` ``(N, d_2)`` rows are compared.

        Returns:
            Tensor: the scalar loss.
        """
        pairs = [shared(view, "global") for view in views.values()]
        return sum_over_sides(self.compute, [cf for cf, _ in pairs], [llm for _, llm in pairs])

    def compute(self, cf_shared: Tensor, llm_shared: Tensor) -> Tensor:
        """The loss of one set of rows, ``(*, N, d_1)`` and ``(*, N, d_2)``, as ``(*)`` values."""
        return global_structure_alignment(cf_shared, llm_shared, mode=self.mode, temperature=self.temperature)
