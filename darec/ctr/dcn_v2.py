"""DCN-V2: a cross network of full-rank cross layers beside (or before) an MLP."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from darec.ctr._fields import Fields, check_mlp_args, check_sizes, mlp

__all__ = ["DCNv2"]

_STRUCTURES = ("parallel", "stacked")


class DCNv2(nn.Module):
    r"""Deep & Cross Network V2 (Wang et al., WWW 2021) over the user and item fields, as a plain module.

    The input :math:`x_0 = [v_u; v_i; v_t] \in \mathbb{R}^{Fd}` (the field embeddings, with the
    projected text feature :math:`v_t` when ``text_dim > 0``, ExpCTR-Aug, EC-2) goes through
    ``num_cross_layers`` cross layers

    .. math::
        x_{l+1} = x_0 \odot (W_l x_l + b_l) + x_l,

    and a ReLU MLP: side by side (``"parallel"``: :math:`\hat y = w^\top [x_L; \mathrm{MLP}(x_0)]`)
    or one after the other (``"stacked"``: :math:`\hat y = w^\top \mathrm{MLP}(x_L)`).

    - [0] Wang et al., "DCN V2: Improved Deep & Cross Network and Practical Lessons for Web-scale
      Learning to Rank Systems", WWW 2021, arXiv:2008.13535.

    Args:
        num_users (int): number of users.
        num_items (int): number of items.
        embedding_dim (int): width :math:`d` of the field embeddings. (default: :obj:`16`)
        text_dim (int): width of the dense text feature; ``0`` for ids only. (default: :obj:`0`)
        num_cross_layers (int): cross layers :math:`L`. (default: :obj:`2`)
        hidden_dims (Sequence[int]): widths of the MLP's hidden layers. (default: ``(64, 32)``)
        dropout (float): dropout after each hidden layer. (default: :obj:`0.1`)
        structure (str): ``"parallel"`` or ``"stacked"``. (default: :obj:`"parallel"`)

    Example:
        >>> model = DCNv2(num_users=5, num_items=7, embedding_dim=4, text_dim=3, structure="stacked")
        >>> model(torch.tensor([0, 4]), torch.tensor([6, 1]), torch.randn(2, 3)).shape
        torch.Size([2])
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        embedding_dim: int = 16,
        text_dim: int = 0,
        num_cross_layers: int = 2,
        hidden_dims: Sequence[int] = (64, 32),
        dropout: float = 0.1,
        structure: str = "parallel",
    ) -> None:
        super().__init__()
        check_sizes(num_cross_layers=num_cross_layers)
        dims = check_mlp_args(hidden_dims, dropout)
        if structure not in _STRUCTURES:
            raise ValueError(f"`structure` must be one of {_STRUCTURES}, got {structure!r}")
        self.fields = Fields(num_users, num_items, embedding_dim, text_dim, owner=type(self).__name__, first_order=False)
        self.embedding_dim, self.num_cross_layers = embedding_dim, num_cross_layers
        self.hidden_dims, self.dropout, self.structure = dims, dropout, structure
        width = self.fields.num_fields * embedding_dim
        self.cross = nn.ModuleList(nn.Linear(width, width) for _ in range(num_cross_layers))
        self.deep, deep_width = mlp(width, dims, dropout)
        self.head = nn.Linear(deep_width + (width if structure == "parallel" else 0), 1)

    @property
    def text_dim(self) -> int:
        return self.fields.text_dim

    def darec_spec(self) -> dict[str, Any]:
        """The constructor's arguments, so that a checkpoint rebuilds the model (see :func:`darec.utils.spec.describe`)."""
        return {"num_users": self.fields.num_users, "num_items": self.fields.num_items, "embedding_dim": self.embedding_dim,
                "text_dim": self.text_dim, "num_cross_layers": self.num_cross_layers, "hidden_dims": self.hidden_dims,
                "dropout": self.dropout, "structure": self.structure}  # fmt: skip

    def cross_network(self, x0: Tensor) -> Tensor:
        """``(B, Fd)``: :math:`x_L`, the output of the cross layers on ``x0``."""
        x = x0
        for layer in self.cross:
            x = x0 * layer(x) + x
        return x

    def forward(self, user: Tensor, item: Tensor, text: Tensor | None = None) -> Tensor:
        """``(B,)`` logits of the ``(B,)`` ``user`` and ``item`` ids (and the ``(B, text_dim)`` ``text``)."""
        x0 = torch.flatten(self.fields(user, item, text), 1)
        crossed = self.cross_network(x0)
        if self.structure == "stacked":
            return self.head(self.deep(crossed)).squeeze(-1)
        return self.head(torch.cat([crossed, self.deep(x0)], dim=-1)).squeeze(-1)

    def extra_repr(self) -> str:
        return f"embedding_dim={self.embedding_dim}, text_dim={self.text_dim}, structure={self.structure!r}"
