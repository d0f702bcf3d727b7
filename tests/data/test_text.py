"""Tests of darec.data.text: item text, user text without leakage, with_text."""

from __future__ import annotations

import numpy as np
import pytest

from darec.data.interactions import InteractionLog, Interactions
from darec.data.text import item_profiles, user_profiles, with_text

ITEMS = {
    "1": {"movie_title": "Heat", "release_year": "1995", "class": "Action Crime Thriller"},
    "2": {"movie_title": "Fargo", "release_year": "1996", "class": "Crime Drama Thriller"},
    "3": {"movie_title": "Alien", "release_year": "1979", "class": "Action Horror Sci-Fi Thriller"},
    "4": {"movie_title": "Babe", "release_year": "1995", "class": "Children's Comedy Drama"},
    "5": {"movie_title": "unkonwn", "release_year": "unkonwn", "class": "unknown"},
}


def _log() -> InteractionLog:
    return InteractionLog(
        users=["7", "7", "7", "7", "7", "8", "8"],
        items=["1", "2", "3", "4", "5", "1", "2"],
        ratings=[4, 5, 5, 4, 3, 5, 5],
        timestamps=[50, 10, 20, 60, 70, 1, 2],
        item_info=ITEMS,
        user_info={"7": {"age": "31", "gender": "F", "occupation": "writer"}, "8": {}},
    )


def _data(valid: list[list[int]] | None = None, test: list[list[int]] | None = None) -> Interactions:
    return Interactions(
        num_users=2,
        num_items=5,
        train=[[0, 0], [0, 1], [0, 2], [0, 4], [1, 0]],
        valid=valid if valid is not None else [[0, 3]],
        test=test if test is not None else [[1, 1]],
        user_ids=["7", "8"],
        item_ids=["1", "2", "3", "4", "5"],
    )


# ------------------------------------------------------------------------------------------------
# items
# ------------------------------------------------------------------------------------------------
def test_item_profiles_movielens_style() -> None:
    assert item_profiles(["1", "5"], ITEMS) == [
        "Heat (1995). Genres: Action, Crime, Thriller.",
        "Unknown title. Genres: unknown.",
    ]


def test_item_profiles_variants() -> None:
    info = {
        "a": {"title": "No Year", "year": "n/a", "genres": ["Drama", "War"]},
        "b": {"title": "Piped (2001)", "year": 2001.0, "genres": "Comedy|Romance"},
        "c": {"movie_title": "Bare"},
        "d": {"movie_title": "unknown", "release_year": "", "class": ""},
        "e": {"brand": "Acme", "price": 3.0, "tags": ["x", "y"], "empty": "", "none": None},
    }
    assert item_profiles(list("abcde"), info) == [
        "No Year. Genres: Drama, War.",
        "Piped (2001). Genres: Comedy, Romance.",
        "Bare.",  # no genre field: no genre sentence
        "Unknown title. Genres: unknown.",
        "Brand: Acme. Price: 3. Tags: x, y.",
    ]


def test_item_profiles_write_every_field_of_own_metadata() -> None:
    info = {
        "a": {"title": "Heat", "year": "1995", "genres": "Action, Crime", "description": "A cop hunts a thief.",
              "lead_actor": "Al  Pacino"},
        "b": {"name": "Widget", "genres": "tools; garden", "price": "3.50"},
        "c": {"description": "  No title,\n only words  "},
        "d": {},
    }
    with pytest.warns(UserWarning, match="1 of 4 item"):
        texts = item_profiles(list("abcd"), info)
    assert texts == [
        "Heat (1995). Genres: Action, Crime. Description: A cop hunts a thief. Lead actor: Al Pacino.",
        "Widget. Genres: tools, garden. Price: 3.50.",
        "Description: No title, only words.",
        "Item d.",
    ]


def test_item_profiles_missing_metadata_warns_once() -> None:
    with pytest.warns(UserWarning, match="2 of 3 item"):
        texts = item_profiles(np.array([1, 2, 3]), {"1": {"title": "T"}})
    assert texts[1:] == ["Item 2.", "Item 3."]


# ------------------------------------------------------------------------------------------------
# users
# ------------------------------------------------------------------------------------------------
def test_user_profiles_format_and_ordering() -> None:
    texts = user_profiles(_data(), _log())
    # titles: rating desc (Fargo, Alien at 5), then latest (Alien t=20 before Fargo t=10), then id
    # genres over TRAIN items 1, 2, 3, 5: Thriller 3, Action 2, Crime 2, Drama 1, Horror 1 (unknown not counted)
    assert texts[0] == (
        "A 31-year-old female user whose occupation is writer. "
        "Genres they liked most: Thriller, Action, Crime, Drama, Horror. "
        "Movies they liked include: Alien (1979); Fargo (1996); Heat (1995); Unknown title."
    )
    assert texts[1] == "A user. Genres they liked most: Action, Crime, Thriller. Movies they liked include: Heat (1995)."


def test_user_profiles_top_k() -> None:
    text = user_profiles(_data(), _log(), top_genres=1, top_titles=1)[0]
    assert text.endswith("Genres they liked most: Thriller. Movies they liked include: Alien (1979).")
    bare = user_profiles(_data(), _log(), top_genres=0, top_titles=0)[0]
    assert bare == "A 31-year-old female user whose occupation is writer."


def test_user_profiles_only_use_training_interactions() -> None:
    log = _log()
    reference = user_profiles(_data(), log)
    assert "Babe" not in reference[0] and "Children's" not in reference[0]  # item 4 is in valid
    changed = user_profiles(_data(valid=[[1, 3], [1, 4]], test=[[0, 3], [1, 2], [1, 1]]), log)
    assert changed == reference
    emptied = user_profiles(_data(valid=[], test=[]), log)
    assert emptied == reference


def test_user_profiles_partial_demographics() -> None:
    log = _log()
    for info, expected in [
        ({"age": 40}, "A 40-year-old user."),
        ({"gender": "M"}, "A male user."),
        ({"sex": "nonbinary", "occupation": "artist"}, "A nonbinary user whose occupation is artist."),
        ({"age": None, "occupation": ""}, "A user."),
    ]:
        log.user_info = {"8": info}
        assert user_profiles(_data(), log, top_genres=0, top_titles=0)[1] == expected


def test_user_profiles_write_other_user_fields_but_never_location_codes() -> None:
    log = _log()
    log.user_info = {"8": {"age": "30", "country": "Norway", "zip_code": "0150", "postcode": "x"}}
    assert user_profiles(_data(), log, top_genres=0, top_titles=0)[1] == "A 30-year-old user. Country: Norway."


def test_user_profiles_without_ratings_or_timestamps_orders_by_item_id() -> None:
    log = InteractionLog(users=["7"] * 3, items=["3", "1", "2"], item_info=ITEMS)
    data = Interactions(1, 3, train=[[0, 0], [0, 1], [0, 2]], user_ids=["7"], item_ids=["1", "2", "3"])
    text = user_profiles(data, log, top_genres=0)[0]
    assert text == "A user. Movies they liked include: Heat (1995); Fargo (1996); Alien (1979)."


def test_user_profiles_generic_items() -> None:
    log = InteractionLog(users=["u", "u"], items=["x", "y"], item_info={"x": {"name": "Widget"}})
    data = Interactions(1, 2, train=[[0, 0], [0, 1]], user_ids=["u"], item_ids=["x", "y"])
    assert user_profiles(data, log) == ["A user. Items they liked include: Widget; y."]


def test_user_profiles_mismatched_log() -> None:
    log = InteractionLog(users=["zz"], items=["qq"])
    with pytest.raises(ValueError, match="shares no"):
        user_profiles(_data(), log)
    partial = _log()
    partial.users, partial.items = partial.users[:3], partial.items[:3]
    partial.ratings, partial.timestamps = partial.ratings[:3], partial.timestamps[:3]
    with pytest.warns(UserWarning, match="2 training pair"):
        user_profiles(_data(), partial)


# ------------------------------------------------------------------------------------------------
# with_text
# ------------------------------------------------------------------------------------------------
def test_with_text_returns_a_filled_copy() -> None:
    data = _data()
    filled = with_text(data, _log(), top_titles=2)
    assert data.user_text is None and data.item_text is None and "text" not in data.protocol
    assert filled.item_text[0] == "Heat (1995). Genres: Action, Crime, Thriller."
    assert filled.user_text == user_profiles(data, _log(), top_titles=2)
    assert filled.protocol["text"]["top_titles"] == 2
    assert np.array_equal(filled.train, data.train)


# ------------------------------------------------------------------------------------------------
# templates
# ------------------------------------------------------------------------------------------------
def test_the_template_follows_the_metadata() -> None:
    from darec.data import METADATA_TEMPLATE, MOVIELENS_TEMPLATE
    from darec.data.text import profile_template

    assert profile_template(ITEMS.values()) is MOVIELENS_TEMPLATE
    assert profile_template([None, {"title": "Heat"}]) is METADATA_TEMPLATE
    # metadata files may use the MovieLens names of the year and genres; only movies are "Movies"
    assert item_profiles(["x"], {"x": {"title": "Heat", "release_year": "1995", "class": "A B"}}) == [
        "Heat (1995). Genres: A, B."
    ]


def test_with_text_takes_a_template() -> None:
    import dataclasses

    from darec.data import MOVIELENS_TEMPLATE

    films = dataclasses.replace(MOVIELENS_TEMPLATE, item_noun="Films", genres_sentence="Kinds: {genres}.")
    filled = with_text(_data(), _log(), top_genres=0, top_titles=1, template=films)
    assert filled.item_text[0] == "Heat (1995). Kinds: Action, Crime, Thriller."
    assert filled.user_text[0] == (
        "A 31-year-old female user whose occupation is writer. Films they liked include: Alien (1979)."
    )
