"""Module form of :func:`darec.functional.uniformity`."""

from __future__ import annotations

from torch import Tensor, nn

from darec.functional.disentangle import uniformity
from darec.losses._checks import positive_float

__all__ = ["UniformityRegularizer"]


class UniformityRegularizer(nn.Module):
    r"""Spreads representations over the unit hypersphere (Wang & Isola's uniformity loss).

    .. math::
        \mathcal{L}_{\mathrm{uni}}(X) = \log \frac{1}{N (N - 1)} \sum_{i \neq j}
            \exp\!\left( -t \, \lVert n(x_i) - n(x_j) \rVert_2^2 \right)

    with :math:`n` the L2 normalisation. DaRec applies it to the specific parts of both sides.
    See :func:`darec.functional.uniformity`.

    - [0] Understanding Contrastive Representation Learning through Alignment and Uniformity on
      the Hypersphere, Wang & Isola, ICML 2020, arXiv:2005.10242
    - [1] DaRec, Yang et al., ICDE 2025, arXiv:2408.08231

    Args:
        t (float, optional): the temperature of the Gaussian potential, :math:`t > 0`.
            (default: ``2.0``)

    Raises:
        ValueError: if ``t`` is not a finite positive number.

    Example:
        >>> import torch
        >>> from darec.losses import UniformityRegularizer
        >>> reg = UniformityRegularizer(t=2.0)
        >>> round(reg(torch.eye(3)).item(), 4)
        -4.0
    """

    def __init__(self, t: float = 2.0) -> None:
        super().__init__()
        self.t = positive_float(t, "t")

    def extra_repr(self) -> str:
        return f"t={self.t}"

    def forward(self, x: Tensor) -> Tensor:
        """Computes the regularizer.

        Args:
            x (Tensor): ``(N, d)`` representations, :math:`N \\geq 2`, or a batch ``(*, N, d)`` of sets.

        Returns:
            Tensor: the uniformity loss (at most 0; lower is more uniform): a scalar, or ``(*)``
            for batched input.
        """
        return uniformity(x, t=self.t)
