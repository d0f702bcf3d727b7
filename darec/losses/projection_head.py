"""A two-layer MLP head that maps one embedding space into another."""

from __future__ import annotations

from torch import Tensor, nn

from darec.losses._checks import positive_int

__all__ = ["ProjectionHead"]


class ProjectionHead(nn.Module):
    r"""Two-layer MLP, ``Linear -> LeakyReLU -> Linear``, mapping ``in_dim`` to ``out_dim``.

    .. math::
        h(x) = W_2 \, \mathrm{LeakyReLU}(W_1 x + b_1) + b_2

    The weights start Xavier-uniform and the biases at zero. It serves as the projector of
    RLMRec-Con (LLM to CF width) and the decoder of RLMRec-Gen (CF to LLM width); DaRec's four
    disentangling heads are two :class:`~darec.losses.StackedProjectionHead` of the same form.

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
        >>> from darec.losses import ProjectionHead
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
        self.in_dim = positive_int(in_dim, "in_dim")
        self.out_dim = positive_int(out_dim, "out_dim")
        if hidden_dim is None:
            hidden_dim = (in_dim + out_dim) // 2
        self.hidden_dim = positive_int(hidden_dim, "hidden_dim")
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
