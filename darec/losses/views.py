"""What the losses of an objective see of a training step: one :class:`SideViews` per side."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["SideViews", "StepViews", "sum_over_row_blocks", "sum_over_sides"]


@dataclass
class SideViews:
    """One side (users or items) of a training step, as the terms of the objective see it.

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


class StepViews(dict):
    """The views of one training step: ``{"user": SideViews, "item": SideViews}`` (the sides with text).

    A dict, plus the batched tensors that the regularisers use to cover both sides in one call:

    Attributes:
        parts (Tensor, optional): ``(2, 2, N_user + N_item, d_a)``, the four projections
            [CF, LLM] x [shared, specific] of all rows (users first); the views' shared and
            specific columns are slices of it. :obj:`None` without the four disentangling heads.
        sizes (list[int]): the row count of each side, in the order of the dict.

    Example:
        >>> views = StepViews({"user": SideViews(index=torch.arange(2), cf=torch.ones(2, 3), llm=torch.ones(2, 4))})
        >>> list(views), views.parts, views.sizes
        (['user'], None, [2])
    """

    def __init__(self, sides: dict[str, SideViews] | None = None, parts: Tensor | None = None, sizes: list[int] | None = None) -> None:
        super().__init__(sides or {})
        self.parts = parts
        self.sizes = [len(view.index) for view in self.values()] if sizes is None else list(sizes)


def shared(view: SideViews, what: str) -> tuple[Tensor, Tensor]:
    """``(cf_shared, llm_shared)`` of ``view``, or a ``RuntimeError`` saying that ``what`` needs them."""
    if view.cf_shared is None or view.llm_shared is None:
        raise RuntimeError(f"the {what} term needs the shared projections; the module has no disentangler")
    return view.cf_shared, view.llm_shared


def stacked_parts(views: StepViews, what: str) -> Tensor:
    """The ``(2, 2, N, d_a)`` projections of ``views``, or a ``RuntimeError`` saying that ``what`` needs them."""
    parts = getattr(views, "parts", None)
    if parts is None:
        raise RuntimeError(f"the {what} regulariser needs the four disentangling heads (shared and specific parts)")
    return parts


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


def sum_over_row_blocks(loss: Callable[..., Tensor], sizes: list[int], *tensors: Tensor) -> Tensor:
    """Sums a batched ``loss`` over consecutive row blocks of ``sizes`` rows (the sides of a step).

    The rows of ``(*, sum(sizes), d)`` tensors are one block per side; with blocks of equal size
    they are a free ``(*, sides, N, d)`` view and ``loss`` runs once.

    Example:
        >>> from darec.functional import orthogonality
        >>> x = torch.eye(2).repeat(2, 1)  # two sides of two rows
        >>> sum_over_row_blocks(orthogonality, [2, 2], x, x)
        tensor(2.)
    """
    if len(set(sizes)) == 1:
        return loss(*(t.unflatten(-2, (len(sizes), sizes[0])) for t in tensors)).sum()
    return sum_over_sides(loss, *(t.split(sizes, dim=-2) for t in tensors))
