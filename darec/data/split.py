"""Split protocols: from a raw :class:`InteractionLog` to implicit-feedback :class:`Interactions`.

Every protocol first applies :func:`to_implicit` (keep positives, drop users with too few of
them, drop items nobody liked), then numbers users and items ``0 .. n-1`` in ascending order of
their raw ids (numeric order when every raw id is an integer, else lexicographic), then splits each
user's positives into train/valid/test:

* :func:`random_split`: a seeded per-user random split (the protocol of
  ``shared/data/ml100k-implicit-v1``);
* :func:`temporal_split`: leave-latest-out by timestamp.

The returned :class:`Interactions` carry raw ids and a complete :attr:`Interactions.protocol`,
but no text: user text may only use training interactions, so it is built afterwards by
:func:`darec.data.text.with_text`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from darec.data.interactions import InteractionLog, Interactions

__all__ = ["to_implicit", "random_split", "temporal_split"]


# ------------------------------------------------------------------------------------------------
# filtering
# ------------------------------------------------------------------------------------------------
def to_implicit(
    log: InteractionLog,
    positive_threshold: float | None = 4.0,
    min_user_positives: int = 5,
) -> InteractionLog:
    """Filters a raw log down to the positive interactions used for implicit feedback.

    Steps, in order:

    1. **Duplicates**: repeated ``(user, item)`` pairs are dropped with a :class:`UserWarning`.
       The row kept is the one with the highest rating (the first of them in log order on ties,
       or simply the first occurrence when the log has no ratings), together with its timestamp.
    2. **Positives**: rows with ``rating >= positive_threshold`` are kept. Logs without ratings
       (or ``positive_threshold=None``) treat every interaction as positive.
    3. **Users**: users with fewer than ``min_user_positives`` positives are dropped.
    4. **Items**: items are whatever remains, so items without a positive from a kept user
       disappear (ids are numbered later from what remains).

    The metadata (``item_info``, ``user_info``) are carried over unchanged; the log order of the
    kept rows is preserved.

    Args:
        log: the raw log.
        positive_threshold: smallest rating counted as positive, or ``None`` for "all".
        min_user_positives: smallest number of positives a user needs to be kept.

    Returns:
        The filtered :class:`InteractionLog` (same source).

    Raises:
        ValueError: if ``min_user_positives < 1`` or nothing survives the filters.

    Example:
        >>> log = InteractionLog(["a", "a", "a", "b"], ["x", "y", "z", "x"], ratings=[5, 4, 1, 5])
        >>> kept = to_implicit(log, min_user_positives=2)
        >>> kept.users.tolist(), kept.items.tolist()
        (['a', 'a'], ['x', 'y'])
    """
    filtered, _ = _filter_positives(log, positive_threshold, min_user_positives)
    return filtered


def _filter_positives(
    log: InteractionLog, positive_threshold: float | None, min_user_positives: int
) -> tuple[InteractionLog, dict[str, int]]:
    """:func:`to_implicit`, also returning the counts after each step (for the protocol)."""
    if int(min_user_positives) != min_user_positives or min_user_positives < 1:
        raise ValueError(f"min_user_positives must be a positive integer, got {min_user_positives!r}")
    counts = {"raw_interactions": len(log)}

    _, user_code = np.unique(log.users, return_inverse=True)
    item_uniq, item_code = np.unique(log.items, return_inverse=True)
    pair = user_code.astype(np.int64) * len(item_uniq) + item_code
    # Stable sort by descending rating: the first row of each pair is the one to keep.
    order = np.argsort(-log.ratings, kind="stable") if log.ratings is not None else np.arange(len(log))
    _, first = np.unique(pair[order], return_index=True)
    keep = np.zeros(len(log), dtype=bool)
    keep[order[first]] = True
    duplicates = len(log) - int(keep.sum())
    if duplicates:
        rule = "the highest-rated" if log.ratings is not None else "the first"
        warnings.warn(
            f"{duplicates} duplicated (user, item) interaction(s) in {log.source} were dropped, keeping {rule} of each",
            UserWarning,
            stacklevel=3,
        )
    counts["duplicates_dropped"] = duplicates

    if log.ratings is not None and positive_threshold is not None:
        keep &= log.ratings >= positive_threshold
    counts["raw_positives"] = int(keep.sum())

    per_user = np.bincount(user_code[keep], minlength=int(user_code.max()) + 1)
    keep &= per_user[user_code] >= min_user_positives
    if not keep.any():
        raise ValueError(
            f"no user of {log.source} has at least {min_user_positives} positive interaction(s)"
            + (f" with rating >= {positive_threshold}" if log.ratings is not None and positive_threshold is not None else "")
        )
    counts["positives"] = int(keep.sum())

    filtered = InteractionLog(
        users=log.users[keep],
        items=log.items[keep],
        ratings=None if log.ratings is None else log.ratings[keep],
        timestamps=None if log.timestamps is None else log.timestamps[keep],
        item_info=log.item_info,
        user_info=log.user_info,
        source=log.source,
    )
    return filtered, counts


def _index_ids(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Numbers raw ids ``0 .. n-1`` in ascending order.

    Returns:
        ``(ids, codes, order)``: the sorted unique raw ids, the new id of every entry of ``raw``,
        and ``"numeric"`` or ``"lexicographic"``.
    """
    uniq, inverse = np.unique(raw, return_inverse=True)  # lexicographic
    if not all(_is_int(x) for x in uniq.tolist()):
        return uniq, inverse.astype(np.int64), "lexicographic"
    values = [int(x) for x in uniq.tolist()]
    # Stable, so raw ids with the same value ("07", "7") stay in lexicographic order.
    rank = sorted(range(len(uniq)), key=values.__getitem__)
    new_id = np.empty(len(uniq), dtype=np.int64)
    new_id[rank] = np.arange(len(uniq))
    return uniq[rank], new_id[inverse], "numeric"


def _is_int(text: str) -> bool:
    body = text[1:] if text[:1] in "+-" else text
    return body.isdigit() and body.isascii()


def _prepare(
    log: InteractionLog, positive_threshold: float | None, min_user_positives: int
) -> tuple[InteractionLog, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Filters ``log`` and numbers its users and items; returns ``(log, user_ids, item_ids, u, i, info)``."""
    filtered, counts = _filter_positives(log, positive_threshold, min_user_positives)
    user_ids, users, user_order = _index_ids(filtered.users)
    item_ids, items, item_order = _index_ids(filtered.items)
    info: dict[str, Any] = {
        "source": log.source,
        "positive_threshold": positive_threshold if log.ratings is not None else None,
        "min_user_positives": int(min_user_positives),
        "id_order": {"users": user_order, "items": item_order},
        **counts,
    }
    return filtered, user_ids, item_ids, users, items, info


def _group_bounds(sorted_users: np.ndarray, num_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of each user's run in an array sorted by user."""
    ids = np.arange(num_users)
    return np.searchsorted(sorted_users, ids, side="left"), np.searchsorted(sorted_users, ids, side="right")


def _build(
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    pairs: np.ndarray,
    label: np.ndarray,
    protocol: dict[str, Any],
) -> Interactions:
    """Assembles the :class:`Interactions` from labelled pairs (0 train, 1 valid, 2 test)."""
    splits = {name: pairs[label == k] for k, name in enumerate(("train", "valid", "test"))}
    protocol.update(users=len(user_ids), items=len(item_ids), **{k: int(len(v)) for k, v in splits.items()})
    protocol["items_without_train_interaction"] = int(len(item_ids) - len(np.unique(splits["train"][:, 1])))
    return Interactions(
        num_users=len(user_ids),
        num_items=len(item_ids),
        train=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        user_ids=user_ids,
        item_ids=item_ids,
        protocol=protocol,
    )


# ------------------------------------------------------------------------------------------------
# protocols
# ------------------------------------------------------------------------------------------------
# Over 60 lines only for its docstring, which states the protocol exactly; the steps are the
# helpers _prepare, _held_out, _permuted_ranks and _build.
def random_split(
    log: InteractionLog,
    *,
    positive_threshold: float | None = 4.0,
    min_user_positives: int = 5,
    ratios: Sequence[float] = (3, 1, 1),
    seed: int = 2024,
) -> Interactions:
    """Per-user random train/valid/test split of the positives (the reference protocol).

    After :func:`to_implicit` and id numbering (see the module docstring), with
    ``n`` positives for a user and ``ratios = (r_train, r_valid, r_test)``:

    * ``n_valid = max(1, floor(n * r_valid / sum(ratios) + 0.5))`` (``0`` if ``r_valid == 0``),
      ``n_test`` likewise, ``n_train = n - n_valid - n_test``;
    * a single ``numpy.random.RandomState(seed)`` is shared by all users, visited in new-id order;
    * each user's positives are sorted by new item id, permuted with ``rng.permutation(n)``, and
      the first ``n_train`` go to train, the next ``n_valid`` to valid, the last ``n_test`` to test.

    With the defaults, on RecBole's copy of MovieLens-100K this reproduces
    ``shared/data/ml100k-implicit-v1`` exactly.

    Args:
        log: the raw log.
        positive_threshold: smallest rating counted as positive (``None``: all).
        min_user_positives: smallest number of positives a user needs to be kept.
        ratios: relative sizes of train, valid and test.
        seed: seed of the :class:`numpy.random.RandomState`.

    Returns:
        The :class:`Interactions` (no text), with :attr:`~Interactions.protocol` recording the
        name ``"random"``, every argument, the RNG, the source and the counts.

    Raises:
        ValueError: for invalid ratios, or if some user would be left without a training
            interaction (the message names the user; raise ``min_user_positives``).

    Example:
        >>> log = InteractionLog(["u"] * 5 + ["v"] * 5, list("abcde") * 2)
        >>> data = random_split(log, seed=0)
        >>> data.stats()["train"], data.stats()["valid"], data.stats()["test"]
        (6, 2, 2)
        >>> data.protocol["name"], data.protocol["ratios"]
        ('random', [3, 1, 1])
    """
    ratios = list(ratios)
    if len(ratios) != 3 or any(not math.isfinite(r) or r < 0 for r in ratios) or ratios[0] <= 0:
        raise ValueError(f"ratios must be three non-negative numbers (train, valid, test) with train > 0, got {ratios}")
    total = float(sum(ratios))

    filtered, user_ids, item_ids, users, items, info = _prepare(log, positive_threshold, min_user_positives)
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    counts = np.bincount(users, minlength=len(user_ids))
    n_valid, n_test = _held_out(ratios[1] / total, counts), _held_out(ratios[2] / total, counts)
    n_train = counts - n_valid - n_test
    _check_train(n_train, counts, user_ids, f"ratios {ratios}")
    rank = _permuted_ranks(users, counts, seed)
    label = np.where(rank < n_train[users], 0, np.where(rank < (n_train + n_valid)[users], 1, 2))

    protocol = {
        "name": "random",
        "positive_threshold": info.pop("positive_threshold"),
        "min_user_positives": info.pop("min_user_positives"),
        "ratios": ratios,
        "seed": int(seed),
        "rng": "numpy.random.RandomState",
        "rule": "n_valid, n_test = max(1, floor(ratio / sum(ratios) * n + 0.5)); per user, items sorted by "
        "new id, then rng.permutation; first n_train -> train, next n_valid -> valid, rest -> test",
        **info,
    }
    return _build(user_ids, item_ids, np.stack([users, items], axis=1), label, protocol)


def _held_out(frac: float, counts: np.ndarray) -> np.ndarray:
    """Held-out pairs per user: ``max(1, floor(frac * n + 0.5))``, or none when ``frac`` is 0."""
    if frac == 0:
        return np.zeros_like(counts)
    return np.maximum(1, np.floor(frac * counts + 0.5)).astype(np.int64)


def _permuted_ranks(users: np.ndarray, counts: np.ndarray, seed: int) -> np.ndarray:
    """Position of every pair inside its user's permuted list (``users`` sorted).

    One ``RandomState(seed)`` draws ``rng.permutation(n)`` for each user in turn, in user-id order.
    """
    rng = np.random.RandomState(seed)
    starts, _ = _group_bounds(users, len(counts))
    rank = np.empty(len(users), dtype=np.int64)
    for start, n in zip(starts.tolist(), counts.tolist()):
        rank[start + rng.permutation(n)] = np.arange(n)
    return rank


def temporal_split(
    log: InteractionLog,
    *,
    positive_threshold: float | None = 4.0,
    min_user_positives: int = 5,
    leave_out: int = 1,
) -> Interactions:
    """Leave-latest-out split: each user's most recent positives are held out.

    After :func:`to_implicit` and id numbering, each user's positives are ordered by timestamp,
    ties broken by new item id (the larger id counts as later). The latest ``leave_out`` go to
    test, the ``leave_out`` before them to valid, the rest to train.

    Args:
        log: the raw log; must have timestamps.
        positive_threshold: smallest rating counted as positive (``None``: all).
        min_user_positives: smallest number of positives a user needs to be kept.
        leave_out: positives per user held out for test, and again for valid.

    Returns:
        The :class:`Interactions` (no text), with the protocol name ``"temporal"``.

    Raises:
        ValueError: if the log has no timestamps, ``leave_out < 1``, or some user has at most
            ``2 * leave_out`` positives (the message names the user).

    Example:
        >>> log = InteractionLog(["u"] * 3, ["a", "b", "c"], timestamps=[3, 1, 2])
        >>> data = temporal_split(log, min_user_positives=3)
        >>> data.item_ids[data.train[:, 1]].tolist(), data.item_ids[data.test[:, 1]].tolist()
        (['b'], ['a'])
    """
    if log.timestamps is None:
        raise ValueError(f"temporal_split needs timestamps, but the log from {log.source} has none; use random_split")
    if int(leave_out) != leave_out or leave_out < 1:
        raise ValueError(f"leave_out must be a positive integer, got {leave_out!r}")
    leave_out = int(leave_out)

    filtered, user_ids, item_ids, users, items, info = _prepare(log, positive_threshold, min_user_positives)
    assert filtered.timestamps is not None
    order = np.lexsort((items, filtered.timestamps, users))
    users, items = users[order], items[order]
    counts = np.bincount(users, minlength=len(user_ids))
    _check_train(counts - 2 * leave_out, counts, user_ids, f"leave_out={leave_out}")

    _, ends = _group_bounds(users, len(user_ids))
    from_end = ends[users] - np.arange(len(users)) - 1  # 0 for each user's latest positive
    label = np.where(from_end < leave_out, 2, np.where(from_end < 2 * leave_out, 1, 0))

    protocol = {
        "name": "temporal",
        "positive_threshold": info.pop("positive_threshold"),
        "min_user_positives": info.pop("min_user_positives"),
        "leave_out": leave_out,
        "rule": "per user, positives ordered by (timestamp, new item id); latest leave_out -> test, "
        "the leave_out before them -> valid, rest -> train",
        **info,
    }
    return _build(user_ids, item_ids, np.stack([users, items], axis=1), label, protocol)


def _check_train(n_train: np.ndarray, counts: np.ndarray, user_ids: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(n_train < 1)
    if len(bad):
        first = bad[0]
        raise ValueError(
            f"{len(bad)} user(s) would have no training interaction under {what}: e.g. user "
            f"{str(user_ids[first])!r} has only {int(counts[first])} positive(s); raise min_user_positives"
        )
