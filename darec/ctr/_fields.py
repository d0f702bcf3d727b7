"""What the CTR backbones share: the field embeddings of a (user, item[, text]) pair, biases, an MLP."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def check_sizes(**sizes: int) -> None:
    """Raises a :class:`ValueError` naming the first size that is not a positive integer."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}")


class Fields(nn.Module):
    """The ``(B, F, d)`` field embeddings of a batch and its first-order (linear) term.

    The fields are the user's and the item's embeddings and, with ``text_dim > 0``, the dense text
    feature projected to width ``d`` by a linear layer: the text is one more field, so every
    interaction layer after it sees text x user and text x item terms (ExpCTR-Aug, EC-2).
    """

    def __init__(
        self, num_users: int, num_items: int, embedding_dim: int, text_dim: int, owner: str, first_order: bool = True
    ) -> None:
        super().__init__()
        check_sizes(num_users=num_users, num_items=num_items, embedding_dim=embedding_dim)
        if isinstance(text_dim, bool) or not isinstance(text_dim, int) or text_dim < 0:
            raise ValueError(f"`text_dim` must be a non-negative integer (0: no text feature), got {text_dim!r}")
        self.owner = owner
        self.num_users, self.num_items, self.text_dim = num_users, num_items, text_dim
        self.user = nn.Embedding(num_users, embedding_dim)
        self.item = nn.Embedding(num_items, embedding_dim)
        self.text = nn.Linear(text_dim, embedding_dim) if text_dim else None
        for table in (self.user, self.item):
            nn.init.normal_(table.weight, std=0.01)
        if first_order:  # biases of the linear term (FM, DeepFM); DCN-V2 has none
            self.user_bias = nn.Embedding(num_users, 1)
            self.item_bias = nn.Embedding(num_items, 1)
            self.bias = nn.Parameter(torch.zeros(()))
            self.text_bias = nn.Linear(text_dim, 1, bias=False) if text_dim else None
            nn.init.zeros_(self.user_bias.weight)
            nn.init.zeros_(self.item_bias.weight)

    @property
    def num_fields(self) -> int:
        return 3 if self.text_dim else 2

    def check(self, user: Tensor, item: Tensor, text: Tensor | None) -> None:
        if user.dim() != 1 or user.shape != item.shape:
            raise ValueError(
                f"{self.owner}: `user` and `item` must be (B,) id tensors of equal length, got shapes "
                f"{tuple(user.shape)} and {tuple(item.shape)}"
            )
        if self.text_dim and text is None:
            raise ValueError(
                f"{self.owner} was built with text_dim={self.text_dim} but got no `text`: pass the (B, {self.text_dim}) "
                "text feature (a data module with `explanations`), or build the model with text_dim=0"
            )
        if not self.text_dim and text is not None:
            raise ValueError(
                f"{self.owner} was built with text_dim=0 (ids only) but got a `text` feature of shape "
                f"{tuple(text.shape)}: build it with text_dim={text.shape[-1] if text.dim() else '?'}"
            )
        if text is not None and tuple(text.shape) != (len(user), self.text_dim):
            raise ValueError(
                f"{self.owner}: `text` must have shape (B, text_dim) = ({len(user)}, {self.text_dim}), got {tuple(text.shape)}"
            )

    def forward(self, user: Tensor, item: Tensor, text: Tensor | None = None) -> Tensor:
        """``(B, F, d)``: user, item (and projected text) embeddings."""
        self.check(user, item, text)
        fields = [self.user(user), self.item(item)]
        if self.text is not None:
            fields.append(self.text(text.to(self.text.weight.dtype)))
        return torch.stack(fields, dim=1)

    def first_order(self, user: Tensor, item: Tensor, text: Tensor | None = None) -> Tensor:
        """``(B,)``: global bias + user bias + item bias (+ a linear term of the text)."""
        out = self.bias + self.user_bias(user).squeeze(-1) + self.item_bias(item).squeeze(-1)
        if self.text_bias is not None:
            out = out + self.text_bias(text.to(self.text_bias.weight.dtype)).squeeze(-1)
        return out


def mlp(in_dim: int, hidden_dims: Sequence[int], dropout: float) -> tuple[nn.Sequential, int]:
    """ReLU layers of widths ``hidden_dims`` with dropout after each; returns the stack and its output width."""
    layers: list[nn.Module] = []
    for width in hidden_dims:
        layers += [nn.Linear(in_dim, width), nn.ReLU(), nn.Dropout(dropout)]
        in_dim = width
    return nn.Sequential(*layers), in_dim


def check_mlp_args(hidden_dims: Sequence[int], dropout: float) -> list[int]:
    dims = list(hidden_dims)
    if not dims or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in dims):
        raise ValueError(f"`hidden_dims` must be a non-empty list of positive widths, got {hidden_dims!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1), got {dropout}")
    return dims
