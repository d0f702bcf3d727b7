"""Tests of darec.text.profiles: ProfileTemplate builds item and user text from plain values."""

from __future__ import annotations

import dataclasses

import pytest

from darec.text import ProfileTemplate

GENERIC = ProfileTemplate()


def test_item_text_from_a_metadata_dict() -> None:
    info = {"title": "Heat", "year": 1995.0, "genres": ["Action", "Crime"], "lead_actor": "Al  Pacino"}
    assert GENERIC.item_text("7", info) == "Heat (1995). Genres: Action, Crime. Lead actor: Al Pacino."
    assert GENERIC.item_text("7", {"name": "Heat (1995)", "year": "1995"}) == "Heat (1995)."
    assert GENERIC.item_text("7", {"title": "unknown", "genres": ""}) == "Unknown title. Genres: unknown."
    assert GENERIC.item_text("7", None) == GENERIC.item_text("7", {}) == "Item 7."


def test_the_generic_template_knows_no_dataset_specific_fields() -> None:
    movielens_style = {"movie_title": "Heat", "release_year": "1995", "class": "Action Crime"}
    assert GENERIC.item_text("7", movielens_style) == "Movie title: Heat. Release year: 1995. Class: Action Crime."
    fields = dataclasses.replace(
        GENERIC, title_fields=("movie_title",), year_fields=("release_year",), genre_fields=("class",)
    )
    assert fields.item_text("7", movielens_style) == "Heat (1995). Genres: Action, Crime."


def test_item_label_and_genres() -> None:
    assert GENERIC.item_label("7", {"title": "Heat", "year": "1995"}) == "Heat (1995)"
    assert GENERIC.item_label("7", {"brand": "Acme"}) == GENERIC.item_label("7", None) == "7"
    assert GENERIC.item_genres({"genres": "Drama|unknown|(no genres listed)|War"}) == ["Drama", "War"]
    assert GENERIC.item_genres(None) == []


def test_top_genres_counts_and_breaks_ties_by_name() -> None:
    lists = [["Drama", "War"], ["Comedy", "Drama"], ["War"], []]
    assert GENERIC.top_genres(lists, 5) == ["Drama", "War", "Comedy"]
    assert GENERIC.top_genres(lists, 1) == ["Drama"]
    assert GENERIC.top_genres(lists, 0) == []


def test_user_text_from_plain_values() -> None:
    info = {"age": "24", "gender": "M", "occupation": "technician", "zip_code": "85711", "country": "NO"}
    assert GENERIC.user_text(info, ["Drama", "War"], ["Heat (1995)", "7"]) == (
        "A 24-year-old male user whose occupation is technician. Country: NO. "
        "Genres they liked most: Drama, War. Items they liked include: Heat (1995); 7."
    )
    assert GENERIC.user_text(None, [], []) == "A user."


def test_sentences_are_replaceable() -> None:
    books = dataclasses.replace(
        GENERIC,
        item_noun="Books",
        liked_items_sentence="{noun} read: {titles}.",
        missing_item="Book {raw_id}.",
        unwritten_user_fields=("zip_code", "country"),
    )
    assert books.user_text({"country": "NO"}, [], ["Emma"]) == "A user. Books read: Emma."
    assert books.item_text("3", None) == "Book 3."


def test_moved_builders_say_where_they_went() -> None:
    import darec.text

    for name in ("with_text", "item_profiles", "user_profiles"):
        with pytest.raises(AttributeError, match=f"darec.data.{name}"):
            getattr(darec.text, name)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        darec.text.nothing  # noqa: B018
