"""Tests of darec.lane.PreferenceExtractor: retries of failed users only, max_rounds, the miss report,
resume after a kill, no validation or test titles in the prompts, timeouts."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from darec.data import UserSequences
from darec.data.readers.preferences import read_preferences
from darec.lane import PreferenceExtractor
from darec.llm import FakeLLM

TITLES = [f"Film {k}" for k in range(1, 21)]


def sequences(num_users: int = 6) -> UserSequences:
    rng = np.random.default_rng(0)
    seqs = [rng.permutation(np.arange(1, 21))[: 5 + u] for u in range(num_users)]
    return UserSequences(seqs, num_items=20, user_ids=np.array([f"u{u}" for u in range(num_users)]), item_titles=TITLES)


GOOD = {
    0: '{"1": "crime", "2": "comedy", "3": "noir"}',
    1: 'Sure!\n```json\n{"1": "crime", "2": "comedy", "3": "noir"}\n```',
    2: 'I think: {"preferences": ["crime", "comedy", "noir"]} - hope it helps',
}
BAD = {
    3: '{"1": "crime", "2": "comedy"}',  # wrong count
    4: "The user likes movies.",  # garbage
}


class Scripted:
    """Answers by user (the user is read back from the prompt's first title), counting prompts per user;
    ``fixed_after``: users whose answers become good in that round."""

    def __init__(self, data: UserSequences, fixed_after: dict[int, int] | None = None) -> None:
        self.first_title = {data.item_titles[int(s[0]) - 1]: u for u, s in enumerate(data.sequences)}
        self.asked: list[int] = []
        self.fixed_after = fixed_after or {}

    def generate(self, prompts, **options):
        answers = []
        for prompt in prompts:
            user = self.first_title[re.search(r"^1\. (.*)$", prompt, re.MULTILINE)[1]]
            self.asked.append(user)
            rounds = self.asked.count(user)
            if user in GOOD or rounds > self.fixed_after.get(user, 10**9):
                answers.append(GOOD.get(user, GOOD[0]))
            else:
                answers.append(BAD.get(user, "nonsense"))
        return answers


def test_retries_only_failed_users_and_reports_exactly_the_unparsed(tmp_path):
    data = sequences(6)
    llm = Scripted(data, fixed_after={5: 1})  # user 5 fails once, then answers well
    report = PreferenceExtractor(llm, m=3, max_rounds=4, batch_size=2, progress=False).run(data, tmp_path / "p.jsonl")
    assert report.unparsed == [3, 4]
    assert report.written == 4 and report.rounds == 4
    counts = {u: llm.asked.count(u) for u in range(6)}
    assert counts == {0: 1, 1: 1, 2: 1, 3: 4, 4: 4, 5: 2}  # good users once; failing ones max_rounds times
    assert "expected exactly 3" in report.failed[0].error and "no JSON object" in report.failed[1].error
    failed = [json.loads(line) for line in (tmp_path / "p.failed.jsonl").read_text().splitlines()]
    assert [f["id"] for f in failed] == [3, 4] and [f["raw_id"] for f in failed] == ["u3", "u4"]
    prefs = read_preferences(tmp_path / "p.jsonl", ["u0", "u1", "u2", "u5"], 3)
    assert prefs == [["crime", "comedy", "noir"]] * 4


def test_stops_after_max_rounds(tmp_path):
    data = sequences(5)
    llm = Scripted(data)
    report = PreferenceExtractor(llm, m=3, max_rounds=2, progress=False).run(data, tmp_path / "p.jsonl")
    assert report.rounds == 2 and report.unparsed == [3, 4]
    assert llm.asked.count(3) == 2 and llm.asked.count(4) == 2


def test_later_rounds_sample(tmp_path):
    data = sequences(5)
    llm = FakeLLM("garbage")
    PreferenceExtractor(llm, m=3, max_rounds=3, progress=False).run(data, tmp_path / "p.jsonl")
    temperatures = [call["options"]["temperature"] for call in llm.calls]
    assert temperatures[0] == 0.0 and set(temperatures[1:]) == {0.7}


def test_prompts_hold_only_training_titles(tmp_path):
    data = sequences(6)
    llm = FakeLLM('{"1": "a", "2": "b", "3": "c"}')
    extractor = PreferenceExtractor(llm, m=3, progress=False)
    extractor.run(data, tmp_path / "p.jsonl")
    assert len(llm.prompts) == 6
    for u, prompt in enumerate(llm.prompts):
        listed = re.findall(r"^\d+\. (.*)$", prompt, re.MULTILINE)
        assert listed == [TITLES[i - 1] for i in data.train_sequence(u)]
        for held_out in (data.valid_target[u], data.test_target[u]):
            assert TITLES[held_out - 1] not in listed


def test_max_titles_keeps_the_latest(tmp_path):
    data = sequences(3)
    prompt = PreferenceExtractor(FakeLLM("x"), m=3, max_titles=2).prompt(data, 2)
    assert re.findall(r"^\d+\. (.*)$", prompt, re.MULTILINE) == [TITLES[i - 1] for i in data.train_sequence(2)[-2:]]


def test_resumes_after_a_kill_and_keeps_what_was_written(tmp_path):
    data = sequences(6)
    out = tmp_path / "p.jsonl"

    class Killed(Exception):
        pass

    class DiesOnSecondBatch(FakeLLM):
        def generate(self, prompts, **options):
            if len(self.calls) == 1:
                raise Killed
            return super().generate(prompts, **options)

    extractor = PreferenceExtractor(DiesOnSecondBatch('{"1": "a", "2": "b", "3": "c"}'), m=3, batch_size=2, model="fake", progress=False)
    with pytest.raises(Killed):
        extractor.run(data, out)
    assert len(out.read_text().splitlines()) == 2  # the first batch was flushed
    with open(out, "a") as handle:
        handle.write('{"user": "u2", "preferences": ["a", "b"')  # a line cut by the kill
    llm = FakeLLM('{"1": "a", "2": "b", "3": "c"}')
    with pytest.warns(UserWarning, match="not complete"):
        report = PreferenceExtractor(llm, m=3, batch_size=2, model="fake", progress=False).run(data, out)
    assert report.skipped == 2 and report.written == 4 and not report.failed
    assert len(llm.prompts) == 4
    with pytest.warns(UserWarning, match="not complete"):
        assert len(read_preferences(out, data.user_ids.tolist(), 3)) == 6


def test_another_template_or_model_asks_again(tmp_path):
    data = sequences(3)
    out = tmp_path / "p.jsonl"
    answer = '{"1": "a", "2": "b", "3": "c"}'
    PreferenceExtractor(FakeLLM(answer), m=3, model="one", progress=False).run(data, out)
    report = PreferenceExtractor(FakeLLM(answer), m=3, model="two", progress=False).run(data, out)
    assert report.written == 3 and report.skipped == 0


def test_a_timeout_is_reported_and_retried(tmp_path):
    data = sequences(4)

    class TimesOutOnce(FakeLLM):
        def generate(self, prompts, **options):
            if not self.calls:
                self.calls.append({})
                raise TimeoutError("read timed out after 30 s")
            return super().generate(prompts, **options)

    report = PreferenceExtractor(TimesOutOnce('{"1": "a", "2": "b", "3": "c"}'), m=3, batch_size=2, max_rounds=2,
                                 progress=False).run(data, tmp_path / "p.jsonl")  # fmt: skip
    assert report.written == 4 and not report.failed

    always = FakeLLM("x")
    always.generate = lambda prompts, **options: (_ for _ in ()).throw(TimeoutError("timed out"))
    report = PreferenceExtractor(always, m=3, max_rounds=2, progress=False).run(data, tmp_path / "q.jsonl")
    assert report.unparsed == [0, 1, 2, 3] and "user 0: the backend timed out" in report.failed[0].error


def test_data_without_titles_is_refused(tmp_path):
    data = UserSequences([np.array([1, 2, 3])], num_items=3)
    with pytest.raises(ValueError, match="no item titles"):
        PreferenceExtractor(FakeLLM("x"), m=3).run(data, tmp_path / "p.jsonl")
