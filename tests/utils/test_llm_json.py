"""Tests of darec.utils.llm_json: JSON objects read out of a language model's answer."""

from __future__ import annotations

from darec.utils.llm_json import head, json_values


def test_whole_text_and_prose_around_objects():
    assert json_values('{"a": 1}') == [{"a": 1}]
    assert json_values('Sure! {"a": 1} and {"b": {"c": 2}} hope it helps') == [{"a": 1}, {"b": {"c": 2}}]
    assert json_values("no json here") == []
    assert json_values('broken {"a": 1, then {"b": 2}') == [{"b": 2}]


def test_fences_come_first_and_the_text_after_them_by_default():
    text = 'Here:\n```json\n{"a": 1}\n```\nand\n```\n{"b": 2}\n```'
    assert json_values(text) == [{"a": 1}, {"b": 2}, {"a": 1}, {"b": 2}]
    assert json_values(text, text_after_fences=False) == [{"a": 1}, {"b": 2}]
    assert json_values('plain {"c": 3}', text_after_fences=False) == [{"c": 3}]


def test_lists_count_only_when_asked_for():
    assert json_values('["x", "y"]') == []
    assert json_values('["x", "y"]', lists=True) == [["x", "y"]]
    assert json_values('[{"a": 1}]') == [{"a": 1}]  # objects inside a list are still found


def test_lenient_accepts_raw_newlines_in_strings():
    text = '{"a": "two\nlines"}'
    assert json_values(text) == []
    assert json_values(text, lenient=True) == [{"a": "two\nlines"}]


def test_head_folds_white_space_and_cuts():
    assert head("  a\n\tb  ") == "a b"
    assert head("x" * 80) == "x" * 80
    assert head("x" * 81) == "x" * 77 + "..."
    assert head("abcdefghij", width=8) == "abcde..."
