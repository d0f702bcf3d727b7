"""Click-through-rate samples: labelled (user, item) pairs, a global time split and leak-free histories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from darec.data.interactions import SPLITS, InteractionLog

__all__ = ["PAD", "CTRSamples"]

#: The item id that pads a history shorter than ``history_len``.
PAD = -1


@dataclass
class CTRSamples:
    r"""Labelled (user, item) pairs in time order, split globally by time, each with its liked and disliked history.

    Built by :meth:`from_log` from an :class:`~darec.data.InteractionLog` that has timestamps and
    ratings (or explicit 0/1 labels). Row ``k`` is one interaction; rows are sorted by timestamp,
    equal timestamps keeping the order of the log, and the split is **global**: the earliest 80 %
    of the rows are ``train``, the next 10 % ``valid``, the last 10 % ``test`` (``fractions``), so
    every validation or test pair is later than (or as late as) every training pair.

    The history of a pair ``(u, i, t)`` is what a prompt may tell about ``u`` without leakage:
    the items of ``u``'s **training** rows whose timestamp is strictly earlier than ``t``, the
    liked ones (label 1) and the disliked ones (label 0) separately, the most recent first, at
    most ``history_len`` of each, padded with :data:`PAD` (``-1``). Interactions with the same
    timestamp count as simultaneous and are not in each other's histories; a validation or test
    pair never sees another validation or test interaction.

    Users are numbered ``0 .. U - 1`` and items ``0 .. I - 1`` in ascending order of their raw
    ids (numeric order when every raw id is an integer), as darec's other protocols do. Users and
    items that occur only in validation or test keep their ids (their embeddings stay untrained):
    :attr:`protocol` counts the rows concerned.

    Args:
        user (numpy.ndarray): ``(N,)`` int64 user ids.
        item (numpy.ndarray): ``(N,)`` int64 item ids.
        label (numpy.ndarray): ``(N,)`` float32 labels, 1 (click) or 0.
        timestamp (numpy.ndarray): ``(N,)`` float64 times, non-decreasing.
        index (dict): ``"train"``/``"valid"``/``"test"`` -> ``(N_split,)`` int64 row indices.
        liked (numpy.ndarray): ``(N, K)`` int64 liked history, most recent first, :data:`PAD`-padded.
        disliked (numpy.ndarray): ``(N, K)`` int64 disliked history, likewise.
        user_ids (numpy.ndarray): ``(U,)`` raw user ids (``str``).
        item_ids (numpy.ndarray): ``(I,)`` raw item ids (``str``).
        item_titles (list of str, optional): the title of every item (from the log's metadata).
        protocol (dict): how the samples were built; logged with results.

    Example:
        >>> log = InteractionLog(["a", "a", "b", "a", "b"], ["x", "y", "x", "z", "y"],
        ...                      ratings=[5, 2, 4, 1, 5], timestamps=[1, 2, 3, 4, 5])
        >>> samples = CTRSamples.from_log(log, fractions=(0.6, 0.2, 0.2), history_len=2)
        >>> samples.label.tolist(), {k: v.tolist() for k, v in samples.index.items()}
        ([1.0, 0.0, 1.0, 0.0, 1.0], {'train': [0, 1, 2], 'valid': [3], 'test': [4]})
        >>> samples.liked[3].tolist(), samples.disliked[3].tolist()  # a's pair at t=4: train rows before it
        ([0, -1], [1, -1])
    """

    user: np.ndarray
    item: np.ndarray
    label: np.ndarray
    timestamp: np.ndarray
    index: dict[str, np.ndarray]
    liked: np.ndarray
    disliked: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_titles: list[str] | None = None
    protocol: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_log(
        cls,
        log: InteractionLog,
        *,
        positive_threshold: float = 4.0,
        labels: Sequence[float] | np.ndarray | None = None,
        history_len: int = 10,
        fractions: Sequence[float] = (0.8, 0.1, 0.1),
    ) -> CTRSamples:
        """Labels, orders, splits and gives histories to the interactions of ``log``.

        Args:
            log (InteractionLog): the raw log; it needs timestamps, and ratings unless ``labels``
                are given.
            positive_threshold (float): a rating at or above it is a click (label 1), below it
                a non-click (label 0). Ignored when ``labels`` are given. (default: :obj:`4.0`)
            labels (array-like, optional): ``(E,)`` explicit labels in the order of the log,
                each 0 or 1 (e.g. a ``label`` column read as the log's ratings).
            history_len (int): liked and disliked items kept per pair, :math:`K`.
                (default: :obj:`10`)
            fractions (sequence of float): the train, validation and test shares of the rows, in
                time order; they must be positive and sum to 1. (default: ``(0.8, 0.1, 0.1)``)

        Raises:
            ValueError: the log has no timestamps; it has neither ratings nor ``labels``;
                ``labels`` are not all 0 or 1 or have the wrong length; the labels (after the
                threshold) hold only one class (the message gives both counts); a split would be
                empty; or an argument is out of range.
        """
        if isinstance(history_len, bool) or not isinstance(history_len, (int, np.integer)) or history_len < 1:
            raise ValueError(f"`history_len` must be a positive integer, got {history_len!r}")
        shares = np.asarray(fractions, dtype=np.float64)
        if shares.shape != (3,) or (shares <= 0).any() or not np.isclose(shares.sum(), 1.0):
            raise ValueError(f"`fractions` must be three positive shares (train, valid, test) summing to 1, got {fractions!r}")
        if log.timestamps is None:
            raise ValueError(
                f"the interaction log from {log.source} has no timestamps: the CTR protocol splits by time and "
                "builds each pair's history from earlier interactions only (add a `timestamp` column)"
            )
        label, how = _labels(log, labels, positive_threshold)
        n = len(log)
        order = np.lexsort((np.arange(n), log.timestamps))  # by time, ties in log order
        counts = np.floor(np.cumsum(shares)[:2] * n + 1e-9).astype(np.int64)
        bounds = (0, int(counts[0]), int(counts[1]), n)
        sizes = dict(zip(SPLITS, np.diff(bounds).tolist()))
        if min(sizes.values()) == 0:
            raise ValueError(
                f"the log from {log.source} has {n} interactions: too few for the {'/'.join(map(str, fractions))} "
                f"time split (split sizes {sizes}); every split needs at least one pair"
            )
        from darec.data.split import _index_ids

        user_ids, user_codes, _ = _index_ids(log.users)
        item_ids, item_codes, order_kind = _index_ids(log.items)
        user, item = user_codes[order], item_codes[order]
        label, stamps = label[order], log.timestamps[order]
        index = {name: np.arange(bounds[k], bounds[k + 1], dtype=np.int64) for k, name in enumerate(SPLITS)}
        liked, disliked = _histories(user, item, label, stamps, bounds[1], history_len)
        titles = _titles(item_ids, log.item_info) if log.item_info else None
        samples = cls(
            user=user, item=item, label=label.astype(np.float32), timestamp=stamps, index=index,
            liked=liked, disliked=disliked, user_ids=user_ids, item_ids=item_ids, item_titles=titles,
        )  # fmt: skip
        samples.protocol = {
            "source": log.source,
            "labels": how,
            "split": "global time split "
            f"{'/'.join(f'{s:g}' for s in shares)} (train/valid/test), ties in log order",
            "history": f"the user's latest {history_len} liked and {history_len} disliked training items strictly "
            "before the pair's time",
            "id_order": order_kind,
            "items_without_title": len(samples.untitled_items()),
            **samples.stats(),
        }
        return samples

    # -- views ----------------------------------------------------------------------------------
    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def history_len(self) -> int:
        """:math:`K`, the width of :attr:`liked` and :attr:`disliked`."""
        return int(self.liked.shape[1])

    def __len__(self) -> int:
        return len(self.user)

    def split(self, name: str) -> np.ndarray:
        """The row indices of split ``name`` (``"train"``, ``"valid"`` or ``"test"``)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return self.index[name]

    def user_index(self, user: Any) -> int:
        """The row of raw user id ``user`` in the id tables (a :class:`ValueError` names an unknown id)."""
        return _lookup(self.user_ids, user, "user")

    def item_index(self, item: Any) -> int:
        """The row of raw item id ``item`` in the id tables (a :class:`ValueError` names an unknown id)."""
        return _lookup(self.item_ids, item, "item")

    def title(self, item: int) -> str:
        """The title of item row ``item`` (``"Item <raw id>"`` without titles)."""
        if self.item_titles is not None:
            return str(self.item_titles[item])
        return f"Item {self.item_ids[item]}"

    def untitled_items(self) -> np.ndarray:
        """The item rows without a title in the metadata (all of them without metadata): prompts name them ``Item <id>``."""
        if self.item_titles is None:
            return np.arange(self.num_items)
        prefix = "Item "
        return np.array(
            [k for k, (title, raw) in enumerate(zip(self.item_titles, self.item_ids.tolist())) if title == f"{prefix}{raw}"],
            dtype=np.int64,
        )

    def user_sample(self, users: int, seed: int = 0, among: str | None = None) -> np.ndarray:
        """Every row of ``users`` users drawn without replacement with ``seed`` (all of them when fewer), sorted.

        The subsample a model too slow for every pair is measured on (an LLM writing explanations
        on a CPU): whole users, so each kept user's pairs and histories stay complete.

        Args:
            users (int): how many users to draw.
            seed (int): the seed of the draw. (default: :obj:`0`)
            among (str, optional): draw only among the users with at least one pair in this split
                (``"test"``: under a global time split most users have pairs in one split only, so a
                uniform draw leaves few test pairs). (default: :obj:`None`, every user)

        Example:
            >>> from darec.data import InteractionLog
            >>> log = InteractionLog(["a", "b", "c", "a", "b", "c"], ["x", "y", "x", "z", "y", "z"],
            ...                      ratings=[5, 2, 4, 1, 5, 3], timestamps=range(6))
            >>> samples = CTRSamples.from_log(log, fractions=(0.5, 0.17, 0.33))
            >>> rows = samples.user_sample(1, seed=0, among="test")
            >>> len(set(samples.user[rows].tolist())), bool(set(rows) & set(samples.split("test")))
            (1, True)
        """
        if isinstance(users, bool) or not isinstance(users, int) or users < 1:
            raise ValueError(f"`users` must be a positive integer, got {users!r}")
        pool = np.arange(self.num_users) if among is None else np.unique(self.user[self.split(among)])
        if not len(pool):
            raise ValueError(f"no user has a pair in the {among} split")
        chosen = np.random.default_rng(seed).permutation(pool)[: min(users, len(pool))]
        return np.flatnonzero(np.isin(self.user, chosen))

    def history(self, row: int) -> tuple[list[int], list[int]]:
        """The liked and the disliked item ids of pair ``row``, most recent first, without padding."""
        liked, disliked = self.liked[row], self.disliked[row]
        return liked[liked != PAD].tolist(), disliked[disliked != PAD].tolist()

    def stats(self) -> dict[str, Any]:
        """Counts per split, positive rates, and the held-out rows whose user or item has no training row."""
        out: dict[str, Any] = {"users": self.num_users, "items": self.num_items}
        train = self.split("train")
        seen_users = np.zeros(self.num_users, dtype=bool)
        seen_users[self.user[train]] = True
        seen_items = np.zeros(self.num_items, dtype=bool)
        seen_items[self.item[train]] = True
        for name in SPLITS:
            rows = self.split(name)
            out[name] = int(len(rows))
            out[f"{name}_positive_rate"] = round(float(self.label[rows].mean()), 4)
            if name != "train":
                out[f"{name}_cold_user_rows"] = int((~seen_users[self.user[rows]]).sum())
                out[f"{name}_cold_item_rows"] = int((~seen_items[self.item[rows]]).sum())
        return out

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}={len(self.split(name))}" for name in SPLITS)
        return f"{type(self).__name__}(users={self.num_users}, items={self.num_items}, {parts})"


def _lookup(ids: np.ndarray, raw: Any, what: str) -> int:
    where = np.flatnonzero(ids.astype(str) == str(raw))
    if not len(where):
        examples = ", ".join(map(str, ids[:3].tolist()))
        raise ValueError(f"unknown {what} id {raw!r}: it has no interaction in the data (ids look like {examples})")
    return int(where[0])


def _labels(log: InteractionLog, labels: Any, threshold: float) -> tuple[np.ndarray, str]:
    """The 0/1 label of every row of ``log`` and how it was obtained; checks that both classes occur."""
    if labels is not None:
        values = np.asarray(labels, dtype=np.float64)
        if values.shape != (len(log),):
            raise ValueError(f"`labels` must have shape ({len(log)},) to match the interactions, got {values.shape}")
        bad = ~np.isin(values, (0.0, 1.0))
        if bad.any():
            raise ValueError(
                f"`labels` must be 0 or 1; {int(bad.sum())} are not, e.g. {np.unique(values[bad])[:5].tolist()} "
                "(for ratings, pass them as ratings with a `positive_threshold` instead)"
            )
        how, where = "explicit 0/1 labels", "the labels hold one class only"
    elif log.ratings is not None:
        values = (log.ratings >= threshold).astype(np.float64)
        how, where = f"rating >= {threshold:g}", f"positive_threshold={threshold:g} leaves one class empty"
    else:
        raise ValueError(
            f"the interaction log from {log.source} has no ratings and no labels: CTR needs a rating column "
            "(a click is a rating >= positive_threshold) or a 0/1 label column"
        )
    positives = int(values.sum())
    if positives == 0 or positives == len(values):
        scale = (
            f" (ratings range from {log.ratings.min():g} to {log.ratings.max():g})" if labels is None else ""
        )
        raise ValueError(
            f"{where}: {positives} positive and {len(values) - positives} negative "
            f"interactions{scale}; CTR needs both clicks and non-clicks"
        )
    return values, how


def _histories(
    user: np.ndarray, item: np.ndarray, label: np.ndarray, stamps: np.ndarray, num_train: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(N, k)`` liked and disliked histories of time-ordered rows: training rows strictly earlier, latest first."""
    n = len(user)
    out = {1.0: np.full((n, k), PAD, dtype=np.int64), 0.0: np.full((n, k), PAD, dtype=np.int64)}
    rows_of = np.argsort(user, kind="stable")  # each user's rows, still in time order
    starts = np.searchsorted(user[rows_of], np.arange(user.max() + 2))
    steps = np.arange(1, k + 1)
    for u in range(len(starts) - 1):
        rows = rows_of[starts[u] : starts[u + 1]]
        if not len(rows):
            continue
        train = rows[rows < num_train]
        for value, table in out.items():
            past = train[label[train] == value]
            if not len(past):
                continue
            # how many of the user's past rows are strictly earlier than each of the user's rows
            count = np.searchsorted(stamps[past], stamps[rows], side="left")
            take = count[:, None] - steps[None, :]  # (rows, k): latest first
            ok = take >= 0
            table[rows] = np.where(ok, item[past][np.maximum(take, 0)], PAD)
    return out[1.0], out[0.0]


def _titles(item_ids: np.ndarray, item_info: dict[str, dict[str, Any]]) -> list[str]:
    """The title of every item, ``"Item <raw id>"`` for items without one."""
    from darec.data.text import profile_template

    infos = [item_info.get(raw) for raw in item_ids.tolist()]
    template = profile_template(infos)
    return [template.title(info) if template.has_title(info) else f"Item {raw}" for raw, info in zip(item_ids.tolist(), infos)]
