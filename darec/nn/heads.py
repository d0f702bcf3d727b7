"""Projection heads: two-layer MLPs that map one embedding space into another.

Used by the RLMRec losses (:class:`~darec.losses.ContrastiveAlignmentLoss`'s projector,
:class:`~darec.losses.GenerativeAlignmentLoss`'s decoder) and by :class:`~darec.DaRecModule`'s four
disentangling heads (one :class:`StackedProjectionHead` per side).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from darec.functional._checks import positive_int

__all__ = ["ProjectionHead", "StackedProjectionHead"]


def _widths(in_dim: int, hidden_dim: int | None, out_dim: int) -> tuple[int, int, int]:
    """``(in_dim, hidden_dim, out_dim)`` checked, the hidden width ``(in_dim + out_dim) // 2`` by default."""
    positive_int(in_dim, "in_dim")
    positive_int(out_dim, "out_dim")
    hidden = positive_int((in_dim + out_dim) // 2 if hidden_dim is None else hidden_dim, "hidden_dim")
    return in_dim, hidden, out_dim


class ProjectionHead(nn.Module):
    r"""Two-layer MLP, ``Linear -> LeakyReLU -> Linear``, mapping ``in_dim`` to ``out_dim``.

    .. math::
        h(x) = W_2 \, \mathrm{LeakyReLU}(W_1 x + b_1) + b_2

    The weights start Xavier-uniform and the biases at zero. It serves as the projector of
    RLMRec-Con (LLM to CF width) and the decoder of RLMRec-Gen (CF to LLM width); DaRec's four
    disentangling heads are two :class:`~darec.nn.StackedProjectionHead` of the same form.

    - [0] DaRec, Yang et al., ICDE 2025, arXiv:2408.08231
    - [1] RLMRec, Ren et al., WWW 2024, arXiv:2310.15950

    Args:
        in_dim (int): width of the input.
        out_dim (int): width of the output.
        hidden_dim (int, optional): width of the hidden layer; ``None`` uses
            ``(in_dim + out_dim) // 2``. (default: ``None``)

    Raises:
        ValueError: if a width is smaller than 1.

    Example:
        >>> import torch
        >>> from darec.nn import ProjectionHead
        >>> head = ProjectionHead(384, 64)
        >>> head
        ProjectionHead(
          (layers): Sequential(
            (0): Linear(in_features=384, out_features=224, bias=True)
            (1): LeakyReLU(negative_slope=0.01)
            (2): Linear(in_features=224, out_features=64, bias=True)
          )
        )
        >>> head(torch.randn(10, 384)).shape
        torch.Size([10, 64])
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        self.in_dim, self.hidden_dim, self.out_dim = _widths(in_dim, hidden_dim, out_dim)
        self.layers = nn.Sequential(
            nn.Linear(self.in_dim, self.hidden_dim),
            nn.LeakyReLU(),
            nn.Linear(self.hidden_dim, self.out_dim),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialises the weights (Xavier-uniform) and the biases (zero)."""
        for layer in self.layers:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Projects ``x`` of shape ``(..., in_dim)`` to ``(..., out_dim)``."""
        return self.layers(x)



class StackedProjectionHead(nn.Module):
    r"""``num_heads`` independent :class:`~darec.nn.ProjectionHead` MLPs applied to the same input.

    Head :math:`h` computes

    .. math::
        f_h(x) = W^{(2)}_h \, \mathrm{LeakyReLU}(W^{(1)}_h x + b^{(1)}_h) + b^{(2)}_h

    with its own weights, like a :class:`~darec.nn.ProjectionHead` (same layers,
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
        >>> from darec.nn import StackedProjectionHead
        >>> heads = StackedProjectionHead(384, 32, hidden_dim=64)  # shared and specific
        >>> heads
        StackedProjectionHead(num_heads=2, in_dim=384, hidden_dim=64, out_dim=32)
        >>> shared, specific = heads(torch.randn(10, 384))
        >>> shared.shape, specific.shape
        (torch.Size([10, 32]), torch.Size([10, 32]))
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None, num_heads: int = 2) -> None:
        super().__init__()
        self.in_dim, self.hidden_dim, self.out_dim = _widths(in_dim, hidden_dim, out_dim)
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
