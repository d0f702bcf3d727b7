"""DaRec's orthogonality regulariser, a term of the module's objective."""

from __future__ import annotations

from torch import Tensor, nn

from darec.functional.disentangle import orthogonality
from darec.losses.views import StepViews, stacked_parts, sum_over_row_blocks

__all__ = ["OrthogonalityRegularizer"]


class OrthogonalityRegularizer(nn.Module):
    r"""Decorrelates shared and specific parts: mean squared cosine between them, per entity.

    .. math::
        \mathcal{L}_{\perp}(S, P) = \frac{1}{N} \sum_{n=1}^{N}
            \left( \frac{\langle s_n, p_n \rangle}{\lVert s_n \rVert \, \lVert p_n \rVert} \right)^2

    DaRec's regulariser is the sum over the CF and LLM parts and over the sides of the step:
    ``compute(cf_shared, cf_specific) + compute(llm_shared, llm_specific)`` for users and for items.
    :class:`~darec.DaRecModule` registers it as the term ``orthogonality`` of its objective when
    its weight (``alpha``, or ``orthogonality_weight``) is positive; it reads the views' stacked
    projections (:attr:`StepViews.parts <darec.module.StepViews>`), so that every part and
    side goes through one batched call. See :func:`darec.functional.orthogonality`.

    - [0] DaRec, Yang et al., ICDE 2025, arXiv:2408.08231

    Example:
        >>> import torch
        >>> from darec.losses import OrthogonalityRegularizer
        >>> reg = OrthogonalityRegularizer()
        >>> shared = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> round(reg.compute(shared, torch.tensor([[0.0, 2.0], [2.0, 2.0]])).item(), 4)
        0.25
    """

    #: The term reads the four disentangling projections.
    needs_shared = True

    def forward(self, views: StepViews) -> Tensor:
        """The regulariser summed over the CF and LLM parts and over the sides of ``views``.

        Returns:
            Tensor: the scalar sum, in ``[0, 2 * sides]``.
        """
        parts = stacked_parts(views, "orthogonality")
        return sum_over_row_blocks(orthogonality, views.sizes, parts[:, 0], parts[:, 1])

    def compute(self, shared: Tensor, specific: Tensor) -> Tensor:
        """The regulariser of one set of rows.

        Args:
            shared (Tensor): ``(N, d)`` shared representations, or a batch ``(*, N, d)`` of sets.
            specific (Tensor): specific representations of the same entities (same shape).

        Returns:
            Tensor: the mean squared cosine, in ``[0, 1]``: a scalar, or ``(*)`` for batched inputs.
        """
        return orthogonality(shared, specific)
