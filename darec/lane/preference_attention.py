"""Semantic alignment of sequence states with preference embeddings (LANE, LN-3): attention, residual, FFN."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PreferenceAttention"]


class PreferenceAttention(nn.Module):
    r"""Multi-head attention from a user's sequence states to their preference embeddings (LANE, LN-3).

    The queries are the backbone's states :math:`H_u \in \mathbb{R}^{L \times d}`, the keys and
    values the user's ``m`` preference embeddings :math:`P_u \in \mathbb{R}^{m \times p}`
    (projected to width :math:`d` by :math:`W_k, W_v`):

    .. math::
        Z = \mathrm{LN}\big(W_o\,\mathrm{MHA}(H_u W_q, P_u W_k, P_u W_v) + H_u\big), \qquad
        F = \mathrm{LN}\big(\mathrm{FFN}(Z) + Z\big),

    with a ReLU point-wise feed-forward layer :math:`\mathrm{FFN}(z) = W_2\,\mathrm{ReLU}(W_1 z)`
    of width :math:`d` and dropout after the attention, inside and after the FFN.

    :meth:`weights` gives one weight per preference from one state, single-head over the whole
    width as in LANE's code: :math:`w_u = \mathrm{softmax}\big((h_u W_q)(P_u W_k)^\top / \sqrt{d}\big)`.

    - [0] Zhao et al., "LANE", arXiv:2407.02833 (semantic alignment, preference weights).

    Args:
        hidden_dim (int): width :math:`d` of the states. (default: :obj:`64`)
        preference_dim (int): width :math:`p` of the preference embeddings (384 for MiniLM).
            (default: :obj:`384`)
        num_heads (int): attention heads; must divide ``hidden_dim``. (default: :obj:`4`)
        dropout (float): dropout rate. (default: :obj:`0.5`)

    Example:
        >>> attention = PreferenceAttention(hidden_dim=8, preference_dim=6, num_heads=2)
        >>> states, prefs = torch.randn(3, 4, 8), torch.randn(3, 5, 6)
        >>> attention(states, prefs).shape, attention.weights(states[:, -1], prefs).shape
        (torch.Size([3, 4, 8]), torch.Size([3, 5]))
    """

    def __init__(self, hidden_dim: int = 64, preference_dim: int = 384, num_heads: int = 4, dropout: float = 0.5) -> None:
        super().__init__()
        for name, value in (("hidden_dim", hidden_dim), ("preference_dim", preference_dim), ("num_heads", num_heads)):
            if value < 1:
                raise ValueError(f"`{name}` must be positive, got {value}")
        if hidden_dim % num_heads:
            raise ValueError(f"`num_heads` ({num_heads}) must divide `hidden_dim` ({hidden_dim})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout}")
        self.hidden_dim = hidden_dim
        self.preference_dim = preference_dim
        self.num_heads = num_heads
        self.query = nn.Linear(hidden_dim, hidden_dim)
        self.key = nn.Linear(preference_dim, hidden_dim)
        self.value = nn.Linear(preference_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, hidden_dim)
        self.norm1 = nn.LayerNorm(hidden_dim)
        self.ffn = nn.Sequential(
            nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_dim, hidden_dim)
        )
        self.norm2 = nn.LayerNorm(hidden_dim)
        self.dropout = nn.Dropout(dropout)

    def _check(self, states: Tensor, preferences: Tensor) -> None:
        if preferences.dim() != 3 or preferences.size(-1) != self.preference_dim:
            raise ValueError(
                f"`preferences` must have shape (B, m, {self.preference_dim}), got {tuple(preferences.shape)}"
            )
        if states.size(0) != preferences.size(0) or states.size(-1) != self.hidden_dim:
            raise ValueError(
                f"`states` (shape {tuple(states.shape)}) must have the batch size of `preferences` "
                f"({preferences.size(0)}) and width {self.hidden_dim}"
            )

    def attention(self, states: Tensor, preferences: Tensor) -> tuple[Tensor, Tensor]:
        """The attention output ``(B, L, d)`` (before the residual) and the weights ``(B, heads, L, m)``."""
        batch, length, _ = states.shape
        m, heads, width = preferences.size(1), self.num_heads, self.hidden_dim // self.num_heads
        q = self.query(states).view(batch, length, heads, width).transpose(1, 2)
        k = self.key(preferences).view(batch, m, heads, width).transpose(1, 2)
        v = self.value(preferences).view(batch, m, heads, width).transpose(1, 2)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(width), dim=-1)
        mixed = (self.dropout(weights) @ v).transpose(1, 2).reshape(batch, length, self.hidden_dim)
        return self.out(mixed), weights

    def forward(self, states: Tensor, preferences: Tensor) -> Tensor:
        """``(B, L, d)`` fused states of ``states`` ``(B, L, d)`` with ``preferences`` ``(B, m, p)``.

        Raises:
            ValueError: the shapes do not fit.
        """
        self._check(states, preferences)
        mixed, _ = self.attention(states, preferences)
        z = self.norm1(self.dropout(mixed) + states)
        return self.norm2(self.dropout(self.ffn(z)) + z)

    def weights(self, state: Tensor, preferences: Tensor) -> Tensor:
        r"""``(B, m)`` single-head weights of the preferences for one state ``(B, d)``; rows sum to 1.

        :math:`\mathrm{softmax}\big((h W_q)(P W_k)^\top / \sqrt{d}\big)` with this module's query
        and key projections over the whole width (no dropout).
        """
        self._check(state.unsqueeze(1), preferences)
        q = self.query(state).unsqueeze(1)
        k = self.key(preferences)
        logits = (q @ k.transpose(-1, -2)).squeeze(1) / math.sqrt(self.hidden_dim)
        return F.softmax(logits.float(), dim=-1)

    def extra_repr(self) -> str:
        return f"hidden_dim={self.hidden_dim}, preference_dim={self.preference_dim}, num_heads={self.num_heads}"
