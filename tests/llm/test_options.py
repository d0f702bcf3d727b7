"""GenerationOptions: defaults, validation and a stable dict for cache keys."""

from __future__ import annotations

import pytest

from darec.llm import GenerationOptions


def test_defaults_and_dict():
    options = GenerationOptions.from_kwargs()
    assert options.greedy and options.as_dict() == {
        "max_new_tokens": 256,
        "temperature": 0.0,
        "top_p": 1.0,
        "seed": None,
        "system": None,
        "response_prefix": None,
        "repetition_penalty": 1.0,
    }
    assert not GenerationOptions(temperature=0.8).greedy


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": 2.0}, "max_new_tokens"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"seed": "1"}, "seed"),
        ({"system": 3}, "system"),
        ({"response_prefix": ""}, "response_prefix"),
        ({"response_prefix": 1}, "response_prefix"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"repetition_penalty": float("inf")}, "repetition_penalty"),
        ({"repetition_penalty": True}, "repetition_penalty"),
    ],
)
def test_bad_values_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GenerationOptions.from_kwargs(**kwargs)


def test_unknown_names_are_listed():
    with pytest.raises(TypeError, match=r"unknown generation options 'a', 'b'; the options are max_new_tokens"):
        GenerationOptions.from_kwargs(a=1, b=2)
