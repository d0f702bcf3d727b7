"""What profile prompts are written from: a split's training interactions and, if known, the raw log."""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any

import numpy as np

from darec.data.interactions import InteractionLog, Interactions
from darec.data.text import profile_template
from darec.text.profiles import ProfileTemplate

__all__ = ["ProfileSource"]

ENTITIES = ("user", "item")
#: Age brackets of the item audience (MovieLens' own groups, coarsened).
_AGE_BRACKETS = ((18, "under 18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (56, "45-55"))


class ProfileSource:
    """The facts a profile prompt may use, read from the **training** interactions only.

    Users are described by their training items (and their demographics, when the log has user
    metadata); items by their metadata (or their template text) and by the users who interacted
    with them in training. Validation and test interactions are never read, so a held-out item
    can never appear in a user's prompt.

    Ratings and timestamps come from the raw log the split was made from, when there is one (an
    unsplit source, MovieLens-100K): the log's pairs are matched to the split by raw ids. A split
    directory has no log; its items are then described by their ``item_text``.

    Args:
        interactions (Interactions): the split.
        log (InteractionLog, optional): the raw log it came from (ratings, timestamps, metadata).
            (default: :obj:`None`)
        template (ProfileTemplate, optional): how titles and genres are read from the metadata.
            (default: chosen by :func:`darec.data.profile_template`)

    Example:
        >>> from darec.data import InteractionLog, Interactions
        >>> log = InteractionLog(["u", "u", "u"], ["a", "b", "c"], ratings=[5, 3, 4],
        ...                      item_info={"a": {"title": "Heat", "year": 1995, "genres": "Crime"},
        ...                                 "b": {"title": "Big"}, "c": {"title": "Up"}})
        >>> data = Interactions(1, 3, train=[[0, 0], [0, 1]], test=[[0, 2]], user_ids=["u"], item_ids=["a", "b", "c"])
        >>> source = ProfileSource(data, log)
        >>> [source.item_name(i) for i in source.liked_items(0)]  # the test item "Up" is not there
        ['Heat (1995)', 'Big']
        >>> source.rating(0, 0), source.item_genres(0)
        (5.0, ['Crime'])
    """

    def __init__(
        self, interactions: Interactions, log: InteractionLog | None = None, *, template: ProfileTemplate | None = None
    ) -> None:
        if not isinstance(interactions, Interactions):
            raise TypeError(f"expected darec.data.Interactions, got {type(interactions).__name__}")
        self.interactions = interactions
        self.log = log
        item_ids = interactions.item_ids.tolist()
        self._item_info = [log.item_info.get(raw) for raw in item_ids] if log is not None else [None] * len(item_ids)
        self.template = template if template is not None else profile_template(self._item_info)
        self._scores: dict[tuple[int, int], tuple[float, float]] | None = None
        self._by_user: list[np.ndarray] | None = None
        self._by_item: list[np.ndarray] | None = None

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_datamodule(cls, datamodule: Any) -> ProfileSource:
        """The split of a :class:`~darec.data.RecDataModule` and, when it has one, its raw log."""
        return cls(datamodule.interactions, getattr(datamodule, "raw_log", None))

    @classmethod
    def load(cls, data: str | os.PathLike[str], **kwargs: Any) -> ProfileSource:
        """``"ml100k"`` (:class:`~darec.data.MovieLens100K`) or any ``source`` of :class:`~darec.data.RecDataModule`.

        A split directory, a RecBole or GroupLens folder, or a TSV/CSV file; ``kwargs`` go to the
        data module (e.g. ``split_seed``). No text encoder is loaded.
        """
        from darec.data import MovieLens100K, RecDataModule

        if str(data).lower() in {"ml100k", "ml-100k", "movielens100k"}:
            return cls.from_datamodule(MovieLens100K(text_encoder=None, **kwargs))
        path = Path(data).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"no data at {path}: give a split directory, a RecBole/GroupLens folder, a TSV/CSV file or 'ml100k'")
        return cls.from_datamodule(RecDataModule(str(path), text_encoder=None, **kwargs))

    # -- entities ----------------------------------------------------------------------------
    def count(self, entity: str) -> int:
        """The number of users or items."""
        return self.interactions.num_users if _check(entity) == "user" else self.interactions.num_items

    def raw_id(self, entity: str, index: int) -> str:
        """The raw id of user or item ``index``."""
        ids = self.interactions.user_ids if _check(entity) == "user" else self.interactions.item_ids
        return str(ids[index])

    # -- items -------------------------------------------------------------------------------
    def item_name(self, item: int) -> str:
        """``"Title (year)"`` from the metadata; else the item's template text; else ``"item <raw id>"``."""
        info = self._item_info[item]
        if info is not None and self.template.has_title(info):
            return self.template.title(info)
        text = self.interactions.item_text
        if text is not None and text[item].strip():
            return " ".join(text[item].split())
        return f"item {self.raw_id('item', item)}"

    def item_genres(self, item: int) -> list[str]:
        """The item's genres from the metadata (empty without metadata)."""
        return self.template.item_genres(self._item_info[item])

    def item_description(self, item: int) -> str:
        """Everything known about the item, as sentences: its template text from the metadata or the data."""
        info = self._item_info[item]
        if info:
            return self.template.item_text(self.raw_id("item", item), info)
        return self.item_name(item) if self.item_name(item).endswith(".") else self.item_name(item) + "."

    def item_users(self, item: int) -> np.ndarray:
        """The users who interacted with ``item`` in training."""
        if self._by_item is None:
            self._by_item = _group(self.interactions.train[:, 1], self.interactions.train[:, 0], self.interactions.num_items)
        return self._by_item[item]

    def item_audience(self, item: int) -> dict[str, Any]:
        """Who interacted with ``item`` in training: ``{"users": n, "gender": Counter, "age": Counter, "occupation": Counter}``.

        The counters are empty when the log has no user metadata.
        """
        users = self.item_users(item)
        out: dict[str, Any] = {
            "users": len(users),
            "gender": collections.Counter(),
            "age": collections.Counter(),
            "occupation": collections.Counter(),
        }
        if self.log is None or not self.log.user_info:
            return out
        for user in users.tolist():
            info = self.log.user_info.get(self.raw_id("user", user)) or {}
            gender = str(info.get("gender") or info.get("sex") or "").strip().lower()
            if gender:
                out["gender"][{"m": "male", "f": "female"}.get(gender, gender)] += 1
            bracket = _age_bracket(info.get("age"))
            if bracket:
                out["age"][bracket] += 1
            occupation = str(info.get("occupation") or "").strip()
            if occupation and occupation.lower() not in {"none", "other", "unknown"}:
                out["occupation"][occupation] += 1
        return out

    # -- users -------------------------------------------------------------------------------
    def user_description(self, user: int) -> str:
        """The user's demographics (``"A 24-year-old male user whose occupation is technician."``), or ``"A user."``."""
        info = self.log.user_info.get(self.raw_id("user", user)) if self.log is not None else None
        return self.template.demographics(info)

    def liked_items(self, user: int, order: str = "rating") -> list[int]:
        """The user's training items, ranked.

        Args:
            user (int): the user.
            order (str): ``"rating"``: highest rating first, then most recent; ``"recent"``: most
                recent first, then highest rating. Ties (and data without ratings or times) by
                item id. (default: ``"rating"``)
        """
        if order not in ("rating", "recent"):
            raise ValueError(f"order must be 'rating' or 'recent', got {order!r}")
        if self._by_user is None:
            self._by_user = _group(self.interactions.train[:, 0], self.interactions.train[:, 1], self.interactions.num_users)
        items = self._by_user[user].tolist()
        scores = self._pair_scores()

        def rank(item: int) -> tuple[float, float, int]:
            rating, stamp = scores.get((user, item), (-np.inf, -np.inf))
            return (-rating, -stamp, item) if order == "rating" else (-stamp, -rating, item)

        return sorted(items, key=rank)

    def rating(self, user: int, item: int) -> float | None:
        """The rating of a training pair in the log, or :obj:`None` when the log has no ratings for it."""
        if self.log is None or self.log.ratings is None:
            return None
        found = self._pair_scores().get((user, item))
        return None if found is None or not np.isfinite(found[0]) else found[0]

    def _pair_scores(self) -> dict[tuple[int, int], tuple[float, float]]:
        """``(user, item) -> (rating, timestamp)`` of every log pair in the split (the highest rating of repeats)."""
        if self._scores is not None:
            return self._scores
        scores: dict[tuple[int, int], tuple[float, float]] = {}
        log = self.log
        if log is not None and (log.ratings is not None or log.timestamps is not None):
            users = {raw: k for k, raw in enumerate(self.interactions.user_ids.tolist())}
            items = {raw: k for k, raw in enumerate(self.interactions.item_ids.tolist())}
            ratings = log.ratings if log.ratings is not None else np.full(len(log), -np.inf)
            stamps = log.timestamps if log.timestamps is not None else np.full(len(log), -np.inf)
            for raw_user, raw_item, rating, stamp in zip(log.users.tolist(), log.items.tolist(), ratings.tolist(), stamps.tolist()):
                user, item = users.get(raw_user), items.get(raw_item)
                if user is None or item is None:
                    continue
                if (user, item) not in scores or rating > scores[(user, item)][0]:
                    scores[(user, item)] = (rating, stamp)
        self._scores = scores
        return scores

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.interactions!r}, log={'yes' if self.log is not None else 'no'})"


def _check(entity: str) -> str:
    if entity not in ENTITIES:
        raise ValueError(f"entity must be 'user' or 'item', got {entity!r}")
    return entity


def _group(keys: np.ndarray, values: np.ndarray, size: int) -> list[np.ndarray]:
    order = np.argsort(keys, kind="stable")
    starts = np.searchsorted(keys[order], np.arange(size + 1))
    grouped = values[order]
    return [grouped[starts[k] : starts[k + 1]] for k in range(size)]


def _age_bracket(age: Any) -> str | None:
    try:
        years = float(age)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(years) or years <= 0:
        return None
    for bound, name in _AGE_BRACKETS:
        if years < bound:
            return name
    return "56 or older"
