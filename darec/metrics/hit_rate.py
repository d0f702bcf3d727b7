"""Hit rate@k over a full item ranking, as a :class:`torchmetrics.Metric`."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from darec.metrics.base import TopKMetric
from darec.metrics.functional import hit_rate_at_k

__all__ = ["HitRateAtK"]


class HitRateAtK(TopKMetric):
    r"""Hit rate at :math:`k`: the share of users with at least one relevant item in their top :math:`k`.

    .. math::
        \mathrm{HR@}k = \frac{1}{|\mathcal{U}^+|} \sum_{u \in \mathcal{U}^+}
            \mathbb{1}\!\left[\mathrm{top}_k(u) \cap \mathcal{R}_u \neq \emptyset\right]

    where :math:`\mathcal{R}_u` is the set of relevant (held-out) items of user :math:`u`,
    :math:`\mathrm{top}_k(u)` is the set of its first :math:`k` recommendations, and
    :math:`\mathcal{U}^+` holds the users with at least one relevant item: users without any are
    skipped (torchmetrics' ``empty_target_action="skip"``). With one held-out item per user
    (leave-one-out) this equals recall at :math:`k`.

    The state is a float64 sum of per-user values and a user count, both reduced with ``sum``,
    so the value does not depend on the evaluation batch size and is synchronised under DDP.
    Logged as ``"hit_rate@<k>"`` (see :attr:`name`).

    Args:
        k (int): the cut-off, a positive integer.
        **kwargs: passed to :class:`torchmetrics.Metric` (e.g. ``sync_on_compute``).

    Raises:
        ValueError: if ``k`` is not a positive integer.

    Example:
        >>> import torch
        >>> from darec.metrics import HitRateAtK, rank_items
        >>> scores = torch.tensor([[0.9, 0.1, 0.8, 0.3, 0.6],
        ...                        [0.2, 0.7, 0.4, 0.6, 0.1],
        ...                        [0.5, 0.4, 0.3, 0.2, 0.1]])
        >>> seen = torch.tensor([[True, False, False, False, False],
        ...                      [False, False, False, False, False],
        ...                      [False, False, False, False, False]])
        >>> target = torch.tensor([[False, False, False, True, True],
        ...                        [False, True, True, True, False],
        ...                        [False, False, False, False, False]])  # user 3 is skipped
        >>> metric = HitRateAtK(k=2)
        >>> metric.update(rank_items(scores, k=2, exclude=seen), target)
        >>> metric.compute()
        tensor(1.)
        >>> metric.name
        'hit_rate@2'
    """

    short_name: ClassVar[str] = "hit_rate"

    def __init__(self, k: int, **kwargs: Any) -> None:
        super().__init__(k, **kwargs)

    def per_user(self, hits: Tensor, num_relevant: Tensor) -> Tensor:
        return hit_rate_at_k(hits, num_relevant)
