"""Constructor-argument checks shared by the loss modules."""

from __future__ import annotations

import math


def positive_float(value: float, name: str) -> float:
    """Returns ``value`` as a float, or raises ``ValueError`` naming ``name`` unless finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{name}` must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}")
    return float(value)


def positive_int(value: int, name: str, minimum: int = 1) -> int:
    """Returns ``value``, or raises ``ValueError`` naming ``name`` unless an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"`{name}` must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value!r}")
    return value
