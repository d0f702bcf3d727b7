"""Tests of darec.lane.CoTExplainer: the rendered prompt (snapshot), parsing, typed Unparsed results."""

from __future__ import annotations

import pytest

from darec.lane import CoTExplainer, Explanation, Unparsed
from darec.llm import FakeLLM

SNAPSHOT = """\
You explain why a recommender system suggests an item to a user. Think step by step.

The user's history, oldest first:
1. Heat (1995)
2. Ronin (1998)
3. Big (1988)

The user's preferences, each with the weight the recommender gives it (the weights sum to 1):
1. crime thrillers (weight 0.6123)
2. 1980s comedies (weight 0.3000)
3. Robert De Niro (weight 0.0877)

The item to explain: Casino (1995)

Step 1: for each preference, justify it from the history.
Step 2: introduce the item, and rate how well it fits each preference, from 0 (not at all) to 1 (perfectly).
Step 3: combine the fitness values and the weights into the probability that the user interacts with the item: Low, Medium or High, and give the reason.
Step 4: write a short personalised recommendation of the item for this user.

Answer in exactly this format, with all 3 preferences in steps 1 and 2:
Step 1:
1. <justification of preference 1>
2. <justification of preference 2>
3. <justification of preference 3>
Step 2:
1. <fitness for preference 1, from 0 to 1>
2. <fitness for preference 2, from 0 to 1>
3. <fitness for preference 3, from 0 to 1>
Step 3: <Low, Medium or High> - <reason>
Step 4: <recommendation>"""

ARGS = (["Heat (1995)", "Ronin (1998)", "Big (1988)"], ["crime thrillers", "1980s comedies", "Robert De Niro"],
        [0.61234, 0.3, 0.08766], "Casino (1995)")  # fmt: skip

CANNED = """\
**Step 1:**
1. Heat and Ronin are crime thrillers.
2. Big is a 1980s comedy.
3. De Niro stars in Heat and Ronin.

**Step 2:** Casino (1995) is Scorsese's crime epic.
1. Crime thrillers: 0.9
2. 1980s comedies: 0.1
3. Robert De Niro: 1

**Step 3:** High - it fits the heaviest preference and the third one perfectly.

**Step 4:** Since you loved Heat, watch Casino next.
"""


def test_the_rendered_prompt_matches_the_snapshot():
    assert CoTExplainer().prompt(*ARGS) == SNAPSHOT


def test_history_is_cut_to_the_latest_titles():
    prompt = CoTExplainer(max_history=2).prompt(*ARGS)
    assert "1. Ronin (1998)\n2. Big (1988)\n\n" in prompt and "Heat (1995)" not in prompt


def test_parses_fitness_verdict_and_text_of_a_canned_answer():
    result = CoTExplainer.parse(CANNED, 3)
    assert isinstance(result, Explanation) and result.parsed
    assert result.fitness == (0.9, 0.1, 1.0)
    assert result.verdict == "High" and result.level == 2
    assert result.reason == "it fits the heaviest preference and the third one perfectly."
    assert result.recommendation == "Since you loved Heat, watch Casino next."
    assert result.justifications[1] == "Big is a 1980s comedy."
    assert result.as_dict()["fitness"] == [0.9, 0.1, 1.0] and result.text == CANNED


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("", "empty"),
        ("The user would probably like it.", "no 'Step 2'"),
        (CANNED.replace("3. Robert De Niro: 1\n", ""), "2 fitness value"),
        (CANNED.replace("0.9", "high"), "line 1: no fitness value"),
        (CANNED.replace("High -", "Likely -"), "names no interaction probability"),
        (CANNED.split("**Step 3:**")[0], "no 'Step 3'"),
    ],
)
def test_malformed_answers_are_unparsed_not_errors(answer, problem):
    result = CoTExplainer.parse(answer, 3)
    assert isinstance(result, Unparsed) and not result.parsed
    assert problem in result.problem and result.text == answer


def test_explain_asks_the_backend_once_per_pair():
    llm = FakeLLM(CANNED)
    results = CoTExplainer(llm).explain_many([ARGS, ARGS])
    assert [r.verdict for r in results] == ["High", "High"] and llm.prompts == [SNAPSHOT, SNAPSHOT]
    assert llm.calls[0]["options"]["max_new_tokens"] == 512


def test_mismatched_preferences_and_weights_are_refused():
    with pytest.raises(ValueError, match="one weight per preference"):
        CoTExplainer().prompt(["Heat"], ["a", "b"], [1.0], "Up")
    with pytest.raises(ValueError, match="no title"):
        CoTExplainer().prompt(["Heat"], ["a"], [1.0], "")
