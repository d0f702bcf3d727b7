"""Cheap argument checks shared by the functional losses, the loss modules and the heads.

Only shapes and scalar arguments are checked here: nothing in this module reads tensor values,
so the checks cost no device synchronisation on the training hot path.
"""

from __future__ import annotations

import math

from torch import Tensor


def check_matrix(x: Tensor, name: str) -> None:
    """Raises ``ValueError`` unless ``x`` is a 2-D ``(N, d)`` tensor."""
    if x.dim() != 2:
        raise ValueError(f"`{name}` must be a 2-D tensor of shape (N, d), got shape {tuple(x.shape)}")


def check_batched_matrix(x: Tensor, name: str) -> None:
    """Raises ``ValueError`` unless ``x`` has shape ``(*, N, d)``: at least two dimensions."""
    if x.dim() < 2:
        raise ValueError(
            f"`{name}` must be a tensor of shape (N, d) or (*, N, d) (a batch of such), got shape {tuple(x.shape)}"
        )


def check_same_rows(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    """Raises ``ValueError`` unless ``(*, N, d_a)`` ``a`` and ``(*, N, d_b)`` ``b`` agree in all but the last dimension."""
    if a.shape[:-1] != b.shape[:-1]:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same number of rows (and batch dimensions), "
            f"got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_same_shape(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    """Raises ``ValueError`` unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_nonempty(x: Tensor, name: str) -> None:
    """Raises ``ValueError`` if the ``(*, N, d)`` tensor ``x`` has no rows (``N == 0``)."""
    if x.shape[-2] == 0:
        raise ValueError(f"`{name}` must have at least one row, got shape {tuple(x.shape)}")


def check_positive(value: float, name: str) -> None:
    """Raises ``ValueError`` unless the scalar ``value`` is strictly positive."""
    if not value > 0:
        raise ValueError(f"`{name}` must be > 0, got {value!r}")


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
