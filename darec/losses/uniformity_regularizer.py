"""DaRec's uniformity regulariser, a term of the module's objective."""

from __future__ import annotations

from torch import Tensor, nn

from darec.functional._checks import positive_float
from darec.functional.disentangle import uniformity
from darec.losses.views import StepViews, stacked_parts, sum_over_row_blocks

__all__ = ["UniformityRegularizer"]


class UniformityRegularizer(nn.Module):
    r"""Spreads representations over the unit hypersphere (Wang & Isola's uniformity loss).

    .. math::
        \mathcal{L}_{\mathrm{uni}}(X) = \log \frac{1}{N (N - 1)} \sum_{i \neq j}
            \exp\!\left( -t \, \lVert n(x_i) - n(x_j) \rVert_2^2 \right)

    with :math:`n` the L2 normalisation. DaRec applies it to the specific parts (CF and LLM) of
    both sides of the step, and with ``on_shared`` to the shared parts as well.
    :class:`~darec.DaRecModule` registers it as the term ``uniformity`` of its objective when its
    weight (``alpha``, or ``uniformity_weight``) is positive; it reads the views' stacked
    projections, so that every part and side goes through one batched call. See
    :func:`darec.functional.uniformity`.

    - [0] Understanding Contrastive Representation Learning through Alignment and Uniformity on
      the Hypersphere, Wang & Isola, ICML 2020, arXiv:2005.10242
    - [1] DaRec, Yang et al., ICDE 2025, arXiv:2408.08231

    Args:
        t (float, optional): the temperature of the Gaussian potential, :math:`t > 0`.
            (default: ``2.0``)
        on_shared (bool, optional): also spread the shared parts (an OPEN point of the method,
            ``DaRecModule(uniformity_on_shared=True)``). (default: ``False``)

    Raises:
        ValueError: if ``t`` is not a finite positive number.

    Example:
        >>> import torch
        >>> from darec.losses import UniformityRegularizer
        >>> reg = UniformityRegularizer(t=2.0)
        >>> round(reg.compute(torch.eye(3)).item(), 4)
        -4.0
    """

    #: The term reads the four disentangling projections.
    needs_shared = True

    def __init__(self, t: float = 2.0, on_shared: bool = False) -> None:
        super().__init__()
        self.t = positive_float(t, "t")
        self.on_shared = bool(on_shared)

    def extra_repr(self) -> str:
        return f"t={self.t}, on_shared={self.on_shared}"

    def forward(self, views: StepViews) -> Tensor:
        """The regulariser summed over the CF and LLM specific parts (and shared parts with
        ``on_shared``) and over the sides of ``views``.

        Returns:
            Tensor: the scalar sum (at most 0; lower is more uniform).
        """
        parts = stacked_parts(views, "uniformity")
        spread = parts.flatten(0, 1) if self.on_shared else parts[:, 1]
        return sum_over_row_blocks(self.compute, views.sizes, spread)

    def compute(self, x: Tensor) -> Tensor:
        """The regulariser of one set of rows.

        Args:
            x (Tensor): ``(N, d)`` representations, :math:`N \\geq 2`, or a batch ``(*, N, d)`` of sets.

        Returns:
            Tensor: the uniformity loss (at most 0; lower is more uniform): a scalar, or ``(*)``
            for batched input.
        """
        return uniformity(x, t=self.t)
