"""SASRec: a causal Transformer encoder over a user's item sequence."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["SASRec"]


class SASRec(nn.Module):
    r"""Self-attentive sequential recommender (Kang and McAuley, ICDM 2018), as a plain module.

    The input is a batch of left-padded item sequences (item ``0`` is padding). Each position's
    item embedding, scaled by :math:`\sqrt{d}`, gets a learned position embedding, dropout, and
    ``num_blocks`` pre-norm Transformer encoder blocks (:class:`torch.nn.TransformerEncoderLayer`
    with ``norm_first=True``, a ReLU point-wise feed-forward layer of width :math:`d`) under a
    causal mask, then a final layer norm:

    .. math::
        H = \mathrm{LN}\big(\mathrm{Blocks}_{\text{causal}}(\mathrm{Drop}(\sqrt{d}\,E_{s} + P))\big)
        \in \mathbb{R}^{B \times L \times d}.

    Position :math:`t` attends only to the real items at positions :math:`\le t`, so
    :math:`H_t` never depends on later items; padded positions attend only to themselves and
    their states are zero. The score of item :math:`i` after position :math:`t` is
    :math:`H_t \cdot E_i` with the same item table (:meth:`item_embeddings`).

    The item table can start from title embeddings (LANE's semantic initialisation, LN-1) with
    :meth:`init_item_embeddings`, e.g. the ``(num_items + 1, 384)`` MiniLM matrix of
    :class:`~darec.text.TitleEmbedder`; ``embedding_dim`` must then equal the width of that
    matrix (384 for MiniLM). Nothing is projected: the title vectors *are* the initial item
    vectors, and they are trained with the rest.

    - [0] Kang and McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018, arXiv:1808.09781.

    Args:
        num_items (int): number of items; ids ``1 .. num_items``, ``0`` is padding.
        embedding_dim (int): width :math:`d`. (default: :obj:`64`)
        num_blocks (int): Transformer blocks. (default: :obj:`2`)
        num_heads (int): attention heads; must divide ``embedding_dim``. (default: :obj:`1`)
        dropout (float): dropout rate of the embeddings and inside the blocks. (default: :obj:`0.2`)
        max_len (int): longest input sequence :math:`L` (positions learned). (default: :obj:`50`)

    Example:
        >>> model = SASRec(num_items=10, embedding_dim=16, max_len=5)
        >>> seq = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
        >>> model.sequence_states(seq).shape, model.item_embeddings().shape
        (torch.Size([2, 5, 16]), torch.Size([11, 16]))
    """

    def __init__(
        self,
        num_items: int,
        embedding_dim: int = 64,
        num_blocks: int = 2,
        num_heads: int = 1,
        dropout: float = 0.2,
        max_len: int = 50,
    ) -> None:
        super().__init__()
        for name, value in (("num_items", num_items), ("embedding_dim", embedding_dim), ("num_blocks", num_blocks),
                            ("num_heads", num_heads), ("max_len", max_len)):  # fmt: skip
            if value < 1:
                raise ValueError(f"`{name}` must be positive, got {value}")
        if embedding_dim % num_heads:
            raise ValueError(f"`num_heads` ({num_heads}) must divide `embedding_dim` ({embedding_dim})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout}")
        self.num_items = num_items
        self.embedding_dim = embedding_dim
        self.num_heads = num_heads
        self.num_blocks = num_blocks
        self.dropout_rate = dropout
        self.max_len = max_len
        self.items = nn.Embedding(num_items + 1, embedding_dim, padding_idx=0)
        self.positions = nn.Embedding(max_len, embedding_dim)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                embedding_dim, num_heads, dim_feedforward=embedding_dim, dropout=dropout,
                activation="relu", batch_first=True, norm_first=True,
            )  # fmt: skip
            for _ in range(num_blocks)
        )
        self.norm = nn.LayerNorm(embedding_dim)
        nn.init.xavier_normal_(self.items.weight)
        nn.init.xavier_normal_(self.positions.weight)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def darec_spec(self) -> dict[str, Any]:
        """The constructor's arguments, so that a checkpoint rebuilds the model (see :func:`darec.utils.spec.describe`)."""
        return {
            "num_items": self.num_items, "embedding_dim": self.embedding_dim, "num_blocks": self.num_blocks,
            "num_heads": self.num_heads, "dropout": self.dropout_rate, "max_len": self.max_len,
        }  # fmt: skip

    def item_embeddings(self) -> Tensor:
        """The ``(num_items + 1, d)`` item table; row ``0`` (padding) is zero."""
        return self.items.weight

    @torch.no_grad()
    def init_item_embeddings(self, matrix: Tensor) -> None:
        """Copies ``matrix`` (``(num_items + 1, d)``, e.g. title embeddings) into the item table.

        Row ``0`` is set to zero whatever ``matrix`` holds there. The table stays trainable.

        Raises:
            ValueError: ``matrix`` has another shape than the item table.
        """
        matrix = torch.as_tensor(matrix)
        if tuple(matrix.shape) != tuple(self.items.weight.shape):
            raise ValueError(
                f"the item initialisation must have shape {tuple(self.items.weight.shape)} (num_items + 1, "
                f"embedding_dim), got {tuple(matrix.shape)}; with MiniLM title embeddings set embedding_dim=384"
            )
        self.items.weight.copy_(matrix.to(self.items.weight))
        self.items.weight[0].zero_()

    def _attention_mask(self, pad: Tensor) -> Tensor:
        """``(B * heads, L, L)`` bool mask, ``True`` where attention is not allowed: later positions
        and padded keys, except a position's own key (so padded rows are never all masked)."""
        length = pad.size(1)
        future = torch.ones(length, length, dtype=torch.bool, device=pad.device).triu(1)
        own = torch.eye(length, dtype=torch.bool, device=pad.device)
        mask = (future.unsqueeze(0) | pad.unsqueeze(1)) & ~own
        return mask.repeat_interleave(self.num_heads, dim=0)

    def sequence_states(self, seq: Tensor) -> Tensor:
        """``(B, L, d)`` states of the left-padded ``(B, L)`` item sequences ``seq`` (``L <= max_len``).

        Raises:
            ValueError: ``seq`` is not 2-D or is longer than ``max_len``.
        """
        if seq.dim() != 2:
            raise ValueError(f"`seq` must be a (B, L) tensor of item ids, got shape {tuple(seq.shape)}")
        length = seq.size(1)
        if length > self.max_len:
            raise ValueError(f"sequences of length {length} exceed max_len={self.max_len}: keep the last {self.max_len} items")
        pad = seq == 0
        # Position ids by column: with left padding the latest item is always position max_len - 1.
        positions = torch.arange(self.max_len - length, self.max_len, device=seq.device)
        x = self.items(seq) * math.sqrt(self.embedding_dim) + self.positions(positions)
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        x = self.dropout(x) * keep
        mask = self._attention_mask(pad)
        for block in self.blocks:
            x = block(x, src_mask=mask) * keep
        return self.norm(x) * keep

    def forward(self, seq: Tensor) -> Tensor:
        """The state after the last position, ``(B, d)``: the user's next-item query."""
        return self.sequence_states(seq)[:, -1]

    def extra_repr(self) -> str:
        return f"num_items={self.num_items}, embedding_dim={self.embedding_dim}, max_len={self.max_len}"
