"""Several two-layer MLP heads on the same input, computed in one batched product."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from darec.losses._checks import positive_int

__all__ = ["StackedProjectionHead"]


class StackedProjectionHead(nn.Module):
    r"""``num_heads`` independent :class:`~darec.losses.ProjectionHead` MLPs applied to the same input.

    Head :math:`h` computes

    .. math::
        f_h(x) = W^{(2)}_h \, \mathrm{LeakyReLU}(W^{(1)}_h x + b^{(1)}_h) + b^{(2)}_h

    with its own weights, like a :class:`~darec.losses.ProjectionHead` (same layers,
    Xavier-uniform weights, zero biases, negative slope 0.01), on ``(N, in_dim)`` inputs. The heads' weights are stacked
    along a leading dimension, so that all heads run as two batched products
    (:func:`torch.baddbmm`) instead of one product per layer and head, and their outputs come
    out stacked. DaRec's disentangler uses one such module per side: head 0 gives the shared
    part and head 1 the specific part of the same embeddings.

    - [0] DaRec, Yang et al., ICDE 2025, arXiv:2408.08231

    Args:
        in_dim (int): width of the input.
        out_dim (int): width of every head's output.
        hidden_dim (int, optional): hidden width of every head; ``None`` uses
            ``(in_dim + out_dim) // 2``. (default: ``None``)
        num_heads (int): number of heads. (default: ``2``)

    Shapes:
        - input: ``(N, in_dim)``
        - output: ``(num_heads, N, out_dim)``; ``output[h]`` is head ``h``'s projection.

    Raises:
        ValueError: if a width or ``num_heads`` is smaller than 1.

    Example:
        >>> import torch
        >>> from darec.losses import StackedProjectionHead
        >>> heads = StackedProjectionHead(384, 32, hidden_dim=64)  # shared and specific
        >>> heads
        StackedProjectionHead(num_heads=2, in_dim=384, hidden_dim=64, out_dim=32)
        >>> shared, specific = heads(torch.randn(10, 384))
        >>> shared.shape, specific.shape
        (torch.Size([10, 32]), torch.Size([10, 32]))
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None, num_heads: int = 2) -> None:
        super().__init__()
        self.in_dim = positive_int(in_dim, "in_dim")
        self.out_dim = positive_int(out_dim, "out_dim")
        if hidden_dim is None:
            hidden_dim = (in_dim + out_dim) // 2
        self.hidden_dim = positive_int(hidden_dim, "hidden_dim")
        self.num_heads = positive_int(num_heads, "num_heads")
        # Stored as (heads, in, out): x @ weight, the transpose of nn.Linear's layout.
        self.weight1 = nn.Parameter(torch.empty(num_heads, self.in_dim, self.hidden_dim))
        self.bias1 = nn.Parameter(torch.empty(num_heads, 1, self.hidden_dim))
        self.weight2 = nn.Parameter(torch.empty(num_heads, self.hidden_dim, self.out_dim))
        self.bias2 = nn.Parameter(torch.empty(num_heads, 1, self.out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialises every head's weights (Xavier-uniform) and biases (zero)."""
        for weight in (self.weight1, self.weight2):
            for head in weight:
                nn.init.xavier_uniform_(head)  # fans of a 2-D (in, out) matrix: the same bound as nn.Linear's
        nn.init.zeros_(self.bias1)
        nn.init.zeros_(self.bias2)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, in_dim={self.in_dim}, hidden_dim={self.hidden_dim}, out_dim={self.out_dim}"

    def forward(self, x: Tensor) -> Tensor:
        """Projects ``x`` of shape ``(N, in_dim)`` to ``(num_heads, N, out_dim)``."""
        if x.dim() != 2 or x.size(1) != self.in_dim:
            raise ValueError(f"expected input of shape (N, {self.in_dim}), got {tuple(x.shape)}")
        hidden = F.leaky_relu(torch.baddbmm(self.bias1, x.expand(self.num_heads, -1, -1), self.weight1))
        return torch.baddbmm(self.bias2, hidden, self.weight2)
