"""What alignment terms see of a training step."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

__all__ = ["SideViews"]


@dataclass
class SideViews:
    """One side (users or items) of a training step, as alignment terms see it.

    Rows are the distinct entities of the batch on that side (the batch's users; its positive and
    negative items), in the order of :attr:`index`.

    Attributes:
        index (Tensor): ``(B,)`` entity ids (user ids or item ids, not node ids).
        cf (Tensor): ``(B, d)`` backbone embeddings :math:`E^C` (with gradients).
        llm (Tensor): ``(B, d_L)`` frozen text embeddings :math:`E^L`.
        cf_shared, cf_specific (Tensor, optional): ``(B, d_a)`` projections of ``cf``.
        llm_shared, llm_specific (Tensor, optional): ``(B, d_a)`` projections of ``llm``.
        masked (Tensor, optional): ``(B,)`` bool, rows whose input embedding was masked this step.
    """

    index: Tensor
    cf: Tensor
    llm: Tensor
    cf_shared: Tensor | None = None
    cf_specific: Tensor | None = None
    llm_shared: Tensor | None = None
    llm_specific: Tensor | None = None
    masked: Tensor | None = None
