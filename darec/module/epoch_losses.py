"""The epoch means of the training losses, accumulated without a per-step logging call."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["EpochLosses"]


class EpochLosses:
    """Running, batch-size weighted sums of a training epoch's losses (one in-place add per key, no sync).

    :class:`~darec.DaRecModule` logs their means once per epoch, as Lightning's ``on_epoch=True``
    would (the mean over steps weighted by batch size), without Lightning's per-step, per-key
    logging cost. The sums of an interrupted epoch travel in the checkpoint (:meth:`state`) and
    continue on resume (:meth:`resume_from`, then :meth:`resume` at the first step).

    Example:
        >>> losses = EpochLosses()
        >>> losses.add({"train/loss": torch.tensor(1.0)}, batch_size=3)
        >>> losses.add({"train/loss": torch.tensor(2.0)}, batch_size=1)
        >>> losses.means()
        {'train/loss': tensor(1.2500)}
    """

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count = 0
        self._resumed: dict[str, Any] | None = None

    def add(self, logs: dict[str, Tensor], batch_size: int) -> None:
        """Adds a step's losses, weighted by its ``batch_size``."""
        for key, value in logs.items():
            if key in self.sums:
                self.sums[key].add_(value.detach(), alpha=batch_size)
            else:  # at least float32: a bfloat16 sum (autocast's terms) stops growing after a few hundred steps
                self.sums[key] = _wide(value.detach()) * batch_size
        self.count += batch_size

    def means(self) -> dict[str, Tensor]:
        """The batch-weighted means of the epoch so far (empty before the first step)."""
        if not self.count:
            return {}
        return {key: total / self.count for key, total in self.sums.items()}

    def reset(self) -> None:
        self.sums, self.count = {}, 0

    def state(self, epoch: int) -> dict[str, Any]:
        """What a checkpoint keeps of the running sums of ``epoch``."""
        return {"epoch": epoch, "sums": {key: value.detach().cpu() for key, value in self.sums.items()}, "count": self.count}

    def resume_from(self, state: dict[str, Any]) -> None:
        """Keeps a checkpoint's :meth:`state` until :meth:`resume`."""
        self._resumed = state

    def resume(self, epoch: int, device: torch.device) -> None:
        """Continues the sums kept by :meth:`resume_from` if they belong to ``epoch`` and nothing was
        added yet (a fit resumed within that epoch); forgets them either way."""
        resumed, self._resumed = self._resumed, None
        if resumed is not None and resumed["epoch"] == epoch and not self.count:
            self.sums = {key: _wide(value.to(device)) for key, value in resumed["sums"].items()}
            self.count = resumed["count"]


def _wide(value: Tensor) -> Tensor:
    """``value`` in at least float32 (bfloat16 and float16 are widened; float64 stays)."""
    return value.to(torch.promote_types(value.dtype, torch.float32))
