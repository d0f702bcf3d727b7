"""ProfileAnswer.parse: JSON in fences or prose is read; answers without a usable summary are refused by name."""

from __future__ import annotations

import pytest

from darec.profiles import ProfileAnswer, ProfileParseError


@pytest.mark.parametrize(
    "text",
    [
        '{"summary": "Likes noir.", "reasoning": "crime films"}',
        '```json\n{"summary": "Likes noir.", "reasoning": "crime films"}\n```',
        'Sure! Here is the profile:\n```\n{"summary": "Likes noir.", "reasoning": "crime films"}\n```\nHope it helps.',
        'Here it is: {"summary": "Likes noir.", "reasoning": "crime films"} -- done.',
        '{"note": 1} and then {"SUMMARY": "Likes  noir.", "Reasoning": "crime films"}',
        '  {"summary": "Likes noir.",\n  "reasoning": "crime films"}\n',
    ],
    ids=["bare", "json-fence", "fence-in-prose", "prose", "second-object-and-case", "whitespace"],
)
def test_reads_the_object_wherever_it_is(text):
    assert ProfileAnswer.parse(text) == ProfileAnswer("Likes noir.", "crime films")


def test_reasoning_is_optional():
    assert ProfileAnswer.parse('{"summary": "Likes noir."}') == ProfileAnswer("Likes noir.", "")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the answer is empty"),
        ("   \n", "the answer is empty"),
        ("The user likes noir films.", "holds no JSON object"),
        ('{"summary": "Likes noir', "incomplete or malformed"),
        ('{"profile": "Likes noir."}', 'has no "summary" key (keys: profile)'),
        ('{"summary": ""}', 'the "summary" is empty'),
        ('{"summary": "   "}', 'the "summary" is empty'),
        ('{"summary": ["noir"]}', 'the "summary" is not a string but list'),
        ('["summary", "noir"]', "holds no JSON object"),
    ],
)
def test_refuses_answers_without_a_usable_summary(text, problem):
    with pytest.raises(ProfileParseError, match="^user 7: ") as info:
        ProfileAnswer.parse(text, entity="user", id=7)
    assert problem in str(info.value)
    assert (info.value.entity, info.value.id) == ("user", 7)
    assert isinstance(info.value, ValueError)
