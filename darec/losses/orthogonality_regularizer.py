"""Module form of :func:`darec.functional.orthogonality`."""

from __future__ import annotations

from torch import Tensor, nn

from darec.functional.disentangle import orthogonality

__all__ = ["OrthogonalityRegularizer"]


class OrthogonalityRegularizer(nn.Module):
    r"""Decorrelates shared and specific parts: mean squared cosine between them, per entity.

    .. math::
        \mathcal{L}_{\perp}(S, P) = \frac{1}{N} \sum_{n=1}^{N}
            \left( \frac{\langle s_n, p_n \rangle}{\lVert s_n \rVert \, \lVert p_n \rVert} \right)^2

    One call covers one side. DaRec's regularizer is the sum of the CF side and the LLM side,
    ``reg(cf_shared, cf_specific) + reg(llm_shared, llm_specific)``, formed by the caller. See
    :func:`darec.functional.orthogonality`.

    - [0] DaRec, Yang et al., ICDE 2025, arXiv:2408.08231

    Example:
        >>> import torch
        >>> from darec.losses import OrthogonalityRegularizer
        >>> reg = OrthogonalityRegularizer()
        >>> shared = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> round(reg(shared, torch.tensor([[0.0, 2.0], [2.0, 2.0]])).item(), 4)
        0.25
    """

    def __init__(self) -> None:
        super().__init__()

    def forward(self, shared: Tensor, specific: Tensor) -> Tensor:
        """Computes the regularizer for one side.

        Args:
            shared (Tensor): ``(N, d)`` shared representations, or a batch ``(*, N, d)`` of sets.
            specific (Tensor): specific representations of the same entities (same shape).

        Returns:
            Tensor: the mean squared cosine, in ``[0, 1]``: a scalar, or ``(*)`` for batched inputs.
        """
        return orthogonality(shared, specific)
