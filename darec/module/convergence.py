"""Telling a user when training ended while validation was still improving."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["still_improving"]


def still_improving(
    history: Sequence[tuple[int, float]], tail_fraction: float = 0.2, min_gain: float = 0.01, min_checks: int = 5
) -> str | None:
    r"""Says whether a validation curve was still rising when training ended, and by how much.

    The last ``tail_fraction`` of the epochs run (at least two validations) is the tail. The curve
    counts as still rising when the best value inside the tail beats the best value before it by
    more than ``min_gain`` relative to the latter:

    .. math:: \frac{\max_{\text{tail}} v - \max_{\text{before}} v}{\max_{\text{before}} v} > \text{min\_gain}.

    A run whose last fifth still added more than 1% has most likely not converged: more epochs,
    a later early stop or a faster schedule would give a better model.

    Args:
        history (Sequence[tuple[int, float]]): ``(epoch, value)`` of each validation, in order,
            for a metric where higher is better.
        tail_fraction (float): the share of the epochs run that forms the tail. (default: :obj:`0.2`)
        min_gain (float): the relative gain in the tail above which the run counts as unfinished.
            (default: :obj:`0.01`)
        min_checks (int): fewer validations than this never warn. (default: :obj:`5`)

    Returns:
        A one-line description of the gain when the curve was still rising, else :obj:`None`.

    Example:
        >>> rising = [(e, 0.2 + 0.001 * e) for e in range(9, 100, 10)]
        >>> still_improving(rising)
        'rose by 7.2% (0.2790 -> 0.2990) over its last 20 epochs (epochs 79-99)'
        >>> flat = [(e, 0.3) for e in range(9, 100, 10)]
        >>> still_improving(flat) is None
        True
    """
    if len(history) < min_checks:
        return None
    last_epoch = history[-1][0]
    span = last_epoch - history[0][0]
    start = last_epoch - tail_fraction * (span + 1)
    split = min((k for k, (epoch, _) in enumerate(history) if epoch > start), default=len(history) - 1)
    split = min(split, len(history) - 2)  # the tail holds at least two validations
    before = max(value for _, value in history[:split])
    tail = max(value for _, value in history[split:])
    if before <= 0 or (tail - before) / before <= min_gain:
        return None
    return (
        f"rose by {100 * (tail - before) / before:.1f}% ({before:.4f} -> {tail:.4f}) over its last "
        f"{last_epoch - history[split - 1][0]} epochs (epochs {history[split - 1][0]}-{last_epoch})"
    )
