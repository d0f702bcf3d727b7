"""The texts of a dataset: item text from metadata, user text from **training** pairs only.

* :func:`item_profiles` describes each item from its metadata.
* :func:`user_profiles` describes each user from demographics and the user's **training**
  positives only. Valid and test interactions never reach the text, so evaluating on them does
  not leak the held-out items into the user representation.
* :func:`with_text` fills both into an :class:`~darec.data.interactions.Interactions`.

The sentences come from a :class:`~darec.text.ProfileTemplate` (:mod:`darec.text.profiles`),
which knows metadata dicts, not interactions. Unless one is passed, :func:`profile_template`
picks it from the items' metadata: :data:`~darec.data.MOVIELENS_TEMPLATE` for MovieLens
metadata (a ``movie_title`` field, as read by :func:`~darec.data.read_recbole` or
:func:`~darec.data.read_grouplens_100k`), whose texts read ``"Toy Story (1995). Genres:
Animation, Children's, Comedy."``; else :data:`~darec.data.METADATA_TEMPLATE`, the field names
of metadata files (:func:`~darec.data.read_metadata`): ``title``, ``year``, ``genres`` and their
aliases, every other field as ``"Field: value."``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from darec.data.interactions import InteractionLog, Interactions
from darec.data.readers.grouplens import MOVIELENS_TEMPLATE
from darec.data.readers.metadata import METADATA_TEMPLATE
from darec.text.profiles import ProfileTemplate

__all__ = ["item_profiles", "profile_template", "user_profiles", "with_text"]


def profile_template(item_info: Iterable[Mapping[str, Any] | None]) -> ProfileTemplate:
    """The template for items with metadata ``item_info`` (one dict, or ``None``, per item).

    :data:`~darec.data.MOVIELENS_TEMPLATE` when any item has a ``movie_title`` field, else
    :data:`~darec.data.METADATA_TEMPLATE`.

    Example:
        >>> profile_template([{"movie_title": "Heat"}]).item_noun, profile_template([{"title": "Heat"}]).item_noun
        ('Movies', 'Items')
    """
    if any(info is not None and "movie_title" in info for info in item_info):
        return MOVIELENS_TEMPLATE
    return METADATA_TEMPLATE


def item_profiles(
    item_ids: Sequence[Any] | np.ndarray,
    item_info: Mapping[str, Mapping[str, Any]],
    template: ProfileTemplate | None = None,
) -> list[str]:
    """One text per item, in the order of ``item_ids``; see :meth:`~darec.text.ProfileTemplate.item_text`.

    ``"Title (year)."``, ``"Genres: a, b."``, then ``"Field: value."`` for every other non-empty
    field, e.g. ``"Description: A cop hunts a thief."``. Placeholder titles (``"unknown"``,
    RecBole's ``"unkonwn"``, empty) give ``"Unknown title."``. Items without metadata (or with
    only empty fields) get ``"Item <raw id>."`` and a single :class:`UserWarning` counts them.

    Args:
        item_ids: raw item ids (e.g. :attr:`Interactions.item_ids`).
        item_info: raw item id -> metadata (e.g. :attr:`InteractionLog.item_info`).
        template: the sentences; by default :func:`profile_template` of these items.

    Returns:
        The item texts.

    Example:
        >>> item_profiles(["1", "9"], {
        ...     "1": {"movie_title": "Toy Story", "release_year": "1995", "class": "Animation Children's Comedy"},
        ...     "9": {"brand": "Acme", "tags": ["tools", "garden"]},
        ... })
        ["Toy Story (1995). Genres: Animation, Children's, Comedy.", 'Brand: Acme. Tags: tools, garden.']
        >>> item_profiles(["267"], {"267": {"movie_title": "unkonwn", "release_year": "unkonwn", "class": "unknown"}})
        ['Unknown title. Genres: unknown.']
    """
    ids = [str(x) for x in np.asarray(item_ids).tolist()]
    infos = [item_info.get(raw) for raw in ids]
    missing = sum(1 for info in infos if not info)
    if missing:
        warnings.warn(
            f"{missing} of {len(ids)} item(s) have no metadata; their text is just 'Item <raw id>.'",
            UserWarning,
            stacklevel=2,
        )
    template = template if template is not None else profile_template(infos)
    return [template.item_text(raw, info) for raw, info in zip(ids, infos)]


def user_profiles(
    interactions: Interactions,
    log: InteractionLog,
    *,
    top_genres: int = 5,
    top_titles: int = 5,
    template: ProfileTemplate | None = None,
) -> list[str]:
    """One text per user, built from demographics and the user's **training** positives only.

    ``"A 24-year-old male user whose occupation is technician. Genres they liked most: Drama,
    Comedy, Action, Sci-Fi, Romance. Movies they liked include: Title (year); Title (year)."``
    (see :meth:`~darec.text.ProfileTemplate.user_text`):

    * Demographics from ``log.user_info``; location codes (``zip_code``, ...) are never written.
    * Genres: counted over all training items of the user; the ``top_genres`` most frequent, ties
      by name, placeholders (``unknown``, ``(no genres listed)``) not counted.
    * Titles: the ``top_titles`` training items with the highest rating, then the latest
      timestamp, then the smallest item id (ratings and times come from ``log``), else the raw id.
      The noun is "Movies" for MovieLens metadata, else "Items".

    Only ``interactions.train`` is read: changing the valid or test pairs cannot change the text.

    Args:
        interactions: the split; its raw ids are matched against ``log``.
        log: the raw log the split came from (ratings, timestamps, metadata).
        top_genres: number of genres listed.
        top_titles: number of titles listed.
        template: the sentences; by default :func:`profile_template` of the split's items.

    Returns:
        The user texts, in user-id order.

    Raises:
        ValueError: if ``log`` shares no (user, item) ids with ``interactions``, or a ``top_*``
            argument is negative.
    """
    if top_genres < 0 or top_titles < 0:
        raise ValueError(f"top_genres and top_titles must be >= 0, got {top_genres} and {top_titles}")
    item_ids = interactions.item_ids.tolist()
    item_meta = [log.item_info.get(raw) for raw in item_ids]
    template = template if template is not None else profile_template(item_meta)
    genres = [template.item_genres(info) for info in item_meta]
    labels = [template.item_label(raw, info) for raw, info in zip(item_ids, item_meta)]
    texts = []
    for raw, liked in zip(interactions.user_ids.tolist(), _liked_items(interactions, log)):
        favourite = template.top_genres((genres[item] for item in liked), top_genres)
        titles = [labels[item] for item in liked[:top_titles]]
        texts.append(template.user_text(log.user_info.get(raw), favourite, titles))
    return texts


def with_text(
    interactions: Interactions,
    log: InteractionLog,
    *,
    top_genres: int = 5,
    top_titles: int = 5,
    template: ProfileTemplate | None = None,
) -> Interactions:
    """A copy of ``interactions`` with ``user_text`` and ``item_text`` filled in.

    Uses :func:`item_profiles` on ``log.item_info`` and :func:`user_profiles` (training positives
    only), and records the text settings under ``protocol["text"]``. ``interactions`` itself is
    not modified.

    Args:
        interactions: the split, e.g. from :func:`darec.data.split.random_split`.
        log: the raw log the split came from.
        top_genres: number of genres in each user text.
        top_titles: number of titles in each user text.
        template: the sentences; by default :func:`profile_template` of the split's items.

    Returns:
        A new :class:`~darec.data.interactions.Interactions` (via :func:`dataclasses.replace`).

    Raises:
        ValueError: as :func:`user_profiles`.

    Example:
        >>> info = {"a": {"title": "A", "year": 1999}, "b": {"title": "B"}}
        >>> log = InteractionLog(["u", "u"], ["a", "b"], item_info=info)
        >>> data = with_text(Interactions(1, 2, train=[[0, 0], [0, 1]], user_ids=["u"], item_ids=["a", "b"]), log)
        >>> data.item_text, data.user_text
        (['A (1999).', 'B.'], ['A user. Items they liked include: A (1999); B.'])
    """
    protocol = dict(interactions.protocol)
    protocol["text"] = {
        "builder": "darec.text.profiles",
        "item": "metadata",
        "user": "demographics + TRAIN positives only",
        "top_genres": int(top_genres),
        "top_titles": int(top_titles),
    }
    return dataclasses.replace(
        interactions,
        user_text=user_profiles(interactions, log, top_genres=top_genres, top_titles=top_titles, template=template),
        item_text=item_profiles(interactions.item_ids, log.item_info, template),
        protocol=protocol,
    )


# ------------------------------------------------------------------------------------------------
# training positives, ranked
# ------------------------------------------------------------------------------------------------
def _liked_items(interactions: Interactions, log: InteractionLog) -> list[np.ndarray]:
    """Each user's training items, by rating (high first), then timestamp (late first), then item id."""
    users, items = interactions.train[:, 0], interactions.train[:, 1]
    rating, stamp = _train_scores(interactions, log)
    order = np.lexsort((items, -stamp, -rating, users))
    ranked_users, ranked_items = users[order], items[order]
    starts = np.searchsorted(ranked_users, np.arange(interactions.num_users + 1))
    return [ranked_items[starts[user] : starts[user + 1]] for user in range(interactions.num_users)]


def _lookup(ids: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Index of each ``raw`` id in ``ids`` (``-1`` where absent), vectorised."""
    ids = np.asarray(ids).astype(str)
    raw = np.asarray(raw).astype(str)
    sorter = np.argsort(ids, kind="stable")
    pos = np.clip(np.searchsorted(ids, raw, sorter=sorter), 0, len(ids) - 1)
    found = sorter[pos]
    return np.where(ids[found] == raw, found, -1)


def _train_scores(interactions: Interactions, log: InteractionLog) -> tuple[np.ndarray, np.ndarray]:
    """Rating and timestamp of every training pair, looked up in the log (``-inf`` if unknown)."""
    train = interactions.train
    n = len(train)
    users = _lookup(interactions.user_ids, log.users)
    items = _lookup(interactions.item_ids, log.items)
    ok = (users >= 0) & (items >= 0)
    if not ok.any():
        raise ValueError(
            f"the log from {log.source} shares no (user, item) ids with the interactions; "
            "pass the log the split was made from"
        )
    code = users[ok] * interactions.num_items + items[ok]
    rating = log.ratings[ok] if log.ratings is not None else np.zeros(len(code))
    stamp = log.timestamps[ok] if log.timestamps is not None else np.zeros(len(code))
    # For duplicated pairs keep the highest rating (first in log order on ties), as to_implicit does.
    order = np.lexsort((np.arange(len(code)), -rating, code))
    code, rating, stamp = code[order], rating[order], stamp[order]
    first = np.concatenate([[True], code[1:] != code[:-1]])
    code, rating, stamp = code[first], rating[first], stamp[first]

    wanted = train[:, 0] * interactions.num_items + train[:, 1]
    pos = np.clip(np.searchsorted(code, wanted), 0, len(code) - 1)
    hit = code[pos] == wanted
    if not hit.all():
        warnings.warn(
            f"{int(n - hit.sum())} training pair(s) are not in the log from {log.source}; "
            "they rank last among the liked titles",
            UserWarning,
            stacklevel=4,  # the caller of user_profiles
        )
    return np.where(hit, rating[pos], -np.inf), np.where(hit, stamp[pos], -np.inf)
