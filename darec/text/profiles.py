"""Text profiles of items and users, built from plain values: the input of the LLM text encoder.

A :class:`ProfileTemplate` turns one item's metadata (a dict of fields) into a text, and one
user's demographics, favourite genres and liked titles into a text. It knows nothing of
interactions or splits: :mod:`darec.data.text` walks a split's **training** pairs, picks the
template that fits the data, and calls the template for every item and user.

Metadata are dicts of fields per raw id. A few fields have a role, named by the template: the
title (default ``title`` or ``name``), the year (``year``) and the genres (``genres`` or
``genre``: a list, or a string separated by ``|``, ``;``, ``,`` or spaces) of items; ``age``,
``gender`` (or ``sex``) and ``occupation`` of users. Every other field (``description``,
``director``, ``country``, ...) is written as a sentence ``"Field: value."``, in the order of the
dict, so a metadata file of any shape (:func:`darec.data.read_metadata`) gives usable text.
Datasets with other field names pass their own template (MovieLens:
:data:`darec.data.MOVIELENS_TEMPLATE`).

Example:
    >>> template = ProfileTemplate()
    >>> template.item_text("9", {"title": "Heat", "year": 1995, "genres": "Action|Crime", "director": "Mann"})
    'Heat (1995). Genres: Action, Crime. Director: Mann.'
    >>> template.user_text({"age": 31, "gender": "F", "zip_code": "0150"}, ["Crime"], ["Heat (1995)"])
    'A 31-year-old female user. Genres they liked most: Crime. Items they liked include: Heat (1995).'
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["ProfileTemplate"]

_GENDERS = {"m": "male", "f": "female", "male": "male", "female": "female"}
_DEMOGRAPHIC_FIELDS = ("age", "gender", "sex", "occupation")
_YEAR = re.compile(r"\d{4}")


@dataclasses.dataclass(frozen=True)
class ProfileTemplate:
    """Which metadata fields have a role, and the sentences written from them.

    Every field can be replaced (``dataclasses.replace(template, item_noun="Books")``); for other
    sentence shapes, subclass and override :meth:`item_text`, :meth:`demographics` or
    :meth:`user_text`.

    Item text (:meth:`item_text`) is a sequence of sentences: ``"Title (year)."`` when the
    metadata have a title field (the year is left out when it is not a 4-digit year; a
    placeholder title gives ``"Unknown title."``), ``"Genres: a, b."`` when there is a genre field
    (``unknown`` when it is empty), then ``"Field: value."`` for every other non-empty field in
    dict order (``_`` in the name becomes a space, lists are joined with ``", "``, whitespace is
    collapsed). An item without metadata is ``"Item <raw id>."``.

    User text (:meth:`user_text`) is ``"A 24-year-old male user whose occupation is
    technician."`` (unknown parts left out; other user fields follow as ``"Field: value."``,
    except :attr:`unwritten_user_fields`), then the genres the user liked most and the titles
    they liked.

    Args:
        title_fields: fields holding the title, the first present wins.
        year_fields: fields holding the year.
        genre_fields: fields holding the genres.
        placeholder_titles: titles (lower case) that mean "no title".
        placeholder_genres: genres (lower case) that are never a user's favourite.
        unwritten_user_fields: user fields never written (location codes identify people and add
            nothing an encoder can use).
        item_noun: what the items are called in user text (``"Items"``, ``"Movies"``).
        unknown_title: the title written for a placeholder title.
        missing_item: the text of an item without metadata (``{raw_id}`` is filled in).
        genres_sentence: item sentence listing its genres (``{genres}``).
        liked_genres_sentence: user sentence listing the favourite genres (``{genres}``).
        liked_items_sentence: user sentence listing liked titles (``{noun}``, ``{titles}``).
    """

    title_fields: tuple[str, ...] = ("title", "name")
    year_fields: tuple[str, ...] = ("year",)
    genre_fields: tuple[str, ...] = ("genres", "genre")
    placeholder_titles: frozenset[str] = frozenset({"", "unknown"})
    placeholder_genres: frozenset[str] = frozenset({"unknown", "(no genres listed)"})
    unwritten_user_fields: tuple[str, ...] = ("zip_code", "zip", "postcode", "postal_code")
    item_noun: str = "Items"
    unknown_title: str = "Unknown title"
    missing_item: str = "Item {raw_id}."
    genres_sentence: str = "Genres: {genres}."
    liked_genres_sentence: str = "Genres they liked most: {genres}."
    liked_items_sentence: str = "{noun} they liked include: {titles}."

    # -- items --------------------------------------------------------------------------------
    def has_title(self, info: Mapping[str, Any] | None) -> bool:
        """Whether ``info`` has a title field."""
        return info is not None and any(key in info for key in self.title_fields)

    def title(self, info: Mapping[str, Any]) -> str:
        """``"Title (year)"``, ``"Title"`` without a valid year, :attr:`unknown_title` for placeholders."""
        title = str(_first(info, self.title_fields) or "").strip()
        if title.lower() in self.placeholder_titles:
            return self.unknown_title
        year = _year(_first(info, self.year_fields))
        if year is None or title.endswith(f"({year})"):
            return title
        return f"{title} ({year})"

    def item_label(self, raw_id: str, info: Mapping[str, Any] | None) -> str:
        """How a liked item is named in user text: its :meth:`title`, else its raw id."""
        return self.title(info) if info is not None and self.has_title(info) else raw_id

    def item_genres(self, info: Mapping[str, Any] | None) -> list[str]:
        """The genres of an item that can be a favourite (placeholders left out)."""
        if not info:
            return []
        return [g for g in _genres(_first(info, self.genre_fields)) if g.lower() not in self.placeholder_genres]

    def item_text(self, raw_id: str, info: Mapping[str, Any] | None) -> str:
        """The text of one item from its metadata ``info`` (``None`` or empty: :attr:`missing_item`)."""
        if not info:
            return self.missing_item.format(raw_id=raw_id)
        parts = []
        if self.has_title(info):
            parts.append(f"{self.title(info)}.")
        if any(key in info for key in self.genre_fields):
            genres = _genres(_first(info, self.genre_fields)) or ["unknown"]
            parts.append(self.genres_sentence.format(genres=", ".join(genres)))
        parts += _sentences(info, (*self.title_fields, *self.year_fields, *self.genre_fields))
        return " ".join(parts) if parts else self.missing_item.format(raw_id=raw_id)

    # -- users --------------------------------------------------------------------------------
    def demographics(self, info: Mapping[str, Any] | None) -> str:
        """``"A 24-year-old male user whose occupation is technician."``, dropping unknown parts.

        Other fields follow as ``"Field: value."`` sentences, except :attr:`unwritten_user_fields`.
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
        return " ".join([" ".join(words) + ".", *_sentences(info, (*_DEMOGRAPHIC_FIELDS, *self.unwritten_user_fields))])

    def top_genres(self, genre_lists: Iterable[Sequence[str]], k: int) -> list[str]:
        """The ``k`` genres that occur most often in ``genre_lists`` (one list per liked item), ties by name."""
        counts = collections.Counter(genre for genres in genre_lists for genre in genres)
        return [genre for genre, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]

    def user_text(self, info: Mapping[str, Any] | None, genres: Sequence[str], titles: Sequence[str]) -> str:
        """The text of one user: :meth:`demographics`, then the favourite ``genres`` and liked ``titles``.

        A sentence is left out when its list is empty.
        """
        parts = [self.demographics(info)]
        if genres:
            parts.append(self.liked_genres_sentence.format(genres=", ".join(genres)))
        if titles:
            parts.append(self.liked_items_sentence.format(noun=self.item_noun, titles="; ".join(titles)))
        return " ".join(parts)


# ------------------------------------------------------------------------------------------------
# metadata helpers
# ------------------------------------------------------------------------------------------------
def _first(info: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in info and info[key] is not None:
            return info[key]
    return None


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
