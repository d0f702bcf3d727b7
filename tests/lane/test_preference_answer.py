"""Tests of darec.lane.PreferenceAnswer: the last JSON object, fences and prose, exact counts."""

from __future__ import annotations

import pytest

from darec.lane import PreferenceAnswer, PreferenceParseError


@pytest.mark.parametrize(
    "text",
    [
        '{"1": "a", "2": "b", "3": "c"}',
        'Sure!\n```json\n{"1": "a", "2": "b", "3": "c"}\n```\nEnjoy.',
        'Here you go: {"preferences": ["a", "b", "c"]} Hope it helps.',
        '{"1": "x", "2": "y"} and, corrected: {"likes": "a", "also": "b", "and": "c"}',  # the last object wins
        '["a", "b", "c"]',
    ],
)
def test_parses_three_preferences(text):
    assert PreferenceAnswer.parse(text, 3).preferences == ("a", "b", "c")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("I cannot do that.", "no JSON object and no numbered list"),
        ("1. a\n3. b\n4. c", "jumps from 1 to 3"),
        ("1. a\n2. b", r"lists 2 preference\(s\), expected exactly 3"),
        ("1. a\n2. b\n3. A", "not distinct"),
        ('{"1": "a", "2": "b"}', r"lists 2 preference\(s\), expected exactly 3"),
        ('{"1": "a", "2": "b", "3": "c", "4": "d"}', "lists 4"),
        ('{"1": "a", "2": "A ", "3": "c"}', "not distinct"),
        ('{"1": {"x": 1}, "2": "b", "3": "c"}', "not a dict or list"),
    ],
)
def test_refuses_unusable_answers_naming_the_user(text, problem):
    with pytest.raises(PreferenceParseError, match=problem) as info:
        PreferenceAnswer.parse(text, 3, user=7)
    assert str(info.value).startswith("user 7: ") and info.value.user == 7


@pytest.mark.parametrize(
    "text",
    [
        "1. a\n2. b\n3. c",
        "1) a\n2) b\n3) c",
        "Sure, here they are:\n\n1. a\n2.  b \n- 3. c\n",
        "1.a\n2. b\n3. c",  # a prefilled "1." followed directly by the model's text
    ],
)
def test_reads_a_numbered_list_when_there_is_no_json(text):
    assert PreferenceAnswer.parse(text, 3).preferences == ("a", "b", "c")


def test_lines_that_carry_on_an_item_are_joined_to_it():
    text = "1. Crime films,\n   mostly from the 1970s\n2. comedies\n\n3. westerns"
    assert PreferenceAnswer.parse(text, 3).preferences == ("Crime films, mostly from the 1970s", "comedies", "westerns")
