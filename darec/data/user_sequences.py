"""Time-ordered user histories and their leave-one-out split, for next-item recommendation."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from darec.data.interactions import InteractionLog

__all__ = ["UserSequences"]

log = logging.getLogger(__name__)


@dataclass
class UserSequences:
    """Every user's items in time order, split leave-one-out.

    Items are numbered ``1 .. num_items``; id ``0`` is reserved for padding, so that item ``i`` is
    row ``i`` of a sequential model's item table. ``item_ids[i - 1]`` and ``user_ids[u]`` give back
    the raw ids. The split is leave-one-out: the last item of each sequence is the test target, the
    second-last the validation target, and the rest is the training sequence
    (:meth:`train_sequence`). Validation ranks with the training sequence as input; test ranks
    with the training sequence and the validation item as input.

    Build it from any interaction log with timestamps with :meth:`from_log`.

    Args:
        sequences (list of numpy.ndarray): one ``(n_u,)`` int64 array of items per user, oldest
            first, each with at least 3 items.
        num_items (int): number of items (ids ``1 .. num_items``).
        user_ids (numpy.ndarray, optional): raw id of each user.
        item_ids (numpy.ndarray, optional): raw id of each item, ``item_ids[i - 1]`` for item ``i``.
        item_titles (list of str, optional): the title of each item, ``item_titles[i - 1]``.
        protocol (dict, optional): how the sequences were built; logged with results.

    Raises:
        ValueError: a sequence is shorter than 3, or holds ids outside ``1 .. num_items``.

    Example:
        >>> data = UserSequences([np.array([3, 1, 2, 4]), np.array([2, 3, 1])], num_items=4)
        >>> data.train_sequence(0).tolist(), data.valid_target.tolist(), data.test_target.tolist()
        ([3, 1], [2, 3], [4, 1])
        >>> data.history(0, "test").tolist()  # the input of the test ranking
        [3, 1, 2]
    """

    sequences: list[np.ndarray]
    num_items: int
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None
    item_titles: list[str] | None = None
    protocol: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.num_items = int(self.num_items)
        self.sequences = [np.asarray(s, dtype=np.int64).reshape(-1) for s in self.sequences]
        if not self.sequences:
            raise ValueError("there are no user sequences")
        short = [u for u, s in enumerate(self.sequences) if len(s) < 3]
        if short:
            raise ValueError(
                f"{len(short)} sequence(s) have fewer than 3 items (e.g. users {short[:5]}): leave-one-out "
                "needs a training item, a validation item and a test item"
            )
        lo = min(int(s.min()) for s in self.sequences)
        hi = max(int(s.max()) for s in self.sequences)
        if lo < 1 or hi > self.num_items:
            raise ValueError(f"item ids must be in 1 .. {self.num_items} (0 is padding), got {lo} .. {hi}")
        n = len(self.sequences)
        self.user_ids = np.arange(n).astype(str) if self.user_ids is None else np.asarray(self.user_ids).astype(str)
        self.item_ids = (
            np.arange(1, self.num_items + 1).astype(str) if self.item_ids is None else np.asarray(self.item_ids).astype(str)
        )
        if self.user_ids.shape != (n,) or self.item_ids.shape != (self.num_items,):
            raise ValueError(
                f"user_ids must list {n} ids and item_ids {self.num_items}, got {self.user_ids.shape} and {self.item_ids.shape}"
            )
        if self.item_titles is not None and len(self.item_titles) != self.num_items:
            raise ValueError(f"item_titles has {len(self.item_titles)} entries for {self.num_items} items")

    @classmethod
    def from_log(
        cls,
        log_: InteractionLog,
        *,
        positive_threshold: float | None = None,
        min_length: int = 3,
    ) -> UserSequences:
        """Time-ordered sequences from an interaction log with timestamps.

        Interactions are sorted by timestamp within each user; equal timestamps keep the order of
        the log (a stable sort). Users with fewer than ``min_length`` interactions (at least 3)
        are dropped and their count is logged; items are then numbered ``1 .. I`` in ascending
        order of their raw ids, users ``0 .. U - 1`` likewise. Titles come from the log's item
        metadata (see :meth:`darec.text.ProfileTemplate.title`); when the log has metadata, an
        item without a title gets ``"Item <raw id>"`` and a warning counts them; a log without
        any item metadata gives no titles (:obj:`None`).

        Args:
            log_ (InteractionLog): the raw log, e.g. from :func:`~darec.data.read_recbole`.
            positive_threshold (float, optional): keep only ratings at or above it (logs with
                ratings); by default every interaction is kept, as SASRec does.
            min_length (int): users with fewer interactions are dropped. (default: :obj:`3`)

        Raises:
            ValueError: the log has no timestamps, ``min_length < 3``, or no user is left.

        Example:
            >>> log = InteractionLog(["a", "a", "a", "b"], ["x", "y", "z", "x"], timestamps=[3, 1, 2, 5])
            >>> data = UserSequences.from_log(log)
            >>> data.sequences, data.item_ids.tolist(), data.user_ids.tolist()
            ([array([2, 3, 1])], ['x', 'y', 'z'], ['a'])
        """
        if min_length < 3:
            raise ValueError(f"`min_length` must be at least 3 (train, valid and test items), got {min_length}")
        if log_.timestamps is None:
            raise ValueError(
                f"the interaction log from {log_.source} has no timestamps: sequences need the time of every "
                "interaction (a `timestamp` column); a split directory or a log without times cannot be ordered"
            )
        users, items, stamps = log_.users, log_.items, log_.timestamps
        if positive_threshold is not None:
            if log_.ratings is None:
                raise ValueError("`positive_threshold` needs ratings, but the log has none")
            keep = log_.ratings >= positive_threshold
            users, items, stamps = users[keep], items[keep], stamps[keep]
        user_codes, user_of = np.unique(users, return_inverse=True)
        counts = np.bincount(user_of, minlength=len(user_codes))
        kept_users = counts >= min_length
        dropped = int((~kept_users).sum())
        if dropped:
            log.info("UserSequences: dropped %d of %d users with fewer than %d interactions", dropped, len(user_codes), min_length)
        keep = kept_users[user_of]
        if not keep.any():
            raise ValueError(f"no user has {min_length} or more interactions in the log from {log_.source}")
        users, items, stamps = users[keep], items[keep], stamps[keep]
        user_ids, user_of = np.unique(users, return_inverse=True)
        item_ids, item_of = np.unique(items, return_inverse=True)
        order = np.lexsort((np.arange(len(users)), stamps, user_of))  # user, then time, then log order
        sorted_users, sorted_items = user_of[order], item_of[order] + 1
        starts = np.searchsorted(sorted_users, np.arange(len(user_ids) + 1))
        sequences = [sorted_items[starts[u] : starts[u + 1]] for u in range(len(user_ids))]
        titles = _titles(item_ids, log_.item_info) if log_.item_info else None
        protocol = {
            "source": log_.source,
            "split": "leave-one-out (last item test, second-last validation), time-ordered, ties in log order",
            "positive_threshold": positive_threshold,
            "min_length": min_length,
            "dropped_users": dropped,
        }
        return cls(sequences, len(item_ids), user_ids=user_ids, item_ids=item_ids, item_titles=titles, protocol=protocol)

    # -- views --------------------------------------------------------------------------------
    @property
    def num_users(self) -> int:
        return len(self.sequences)

    def train_sequence(self, user: int) -> np.ndarray:
        """The training items of ``user``: the sequence without its last two items."""
        return self.sequences[user][:-2]

    def history(self, user: int, stage: str) -> np.ndarray:
        """The input sequence of ``stage``: ``"fit"``/``"validate"`` the training items, ``"test"``
        the training items and the validation item, ``"predict"`` the whole sequence."""
        cut = {"fit": -2, "validate": -2, "test": -1, "predict": None}
        if stage not in cut:
            raise ValueError(f"unknown stage {stage!r}; expected one of {sorted(cut)}")
        return self.sequences[user][: cut[stage]]

    @property
    def valid_target(self) -> np.ndarray:
        """``(U,)`` the second-last item of every user."""
        return np.array([s[-2] for s in self.sequences], dtype=np.int64)

    @property
    def test_target(self) -> np.ndarray:
        """``(U,)`` the last item of every user."""
        return np.array([s[-1] for s in self.sequences], dtype=np.int64)

    def stats(self) -> dict[str, Any]:
        """Counts describing the data, logged with results."""
        lengths = np.array([len(s) for s in self.sequences])
        return {
            "users": self.num_users,
            "items": self.num_items,
            "interactions": int(lengths.sum()),
            "mean_length": float(lengths.mean()),
        }

    def __repr__(self) -> str:
        s = self.stats()
        return f"{type(self).__name__}(users={s['users']}, items={s['items']}, interactions={s['interactions']})"


def _titles(item_ids: np.ndarray, item_info: dict[str, dict[str, Any]]) -> list[str]:
    """The title of every item (``"Item <raw id>"`` for items without one, counted in a warning)."""
    from darec.data.text import profile_template

    infos = [item_info.get(raw) for raw in item_ids.tolist()]
    template = profile_template(infos)
    titles, missing = [], []
    for raw, info in zip(item_ids.tolist(), infos):
        if info and template.has_title(info):
            titles.append(template.title(info))
        else:
            missing.append(raw)
            titles.append(f"Item {raw}")
    if missing:
        warnings.warn(
            f"{len(missing)} of {len(item_ids)} item(s) have no title (e.g. raw ids {missing[:5]}); their title is "
            "'Item <raw id>'",
            UserWarning,
            stacklevel=3,
        )
    return titles
