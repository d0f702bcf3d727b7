"""FakeLLM: scripted answers, recorded prompts, fixed scores, and the same input checks as the real backends."""

from __future__ import annotations

import math

import pytest
import torch

from darec.llm import ChoiceScorer, FakeLLM, LLMBackend


def test_a_list_is_cycled_across_calls():
    llm = FakeLLM(["a", "b", "c"])
    assert llm.generate(["1", "2"]) == ["a", "b"]
    assert llm.generate(["3", "4", "5"]) == ["c", "a", "b"]
    assert llm.generate(["6", "7", "8", "9"]) == ["c", "a", "b", "c"]
    assert FakeLLM("same").generate(["1", "2"]) == ["same", "same"]


def test_a_callable_answers_each_prompt():
    assert FakeLLM(str.upper).generate(["ab", "cd"]) == ["AB", "CD"]


def test_rules_the_first_match_wins_and_a_default_catches_the_rest():
    llm = FakeLLM({r"user (\d+)": lambda m: f"user {m[1]}", r"user|item": "entity"}, default="?")
    assert llm.generate(["user 12 likes", "item 3", "nothing"]) == ["user 12", "entity", "?"]
    with pytest.raises(ValueError, match=r"no rule matches prompt 1 \('nothing'\)"):
        FakeLLM({"user": "u"}).generate(["user", "nothing"])


def test_prompts_and_options_are_recorded():
    llm = FakeLLM()
    llm.generate(["p1", "p2"], max_new_tokens=5, system="sys")
    llm.choice_logits("q", ["Yes", "No"])
    assert llm.prompts == ["p1", "p2", "q"]
    assert llm.calls[0]["options"] == {"max_new_tokens": 5, "temperature": 0.0, "top_p": 1.0, "seed": None, "system": "sys", "response_prefix": None, "repetition_penalty": 1.0}
    assert llm.calls[1] == {"prompt": "q", "options": ["Yes", "No"]}


def test_a_response_prefix_starts_every_answer_like_a_prefilled_model():
    llm = FakeLLM({"user": 'likes noir."}'})
    assert llm.generate(["user 1", "user 2"], response_prefix='{"summary": "') == ['{"summary": "likes noir."}'] * 2
    assert llm.prompts == ["user 1", "user 2"]  # the rules see the prompt, not the prefix
    assert llm.calls[0]["options"]["response_prefix"] == '{"summary": "'
    assert llm.generate(["user 3"]) == ['likes noir."}']


def test_fixed_logits():
    assert isinstance(FakeLLM(), LLMBackend) and isinstance(FakeLLM(), ChoiceScorer)
    torch.testing.assert_close(FakeLLM().choice_logits("q", ["a", "b", "c"]), torch.full((3,), -math.log(3)))
    scores = FakeLLM(logits={"Yes": -0.5}).choice_logits("q", ["Yes", "No"])
    assert scores[0].item() == -0.5 and scores[1].item() == -math.inf
    by_length = FakeLLM(logits=lambda prompt, options: [-len(o) for o in options])
    assert by_length.choice_logits("q", ["ab", "c"]).tolist() == [-2.0, -1.0]
    with pytest.raises(ValueError, match="returned 1 scores for 2 options"):
        FakeLLM(logits=lambda prompt, options: [0.0]).choice_logits("q", ["a", "b"])


def test_input_is_checked_like_the_real_backends():
    llm = FakeLLM()
    with pytest.raises(ValueError, match="prompt 2 is empty"):
        llm.generate(["a", "b", "  "])
    with pytest.raises(TypeError, match="prompt 0 is a int"):
        llm.generate([3])
    with pytest.raises(TypeError, match="got one string"):
        llm.generate("abc")
    with pytest.raises(TypeError, match="unknown generation option 'temp'"):
        llm.generate(["a"], temp=0.5)
    with pytest.raises(ValueError, match="temperature must be"):
        llm.generate(["a"], temperature=-1)
    assert llm.prompts == []  # nothing is recorded from a refused call
    with pytest.raises(ValueError, match="non-empty list"):
        FakeLLM([])
