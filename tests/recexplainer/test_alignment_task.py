"""AlignmentTask: the record, its placeholder check and its JSON-lines file."""

from __future__ import annotations

import json

import pytest

from darec.recexplainer import AlignmentTask, read_tasks, write_tasks


def _ranking() -> AlignmentTask:
    return AlignmentTask(
        "ranking", "hybrid", "Rank for the user <user>, who has seen: A; B: <item> C; <item> D.", "D; C",
        user=2, items=(3, 4), answer_items=(4, 3), placeholders=(("user", 2), ("item", 3), ("item", 4)),
    )  # fmt: skip


def test_round_trip_through_a_file(tmp_path):
    tasks = [_ranking(), AlignmentTask("interest", "behavior", "Will A fit?", "No", user=1, items=(0,), score=-0.5)]
    path = write_tasks(tmp_path / "sub" / "tasks.jsonl", tasks)
    assert read_tasks(path) == tasks
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["number"] for line in lines] == [2, 3]
    assert json.loads(lines[0])["placeholders"] == [["user", 2], ["item", 3], ["item", 4]]


def test_slots_in_prompt_order():
    task = _ranking()
    assert task.placeholder_users == (2,) and task.placeholder_items == (3, 4) and task.number == 2


@pytest.mark.parametrize(
    ("prompt", "placeholders", "match"),
    [
        ("<user> and <item>", (("user", 1),), r"has the placeholders \['user', 'item'\] but ids are given for \['user'\]"),
        ("<item> and <user>", (("user", 1), ("item", 2)), r"\['item', 'user'\] but ids are given for \['user', 'item'\]"),
        ("no token", (("user", 1),), r"has the placeholders \[\] but ids"),
    ],
)
def test_placeholders_must_match_the_prompt(prompt, placeholders, match):
    with pytest.raises(ValueError, match=match):
        AlignmentTask("interest", "intention", prompt, "Yes", placeholders=placeholders)


def test_forms_must_match_their_tokens():
    with pytest.raises(ValueError, match="behaviour-form prompt must hold no placeholders"):
        AlignmentTask("next_item", "behavior", "next for <user>?", "A", placeholders=(("user", 0),))
    with pytest.raises(ValueError, match="intention-form prompt must hold at least one placeholder"):
        AlignmentTask("next_item", "intention", "next for A, B?", "C")
    with pytest.raises(ValueError, match="unknown task 'explain'"):
        AlignmentTask("explain", "behavior", "?", "!")
    with pytest.raises(ValueError, match="unknown form 'latent'"):
        AlignmentTask("next_item", "latent", "?", "!")


def test_bad_lines_name_the_file_and_the_line(tmp_path):
    path = tmp_path / "tasks.jsonl"
    good = json.dumps(_ranking().as_dict())
    for line, match in (
        ('{"task": "ranking"', "not an alignment task"),
        ("[1, 2]", "a JSON list, not an object"),
        (good.replace('"score"', '"colour"'), r"unknown field\(s\) \['colour'\]"),
        ('{"task": "next_item", "form": "behavior"}', r"missing field\(s\) \['prompt', 'response'\]"),
        (good.replace('[["user", 2], ', "[7, "), "`placeholders` must be a list of"),
    ):
        path.write_text(good + "\n\n" + line + "\n", encoding="utf-8")
        with pytest.raises(ValueError, match=f"tasks.jsonl, line 3: .*{match}"):
            read_tasks(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_tasks(tmp_path / "none.jsonl")
    write_tasks(path, [_ranking()])
    with pytest.raises(TypeError, match="writes AlignmentTask records, got dict"):
        write_tasks(path, [_ranking(), _ranking().as_dict()])
    assert read_tasks(path) == [_ranking()]  # a refused write leaves the file as it was
