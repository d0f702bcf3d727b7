"""Sampled ranking: the true item among a fixed, seeded set of unseen items (LANE's protocol)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from darec.metrics.collection import ranking_metrics
from darec.metrics.functional import _check_k

__all__ = ["SampledRankingEvaluator"]


class SampledRankingEvaluator(nn.Module):
    r"""Ranks each user's true item among ``num_negatives`` sampled items the user never had.

    The protocol of SASRec and LANE: for every evaluated user, ``num_negatives`` distinct items
    outside the user's history are drawn once, from ``numpy.random.default_rng(seed)``, and kept
    in a fixed table (:attr:`negatives`). Every model evaluated with the same histories, item count
    and seed therefore sees the same candidates. The true item's rank :math:`r` (0-based) is the
    number of sampled items scored *at least* as high (ties count against the true item, so a
    constant model scores no hit), and

    .. math::
        \mathrm{HR@}k = \mathbb{1}[r < k], \qquad
        \mathrm{NDCG@}k = \mathbb{1}[r < k] / \log_2(r + 2),

    averaged over users by darec's :class:`~darec.metrics.HitRateAtK` and
    :class:`~darec.metrics.NDCGAtK` (so the states are sums, synchronised under DDP). Keys are
    ``prefix + "hit_rate@k"`` and ``prefix + "ndcg@k"``, e.g. ``"val/sampled/ndcg@10"``.

    - [0] Kang and McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.
    - [1] Zhao et al., "LANE", arXiv:2407.02833 (1 + 100 candidates, HR and NDCG at 5 and 10).

    Args:
        histories (sequence of sequences of int): every user's items, which are never sampled
            (give the whole sequence, held-out items included).
        num_items (int): items are ``0 .. num_items - 1``.
        num_negatives (int): sampled items per user, :math:`N`. (default: :obj:`100`)
        ks (Iterable[int]): cut-offs, at most ``num_negatives``. (default: ``(5, 10)``)
        seed (int): seed of the negatives table. (default: :obj:`0`)
        max_users (int, optional): evaluate a random subset of this many users (LANE uses at
            most 10,000), drawn with ``user_seed``; by default every user.
        user_seed (int): seed of the user subset. (default: :obj:`0`)
        padding_idx (int, optional): an id that is never sampled (item ``0`` of sequential
            models). (default: :obj:`None`)
        prefix (str): prepended to the metric keys. (default: ``""``)

    Raises:
        ValueError: a cut-off exceeds ``num_negatives``, or a user has fewer than
            ``num_negatives`` unseen items.

    Example:
        >>> ev = SampledRankingEvaluator([[0, 1], [2]], num_items=8, num_negatives=3, ks=(1, 3), seed=0)
        >>> ev.negatives.shape, bool(torch.isin(ev.negatives[0], torch.tensor([0, 1])).any())
        (torch.Size([2, 3]), False)
        >>> ev.update(torch.tensor([[0.9, 0.1, 0.2, 0.3],     # the true item first: rank 0
        ...                         [0.5, 0.6, 0.1, 0.7]]))   # two items above it: rank 2
        >>> {k: round(v.item(), 4) for k, v in ev.compute().items()}
        {'hit_rate@1': 0.5, 'hit_rate@3': 1.0, 'ndcg@1': 0.5, 'ndcg@3': 0.75}
    """

    users: Tensor
    negatives: Tensor

    def __init__(
        self,
        histories: Sequence[Sequence[int]],
        num_items: int,
        num_negatives: int = 100,
        ks: Iterable[int] = (5, 10),
        seed: int = 0,
        max_users: int | None = None,
        user_seed: int = 0,
        padding_idx: int | None = None,
        prefix: str = "",
    ) -> None:
        super().__init__()
        self.ks = sorted({_check_k(k) for k in ks})
        if num_negatives < 1:
            raise ValueError(f"`num_negatives` must be positive, got {num_negatives}")
        if self.ks[-1] > num_negatives:
            raise ValueError(f"the cut-offs {self.ks} must not exceed `num_negatives` ({num_negatives})")
        if max_users is not None and max_users < 1:
            raise ValueError(f"`max_users` must be positive (or None), got {max_users}")
        self.num_items = int(num_items)
        self.num_negatives = int(num_negatives)
        self.seed = int(seed)
        num_users = len(histories)
        users = np.arange(num_users)
        if max_users is not None and max_users < num_users:
            users = np.sort(np.random.default_rng(user_seed).choice(num_users, size=max_users, replace=False))
        table = _draw_negatives([histories[u] for u in users], self.num_items, self.num_negatives, seed, padding_idx)
        self.register_buffer("users", torch.from_numpy(users.astype(np.int64)), persistent=False)
        self.register_buffer("negatives", torch.from_numpy(table), persistent=False)
        position = torch.full((num_users,), -1, dtype=torch.long)
        position[self.users] = torch.arange(len(users))
        self.register_buffer("_row", position, persistent=False)
        self.metrics = ranking_metrics(self.ks, names=("hit_rate", "ndcg"), prefix=prefix)

    def candidates(self, users: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """The ``(B', 1 + N)`` candidates of the evaluated ones among ``users``, the true item first.

        Args:
            users (Tensor): ``(B,)`` user ids.
            targets (Tensor): ``(B,)`` the true item of each user.

        Returns:
            ``(candidates, keep)``: the candidates of the ``B'`` users in the evaluated subset, and
            the ``(B,)`` bool mask that selects them from ``users``.
        """
        rows = self._row[users.to(self._row.device)]
        keep = rows >= 0
        negatives = self.negatives[rows[keep]]
        return torch.cat([targets.to(negatives.device)[keep].unsqueeze(1), negatives], dim=1), keep.to(users.device)

    @staticmethod
    def ranks(scores: Tensor) -> Tensor:
        """``(B,)`` 0-based rank of column 0 of the ``(B, 1 + N)`` ``scores`` (ties against it)."""
        return (scores[:, 1:] >= scores[:, :1]).sum(dim=1)

    def update(self, scores: Tensor) -> None:
        """Adds users: ``scores`` ``(B, 1 + N)`` of :meth:`candidates`, the true item in column 0."""
        if scores.dim() != 2 or scores.size(1) != self.num_negatives + 1:
            raise ValueError(f"`scores` must have shape (B, {self.num_negatives + 1}), got {tuple(scores.shape)}")
        rank = self.ranks(scores.float())
        k = self.ks[-1]
        # A ranking in which the true item (column 0 of the target) sits at its rank, sampled items elsewhere:
        slots = torch.arange(1, k + 1, device=scores.device).expand(len(rank), k)
        preds = torch.where(slots - 1 == rank.unsqueeze(1), torch.zeros_like(slots), slots)
        target = torch.zeros(len(rank), self.num_negatives + 1, dtype=torch.bool, device=scores.device)
        target[:, 0] = True
        self.metrics.update(preds, target, num_relevant=torch.ones_like(rank))

    def compute(self) -> dict[str, Tensor]:
        """The mean HR and NDCG at every cut-off over the users added since :meth:`reset`."""
        return self.metrics.compute()

    def reset(self) -> None:
        self.metrics.reset()

    def extra_repr(self) -> str:
        return f"users={len(self.users)}, num_negatives={self.num_negatives}, ks={self.ks}, seed={self.seed}"


def _draw_negatives(
    histories: Sequence[Sequence[int]], num_items: int, n: int, seed: int, padding_idx: int | None
) -> np.ndarray:
    """``(U, n)`` distinct items per user outside the user's history, one generator for all users in order."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(histories), n), dtype=np.int64)
    for row, history in enumerate(histories):
        seen = np.unique(np.asarray(list(history) + ([padding_idx] if padding_idx is not None else []), dtype=np.int64))
        seen = seen[(seen >= 0) & (seen < num_items)]
        if num_items - len(seen) < n:
            raise ValueError(
                f"user {row} of the evaluated users has only {num_items - len(seen)} unseen items, fewer than "
                f"num_negatives={n}: lower num_negatives"
            )
        # A draw of n + |seen| distinct items holds at least n unseen ones; keep the first n in draw order.
        draw = rng.choice(num_items, size=min(num_items, n + len(seen)), replace=False)
        out[row] = draw[~np.isin(draw, seen)][:n]
    return out
