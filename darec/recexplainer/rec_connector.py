"""RecExplainer's connector: the MLP that maps a recommender's vector into an LLM's token-embedding space."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from darec.functional._checks import positive_int

__all__ = ["RecConnector"]


class RecConnector(nn.Module):
    r"""Projects a recommender's ``(..., rec_dim)`` vectors to an LLM's ``(..., hidden_size)`` token space (RecExplainer, eq. 1).

    .. math::
        \tilde e = W_2 \, \mathrm{GELU}(W_1 e + b_1) + b_2,
        \qquad W_1 \in \mathbb{R}^{H/2 \times d_{rec}},\; W_2 \in \mathbb{R}^{H \times H/2}

    with :math:`H` the LLM's hidden size. :class:`~darec.recexplainer.RecEmbeddingInjector` holds
    one connector per placeholder kind (``<user>``, ``<item>``) and puts their outputs at the
    placeholders' positions of the prompt. The layers keep PyTorch's default initialisation
    (RecExplainer's code does the same).

    - [0] Lei et al., "RecExplainer: Aligning Large Language Models for Explaining Recommendation
      Models", KDD 2024, arXiv:2311.10947.

    Args:
        rec_dim (int): width of the recommender's vectors, :math:`d_{rec}`.
        hidden_size (int): the LLM's hidden size, :math:`H`.
        hidden_dim (int, optional): width of the middle layer. (default: ``max(1, hidden_size // 2)``)

    Shapes:
        - input: ``(..., rec_dim)``
        - output: ``(..., hidden_size)``

    Raises:
        ValueError: a width smaller than 1, or an input whose last dimension is not ``rec_dim``.

    Example:
        >>> import torch
        >>> connector = RecConnector(rec_dim=64, hidden_size=576)  # e.g. a LightGCN -> SmolLM2-135M
        >>> connector
        RecConnector(
          (fc1): Linear(in_features=64, out_features=288, bias=True)
          (fc2): Linear(in_features=288, out_features=576, bias=True)
        )
        >>> connector(torch.randn(3, 64)).shape
        torch.Size([3, 576])
    """

    def __init__(self, rec_dim: int, hidden_size: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        self.rec_dim = positive_int(rec_dim, "rec_dim")
        self.hidden_size = positive_int(hidden_size, "hidden_size")
        self.hidden_dim = positive_int(max(1, hidden_size // 2) if hidden_dim is None else hidden_dim, "hidden_dim")
        self.fc1 = nn.Linear(self.rec_dim, self.hidden_dim)
        self.fc2 = nn.Linear(self.hidden_dim, self.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        """Projects ``x`` of shape ``(..., rec_dim)`` to ``(..., hidden_size)``."""
        if x.dim() < 1 or x.size(-1) != self.rec_dim:
            raise ValueError(f"the connector expects vectors of width rec_dim={self.rec_dim}, got shape {tuple(x.shape)}")
        return self.fc2(F.gelu(self.fc1(x)))
