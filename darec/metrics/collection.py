"""A :class:`torchmetrics.MetricCollection` of top-k metrics that share one ranking."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import MetricCollection

from darec.metrics.base import TopKMetric, _check_inputs
from darec.metrics.functional import _check_k
from darec.metrics.hit_rate import HitRateAtK
from darec.metrics.mrr import MRRAtK
from darec.metrics.ndcg import NDCGAtK
from darec.metrics.precision import PrecisionAtK
from darec.metrics.recall import RecallAtK

__all__ = ["RankingMetrics", "ranking_metrics", "METRICS"]

#: Short name -> metric class, as accepted by :func:`ranking_metrics`.
METRICS: dict[str, type[TopKMetric]] = {
    cls.short_name: cls for cls in (RecallAtK, NDCGAtK, HitRateAtK, PrecisionAtK, MRRAtK)
}


class RankingMetrics(MetricCollection):
    """A :class:`~torchmetrics.MetricCollection` of top-:math:`k` metrics keyed by their names.

    Differences from a plain collection:

    - a sequence of metrics is keyed by :attr:`~darec.metrics.TopKMetric.name` (``"recall@20"``), so several
      cut-offs of one metric can coexist;
    - :attr:`max_k` tells how many items to rank once for all members
      (``rank_items(scores, k=metrics.max_k, exclude=seen)``);
    - :meth:`update` counts the relevant items of the batch once and shares the count;
    - torchmetrics' *compute groups* are always off. They merge metrics whose states are equal
      after the first batch, which for these metrics can happen by chance (e.g. a first batch
      without any hit) and would then silently report one metric's value for another.

    :meth:`compute` returns a dict keyed ``prefix + name + postfix``, ready for
    ``self.log_dict(metrics.compute())`` in a LightningModule.

    Args:
        metrics (Sequence or Mapping): top-:math:`k` metrics, or a mapping of key -> metric.
        prefix (str, optional): prepended to every key, e.g. ``"val/"``. (default: :obj:`None`)
        postfix (str, optional): appended to every key. (default: :obj:`None`)

    Raises:
        ValueError: if the collection is empty, a member is not a top-:math:`k` metric, or two
            members share a name.

    Example:
        >>> import torch
        >>> from darec.metrics import NDCGAtK, RankingMetrics, RecallAtK, rank_items
        >>> metrics = RankingMetrics([RecallAtK(1), RecallAtK(3), NDCGAtK(3)], prefix="val/")
        >>> metrics.max_k
        3
        >>> scores = torch.tensor([[0.9, 0.1, 0.8, 0.3], [0.2, 0.7, 0.4, 0.6]])
        >>> target = torch.tensor([[False, False, True, False], [True, True, False, False]])
        >>> metrics.update(rank_items(scores, k=metrics.max_k), target)
        >>> {name: round(value.item(), 4) for name, value in metrics.compute().items()}
        {'val/ndcg@3': 0.622, 'val/recall@1': 0.25, 'val/recall@3': 0.75}
    """

    def __init__(
        self,
        metrics: Sequence[TopKMetric] | Mapping[str, TopKMetric],
        prefix: str | None = None,
        postfix: str | None = None,
    ) -> None:
        if isinstance(metrics, Mapping):
            named = dict(metrics)
        else:
            metrics = list(metrics)
            named = {getattr(m, "name", repr(m)): m for m in metrics}
            if len(named) != len(metrics):
                names = [getattr(m, "name", m) for m in metrics]
                raise ValueError(f"`metrics` must have distinct names, got {names}")
        if not named:
            raise ValueError("`metrics` must hold at least one metric")
        for key, metric in named.items():
            if not isinstance(metric, TopKMetric):
                raise ValueError(
                    f"`metrics` must hold top-k metrics such as RecallAtK, got {type(metric).__name__} for {key!r}"
                )
        super().__init__(named, prefix=prefix, postfix=postfix, compute_groups=False)

    @property
    def max_k(self) -> int:
        """The largest cut-off of the members: how many items to rank per user."""
        return max(metric.k for metric in self.values(copy_state=False))

    def update(
        self, preds: Tensor, target: Tensor, *args: Any, num_relevant: Tensor | None = None, **kwargs: Any
    ) -> None:
        """Updates every member with the same ranking.

        Args:
            preds (Tensor): ``(B, k')`` integer item indices sorted by descending score, with
                ``k' >= max_k``.
            target (Tensor): ``(B, I)`` bool matrix of relevant items.
            num_relevant (Tensor, optional): ``(B,)`` long ``target.sum(1)`` when the caller
                knows it (e.g. from the sparse held-out pairs), which saves a pass over the
                ``(B, I)`` matrix. (default: :obj:`None`, counted here)

        Raises:
            ValueError: as :meth:`RecallAtK.update <darec.metrics.RecallAtK.update>`.
        """
        if args or kwargs:
            raise TypeError("RankingMetrics.update takes exactly `preds` and `target` (and the keyword `num_relevant`)")
        # check once with the largest k so the error names it, then count relevant items once:
        _check_inputs(preds, target, self.max_k)
        if num_relevant is None:
            num_relevant = torch.count_nonzero(target, dim=1)
        elif num_relevant.shape != (target.shape[0],):
            raise ValueError(f"`num_relevant` must have shape ({target.shape[0]},), got {tuple(num_relevant.shape)}")
        super().update(preds, target, num_relevant=num_relevant)


def ranking_metrics(
    ks: Iterable[int] = (5, 10, 20),
    names: Iterable[str | type[TopKMetric]] = ("recall", "ndcg", "hit_rate", "precision", "mrr"),
    prefix: str | None = None,
    postfix: str | None = None,
) -> RankingMetrics:
    """Builds a :class:`RankingMetrics` with every metric in ``names`` at every cut-off in ``ks``.

    Args:
        ks (Iterable[int]): cut-offs, positive integers (duplicates are dropped).
            (default: ``(5, 10, 20)``)
        names (Iterable[str or type]): metric short names, keys of :data:`METRICS`:
            ``"recall"``, ``"ndcg"``, ``"hit_rate"``, ``"precision"``, ``"mrr"``, or
            :class:`~darec.metrics.TopKMetric` subclasses of your own (built as ``cls(k)``).
            (default: all five)
        prefix (str, optional): prepended to every key of :meth:`~RankingMetrics.compute`.
            (default: :obj:`None`)
        postfix (str, optional): appended to every key. (default: :obj:`None`)

    Returns:
        RankingMetrics: keyed ``"<name>@<k>"``, e.g. ``"recall@20"``.

    Raises:
        ValueError: if ``ks`` or ``names`` is empty, a ``k`` is not a positive integer, or a name
            is unknown.

    Example:
        >>> metrics = ranking_metrics(ks=(10, 20), names=("recall", "ndcg"))
        >>> sorted(metrics.keys()), metrics.max_k
        (['ndcg@10', 'ndcg@20', 'recall@10', 'recall@20'], 20)
    """
    ks = list(dict.fromkeys(_check_k(k) for k in ks))
    if isinstance(names, str):
        names = (names,)
    names = list(dict.fromkeys(names))
    if not ks:
        raise ValueError("`ks` must hold at least one cut-off")
    if not names:
        raise ValueError("`names` must hold at least one metric name")
    unknown = [name for name in names if not _is_metric_class(name) and name not in METRICS]
    if unknown:
        raise ValueError(
            f"unknown metric names {unknown} in `names`; choose from {sorted(METRICS)} or pass TopKMetric subclasses"
        )
    classes = [name if _is_metric_class(name) else METRICS[name] for name in names]
    return RankingMetrics([cls(k) for cls in classes for k in ks], prefix=prefix, postfix=postfix)


def _is_metric_class(name: Any) -> bool:
    return isinstance(name, type) and issubclass(name, TopKMetric)
