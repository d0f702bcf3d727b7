"""The factorization machine over user and item fields, with an optional text field."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from darec.ctr._fields import Fields

__all__ = ["FM", "fm_interaction"]


def fm_interaction(fields: Tensor) -> Tensor:
    r"""The pairwise term of a factorization machine, in :math:`O(Fd)`.

    .. math::
        \sum_{f < g} \langle v_f, v_g \rangle
        = \frac{1}{2} \sum_{k=1}^{d} \Big[\big(\sum_f v_{f,k}\big)^2 - \sum_f v_{f,k}^2\Big]

    Args:
        fields (torch.Tensor): ``(B, F, d)`` field embeddings :math:`v_f`.

    Returns:
        ``(B,)``: the sum of the dot products of every pair of distinct fields.

    Example:
        >>> fields = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
        >>> fm_interaction(fields)  # 11 + 17 + 39
        tensor([67.])
    """
    if fields.dim() != 3:
        raise ValueError(f"`fields` must be a (B, F, d) tensor, got shape {tuple(fields.shape)}")
    return 0.5 * (fields.sum(dim=1).pow(2) - fields.pow(2).sum(dim=1)).sum(dim=-1)


class FM(nn.Module):
    r"""Factorization machine (Rendle, ICDM 2010) over the user and item fields, as a plain module.

    .. math::
        \hat y(u, i) = b + b_u + b_i + w^\top t + \sum_{f < g} \langle v_f, v_g \rangle

    over the fields :math:`v_u, v_i` and, with ``text_dim > 0``, :math:`v_t = W t + c`, the dense
    text feature :math:`t` (e.g. the MiniLM embedding of an explanation) projected to width
    :math:`d` as a third field: the text-augmented variant of ExpCTR-Aug (EC-2). The output is a
    logit; :math:`\sigma(\hat y)` is the click probability.

    - [0] Rendle, "Factorization Machines", ICDM 2010.

    Args:
        num_users (int): number of users (ids ``0 .. num_users - 1``).
        num_items (int): number of items.
        embedding_dim (int): width :math:`d` of the field embeddings. (default: :obj:`16`)
        text_dim (int): width of the dense text feature; ``0`` for ids only. (default: :obj:`0`)

    Example:
        >>> model = FM(num_users=5, num_items=7, embedding_dim=4, text_dim=3)
        >>> model(torch.tensor([0, 4]), torch.tensor([6, 1]), torch.randn(2, 3)).shape
        torch.Size([2])
    """

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 16, text_dim: int = 0) -> None:
        super().__init__()
        self.fields = Fields(num_users, num_items, embedding_dim, text_dim, owner=type(self).__name__)
        self.embedding_dim = embedding_dim

    @property
    def text_dim(self) -> int:
        return self.fields.text_dim

    def darec_spec(self) -> dict[str, Any]:
        """The constructor's arguments, so that a checkpoint rebuilds the model (see :func:`darec.utils.spec.describe`)."""
        return {"num_users": self.fields.num_users, "num_items": self.fields.num_items,
                "embedding_dim": self.embedding_dim, "text_dim": self.text_dim}  # fmt: skip

    def forward(self, user: Tensor, item: Tensor, text: Tensor | None = None) -> Tensor:
        """``(B,)`` logits of the ``(B,)`` ``user`` and ``item`` ids (and the ``(B, text_dim)`` ``text``)."""
        fields = self.fields(user, item, text)  # checks the inputs
        return self.fields.first_order(user, item, text) + fm_interaction(fields)

    def extra_repr(self) -> str:
        return f"embedding_dim={self.embedding_dim}, text_dim={self.text_dim}"
