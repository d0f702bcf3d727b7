"""The public base class of darec's top-k ranking metrics, and their shared input checks."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric

from darec.metrics.functional import _check_k

__all__ = ["TopKMetric"]


class TopKMetric(Metric):
    r"""Base class of the top-:math:`k` metrics: the mean over users of a per-user value of the top :math:`k`.

    A subclass sets :attr:`short_name` (its log name is ``"<short_name>@<k>"``) and implements
    :meth:`per_user`, which maps ``hits`` (``(B, k)`` bool: is the item ranked ``j``-th relevant)
    and ``num_relevant`` (``(B,)``: how many relevant items each user has) to ``(B,)`` float
    values. Users without relevant items are skipped (their value must be ``0``). The state is two
    sums, so the result does not depend on how users are split into batches, and under DDP
    torchmetrics adds the states of all processes before :meth:`compute`. Instances plug into
    :class:`~darec.metrics.RankingMetrics` and :func:`~darec.metrics.ranking_metrics` like the
    built-in ones.

    Example:
        An F1 score at :math:`k`, the harmonic mean of precision and recall:

        >>> import torch
        >>> from darec.metrics import RecallAtK, TopKMetric, rank_items, ranking_metrics
        >>> class F1AtK(TopKMetric):
        ...     short_name = "f1"
        ...     def per_user(self, hits, num_relevant):
        ...         found = hits.sum(1).float()
        ...         return 2 * found / (self.k + num_relevant).clamp(min=1)
        >>> scores = torch.tensor([[0.9, 0.1, 0.8, 0.3], [0.2, 0.7, 0.4, 0.6]])
        >>> target = torch.tensor([[False, False, True, False], [True, True, False, False]])
        >>> metrics = ranking_metrics(ks=(2,), names=("recall", F1AtK), prefix="val/")
        >>> metrics.update(rank_items(scores, k=metrics.max_k), target)
        >>> {name: round(value.item(), 4) for name, value in metrics.compute().items()}
        {'val/f1@2': 0.5833, 'val/recall@2': 0.75}
    """

    is_differentiable: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True
    full_state_update: ClassVar[bool] = False
    plot_lower_bound: ClassVar[float] = 0.0
    plot_upper_bound: ClassVar[float] = 1.0

    #: The metric's name without the cut-off, e.g. ``"recall"``.
    short_name: ClassVar[str] = ""

    total: Tensor
    count: Tensor

    def __init__(self, k: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.k = _check_k(k)
        # float64 so that long evaluations (many batches, many users) do not drift:
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    @property
    def name(self) -> str:
        """The metric's log name, e.g. ``"recall@20"``."""
        return f"{self.short_name}@{self.k}"

    def extra_repr(self) -> str:
        return f"k={self.k}"

    def update(self, preds: Tensor, target: Tensor, num_relevant: Tensor | None = None) -> None:
        """Adds a batch of users.

        Args:
            preds (Tensor): ``(B, k')`` integer item indices sorted by descending score, with
                ``k' >= k`` (only the first ``k`` columns are used), e.g. from
                :func:`~darec.metrics.rank_items`. ``k' < k`` is accepted only when ``k'`` is
                the whole catalogue (``k' == I``).
            target (Tensor): ``(B, I)`` bool matrix, ``True`` for each user's relevant items.
            num_relevant (Tensor, optional): ``(B,)`` precomputed ``target.sum(1)``, so that
                several metrics fed the same batch count it once (:class:`RankingMetrics` does
                this). (default: :obj:`None`)

        Raises:
            ValueError: if ``preds`` is not a 2-D integer tensor, ``target`` is not a 2-D bool
                tensor, their batch sizes differ, or ``preds`` has fewer than ``k`` columns.
        """
        hits, num_relevant = _prepare(preds, target, self.k, num_relevant)
        values = self.per_user(hits, num_relevant)
        # users with no relevant item contribute 0 to `values`; they are left out of `count`:
        self.total += values.sum(dtype=torch.float64)
        self.count += (num_relevant > 0).sum()

    def per_user(self, hits: Tensor, num_relevant: Tensor) -> Tensor:
        """``(B, k)`` bool hits and ``(B,)`` relevant counts -> ``(B,)`` per-user values (``0`` for users without relevant items)."""
        raise NotImplementedError(f"{type(self).__name__} must implement per_user(hits, num_relevant)")

    def compute(self) -> Tensor:
        """Mean per-user value over users with at least one relevant item (``0`` if none)."""
        mean = self.total / self.count.clamp(min=1)
        return mean.to(torch.get_default_dtype())


def _check_inputs(preds: Tensor, target: Tensor, k: int) -> None:
    """Shape and dtype checks for ``update`` (no tensor values are read)."""
    if preds.dim() != 2:
        raise ValueError(f"`preds` must be a 2-D (B, k) tensor of item indices, got shape {tuple(preds.shape)}")
    if preds.is_floating_point() or preds.is_complex() or preds.dtype == torch.bool:
        raise ValueError(
            f"`preds` must hold integer item indices (e.g. from `rank_items`), got dtype {preds.dtype}; "
            "pass top-k indices, not scores"
        )
    if target.dim() != 2:
        raise ValueError(f"`target` must be a 2-D (B, I) tensor, got shape {tuple(target.shape)}")
    if target.dtype != torch.bool:
        raise ValueError(f"`target` must be a bool tensor, got dtype {target.dtype} (use `target.bool()`)")
    if preds.shape[0] != target.shape[0]:
        raise ValueError(
            f"`preds` and `target` must have the same batch size, got {preds.shape[0]} and {target.shape[0]}"
        )
    if preds.shape[1] < k and preds.shape[1] < target.shape[1]:
        raise ValueError(
            f"`preds` has {preds.shape[1]} columns but k={k}: rank at least k items per user "
            "(e.g. `rank_items(scores, k=max_k)`)"
        )


def _prepare(preds: Tensor, target: Tensor, k: int, num_relevant: Tensor | None) -> tuple[Tensor, Tensor]:
    """Validates the inputs and returns ``(hits (B, k), num_relevant (B,))``."""
    _check_inputs(preds, target, k)
    if num_relevant is None:
        num_relevant = torch.count_nonzero(target, dim=1)
    elif num_relevant.shape != (target.shape[0],):
        raise ValueError(
            f"`num_relevant` must have shape ({target.shape[0]},), got {tuple(num_relevant.shape)}"
        )
    hits = target.gather(1, preds[:, :k].long())
    return hits, num_relevant

