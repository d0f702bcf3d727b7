"""``darec preferences`` end to end with the fake backend on a small synthetic sequence data set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from darec.data import UserSequences
from darec.data.readers.preferences import read_preferences
from darec.lane import PreferenceAnswer
from darec.lane.preferences_command import fake_preferences, load_sequences, main
from darec.llm import FakeLLM
from tests.lane.conftest import genre_log

DAREC = Path(sys.executable).with_name("darec")
USERS = 6


@pytest.fixture
def data(tmp_path) -> dict[str, Path]:
    """An interaction file of 6 users with timestamps, and the titles of its items in another file."""
    log, _ = genre_log(num_users=USERS)
    inter = tmp_path / "inter.csv"
    inter.write_text("user,item,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in zip(log.users, log.items, log.timestamps)))
    items = tmp_path / "items.csv"
    used = sorted(set(log.items))  # only items with interactions: no warning about the others
    items.write_text("item_id,title\n" + "".join(f"{item},Film {int(item[1:])}\n" for item in used))
    return {"inter": inter, "items": items, "out": tmp_path / "lane" / "prefs.jsonl"}


def _args(data, *more):
    return ["--data", str(data["inter"]), "--item-info", str(data["items"]), "--out", str(data["out"]),
            "--backend", "fake", "--no-progress", *more]  # fmt: skip


def _sequences(data) -> UserSequences:
    return load_sequences(data["inter"], item_info=str(data["items"]))


def test_the_fake_backend_writes_m_preferences_per_user_that_the_reader_reads_and_resumes(data, capsys):
    assert main(_args(data, "--m", "3")) == 0
    report = "preferences: 6 written, 0 skipped (cached), 0 not parsed, of 6, in 1 round(s)"
    assert capsys.readouterr().out.strip() == f"darec preferences: {report}; in {data['out']}"
    seqs = _sequences(data)
    prefs = read_preferences(data["out"], seqs.user_ids.tolist(), 3)
    assert len(prefs) == USERS and all(len(row) == 3 == len({p.lower() for p in row}) for row in prefs)
    for u, row in enumerate(prefs):  # taken from the user's latest training titles, as the prompt lists them
        latest = [seqs.item_titles[int(i) - 1] for i in seqs.train_sequence(u)[::-1]]
        assert row == [f"enjoys {title}" for title in latest[:3]]
    lines = data["out"].read_text().splitlines()

    assert main(_args(data, "--m", "3")) == 0  # the same command again: everything is cached
    assert "0 written, 6 skipped (cached), 0 not parsed, of 6, in 0 round(s)" in capsys.readouterr().out
    assert data["out"].read_text().splitlines() == lines

    assert main(_args(data)) == 0  # the default m is 5: another key, new lines in the same file
    assert "6 written, 0 skipped" in capsys.readouterr().out
    assert all(len(row) == 5 for row in read_preferences(data["out"], seqs.user_ids.tolist(), 5))


def test_limit_extracts_the_first_users_and_the_rest_later(data, capsys):
    assert main(_args(data, "--limit", "2")) == 0
    assert "2 written, 0 skipped (cached), 0 not parsed, of 2" in capsys.readouterr().out
    written = [json.loads(line) for line in data["out"].read_text().splitlines()]
    assert [line["id"] for line in written] == [0, 1]
    assert [line["user"] for line in written] == _sequences(data).user_ids.tolist()[:2]
    assert main(_args(data, "--limit", "100")) == 0
    assert "4 written, 2 skipped (cached), 0 not parsed, of 6" in capsys.readouterr().out


def test_lines_written_in_python_with_the_same_model_and_options_count_as_done(data, capsys):
    from darec.lane import PreferenceExtractor

    llm = FakeLLM(lambda prompt: fake_preferences(prompt, 5))
    PreferenceExtractor(llm, m=5, progress=False).run(_sequences(data), data["out"], users=[0, 1, 2])
    assert main(_args(data)) == 0
    assert "3 written, 3 skipped (cached), 0 not parsed, of 6" in capsys.readouterr().out


def test_repetition_penalty_is_1_3_for_hf_by_default_and_1_otherwise(data, capsys, monkeypatch):
    import darec.llm
    from darec.profiles.command import HF_REPETITION_PENALTY

    made = []

    class RecordingHF(FakeLLM):
        def __init__(self, model, **kwargs) -> None:
            super().__init__(lambda prompt: fake_preferences(prompt, 5))
            self.name, self.kwargs = str(model), kwargs
            made.append(self)

    monkeypatch.setattr(darec.llm, "HFCausalLM", RecordingHF)
    args = _args(data, "--backend", "hf", "--limit", "2", "--batch-size", "2", "--threads", "1")
    assert main(args) == 0
    assert made[-1].name == "smollm2" and made[-1].kwargs == {"max_batch_size": 2, "num_threads": 1, "progress": False}
    assert made[-1].calls[0]["options"]["repetition_penalty"] == HF_REPETITION_PENALTY > 1
    # small local models are asked for a numbered list, the answer started for them with "1."
    from darec.lane import LIST_PREFILL

    assert made[-1].calls[0]["options"]["response_prefix"] == LIST_PREFILL
    assert "as a numbered list from 1 to 5" in made[-1].calls[0]["prompts"][0]
    assert "2 written" in capsys.readouterr().out
    assert main([*args, "--repetition-penalty", "1"]) == 0
    assert made[-1].calls[0]["options"]["repetition_penalty"] == 1.0
    assert "2 written, 0 skipped" in capsys.readouterr().out  # another setting: another key


def test_users_that_fail_are_reported_listed_and_exit_1(data, capsys, monkeypatch):
    import darec.lane.preferences_command as command

    monkeypatch.setattr(command, "_backend", lambda args: (FakeLLM("I like films."), "fake"))
    assert main(_args(data, "--limit", "3", "--max-rounds", "2")) == 1
    captured = capsys.readouterr()
    assert "0 written, 0 skipped (cached), 3 not parsed, of 3, in 2 round(s)" in captured.out
    failed = data["out"].parent / "prefs.failed.jsonl"
    assert f"the failed users are listed in {failed}" in captured.err
    assert "failed after 2 attempt(s): user 0: the answer holds no JSON object" in captured.err
    assert [json.loads(line)["id"] for line in failed.read_text().splitlines()] == [0, 1, 2]


def test_ctrl_c_keeps_what_was_written_and_says_how_to_resume(data, capsys, monkeypatch):
    import darec.lane.preferences_command as command

    calls = []

    def interrupted(prompt):
        calls.append(prompt)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return fake_preferences(prompt, 5)

    monkeypatch.setattr(command, "_backend", lambda args: (FakeLLM(interrupted), "fake"))
    assert main(_args(data, "--batch-size", "2")) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        f"darec preferences: interrupted; 2 user(s) written by this run are kept in {data['out']}; "
        "run the same command again to resume"
    )
    monkeypatch.undo()
    assert main(_args(data)) == 0
    assert "4 written, 2 skipped (cached)" in capsys.readouterr().out


def test_bad_arguments_end_with_one_line_and_exit_2(data, tmp_path, capsys, monkeypatch):
    cases = [
        (["--data", str(tmp_path / "nowhere"), "--out", str(data["out"]), "--backend", "fake"], "no data at"),
        (["--data", str(data["inter"]), "--out", str(data["out"]), "--backend", "fake"], "give --item-info"),
        (_args(data, "--m", "0"), "--m must be at least 1, got 0"),
        (_args(data, "--limit", "0"), "--limit must be at least 1, got 0"),
        (_args(data, "--temperature", "-1"), "temperature must be a finite number >= 0"),
        (_args(data, "--backend", "openai"), "--backend openai needs --model"),
        (["--data", "ml100k", "--item-info", str(data["items"]), "--out", str(data["out"])], "--item-info is for a --data path"),
    ]
    template = tmp_path / "bad.txt"
    template.write_text("{title}")
    cases.append((_args(data, "--template", str(template)), "{count}, {titles} and {m}"))
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("darec preferences: error: ") and err.count("\n") == 1 and message in err, err
    assert not data["out"].exists()
    monkeypatch.setenv("DAREC_DEBUG", "1")
    with pytest.raises(FileNotFoundError, match="no data at"):
        main(cases[0][0])


def test_fake_preferences_are_m_distinct_parseable_preferences_even_from_few_titles():
    prompt = "Movies:\n1. Heat (1995)\n2. heat  (1995)\n3. Big (1988)\n\nName 5."
    prefs = PreferenceAnswer.parse(fake_preferences(prompt, 5), 5).preferences
    assert prefs[:2] == ("enjoys Big (1988)", "enjoys heat (1995)") and len(set(prefs)) == 5
    assert fake_preferences(prompt.replace("Big", "Up"), 5) != fake_preferences(prompt, 5)


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: darec preferences")
    for option in ("--data", "--out", "--backend", "--m", "--max-rounds", "--max-titles", "--limit", "--repetition-penalty"):
        assert f"{option} " in out


def test_the_darec_command_dispatches_preferences(data, tmp_path):
    """One subprocess (importing darec takes seconds): the console script passes the arguments and the exit status."""
    command = [str(DAREC)] if DAREC.exists() else [sys.executable, "-m", "darec.cli"]
    env = {**os.environ, "DAREC_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("DAREC_DEBUG", None)
    result = subprocess.run(
        [*command, "preferences", *_args(data, "--limit", "2")], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "darec preferences: preferences: 2 written, 0 skipped (cached), 0 not parsed, of 2" in result.stdout
    assert len(data["out"].read_text().splitlines()) == 2


@pytest.mark.parametrize("backend", ["fake", "hf"])
def test_the_list_format_is_prefilled_and_read_and_json_is_not(data, capsys, monkeypatch, backend):
    import darec.llm

    made = []

    class RecordingHF(FakeLLM):
        def __init__(self, model, **kwargs) -> None:
            super().__init__(lambda prompt: fake_preferences(prompt, 3, numbered=True))
            made.append(self)

    monkeypatch.setattr(darec.llm, "HFCausalLM", RecordingHF)
    assert main(_args(data, "--m", "3", "--format", "list", "--backend", backend)) == 0
    assert "6 written, 0 skipped (cached), 0 not parsed" in capsys.readouterr().out
    records = [json.loads(line) for line in data["out"].read_text().splitlines()]
    assert all(r["raw"].startswith("1. enjoys ") and "\n2. enjoys " in r["raw"] for r in records)
    assert all(len(r["preferences"]) == 3 and r["preferences"][0].startswith("enjoys ") for r in records)
    if backend == "fake":  # --format json: the JSON prompt, no prefill
        assert main(_args(data, "--m", "3", "--format", "json")) == 0
        assert "6 written, 0 skipped" in capsys.readouterr().out
        last = json.loads(data["out"].read_text().splitlines()[-1])
        assert last["raw"].startswith("{")
