"""What alignment terms see of a training step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["SideViews", "sum_over_sides"]


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


def sum_over_sides(loss: Callable[..., Tensor], *per_side: Sequence[Tensor]) -> Tensor:
    """Sums a batched loss over the sides of a step, in one call when the sides have as many rows.

    Args:
        loss: a function of ``(*, N, d)`` tensors returning ``(*)`` values (the losses of
            :mod:`darec.functional` are batched this way).
        *per_side: for each argument of ``loss``, one tensor per side, ``(*, N_side, d)``.

    Returns:
        Tensor: the scalar sum of ``loss`` over sides (and over any leading dimensions).

    Example:
        >>> from darec.functional import orthogonality
        >>> a, b = torch.eye(2), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
        >>> sum_over_sides(orthogonality, [a, a], [a, b])  # users: collinear, items: orthogonal
        tensor(1.)
    """
    first = per_side[0]
    if len(first) > 1 and all(t.shape == arg[0].shape for arg in per_side for t in arg):
        return loss(*(torch.stack(list(arg)) for arg in per_side)).sum()
    return torch.stack([loss(*args).sum() for args in zip(*per_side)]).sum()
