"""Text profiles of items and users, the input of the LLM text encoder.

* :func:`item_profiles` describes each item from its metadata.
* :func:`user_profiles` describes each user from demographics and the user's **training**
  positives only. Valid and test interactions never reach the text, so evaluating on them does
  not leak the held-out items into the user representation.
* :func:`with_text` fills both into an :class:`~darec.data.interactions.Interactions`.

Metadata are dicts of fields per raw id. A few fields have a role: the title (``movie_title``,
``title`` or ``name``), the year (``release_year`` or ``year``) and the genres (``class``,
``genres`` or ``genre``: a list, or a string separated by ``|``, ``;``, ``,`` or spaces) of items;
``age``, ``gender`` (or ``sex``) and ``occupation`` of users. Every other field (``description``,
``director``, ``country``, ...) is written as a sentence ``"Field: value."``, in the order of the
dict, so a metadata file of any shape (:func:`darec.data.readers.read_metadata`) gives usable text.
MovieLens-100K, as read by :func:`darec.data.readers.read_recbole` or
:func:`darec.data.readers.read_grouplens_100k`, has only fields with a role (plus users'
``zip_code``, which is never written), so its texts read ``"Toy Story (1995). Genres: Animation,
Children's, Comedy."``.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from darec.data.interactions import InteractionLog, Interactions

__all__ = ["item_profiles", "user_profiles", "with_text"]

_TITLE_KEYS = ("movie_title", "title", "name")
_YEAR_KEYS = ("release_year", "year")
_GENRE_KEYS = ("class", "genres", "genre")
_UNKNOWN_TITLES = {"", "unknown", "unkonwn"}  # "unkonwn" is RecBole's spelling for ML-100K item 267
_UNKNOWN_GENRES = {"unknown", "(no genres listed)"}  # placeholders, never a user's favourite genre
_USER_KEYS = ("age", "gender", "sex", "occupation")
# Location codes add nothing an encoder can use and identify people: never written into text.
_UNWRITTEN_USER_KEYS = ("zip_code", "zip", "postcode", "postal_code")
_GENDERS = {"m": "male", "f": "female", "male": "male", "female": "female"}
_YEAR = re.compile(r"\d{4}")


# ------------------------------------------------------------------------------------------------
# metadata helpers
# ------------------------------------------------------------------------------------------------
def _first(info: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in info and info[key] is not None:
            return info[key]
    return None


def _is_titled(info: Mapping[str, Any] | None) -> bool:
    return info is not None and any(key in info for key in _TITLE_KEYS)


def _year(value: Any) -> str | None:
    if isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating)) and float(value).is_integer()):
        value = str(int(value))
    text = str(value).strip() if value is not None else ""
    return text if _YEAR.fullmatch(text) else None


def _genres(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        sep = next((s for s in ("|", ";", ",") if s in value), None)
        parts = value.split(sep) if sep else value.split()
    else:
        parts = [str(v) for v in value]
    return [p.strip() for p in parts if p.strip()]


def _title(info: Mapping[str, Any]) -> str:
    """``"Title (year)"``, ``"Title"`` without a valid year, ``"Unknown title"`` for placeholders."""
    title = str(_first(info, _TITLE_KEYS) or "").strip()
    if title.lower() in _UNKNOWN_TITLES:
        return "Unknown title"
    year = _year(_first(info, _YEAR_KEYS))
    if year is None or title.endswith(f"({year})"):
        return title
    return f"{title} ({year})"


def _format_value(value: Any) -> str:
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _sentences(info: Mapping[str, Any], skip: Sequence[str]) -> list[str]:
    """``"Field: value."`` for every non-empty field of ``info`` not in ``skip``, in dict order."""
    out = []
    for key, value in info.items():
        if key in skip or value is None:
            continue
        text = " ".join(_format_value(value).split())
        if not text:
            continue
        label = str(key).replace("_", " ").strip()
        label = label[:1].upper() + label[1:]
        out.append(f"{label}: {text}" + ("" if text[-1] in ".!?" else "."))
    return out


def _item_text(raw_id: str, info: Mapping[str, Any] | None) -> str:
    if not info:
        return f"Item {raw_id}."
    parts = []
    if _is_titled(info):
        parts.append(f"{_title(info)}.")
    if any(key in info for key in _GENRE_KEYS):
        genres = _genres(_first(info, _GENRE_KEYS)) or ["unknown"]
        parts.append(f"Genres: {', '.join(genres)}.")
    parts += _sentences(info, (*_TITLE_KEYS, *_YEAR_KEYS, *_GENRE_KEYS))
    return " ".join(parts) if parts else f"Item {raw_id}."


# ------------------------------------------------------------------------------------------------
# items
# ------------------------------------------------------------------------------------------------
def item_profiles(item_ids: Sequence[Any] | np.ndarray, item_info: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One text per item, in the order of ``item_ids``.

    The text is a sequence of sentences:

    * ``"Title (year)."`` when the metadata have a title (``movie_title``, ``title`` or ``name``):
      the year comes from ``release_year``/``year`` and is left out when it is not a 4-digit
      year. Placeholder titles (``"unknown"``, RecBole's ``"unkonwn"``, empty) give
      ``"Unknown title."`` without a year.
    * ``"Genres: a, b."`` when there is a genre field (``class``/``genres``/``genre``); it reads
      ``unknown`` when the field is empty.
    * ``"Field: value."`` for every other non-empty field, in the order of the dict (``_`` in the
      name becomes a space, lists are joined with ``", "``, whitespace is collapsed), e.g.
      ``"Description: A cop hunts a thief."``.

    Items without metadata (or with only empty fields) get ``"Item <raw id>."`` and a single
    :class:`UserWarning` counts them.

    Args:
        item_ids: raw item ids (e.g. :attr:`Interactions.item_ids`).
        item_info: raw item id -> metadata (e.g. :attr:`InteractionLog.item_info`).

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
    missing = sum(1 for raw in ids if not item_info.get(raw))
    if missing:
        warnings.warn(
            f"{missing} of {len(ids)} item(s) have no metadata; their text is just 'Item <raw id>.'",
            UserWarning,
            stacklevel=2,
        )
    return [_item_text(raw, item_info.get(raw)) for raw in ids]


# ------------------------------------------------------------------------------------------------
# users
# ------------------------------------------------------------------------------------------------
def _lookup(ids: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Index of each ``raw`` id in ``ids`` (``-1`` where absent), vectorised."""
    ids = np.asarray(ids).astype(str)
    raw = np.asarray(raw).astype(str)
    sorter = np.argsort(ids, kind="stable")
    pos = np.clip(np.searchsorted(ids, raw, sorter=sorter), 0, len(ids) - 1)
    found = sorter[pos]
    return np.where(ids[found] == raw, found, -1)


def _demographics(info: Mapping[str, Any] | None) -> str:
    """``"A 24-year-old male user whose occupation is technician."``, dropping unknown parts.

    Other fields follow as ``"Field: value."`` sentences (location codes such as ``zip_code``
    are never written).
    """
    info = info or {}
    words = ["A"]  # always "A", as in the reference texts ("A 18-year-old ...")
    age = _format_value(info.get("age")) if info.get("age") is not None else ""
    if age and age.lower() not in {"unknown", "nan", "none"}:
        words.append(f"{age}-year-old")
    gender = str(_first(info, ("gender", "sex")) or "").strip()
    if gender:
        words.append(_GENDERS.get(gender.lower(), gender.lower()))
    words.append("user")
    occupation = str(info.get("occupation") or "").strip()
    if occupation:
        words.append(f"whose occupation is {occupation}")
    return " ".join([" ".join(words) + ".", *_sentences(info, (*_USER_KEYS, *_UNWRITTEN_USER_KEYS))])


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
            stacklevel=3,
        )
    return np.where(hit, rating[pos], -np.inf), np.where(hit, stamp[pos], -np.inf)


def user_profiles(
    interactions: Interactions,
    log: InteractionLog,
    *,
    top_genres: int = 5,
    top_titles: int = 5,
) -> list[str]:
    """One text per user, built from demographics and the user's **training** positives only.

    ``"A 24-year-old male user whose occupation is technician. Genres they liked most: Drama,
    Comedy, Action, Sci-Fi, Romance. Movies they liked include: Title (year); Title (year)."``

    * Demographics: ``age``, ``gender`` (``M``/``F`` -> male/female; alias ``sex``) and
      ``occupation`` from ``log.user_info``; missing parts are left out (``"A user."`` when
      nothing is known). Other user fields follow as ``"Field: value."`` sentences, except
      location codes (``zip_code``, ``zip``, ``postcode``, ``postal_code``).
    * Genres: counted over all training items of the user; the ``top_genres`` most frequent,
      ties by name. Placeholder genres (``unknown``, ``(no genres listed)``) are not counted.
      The sentence is left out when the items have no genres.
    * Titles: the ``top_titles`` training items with the highest rating, then the latest
      timestamp, then the smallest item id (ratings and times come from ``log``), written as in
      :func:`item_profiles` (``"Title (year)"``), else as the raw id. The noun is "Movies" for
      MovieLens-style metadata (``movie_title``), else "Items".

    Only ``interactions.train`` is read: changing the valid or test pairs cannot change the text.

    Args:
        interactions: the split; its raw ids are matched against ``log``.
        log: the raw log the split came from (ratings, timestamps, metadata).
        top_genres: number of genres listed.
        top_titles: number of titles listed.

    Returns:
        The user texts, in user-id order.

    Raises:
        ValueError: if ``log`` shares no (user, item) ids with ``interactions``, or a ``top_*``
            argument is negative.

    Example:
        >>> log = InteractionLog(
        ...     ["7", "7", "7"], ["1", "2", "3"], ratings=[5, 4, 5], timestamps=[10, 30, 20],
        ...     item_info={"1": {"movie_title": "Heat", "release_year": "1995", "class": "Action Crime"},
        ...                "2": {"movie_title": "Fargo", "release_year": "1996", "class": "Crime Drama"},
        ...                "3": {"movie_title": "Alien", "release_year": "1979", "class": "Horror Sci-Fi"}},
        ...     user_info={"7": {"age": "31", "gender": "F", "occupation": "writer"}})
        >>> data = Interactions(1, 3, train=[[0, 0], [0, 1]], test=[[0, 2]], user_ids=["7"], item_ids=["1", "2", "3"])
        >>> user_profiles(data, log, top_genres=2)
        ['A 31-year-old female user whose occupation is writer. Genres they liked most: Crime, Action. Movies they liked include: Heat (1995); Fargo (1996).']
    """
    if top_genres < 0 or top_titles < 0:
        raise ValueError(f"top_genres and top_titles must be >= 0, got {top_genres} and {top_titles}")
    num_users, num_items = interactions.num_users, interactions.num_items
    train = interactions.train
    users, items = train[:, 0], train[:, 1]
    item_meta = [log.item_info.get(raw) for raw in interactions.item_ids.tolist()]
    movies = any(info is not None and "movie_title" in info for info in item_meta)

    # Genres: (user x item) @ (item x genre) counts; genre ids follow name order, so ties sort by name.
    item_genres = [
        [g for g in _genres(_first(info, _GENRE_KEYS)) if g.lower() not in _UNKNOWN_GENRES] if info else []
        for info in item_meta
    ]
    vocab = sorted({g for gs in item_genres for g in gs})
    genre_index = {g: k for k, g in enumerate(vocab)}
    g_rows = np.repeat(np.arange(num_items), [len(gs) for gs in item_genres])
    g_cols = np.asarray([genre_index[g] for gs in item_genres for g in gs], dtype=np.int64)
    item_genre = sp.csr_matrix((np.ones(len(g_rows)), (g_rows, g_cols)), shape=(num_items, max(len(vocab), 1)))
    user_item = sp.csr_matrix((np.ones(len(train)), (users, items)), shape=(num_users, num_items))
    counts = (user_item @ item_genre).tocsr()
    counts.sort_indices()

    # Titles: per user, sort by (-rating, -timestamp, item id) and keep the first top_titles.
    rating, stamp = _train_scores(interactions, log)
    order = np.lexsort((items, -stamp, -rating, users))
    ranked_users, ranked_items = users[order], items[order]
    starts = np.searchsorted(ranked_users, np.arange(num_users + 1))
    labels = [
        _title(info) if _is_titled(info) else raw
        for raw, info in zip(interactions.item_ids.tolist(), item_meta)
    ]
    noun = "Movies" if movies else "Items"

    texts = []
    for user, raw in enumerate(interactions.user_ids.tolist()):
        parts = [_demographics(log.user_info.get(raw))]
        lo, hi = counts.indptr[user], counts.indptr[user + 1]
        genre_ids, genre_counts = counts.indices[lo:hi], counts.data[lo:hi]
        best = genre_ids[np.lexsort((genre_ids, -genre_counts))][:top_genres]
        if len(best):
            parts.append(f"Genres they liked most: {', '.join(vocab[g] for g in best)}.")
        liked = ranked_items[starts[user] : min(starts[user + 1], starts[user] + top_titles)]
        if len(liked):
            parts.append(f"{noun} they liked include: {'; '.join(labels[i] for i in liked)}.")
        texts.append(" ".join(parts))
    return texts


def with_text(
    interactions: Interactions,
    log: InteractionLog,
    *,
    top_genres: int = 5,
    top_titles: int = 5,
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
        user_text=user_profiles(interactions, log, top_genres=top_genres, top_titles=top_titles),
        item_text=item_profiles(interactions.item_ids, log.item_info),
        protocol=protocol,
    )
