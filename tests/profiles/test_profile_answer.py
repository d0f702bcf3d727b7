"""ProfileAnswer.parse: JSON in fences or prose is read; answers without a usable summary are refused by name."""

from __future__ import annotations

import re

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


def test_an_object_cut_after_its_summary_keeps_the_summary():
    assert ProfileAnswer.parse('{"summary": "Likes noir.", "reasoning": "three crime fi') == ProfileAnswer(
        "Likes noir.", "three crime fi"
    )
    assert ProfileAnswer.parse('{"summary": "Likes noir.", "reas').summary == "Likes noir."


def test_a_prefilled_answer_cut_in_its_summary_keeps_its_complete_sentences():
    cut = '{"summary": "A heist thriller (1995). Fans of \\"crime\\" films will like it. The cast'
    with pytest.raises(ProfileParseError, match="incomplete or malformed"):
        ProfileAnswer.parse(cut)  # only a prefilled answer may end inside its summary
    answer = ProfileAnswer.parse(cut, partial=True)
    assert answer == ProfileAnswer('A heist thriller (1995). Fans of "crime" films will like it.', "")
    assert ProfileAnswer.parse('{"summary": "1. A heist film. 2. It won prizes. 3. It', partial=True).summary == (
        "1. A heist film. 2. It won prizes."  # not "... prizes. 3."
    )
    with pytest.raises(ProfileParseError, match="cut before its first sentence ended"):
        ProfileAnswer.parse('{"summary": "A heist thriller with', partial=True)


def test_bare_quotes_inside_the_summary_do_not_end_it():
    text = '{"summary": "Enjoys "Heat" and "Big", mostly crime.", "reasoning": "two films"}'
    assert ProfileAnswer.parse(text, partial=True) == ProfileAnswer('Enjoys "Heat" and "Big", mostly crime.', "two films")


@pytest.mark.parametrize("partial", [False, True])
def test_degenerate_summaries_are_refused_and_repeated_sentences_kept_once(partial):
    loop = '{"summary": "Genres: Animation, Comedy' + ", Comedy" * 20 + '"}'
    with pytest.raises(ProfileParseError, match="repeats itself"):
        ProfileAnswer.parse(loop, partial=partial)
    with pytest.raises(ProfileParseError, match="repeats itself"):
        ProfileAnswer.parse(loop[:-2], partial=True)  # cut as well
    for text, problem in [
        ('{"summary": "This user enjoys [genre] and avoids [genre]."}', "placeholder '[genre]'"),
        ('{"summary": "The user enjoys <the genre>."}', "placeholder '<the genre>'"),
        ('{"summary": "20! 20"}', "fewer than two words"),
    ]:
        with pytest.raises(ProfileParseError, match=re.escape(problem)):
            ProfileAnswer.parse(text, partial=partial)
    twice = '{"summary": "A quiet drama about two sisters in Paris. A quiet drama about two sisters in Paris. Slow."}'
    assert ProfileAnswer.parse(twice, partial=partial).summary == "A quiet drama about two sisters in Paris. Slow."
