"""ProfileJob: one appended file, resume after a kill, keys, retries, failure reports, clear fatal errors."""

from __future__ import annotations

import json
import re
import warnings

import pytest

from darec.data import read_profiles
from darec.llm import EndpointUnreachableError, FakeLLM, GenerationError, ModelNotFoundError, PromptTruncatedWarning
from darec.profiles import ProfileJob, ProfilePrompts, ProfileSource


def _answer(prompt: str) -> str:
    """A profile that names the prompt's first listed item (or its first line)."""
    first = next((line[2:] for line in prompt.splitlines() if line.startswith("- ")), prompt.splitlines()[0])
    return json.dumps({"summary": f"likes {first}", "reasoning": "the first item"})


class Killed(BaseException):
    """Stands for the process being killed (not an Exception: nothing may catch it)."""


class DiesAfter(FakeLLM):
    """Answers like ``_answer`` until ``budget`` prompts were answered, then dies in the middle of a batch."""

    def __init__(self, budget: int) -> None:
        super().__init__(_answer)
        self.budget = budget

    def generate(self, prompts, **options):
        if len(self.prompts) + len(prompts) > self.budget:
            raise Killed
        return super().generate(prompts, **options)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _job(backend, profile_data, out, **kwargs):
    data, log = profile_data
    return ProfileJob(backend, ProfileSource(data, log), kwargs.pop("entity", "item"), out, progress=False, **kwargs)


def test_lines_hold_what_the_readers_need(profile_data, tmp_path):
    out = tmp_path / "items.jsonl"
    report = _job(FakeLLM(_answer), profile_data, out, batch_size=4).run()
    assert (report.written, report.skipped, report.failed, report.complete) == (6, 0, [], True)
    lines = _lines(out)
    assert [line["id"] for line in lines] == list(range(6))
    assert {"entity", "id", "raw_id", "key", "summary", "reasoning", "raw", "prompt_sha256"} <= set(lines[0])
    assert lines[0]["entity"] == "item" and lines[0]["raw_id"] == "i0" and lines[0]["summary"].startswith("likes ")
    assert json.loads(lines[0]["raw"])["summary"] == lines[0]["summary"]
    summary = json.loads((tmp_path / "items.summary.json").read_text())
    assert summary["complete"] and summary["written"] == 6 and summary["key"] == lines[0]["key"]
    assert not (tmp_path / "items.failed.jsonl").exists()


def test_a_killed_run_resumes_without_generating_anything_twice(profile_data, tmp_path):
    out = tmp_path / "items.jsonl"
    dying = DiesAfter(budget=3)  # batches of 2: the first one is written, the second dies
    with pytest.raises(Killed):
        _job(dying, profile_data, out, batch_size=2, model="scripted").run()
    written = _lines(out)
    assert [line["id"] for line in written] == [0, 1]  # flushed after its batch, kept after the kill
    assert not (tmp_path / "items.summary.json").exists()  # the run did not end

    with out.open("a") as handle:  # the kill also cut a line in the middle
        handle.write('{"entity": "item", "id": 2, "summ')
    again = FakeLLM(_answer)
    with pytest.warns(UserWarning, match="not complete profiles"):
        report = _job(again, profile_data, out, batch_size=2, model="scripted").run()
    assert (report.written, report.skipped, report.complete) == (4, 2, True)
    asked = {re.search(r"The item: ([A-Za-z]+)", p)[1] for p in again.prompts}
    assert asked == {"Alien", "Fargo", "Babe", "Casino"}  # never Heat or Big again
    profiles = read_profiles(out, "item")
    assert sorted(profiles) == list(range(6))
    assert out.read_text().startswith(json.dumps(written[0]))  # nothing written before was rewritten

    third = FakeLLM(_answer)
    assert _job(third, profile_data, out, model="scripted").run().skipped == 6 and third.prompts == []
    assert _job(FakeLLM(_answer), profile_data, out).run().written == 6  # another model (FakeLLM's class name)


def test_a_changed_template_model_or_option_writes_again(profile_data, tmp_path):
    out = tmp_path / "users.jsonl"
    first = _job(FakeLLM(_answer), profile_data, out, entity="user")
    first.run()
    variants = {
        "template": {"prompts": ProfilePrompts(user_template='{items}\nReply {{"summary": ...}}')},
        "model": {"model": "another-model"},
        "options": {"options": {"max_new_tokens": 64}},
    }
    keys = {first.key}
    for name, change in variants.items():
        llm = FakeLLM(_answer)
        job = _job(llm, profile_data, out, entity="user", **change)
        report = job.run()
        assert job.key not in keys, name
        keys.add(job.key)
        assert (report.written, report.skipped) == (4, 0), name
        assert len(llm.prompts) == 4, name
    assert _job(FakeLLM(_answer), profile_data, out, entity="user").run().skipped == 4  # the first key is still there
    lines = _lines(out)
    assert len(lines) == 16 and len({line["key"] for line in lines}) == 4  # appended, never truncated


def test_prefill_starts_the_answers_is_read_partially_and_changes_the_key(profile_data, tmp_path):
    from darec.profiles.profile_job import PREFILL

    out = tmp_path / "items.jsonl"
    plain = _job(FakeLLM(_answer), profile_data, out)
    plain.run()
    continuation = FakeLLM(lambda prompt: "A film. Fans of " + prompt.split("The item: ")[1].split()[0] + " like it. Its")
    job = _job(continuation, profile_data, out, prefill=True)
    assert job.key != plain.key and job.options.response_prefix == PREFILL
    report = job.run()
    assert (report.written, report.skipped, report.complete) == (6, 0, True)
    assert all(call["options"]["response_prefix"] == PREFILL for call in continuation.calls)
    line = _lines(out)[-6]  # the first line of the prefilled run
    assert line["raw"] == PREFILL + "A film. Fans of Heat like it. Its"  # cut by the token limit: no closing quote
    assert line["summary"] == "A film. Fans of Heat like it." and line["key"] == job.key
    assert _job(FakeLLM(_answer), profile_data, out, prefill=False).run().skipped == 6  # the plain key is unchanged
    with pytest.raises(ValueError, match="drop response_prefix"):
        _job(FakeLLM(_answer), profile_data, out, prefill=True, options={"response_prefix": "Profile:"})


def test_without_prefill_a_cut_summary_is_a_failure(profile_data, tmp_path):
    llm = FakeLLM('{"summary": "A film. Fans of it like it. Its')
    report = _job(llm, profile_data, tmp_path / "items.jsonl", max_retries=0).run()
    assert report.written == 0 and "incomplete or malformed" in report.failed[0].error
    assert all("response_prefix" not in call["options"] or call["options"]["response_prefix"] is None for call in llm.calls)


def test_changed_data_behind_the_same_ids_are_written_again(profile_data, tmp_path):
    data, log = profile_data
    out = tmp_path / "users.jsonl"
    ProfileJob(FakeLLM(_answer), ProfileSource(data, log), "user", out, progress=False).run()
    fewer = data.__class__(**{**data.__dict__, "train": data.train[1:], "allow_cold_users": False})  # ua loses Heat
    llm = FakeLLM(_answer)
    report = ProfileJob(llm, ProfileSource(fewer, log), "user", out, progress=False).run()
    assert (report.written, report.skipped) == (1, 3) and "Big" in llm.prompts[0]


def test_unusable_answers_are_retried_then_reported(profile_data, tmp_path):
    replies = {"Heat": ['{"summary": ""}', "sorry", '{"summary": "likes heists"}'], "Big": ["no json"] * 5}

    def answer(prompt: str) -> str:
        title = re.search(r"The item: ([A-Za-z]+)", prompt)[1]
        return replies[title].pop(0) if title in replies else _answer(prompt)

    llm = FakeLLM(answer)
    out = tmp_path / "items.jsonl"
    report = _job(llm, profile_data, out, max_retries=2, batch_size=3).run()
    assert report.written == 5 and not report.complete
    assert [(f.id, f.raw_id, f.attempts) for f in report.failed] == [(1, "i1", 3)]
    assert report.failed[0].error.startswith("item 1: the answer holds no JSON object") and report.failed[0].raw == "no json"
    assert read_profiles(out, "item")[0]["summary"] == "likes heists"
    retried = [call["options"] for call in llm.calls[2:]]
    assert all(options["temperature"] == 0.7 for options in retried)  # greedy would repeat itself
    assert [o["seed"] for o in retried] == [1, 2]
    failed = _lines(tmp_path / "items.failed.jsonl")
    assert [(f["id"], f["attempts"]) for f in failed] == [(1, 3)] and "no JSON object" in failed[0]["error"]
    assert json.loads((tmp_path / "items.summary.json").read_text())["failed"] == [1]

    replies["Big"] = ['{"summary": "likes comedies"}']  # the model behaves now: the rerun completes
    report = _job(FakeLLM(answer), profile_data, out).run()
    assert (report.written, report.skipped, report.complete) == (1, 5, True)
    assert not (tmp_path / "items.failed.jsonl").exists()


class RefusesOne(FakeLLM):
    """Refuses the prompt about Alien the way OpenAICompatible does (a GenerationError with its index)."""

    def generate(self, prompts, **options):
        for index, prompt in enumerate(prompts):
            if "Alien" in prompt:
                raise GenerationError(f"prompt {index}: 400 this prompt is too long", index)
        return super().generate(prompts, **options)


def test_a_refused_prompt_fails_alone(profile_data, tmp_path):
    report = _job(RefusesOne(_answer), profile_data, tmp_path / "items.jsonl", batch_size=6, max_retries=1).run()
    assert report.written == 5
    assert [(f.id, f.attempts) for f in report.failed] == [(2, 2)]
    assert re.fullmatch(r"item 2: prompt \d: 400 this prompt is too long", report.failed[0].error)


class Truncates(FakeLLM):
    """Warns that the second prompt of every batch was cut, as HFCausalLM does."""

    def generate(self, prompts, **options):
        if len(prompts) > 1:
            warnings.warn(PromptTruncatedWarning("prompt 1 has 900 tokens, more than the 512 that fit", 1), stacklevel=2)
        return super().generate(prompts, **options)


def test_truncation_warnings_name_the_entity(profile_data, tmp_path):
    with pytest.warns(PromptTruncatedWarning) as caught:
        report = _job(Truncates(_answer), profile_data, tmp_path / "users.jsonl", entity="user", batch_size=2).run()
    messages = [str(w.message) for w in caught]
    assert messages == [
        "user 1 (raw id ub): prompt 1 has 900 tokens, more than the 512 that fit",
        "user 3 (raw id ud): prompt 1 has 900 tokens, more than the 512 that fit",
    ]
    assert report.truncated == [1, 3] and report.complete


class Unreachable(FakeLLM):
    def __init__(self, error: Exception, after: int) -> None:
        super().__init__(_answer)
        self.error, self.after = error, after

    def generate(self, prompts, **options):
        if len(self.prompts) >= self.after:
            raise self.error
        return super().generate(prompts, **options)


@pytest.mark.parametrize(
    "error",
    [
        EndpointUnreachableError("cannot reach the OpenAI-compatible endpoint http://127.0.0.1:9/v1: refused"),
        ModelNotFoundError("the endpoint http://127.0.0.1:9/v1 has no model 'gpt-5'"),
    ],
)
def test_a_dead_backend_stops_the_run_and_keeps_what_was_written(profile_data, tmp_path, error):
    out = tmp_path / "items.jsonl"
    with pytest.raises(type(error)) as info:
        _job(Unreachable(error, after=2), profile_data, out, batch_size=2).run()
    message = str(info.value)
    assert str(error) in message  # the endpoint / the model
    assert f"2 item profile(s) written by this run (and 0 before) are kept in {out}" in message
    assert [line["id"] for line in _lines(out)] == [0, 1]


def test_limit_and_bad_arguments(profile_data, tmp_path):
    llm = FakeLLM(_answer)
    report = _job(llm, profile_data, tmp_path / "items.jsonl", limit=2).run()
    assert (report.requested, report.written, len(llm.prompts)) == (2, 2, 2)
    with pytest.raises(ValueError, match="entity must be 'user' or 'item'"):
        _job(llm, profile_data, tmp_path / "x.jsonl", entity="users")
    with pytest.raises(TypeError, match="unknown generation option 'max_tokens'"):
        _job(llm, profile_data, tmp_path / "x.jsonl", options={"max_tokens": 3})
    with pytest.raises(TypeError, match="must have a generate"):
        _job(object(), profile_data, tmp_path / "x.jsonl")
