"""DeepFM: a factorization machine and an MLP over the same field embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from darec.ctr._fields import Fields, check_mlp_args, mlp
from darec.ctr.fm import fm_interaction

__all__ = ["DeepFM"]


class DeepFM(nn.Module):
    r"""DeepFM (Guo et al., IJCAI 2017) over the user and item fields, as a plain module.

    The FM part (biases and pairwise term, see :class:`~darec.ctr.FM`) and a ReLU MLP read the
    same field embeddings; their logits add up:

    .. math::
        \hat y = b + b_u + b_i + w^\top t + \sum_{f < g} \langle v_f, v_g \rangle
            + \mathrm{MLP}([v_u; v_i; v_t]).

    With ``text_dim > 0`` the dense text feature :math:`t` is projected to a third field
    :math:`v_t` before both parts (ExpCTR-Aug, EC-2).

    - [0] Guo et al., "DeepFM: A Factorization-Machine based Neural Network for CTR Prediction",
      IJCAI 2017, arXiv:1703.04247.

    Args:
        num_users (int): number of users.
        num_items (int): number of items.
        embedding_dim (int): width :math:`d` of the field embeddings. (default: :obj:`16`)
        text_dim (int): width of the dense text feature; ``0`` for ids only. (default: :obj:`0`)
        hidden_dims (Sequence[int]): widths of the MLP's hidden layers. (default: ``(64, 32)``)
        dropout (float): dropout after each hidden layer. (default: :obj:`0.1`)

    Example:
        >>> model = DeepFM(num_users=5, num_items=7, embedding_dim=4)
        >>> model(torch.tensor([0, 4, 2]), torch.tensor([6, 1, 0])).shape
        torch.Size([3])
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        embedding_dim: int = 16,
        text_dim: int = 0,
        hidden_dims: Sequence[int] = (64, 32),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        dims = check_mlp_args(hidden_dims, dropout)
        self.fields = Fields(num_users, num_items, embedding_dim, text_dim, owner=type(self).__name__)
        self.embedding_dim, self.hidden_dims, self.dropout = embedding_dim, dims, dropout
        self.deep, width = mlp(self.fields.num_fields * embedding_dim, dims, dropout)
        self.head = nn.Linear(width, 1)

    @property
    def text_dim(self) -> int:
        return self.fields.text_dim

    def darec_spec(self) -> dict[str, Any]:
        """The constructor's arguments, so that a checkpoint rebuilds the model (see :func:`darec.utils.spec.describe`)."""
        return {"num_users": self.fields.num_users, "num_items": self.fields.num_items, "embedding_dim": self.embedding_dim,
                "text_dim": self.text_dim, "hidden_dims": self.hidden_dims, "dropout": self.dropout}  # fmt: skip

    def forward(self, user: Tensor, item: Tensor, text: Tensor | None = None) -> Tensor:
        """``(B,)`` logits of the ``(B,)`` ``user`` and ``item`` ids (and the ``(B, text_dim)`` ``text``)."""
        fields = self.fields(user, item, text)
        deep = self.head(self.deep(torch.flatten(fields, 1))).squeeze(-1)
        return self.fields.first_order(user, item, text) + fm_interaction(fields) + deep

    def extra_repr(self) -> str:
        return f"embedding_dim={self.embedding_dim}, text_dim={self.text_dim}"
