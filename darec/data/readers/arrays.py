"""In-memory sources: parallel arrays and data frames."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from darec.data.interactions import InteractionLog
from darec.data.readers._common import MissingColumnError, as_id_array, as_numeric

__all__ = ["from_arrays", "from_dataframe"]


def from_arrays(
    users: Sequence[Any] | np.ndarray,
    items: Sequence[Any] | np.ndarray,
    ratings: Sequence[float] | np.ndarray | None = None,
    timestamps: Sequence[float] | np.ndarray | None = None,
    *,
    source: str = "arrays",
    item_info: Mapping[str, Mapping[str, Any]] | None = None,
    user_info: Mapping[str, Mapping[str, Any]] | None = None,
) -> InteractionLog:
    """Builds an interaction log from parallel arrays.

    Ids of any type are converted to strings (``1`` -> ``"1"``); the split protocols later number
    them in numeric order when all of them are integers.

    Args:
        users: ``(E,)`` raw user ids.
        items: ``(E,)`` raw item ids.
        ratings: ``(E,)`` explicit ratings, if any.
        timestamps: ``(E,)`` interaction times (any numeric unit), if any.
        source: a short description of where the data came from, recorded in the protocol.
        item_info: raw item id -> metadata fields, used to build item text.
        user_info: raw user id -> metadata fields, used to build user text.

    Returns:
        The :class:`~darec.data.interactions.InteractionLog`.

    Raises:
        ValueError: if the arrays are empty, of different lengths, or ratings/timestamps are not
            finite numbers.

    Example:
        >>> log = from_arrays([1, 1, 2], ["a", "b", "a"], ratings=[5, 3, 4])
        >>> log.users.tolist(), log.ratings.tolist()
        (['1', '1', '2'], [5.0, 3.0, 4.0])
    """
    users_arr = as_id_array(users, "users")
    items_arr = as_id_array(items, "items")
    if users_arr.shape != items_arr.shape:
        raise ValueError(
            f"users and items must have the same length, got {len(users_arr)} and {len(items_arr)}"
        )
    if len(users_arr) == 0:
        raise ValueError(f"the interaction log from {source} is empty: no (user, item) pairs were given")
    return InteractionLog(
        users=users_arr,
        items=items_arr,
        ratings=as_numeric(ratings, "ratings"),
        timestamps=as_numeric(timestamps, "timestamps"),
        item_info={str(k): dict(v) for k, v in (item_info or {}).items()},
        user_info={str(k): dict(v) for k, v in (user_info or {}).items()},
        source=source,
    )


def from_dataframe(
    df: Any,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = None,
    timestamp_col: str | None = None,
) -> InteractionLog:
    """Builds an interaction log from the columns of a data frame.

    The frame is duck-typed: anything with ``columns`` and ``df[name]`` returning an array-like
    works (a :class:`pandas.DataFrame`, a :class:`polars.DataFrame`, a dict of arrays). pandas is
    not a dependency of darec.

    Args:
        df: the data frame.
        user_col: column of raw user ids.
        item_col: column of raw item ids.
        rating_col: column of explicit ratings, or ``None`` for implicit data.
        timestamp_col: column of interaction times, or ``None``.

    Returns:
        The :class:`~darec.data.interactions.InteractionLog` (source ``"dataframe"``).

    Raises:
        MissingColumnError: (a :class:`KeyError` and :class:`ValueError`) if a requested column
            is absent; the message lists the available columns.
        ValueError: if the frame is empty or a rating/timestamp column is not numeric.

    Example:
        >>> frame = {"user": [1, 2], "item": [10, 10], "stars": [4.0, 2.5]}
        >>> log = from_dataframe(frame, rating_col="stars")
        >>> log.items.tolist(), log.ratings.tolist()
        (['10', '10'], [4.0, 2.5])
        >>> from_dataframe(frame, item_col="movie")
        Traceback (most recent call last):
        ...
        darec.data.readers.MissingColumnError: column 'movie' (item_col) is not in the data frame; available columns: ['user', 'item', 'stars']
    """
    columns = [str(c) for c in (df.columns if hasattr(df, "columns") else df.keys())]
    users = _frame_column(df, columns, user_col, "user_col")
    items = _frame_column(df, columns, item_col, "item_col")
    assert users is not None and items is not None
    return from_arrays(
        users,
        items,
        ratings=_frame_column(df, columns, rating_col, "rating_col"),
        timestamps=_frame_column(df, columns, timestamp_col, "timestamp_col"),
        source="dataframe",
    )


def _frame_column(df: Any, columns: list[str], name: str | None, what: str) -> np.ndarray | None:
    """Column ``name`` of ``df`` as an array (``None`` for no column); ``what`` names the argument."""
    if name is None:
        return None
    if str(name) not in columns:
        raise MissingColumnError(f"column {name!r} ({what}) is not in the data frame; available columns: {columns}")
    values = df[name]
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    return np.asarray(values)
