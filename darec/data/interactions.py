"""Containers for implicit-feedback interactions: the raw log and the split."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["InteractionLog", "Interactions"]

SPLITS = ("train", "valid", "test")


def _as_pairs(pairs: Any, name: str) -> np.ndarray:
    """Converts ``pairs`` to an ``(E, 2)`` int64 array, checking its shape."""
    if isinstance(pairs, Tensor):
        pairs = pairs.detach().cpu().numpy()
    arr = np.asarray(pairs)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"`{name}` must have shape (num_interactions, 2) as (user, item) rows, got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"`{name}` must hold integer user and item ids, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


@dataclass
class InteractionLog:
    """A raw interaction log, as read from disk, before filtering and splitting.

    Ids are kept as the strings found in the source, so that every output of darec can speak the
    caller's ids. Readers in :mod:`darec.data` return this type; the split protocols in
    :mod:`darec.data.split` turn it into :class:`Interactions`.

    Args:
        users (numpy.ndarray): ``(E,)`` raw user ids (converted to ``str``).
        items (numpy.ndarray): ``(E,)`` raw item ids (converted to ``str``).
        ratings (numpy.ndarray, optional): ``(E,)`` explicit ratings, if the source has them.
        timestamps (numpy.ndarray, optional): ``(E,)`` interaction times, if the source has them.
        item_info (dict, optional): raw item id -> metadata fields (e.g. ``title``, ``year``,
            ``genres``), used to build item text.
        user_info (dict, optional): raw user id -> metadata fields (e.g. ``age``, ``gender``,
            ``occupation``), used to build user text.
        source (str): where the log came from, recorded in the protocol.

    Example:
        >>> log = InteractionLog(users=["u1", "u1", "u2"], items=["a", "b", "a"])
        >>> len(log), log.has_ratings
        (3, False)
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    item_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    user_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "memory"

    def __post_init__(self) -> None:
        self.users = np.asarray(self.users).astype(str)
        self.items = np.asarray(self.items).astype(str)
        if self.users.ndim != 1 or self.users.shape != self.items.shape:
            raise ValueError(
                f"users and items must be 1-D and of equal length, got {self.users.shape} and {self.items.shape}"
            )
        n = len(self.users)
        for name in ("ratings", "timestamps"):
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value, dtype=np.float64)
            if value.shape != (n,):
                raise ValueError(f"`{name}` must have shape ({n},) to match the interactions, got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"`{name}` contains NaN or infinite values")
            setattr(self, name, value)
        if n == 0:
            raise ValueError(f"the interaction log from {self.source} is empty")

    def __len__(self) -> int:
        return len(self.users)

    @property
    def has_ratings(self) -> bool:
        return self.ratings is not None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(interactions={len(self)}, users={len(np.unique(self.users))}, "
            f"items={len(np.unique(self.items))}, ratings={self.has_ratings}, source={self.source!r})"
        )


@dataclass
class Interactions:
    """Implicit-feedback interactions with contiguous ids, split into train/valid/test.

    Users are numbered ``0 .. num_users - 1`` and items ``0 .. num_items - 1``. Every split is an
    ``(E, 2)`` int64 array of ``(user, item)`` rows. ``user_ids[u]`` and ``item_ids[i]`` give back the
    raw ids, so that predictions can be written in the caller's ids.

    Construction validates the data: ids out of range, an empty training split, users without a
    training interaction, a ``(user, item)`` pair in more than one split and a text list whose
    length does not match raise :class:`ValueError`; duplicated pairs inside a split are dropped
    with a warning.

    Args:
        num_users (int): number of users.
        num_items (int): number of items.
        train (array-like): ``(E_train, 2)`` training pairs.
        valid (array-like, optional): ``(E_valid, 2)`` validation pairs.
        test (array-like, optional): ``(E_test, 2)`` test pairs.
        user_ids (sequence, optional): raw id of each user (default: ``"0" .. str(num_users - 1)``).
        item_ids (sequence, optional): raw id of each item.
        user_text (list of str, optional): one text profile per user.
        item_text (list of str, optional): one text profile per item.
        protocol (dict, optional): how the data were filtered and split; logged with results.
        allow_cold_users (bool): accept users without any training interaction.
            (default: :obj:`False`)

    Example:
        >>> data = Interactions(3, 4, train=[[0, 0], [1, 1], [2, 3]], test=[[0, 2]])
        >>> data.num_nodes, data.train.shape
        (7, (3, 2))
        >>> data.edge_index("train")
        tensor([[0, 1, 2],
                [3, 4, 6]])
    """

    num_users: int
    num_items: int
    train: np.ndarray
    valid: np.ndarray | None = None
    test: np.ndarray | None = None
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None
    user_text: list[str] | None = None
    item_text: list[str] | None = None
    protocol: dict[str, Any] = field(default_factory=dict)
    allow_cold_users: bool = False

    def __post_init__(self) -> None:
        self.num_users = int(self.num_users)
        self.num_items = int(self.num_items)
        if self.num_users <= 0 or self.num_items <= 0:
            raise ValueError(f"num_users and num_items must be positive, got {self.num_users} and {self.num_items}")
        for name in SPLITS:
            value = getattr(self, name)
            pairs = _as_pairs(value if value is not None else [], name)
            setattr(self, name, self._check_split(pairs, name))
        if len(self.train) == 0:
            raise ValueError("the training split is empty: there is nothing to learn from")
        if not self.allow_cold_users:
            has_train = np.zeros(self.num_users, dtype=bool)
            has_train[self.train[:, 0]] = True
            if not has_train.all():
                cold = np.flatnonzero(~has_train)
                raise ValueError(
                    f"{len(cold)} user(s) have no training interaction (first ids: {cold[:5].tolist()}); "
                    "drop them before splitting, or pass allow_cold_users=True"
                )
        self.user_ids = self._check_ids(self.user_ids, self.num_users, "user_ids")
        self.item_ids = self._check_ids(self.item_ids, self.num_items, "item_ids")
        self._check_disjoint()
        self.user_text = self._check_text(self.user_text, self.num_users, "user_text", "users")
        self.item_text = self._check_text(self.item_text, self.num_items, "item_text", "items")

    # -- validation ---------------------------------------------------------------------------
    def _check_split(self, pairs: np.ndarray, name: str) -> np.ndarray:
        if len(pairs) == 0:
            return pairs
        bad_u = (pairs[:, 0] < 0) | (pairs[:, 0] >= self.num_users)
        bad_i = (pairs[:, 1] < 0) | (pairs[:, 1] >= self.num_items)
        if bad_u.any():
            raise ValueError(
                f"`{name}` has user ids outside [0, {self.num_users}): e.g. {pairs[bad_u, 0][:5].tolist()}"
            )
        if bad_i.any():
            raise ValueError(
                f"`{name}` has item ids outside [0, {self.num_items}): e.g. {pairs[bad_i, 1][:5].tolist()}"
            )
        unique = np.unique(pairs, axis=0)
        if len(unique) < len(pairs):
            warnings.warn(
                f"`{name}` has {len(pairs) - len(unique)} duplicated (user, item) pair(s); they were dropped",
                UserWarning,
                stacklevel=4,
            )
        return unique

    def _check_disjoint(self) -> None:
        """Refuses a ``(user, item)`` pair that is in more than one split.

        A held-out pair that is also a training pair is masked out of the ranking (training items
        are never recommended), so it can never be hit: recall drops towards 0 without any error.
        """
        codes = {name: self.split(name)[:, 0] * self.num_items + self.split(name)[:, 1] for name in SPLITS}
        problems, repeated = [], []
        for k, first in enumerate(SPLITS):
            for second in SPLITS[k + 1 :]:
                shared = np.intersect1d(codes[first], codes[second])  # splits are unique already
                if not len(shared):
                    continue
                repeated.append(shared)
                examples = ", ".join(
                    f"({self.user_ids[c // self.num_items]}, {self.item_ids[c % self.num_items]})"
                    for c in shared[:3].tolist()
                )
                problems.append(f"{len(shared)} in both `{first}` and `{second}`, e.g. {examples}")
        if problems:
            count = len(np.unique(np.concatenate(repeated)))
            raise ValueError(
                f"{count} (user, item) pair(s) are in more than one split: {'; '.join(problems)} "
                "(raw ids). A pair may be in one split only: held-out pairs that are also training "
                "pairs are masked out of the ranking and can never be hit, so the metrics would be "
                "wrong. Remove the repeated pairs from all but one split."
            )

    @staticmethod
    def _check_ids(ids: Sequence[Any] | None, n: int, name: str) -> np.ndarray:
        if ids is None:
            return np.arange(n).astype(str)
        arr = np.asarray(ids).astype(str)
        if arr.shape != (n,):
            raise ValueError(f"`{name}` must list one raw id per entity ({n}), got shape {arr.shape}")
        if len(np.unique(arr)) != n:
            raise ValueError(f"`{name}` contains repeated raw ids")
        return arr

    @staticmethod
    def _check_text(text: Sequence[str] | None, n: int, name: str, what: str) -> list[str] | None:
        if text is None:
            return None
        text = list(text)
        if len(text) != n:
            raise ValueError(f"`{name}` has {len(text)} entries but there are {n} {what}: one text per entity is needed")
        bad = [k for k, t in enumerate(text) if not isinstance(t, str)]
        if bad:
            raise ValueError(f"`{name}` entries must be strings; entry {bad[0]} is {type(text[bad[0]]).__name__}")
        return text

    # -- views ----------------------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        """Users plus items: the node count of the user-item graph (items follow users)."""
        return self.num_users + self.num_items

    def split(self, name: str) -> np.ndarray:
        """The ``(E, 2)`` pairs of split ``name`` (``"train"``, ``"valid"`` or ``"test"``)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)

    def edge_index(self, name: str = "train") -> Tensor:
        """The ``(2, E)`` user -> item edges of a split in graph node ids (item ``i`` is node ``num_users + i``)."""
        pairs = torch.from_numpy(self.split(name).copy())
        return torch.stack([pairs[:, 0], pairs[:, 1] + self.num_users])

    def csr(self, *names: str) -> tuple[Tensor, Tensor]:
        """Row pointers and item indices of the user x item matrix of the union of ``names``.

        Returns:
            ``(indptr, indices)``: ``(num_users + 1,)`` and ``(nnz,)`` int64 tensors; the items of
            user ``u`` are ``indices[indptr[u]:indptr[u + 1]]``, sorted.
        """
        pairs = np.concatenate([self.split(n) for n in names]) if names else self.train
        pairs = np.unique(pairs, axis=0)
        counts = np.bincount(pairs[:, 0], minlength=self.num_users)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return torch.from_numpy(indptr.astype(np.int64)), torch.from_numpy(pairs[:, 1].copy())

    def stats(self) -> dict[str, Any]:
        """Counts describing the data, logged with results."""
        return {
            "users": self.num_users,
            "items": self.num_items,
            **{name: int(len(self.split(name))) for name in SPLITS},
            "train_density": len(self.train) / (self.num_users * self.num_items),
            "items_without_train_interaction": int(
                self.num_items - len(np.unique(self.train[:, 1]))
            ),
        }

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={len(self.split(n))}" for n in SPLITS)
        return f"{type(self).__name__}(users={self.num_users}, items={self.num_items}, {parts})"
