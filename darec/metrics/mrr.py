"""MRR@k over a full item ranking, as a :class:`torchmetrics.Metric`."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from darec.metrics.base import TopKMetric
from darec.metrics.functional import mrr_at_k

__all__ = ["MRRAtK"]


class MRRAtK(TopKMetric):
    r"""Mean reciprocal rank at :math:`k`: the inverse rank of each user's first relevant item.

    .. math::
        \mathrm{MRR@}k = \frac{1}{|\mathcal{U}^+|} \sum_{u \in \mathcal{U}^+}
            \max_{j \le k} \frac{\mathrm{hit}_{u,j}}{j}

    where :math:`\mathcal{R}_u` is the set of relevant (held-out) items of user :math:`u`,
    :math:`\mathrm{hit}_{u,j}` says whether the item at rank :math:`j` is relevant, and
    :math:`\mathcal{U}^+` holds the users with at least one relevant item: users without any are
    skipped (torchmetrics' ``empty_target_action="skip"``). A user whose first relevant item
    ranks below :math:`k` counts as 0.

    The state is a float64 sum of per-user values and a user count, both reduced with ``sum``,
    so the value does not depend on the evaluation batch size and is synchronised under DDP.
    Logged as ``"mrr@<k>"`` (see :attr:`name`).

    Args:
        k (int): the cut-off, a positive integer.
        **kwargs: passed to :class:`torchmetrics.Metric` (e.g. ``sync_on_compute``).

    Raises:
        ValueError: if ``k`` is not a positive integer.

    Example:
        >>> import torch
        >>> from darec.metrics import MRRAtK, rank_items
        >>> scores = torch.tensor([[0.9, 0.1, 0.8, 0.3, 0.6],
        ...                        [0.2, 0.7, 0.4, 0.6, 0.1],
        ...                        [0.5, 0.4, 0.3, 0.2, 0.1]])
        >>> seen = torch.tensor([[True, False, False, False, False],
        ...                      [False, False, False, False, False],
        ...                      [False, False, False, False, False]])
        >>> target = torch.tensor([[False, False, False, True, True],
        ...                        [False, True, True, True, False],
        ...                        [False, False, False, False, False]])  # user 3 is skipped
        >>> metric = MRRAtK(k=2)
        >>> metric.update(rank_items(scores, k=2, exclude=seen), target)
        >>> metric.compute()
        tensor(0.7500)
        >>> metric.name
        'mrr@2'
    """

    short_name: ClassVar[str] = "mrr"

    def __init__(self, k: int, **kwargs: Any) -> None:
        super().__init__(k, **kwargs)

    def per_user(self, hits: Tensor, num_relevant: Tensor) -> Tensor:
        return mrr_at_k(hits, num_relevant)
