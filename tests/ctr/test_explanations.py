"""ExpCTR EC-1: the liked/disliked prompt, the resumable explanation job, and ``darec explanations``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from darec.ctr import CTRDataModule, CTRSamples, ExplanationJob, ExplanationPrompt
from darec.ctr import explanations_command
from darec.ctr.explanations_command import fake_explanation, main, user_rows
from darec.data import InteractionLog
from darec.llm import FakeLLM
from tests.ctr.synthetic import KeywordEncoder, random_log


def _log():
    return random_log(num_users=5, num_items=12, num_pairs=40, seed=3)[0]


@pytest.fixture(scope="module")
def samples() -> CTRSamples:
    return CTRSamples.from_log(_log(), history_len=6)


def _words(text: str) -> int:
    return len(text.split())


# -- the prompt ---------------------------------------------------------------------------------
def test_the_prompt_is_deterministic_and_lists_the_rows_own_history(samples):
    prompt = ExplanationPrompt(max_liked=2, max_disliked=1)
    row = int(max(range(len(samples)), key=lambda r: sum(map(len, samples.history(r)))))
    text = prompt.for_row(samples, row)
    assert text == prompt.for_row(samples, row) == ExplanationPrompt(max_liked=2, max_disliked=1).for_row(samples, row)
    liked, disliked = samples.history(row)
    title = samples.item_titles
    assert f"Target item: {title[samples.item[row]]}" in text
    for k, item in enumerate(liked[:2], start=1):
        assert f"{k}. {title[item]}\n" in text
    if len(liked) > 2:
        assert title[liked[2]] not in text.split("disliked")[0]
    assert text.count("\n1. ") <= 2 and "In one sentence" in text


def test_item_budgets_keep_the_most_recent_titles_and_empty_lists_say_none():
    text = ExplanationPrompt(max_liked=1, max_disliked=0).render("T", ["new", "old"], ["bad"])
    assert "1. new" in text and "old" not in text and "bad" not in text and "(none)" in text


def test_the_token_budget_drops_the_oldest_titles_of_the_longer_list_first():
    prompt = ExplanationPrompt(template="{liked} | {disliked} | {target}", max_tokens=100, tokenizer=_words)
    liked, disliked = ["l1", "l2", "l3"], ["d1", "d2"]
    full = _words(prompt.format("T", liked, disliked))
    assert prompt.fit("T", liked, disliked) == (liked, disliked)
    tight = ExplanationPrompt(template=prompt.template, max_tokens=full - 2, tokenizer=_words)
    assert tight.fit("T", liked, disliked) == (["l1", "l2"], ["d1", "d2"])  # liked was longer: its oldest goes
    tighter = ExplanationPrompt(template=prompt.template, max_tokens=full - 4, tokenizer=_words)
    assert tighter.fit("T", liked, disliked) == (["l1", "l2"], ["d1"])  # a tie: the disliked list's oldest goes
    assert _words(tighter.render("T", liked, disliked)) <= full - 4


def test_a_tokenizer_with_encode_counts_and_an_impossible_budget_is_a_clear_error():
    class Tok:
        def encode(self, text):
            return list(text)  # one token per character

    prompt = ExplanationPrompt(template="{target}: {liked}", max_tokens=12, tokenizer=Tok())
    assert prompt.count_tokens("abc") == 3
    assert prompt.render("T", ["abcdef", "x"], []) == "T: 1. abcdef"
    with pytest.raises(ValueError, match="without any history.*max_tokens=3"):
        ExplanationPrompt(template="{target} and more", max_tokens=3, tokenizer=Tok()).render("T", ["a"], [])


@pytest.mark.parametrize("template", ["{user} likes {target}", "{} {target}", "{liked.x} {titles}"])
def test_an_unknown_template_field_is_refused(template):
    with pytest.raises(ValueError, match="unknown field"):
        ExplanationPrompt(template=template)


# -- the job ------------------------------------------------------------------------------------
def test_the_job_writes_one_line_per_pair_and_a_second_run_writes_nothing(samples, tmp_path):
    out = tmp_path / "expl.jsonl"
    llm = FakeLLM(fake_explanation)
    job = ExplanationJob(llm, batch_size=3, progress=False)
    report = job.run(samples, "train", out)
    rows = ExplanationJob.rows(samples, "train")
    assert report.written == report.requested == len(rows) > 0 and not report.failed
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(r["user"], r["item"]) for r in records} == {
        (str(samples.user_ids[samples.user[r]]), str(samples.item_ids[samples.item[r]])) for r in rows
    }
    assert all(r["split"] == "train" and r["key"] == job.key and r["text"].strip() for r in records)
    assert set(records[0]) >= {"user", "item", "split", "key", "text", "prompt_sha256"}
    before, calls = out.read_text(), len(llm.calls)
    again = ExplanationJob(llm, batch_size=3, progress=False).run(samples, "train", out)
    assert (again.written, again.skipped) == (0, len(rows)) and out.read_text() == before and len(llm.calls) == calls
    other = ExplanationJob(llm, options={"max_new_tokens": 20}, progress=False)  # another key: written again
    assert other.key != job.key and other.run(samples, "train", out, limit=2).written == 2


def test_pairs_and_limit_restrict_the_rows(samples):
    rows = user_rows(samples, 2, seed=0)
    assert len(np.unique(samples.user[rows])) == 2 and rows == user_rows(samples, 2, seed=0)
    picked = ExplanationJob.rows(samples, "all", pairs=rows)
    assert set(picked) <= set(rows) and len(ExplanationJob.rows(samples, "all", pairs=rows, limit=1)) == 1
    assert ExplanationJob.rows(samples, "validate") == ExplanationJob.rows(samples, "valid")
    with pytest.raises(ValueError, match="unknown split"):
        ExplanationJob.rows(samples, "dev")


def test_empty_answers_are_retried_then_reported(samples, tmp_path):
    out = tmp_path / "expl.jsonl"
    rows = ExplanationJob.rows(samples, "test")
    bad_target = samples.item_titles[samples.item[rows[0]]]
    seen: dict[str, int] = {}

    def answer(prompt: str) -> str:
        seen[prompt] = seen.get(prompt, 0) + 1
        if f"Target item: {bad_target}\n" in prompt:
            return "   \n"
        return "" if seen[prompt] == 1 else "A fine sentence."  # empty at first, then good

    job = ExplanationJob(FakeLLM(answer), max_retries=2, progress=False)
    report = job.run(samples, "test", out)
    bad = [r for r in rows if samples.item_titles[samples.item[r]] == bad_target]
    assert len(report.failed) == len(bad) and report.written == len(rows) - len(bad)
    failed = [json.loads(line) for line in job.failed_path(out).read_text().splitlines()]
    assert [f["row"] for f in failed] == sorted(bad)
    assert all(f["attempts"] == 3 and "empty" in f["error"] and f["key"] == job.key for f in failed)
    texts = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    assert texts and all(t == "A fine sentence." for t in texts)


def test_the_data_module_reads_what_the_job_writes(tmp_path):
    log = _log()
    dm = CTRDataModule.from_log(log, history_len=6, batch_size=8, cache_dir=str(tmp_path / "cache"),
                                text_encoder=KeywordEncoder(), explanations=str(tmp_path / "expl.jsonl"))  # fmt: skip
    report = ExplanationJob(FakeLLM(fake_explanation), progress=False).run(dm.samples, "all", tmp_path / "expl.jsonl")
    assert not report.failed
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["text"].shape == (8, 4) and dm.text_dim == 4
    assert dm.protocol["explanations_missing"] == {"train": 0, "valid": 0, "test": 0}  # missing="error" passed
    assert dm.protocol["explanations_not_in_data"] == 0 and dm.protocol["explanation_texts"] == report.written


# -- the command --------------------------------------------------------------------------------
@pytest.fixture
def data(tmp_path) -> dict[str, Path]:
    log = _log()
    source = tmp_path / "log.csv"
    source.write_text("user,item,rating,timestamp\n" + "".join(
        f"{u},{i},{int(r)},{int(t)}\n" for u, i, r, t in zip(log.users, log.items, log.ratings, log.timestamps)))  # fmt: skip
    items = tmp_path / "items.csv"
    items.write_text("item_id,title\n" + "".join(f"{i},Film {i[1:]}\n" for i in sorted(set(log.items.tolist()))))
    return {"source": source, "items": items, "out": tmp_path / "ctr" / "expl.jsonl"}


def _args(data, *more):
    return ["--data", str(data["source"]), "--item-info", str(data["items"]), "--out", str(data["out"]),
            "--backend", "fake", "--no-progress", *more]  # fmt: skip


def test_the_command_writes_the_pairs_of_n_users_and_resumes(data, capsys):
    assert main(_args(data, "--split", "all", "--users", "2", "--seed", "1", "--batch-size", "4")) == 0
    out = capsys.readouterr().out
    assert out.startswith("darec explanations: all explanations: ") and "0 failed" in out
    records = [json.loads(line) for line in data["out"].read_text().splitlines()]
    assert len({r["user"] for r in records}) == 2 and all(r["text"].startswith("The user would see Film ") for r in records)
    before = data["out"].read_text()
    assert main(_args(data, "--split", "all", "--users", "2", "--seed", "1")) == 0
    assert f"0 written, {len(records)} skipped (cached)" in capsys.readouterr().out and data["out"].read_text() == before


def test_the_command_exit_statuses(data, capsys, monkeypatch):
    assert main(_args(data, "--batch-size", "0")) == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err
    assert main(["--data", str(data["source"].with_name("nope.csv")), "--out", str(data["out"]), "--backend", "fake"]) == 2
    monkeypatch.setattr(explanations_command, "fake_explanation", lambda prompt: " ")
    assert main(_args(data, "--limit", "2", "--max-retries", "0")) == 1
    err = capsys.readouterr().err
    assert "failed after 1 attempt(s)" in err and "expl.failed.jsonl" in err


def test_darec_dispatches_explanations(data, monkeypatch, capsys):
    from darec import cli

    monkeypatch.setattr(sys, "argv", ["darec", "explanations", *_args(data, "--limit", "3", "--split", "test")])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 0 and "test explanations: 3 written" in capsys.readouterr().out


def test_pairs_whose_item_has_no_title_are_counted_and_warned_about(tmp_path, caplog):
    log = InteractionLog(["a", "a", "b", "b", "a"], ["x", "y", "x", "z", "z"], ratings=[5, 2, 4, 1, 5],
                         timestamps=[1, 2, 3, 4, 5], item_info={"x": {"title": "Heat (1995)"}})  # fmt: skip
    samples = CTRSamples.from_log(log, fractions=(0.6, 0.2, 0.2))
    assert samples.protocol["items_without_title"] == 2 and sorted(samples.item_ids[samples.untitled_items()]) == ["y", "z"]
    with caplog.at_level("WARNING", logger="darec.ctr.explanation_job"):
        report = ExplanationJob(FakeLLM("Fine."), progress=False).run(samples, "all", tmp_path / "e.jsonl")
    assert report.untitled == 3 and "3 of 5 pairs to explain have a target item without a title" in caplog.text
