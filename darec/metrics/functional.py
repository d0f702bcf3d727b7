r"""Full-ranking helpers and per-user top-:math:`k` metric formulas.

Evaluation in darec ranks the *whole* item catalogue for every user, so the pipeline is dense:

1. :func:`rank_items` turns a ``(B, I)`` score matrix into ``(B, k)`` item indices, with the
   items a user already interacted with masked out;
2. :func:`topk_hits` looks those indices up in the ``(B, I)`` boolean matrix of held-out items;
3. one of the per-user formulas below (:func:`recall_at_k`, :func:`ndcg_at_k`, ...) maps the
   ``(B, k)`` hit matrix and the number of held-out items of each user to ``(B,)`` values.

The metric classes in :mod:`darec.metrics` average step 3 over users. Nothing here reads tensor
values on the host, so every function runs on the device of its inputs without synchronising.

Users with no held-out item (``num_relevant == 0``) get ``0`` from every formula, never ``NaN``.
Whether such users count is a protocol decision; the metric classes skip them.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "rank_items",
    "topk_hits",
    "recall_at_k",
    "precision_at_k",
    "hit_rate_at_k",
    "ndcg_at_k",
    "mrr_at_k",
]


def _check_k(k: object) -> int:
    """Returns ``k`` if it is a positive ``int``, else raises ``ValueError`` naming ``k``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` must be a positive integer, got {k!r}")
    return k


def _check_hits(hits: Tensor, num_relevant: Tensor) -> None:
    """Shape checks shared by the per-user formulas (no tensor values are read)."""
    if hits.dim() != 2:
        raise ValueError(f"`hits` must be a 2-D (B, k) tensor, got shape {tuple(hits.shape)}")
    if hits.dtype != torch.bool:
        raise ValueError(f"`hits` must be a bool tensor, got dtype {hits.dtype}")
    if num_relevant.dim() != 1 or num_relevant.shape[0] != hits.shape[0]:
        raise ValueError(
            f"`num_relevant` must have shape ({hits.shape[0]},) to match `hits`, "
            f"got {tuple(num_relevant.shape)}"
        )


def _rank_discounts(k: int, device: torch.device) -> Tensor:
    """``1 / log2(rank + 2)`` for ranks ``0..k-1`` (the DCG position discount)."""
    return 1.0 / torch.log2(torch.arange(2, k + 2, device=device, dtype=torch.float32))


def rank_items(scores: Tensor, k: int, exclude: Tensor | None = None) -> Tensor:
    r"""Indices of the ``k`` highest-scoring items of every user, best first.

    Items flagged in ``exclude`` (typically the training interactions) are masked with
    :math:`-\infty` on a copy of ``scores`` before :func:`torch.topk`, so they are never
    recommended as long as the user has at least ``k`` allowed items. A user with fewer allowed
    items gets all of them first and then excluded items, in an unspecified order, to fill the
    row; the metrics then simply see those positions as misses (unless the excluded items are
    also in the target). As in :func:`torch.topk`, ``NaN`` scores rank above every number.

    Args:
        scores (Tensor): ``(B, I)`` floating-point scores of every item for ``B`` users.
            Left unchanged.
        k (int): how many items to return per user. Values above ``I`` are clamped to ``I``.
        exclude (Tensor, optional): ``(B, I)`` bool mask, ``True`` for items that must not be
            recommended (already seen). (default: :obj:`None`)

    Returns:
        Tensor: ``(B, min(k, I))`` long item indices sorted by descending score.

    Raises:
        ValueError: if ``k`` is not a positive integer, ``scores`` is not a 2-D floating-point
            tensor, or ``exclude`` is not a bool tensor of the same shape.

    Example:
        >>> import torch
        >>> scores = torch.tensor([[0.1, 0.9, 0.5, 0.7],
        ...                        [0.8, 0.2, 0.6, 0.4]])
        >>> seen = torch.tensor([[False, True, False, False],
        ...                      [False, False, False, False]])
        >>> rank_items(scores, k=2, exclude=seen)
        tensor([[3, 2],
                [0, 2]])
        >>> rank_items(scores, k=10).shape  # k is clamped to the number of items
        torch.Size([2, 4])
    """
    _check_k(k)
    if scores.dim() != 2:
        raise ValueError(f"`scores` must be a 2-D (B, I) tensor, got shape {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise ValueError(f"`scores` must be a floating-point tensor, got dtype {scores.dtype}")
    if exclude is not None:
        if exclude.dtype != torch.bool:
            raise ValueError(f"`exclude` must be a bool tensor, got dtype {exclude.dtype}")
        if exclude.shape != scores.shape:
            raise ValueError(
                f"`exclude` must have the shape of `scores` {tuple(scores.shape)}, "
                f"got {tuple(exclude.shape)}"
            )
        # masked_fill (not masked_fill_) returns a new tensor, leaving the caller's scores intact:
        scores = scores.masked_fill(exclude, float("-inf"))
    return scores.topk(min(k, scores.shape[1]), dim=1, largest=True, sorted=True).indices


def topk_hits(topk_items: Tensor, target: Tensor) -> Tensor:
    r"""Marks which recommended items are relevant.

    .. math::
        \mathrm{hits}_{b,j} = \mathrm{target}_{b,\, \mathrm{topk\_items}_{b,j}}

    Args:
        topk_items (Tensor): ``(B, k)`` long item indices, e.g. from :func:`rank_items`.
        target (Tensor): ``(B, I)`` bool matrix, ``True`` for relevant (held-out) items.

    Returns:
        Tensor: ``(B, k)`` bool hit matrix.

    Raises:
        ValueError: if the shapes or dtypes do not fit.

    Example:
        >>> import torch
        >>> target = torch.tensor([[False, True, True, False]])
        >>> topk_hits(torch.tensor([[3, 2, 1]]), target)
        tensor([[False,  True,  True]])
    """
    if topk_items.dim() != 2:
        raise ValueError(f"`topk_items` must be a 2-D (B, k) tensor, got shape {tuple(topk_items.shape)}")
    if topk_items.is_floating_point() or topk_items.is_complex() or topk_items.dtype == torch.bool:
        raise ValueError(f"`topk_items` must hold integer item indices, got dtype {topk_items.dtype}")
    if target.dim() != 2:
        raise ValueError(f"`target` must be a 2-D (B, I) tensor, got shape {tuple(target.shape)}")
    if target.dtype != torch.bool:
        raise ValueError(f"`target` must be a bool tensor, got dtype {target.dtype} (use `target.bool()`)")
    if topk_items.shape[0] != target.shape[0]:
        raise ValueError(
            f"`topk_items` and `target` must have the same batch size, "
            f"got {topk_items.shape[0]} and {target.shape[0]}"
        )
    return target.gather(1, topk_items.long())


def recall_at_k(hits: Tensor, num_relevant: Tensor) -> Tensor:
    r"""Per-user recall: the share of a user's relevant items found in the top :math:`k`.

    .. math::
        \mathrm{Recall@}k(u) = \frac{\sum_{j=1}^{k} \mathrm{hit}_{u,j}}{|\mathcal{R}_u|}

    where :math:`\mathcal{R}_u` is the set of relevant items of user :math:`u` (not capped
    at :math:`k`).

    Args:
        hits (Tensor): ``(B, k)`` bool hit matrix from :func:`topk_hits`.
        num_relevant (Tensor): ``(B,)`` number of relevant items per user, ``target.sum(1)``.

    Returns:
        Tensor: ``(B,)`` float32 values in :math:`[0, 1]`; ``0`` where ``num_relevant == 0``.

    Example:
        >>> import torch
        >>> hits = torch.tensor([[True, False, True], [False, False, False]])
        >>> recall_at_k(hits, torch.tensor([4, 0]))
        tensor([0.5000, 0.0000])
    """
    _check_hits(hits, num_relevant)
    found = hits.sum(dim=1, dtype=torch.float32)
    return found / num_relevant.clamp(min=1).to(torch.float32)


def precision_at_k(hits: Tensor, num_relevant: Tensor, *, k: int | None = None) -> Tensor:
    r"""Per-user precision: the share of the top :math:`k` that is relevant.

    .. math::
        \mathrm{Precision@}k(u) = \frac{1}{k} \sum_{j=1}^{k} \mathrm{hit}_{u,j}

    The denominator is always :math:`k`, also when the user has fewer than :math:`k` relevant
    items (as in :class:`torchmetrics.retrieval.RetrievalPrecision` with ``adaptive_k=False``).

    Args:
        hits (Tensor): ``(B, k)`` bool hit matrix from :func:`topk_hits`.
        num_relevant (Tensor): ``(B,)`` number of relevant items per user; only used to zero
            users without any.
        k (int, optional): the denominator, when ``hits`` has fewer columns than the nominal
            cut-off (a catalogue smaller than ``k``). (default: ``hits.shape[1]``)

    Returns:
        Tensor: ``(B,)`` float32 values in :math:`[0, 1]`; ``0`` where ``num_relevant == 0``.

    Example:
        >>> import torch
        >>> hits = torch.tensor([[True, False, True, False]])
        >>> precision_at_k(hits, torch.tensor([3]))
        tensor([0.5000])
    """
    _check_hits(hits, num_relevant)
    if k is None:
        k = hits.shape[1]
    _check_k(k)
    found = hits.sum(dim=1, dtype=torch.float32)
    # users with no relevant item have no hits either, so they already come out as 0:
    return found / k


def hit_rate_at_k(hits: Tensor, num_relevant: Tensor) -> Tensor:
    r"""Per-user hit rate: whether at least one relevant item is in the top :math:`k`.

    .. math::
        \mathrm{HR@}k(u) = \mathbb{1}\!\left[\sum_{j=1}^{k} \mathrm{hit}_{u,j} > 0\right]

    Args:
        hits (Tensor): ``(B, k)`` bool hit matrix from :func:`topk_hits`.
        num_relevant (Tensor): ``(B,)`` number of relevant items per user (shape check only).

    Returns:
        Tensor: ``(B,)`` float32 values in :math:`\{0, 1\}`.

    Example:
        >>> import torch
        >>> hits = torch.tensor([[False, True], [False, False]])
        >>> hit_rate_at_k(hits, torch.tensor([1, 2]))
        tensor([1., 0.])
    """
    _check_hits(hits, num_relevant)
    return hits.any(dim=1).to(torch.float32)


def ndcg_at_k(hits: Tensor, num_relevant: Tensor) -> Tensor:
    r"""Per-user normalised discounted cumulative gain with binary relevance.

    .. math::
        \mathrm{DCG@}k(u) = \sum_{j=1}^{k} \frac{\mathrm{hit}_{u,j}}{\log_2(j + 1)},
        \qquad
        \mathrm{IDCG@}k(u) = \sum_{j=1}^{\min(k,\, |\mathcal{R}_u|)} \frac{1}{\log_2(j + 1)},
        \qquad
        \mathrm{NDCG@}k(u) = \frac{\mathrm{DCG@}k(u)}{\mathrm{IDCG@}k(u)}

    with 1-based ranks :math:`j`. The ideal ranking puts all relevant items first, so a user
    with more than :math:`k` relevant items reaches 1 when the whole top :math:`k` is relevant.

    Args:
        hits (Tensor): ``(B, k)`` bool hit matrix from :func:`topk_hits`.
        num_relevant (Tensor): ``(B,)`` number of relevant items per user.

    Returns:
        Tensor: ``(B,)`` float32 values in :math:`[0, 1]`; ``0`` where ``num_relevant == 0``.

    Example:
        >>> import torch
        >>> hits = torch.tensor([[True, True, False], [False, True, False]])
        >>> ndcg_at_k(hits, torch.tensor([2, 1]))
        tensor([1.0000, 0.6309])
    """
    _check_hits(hits, num_relevant)
    k = hits.shape[1]
    if k == 0:
        return torch.zeros(hits.shape[0], dtype=torch.float32, device=hits.device)
    discounts = _rank_discounts(k, hits.device)
    dcg = hits.to(torch.float32) @ discounts
    # ideal_dcg[m] = DCG of m relevant items at the top, for m = 0..k:
    ideal_dcg = torch.cat([discounts.new_zeros(1), discounts.cumsum(0)])
    idcg = ideal_dcg[num_relevant.clamp(min=0, max=k).long()]
    return dcg / idcg.clamp(min=torch.finfo(torch.float32).tiny)


def mrr_at_k(hits: Tensor, num_relevant: Tensor) -> Tensor:
    r"""Per-user reciprocal rank of the first relevant item within the top :math:`k`.

    .. math::
        \mathrm{MRR@}k(u) = \max_{j \le k} \frac{\mathrm{hit}_{u,j}}{j}

    with 1-based ranks :math:`j`; ``0`` when nothing relevant is in the top :math:`k`.

    Args:
        hits (Tensor): ``(B, k)`` bool hit matrix from :func:`topk_hits`.
        num_relevant (Tensor): ``(B,)`` number of relevant items per user (shape check only).

    Returns:
        Tensor: ``(B,)`` float32 values in :math:`[0, 1]`.

    Example:
        >>> import torch
        >>> hits = torch.tensor([[False, False, True, True], [False, False, False, False]])
        >>> mrr_at_k(hits, torch.tensor([2, 1]))
        tensor([0.3333, 0.0000])
    """
    _check_hits(hits, num_relevant)
    k = hits.shape[1]
    if k == 0:
        return torch.zeros(hits.shape[0], dtype=torch.float32, device=hits.device)
    inv_rank = 1.0 / torch.arange(1, k + 1, device=hits.device, dtype=torch.float32)
    # reciprocal ranks decrease with the position, so the largest one belongs to the first hit:
    return (hits.to(torch.float32) * inv_rank).amax(dim=1)
