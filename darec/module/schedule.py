"""The learning-rate schedule of :class:`~darec.DaRecModule`: linear warm-up, then constant or cosine decay."""

from __future__ import annotations

import math

__all__ = ["LR_SCHEDULES", "EpochSchedule"]

#: The schedules :class:`~darec.DaRecModule` accepts as ``lr_schedule``.
LR_SCHEDULES = ("constant", "cosine")


class EpochSchedule:
    r"""Multiplier of the base learning rate at each epoch (a ``LambdaLR`` factor, stepped once per epoch).

    For epoch :math:`e` (0-based), warm-up length :math:`W`, horizon :math:`T` and floor :math:`m`:

    .. math::
        f(e) = \begin{cases}
            \frac{e + 1}{W} & e < W \\
            1 & \text{constant} \\
            m + (1 - m)\,\frac{1 + \cos(\pi\, t)}{2},\;
            t = \min\!\left(1, \frac{e - W}{\max(1, T - 1 - W)}\right) & \text{cosine}
        \end{cases}

    so a cosine schedule reaches :math:`m` at the last epoch :math:`T - 1`.

    Args:
        schedule (str): ``"constant"`` or ``"cosine"``.
        warmup_epochs (int): epochs of linear warm-up. (default: :obj:`0`)
        total_epochs (int, optional): horizon :math:`T` of the cosine decay (the trainer's
            ``max_epochs``); required for ``"cosine"``.
        min_ratio (float): the floor :math:`m` of the cosine decay. (default: :obj:`0.01`)

    Example:
        >>> f = EpochSchedule("cosine", warmup_epochs=2, total_epochs=6, min_ratio=0.0)
        >>> [round(f(e), 3) for e in range(6)]
        [0.5, 1.0, 1.0, 0.75, 0.25, 0.0]
    """

    def __init__(self, schedule: str, warmup_epochs: int = 0, total_epochs: int | None = None, min_ratio: float = 0.01) -> None:
        if schedule not in LR_SCHEDULES:
            raise ValueError(f"`lr_schedule` must be one of {LR_SCHEDULES}, got {schedule!r}")
        if warmup_epochs < 0:
            raise ValueError(f"`lr_warmup_epochs` must be non-negative, got {warmup_epochs}")
        if not 0.0 <= min_ratio <= 1.0:
            raise ValueError(f"`lr_min_ratio` must be in [0, 1], got {min_ratio}")
        if schedule == "cosine" and (total_epochs is None or total_epochs <= 0):
            raise ValueError(
                "`lr_schedule='cosine'` decays over the trainer's `max_epochs`, which must then be a positive "
                f"number (got {total_epochs}); set `trainer.max_epochs` or use `lr_schedule='constant'`"
            )
        self.schedule, self.warmup_epochs, self.total_epochs, self.min_ratio = schedule, warmup_epochs, total_epochs, min_ratio

    def __call__(self, epoch: int) -> float:
        if epoch < self.warmup_epochs:
            return (epoch + 1) / self.warmup_epochs
        if self.schedule == "constant":
            return 1.0
        span = max(1, self.total_epochs - 1 - self.warmup_epochs)
        t = min(1.0, (epoch - self.warmup_epochs) / span)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))

    def __repr__(self) -> str:
        return (
            f"EpochSchedule({self.schedule!r}, warmup_epochs={self.warmup_epochs}, "
            f"total_epochs={self.total_epochs}, min_ratio={self.min_ratio})"
        )
