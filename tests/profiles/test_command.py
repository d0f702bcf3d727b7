"""``darec profiles`` end to end with the fake backend on a tiny split directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from darec.data import read_profiles, write_split_dir
from darec.llm import FakeLLM
from darec.profiles.command import main
from tests.profiles.conftest import make_data

DAREC = Path(sys.executable).with_name("darec")


def _split(tmp_path: Path) -> Path:
    data, _ = make_data()
    return write_split_dir(data, tmp_path / "split")


def test_fake_backend_writes_resumes_and_reports(tmp_path, capsys):
    split, out = _split(tmp_path), tmp_path / "profiles" / "items.jsonl"
    args = ["--data", str(split), "--entity", "item", "--backend", "fake", "--out", str(out), "--no-progress"]
    assert main([*args, "--limit", "2"]) == 0
    assert capsys.readouterr().out.strip().endswith("item profiles: 2 written, 0 skipped (cached), 0 failed, of 2; in " + str(out))
    assert main(args) == 0
    assert "4 written, 2 skipped (cached), 0 failed, of 6" in capsys.readouterr().out
    profiles = read_profiles(out, "item")
    assert sorted(profiles) == list(range(6)) and profiles[0]["raw_id"] == "i0"
    assert len({p["summary"] for p in profiles.values()}) == 6  # the fake answer depends on the prompt

    template = tmp_path / "item.txt"
    template.write_text('Item: {description}\nAnswer {{"summary": "..."}}')
    assert main([*args, "--template", str(template)]) == 0
    assert "6 written, 0 skipped" in capsys.readouterr().out  # another template: written again


class RecordingHF(FakeLLM):
    """Stands for HFCausalLM in the command: a prefilled model that continues inside the summary."""

    made: list[RecordingHF] = []

    def __init__(self, model, **kwargs) -> None:
        super().__init__('A quiet film. Fans of dramas like it.", "reasoning": "its genres"}')
        self.name = str(model)
        RecordingHF.made.append(self)


def test_prefill_is_on_by_default_for_hf_and_the_flags_switch_it(tmp_path, capsys, monkeypatch):
    import darec.llm

    monkeypatch.setattr(darec.llm, "HFCausalLM", RecordingHF)
    split, out = _split(tmp_path), tmp_path / "items.jsonl"
    args = ["--data", str(split), "--entity", "item", "--backend", "hf", "--out", str(out), "--no-progress", "--limit", "2"]
    assert main(args) == 0
    options = RecordingHF.made[-1].calls[0]["options"]
    assert options["response_prefix"] == '{"summary": "' and options["max_new_tokens"] == 128
    profiles = read_profiles(out, "item")
    assert profiles[0]["summary"] == "A quiet film. Fans of dramas like it." and profiles[0]["reasoning"] == "its genres"
    summary = json.loads((tmp_path / "items.summary.json").read_text())
    assert summary["options"]["response_prefix"] == '{"summary": "'
    assert main([*args, "--prefill"]) == 0 and "0 written, 2 skipped" in capsys.readouterr().out  # the same key
    assert main([*args, "--no-prefill"]) == 1  # the continuation alone is no JSON: another key, and failures
    assert RecordingHF.made[-1].calls[0]["options"]["response_prefix"] is None
    assert "holds no JSON object" in capsys.readouterr().err
    assert json.loads((tmp_path / "items.summary.json").read_text())["key"] != summary["key"]


def test_the_repetition_penalty_is_on_for_hf_by_default_and_part_of_the_key(tmp_path, capsys, monkeypatch):
    import darec.llm
    from darec.profiles.command import HF_REPETITION_PENALTY

    monkeypatch.setattr(darec.llm, "HFCausalLM", RecordingHF)
    split, out = _split(tmp_path), tmp_path / "items.jsonl"
    args = ["--data", str(split), "--entity", "item", "--backend", "hf", "--out", str(out), "--no-progress", "--limit", "2"]
    assert main(args) == 0
    assert RecordingHF.made[-1].calls[0]["options"]["repetition_penalty"] == HF_REPETITION_PENALTY > 1
    key = json.loads((tmp_path / "items.summary.json").read_text())["key"]
    assert main([*args, "--repetition-penalty", str(HF_REPETITION_PENALTY)]) == 0
    assert "0 written, 2 skipped" in capsys.readouterr().out  # the same settings: the same key
    assert main([*args, "--repetition-penalty", "1"]) == 0
    assert RecordingHF.made[-1].calls[0]["options"]["repetition_penalty"] == 1.0
    assert json.loads((tmp_path / "items.summary.json").read_text())["key"] != key
    assert main([*args[:5], "fake", *args[6:], "--out", str(tmp_path / "f.jsonl")]) == 0
    summary = json.loads((tmp_path / "f.summary.json").read_text())
    assert summary["options"]["repetition_penalty"] == 1.0  # off for the other backends


def test_the_key_hashes_the_model_name_without_the_backend_kind(tmp_path, monkeypatch):
    """The model in the key stays what it was before darec.llm.make_backend: "smollm2", not "hf:smollm2"."""
    import darec.llm

    monkeypatch.setattr(darec.llm, "HFCausalLM", RecordingHF)
    split = _split(tmp_path)
    args = ["--data", str(split), "--entity", "item", "--no-progress", "--limit", "1"]
    for more, model in [
        (["--backend", "hf"], "smollm2"),
        (["--backend", "hf", "--model", "models/tiny"], "models/tiny"),
        (["--backend", "fake"], "fake"),
    ]:
        out = tmp_path / f"{len(more)}-{model.replace('/', '_')}.jsonl"
        assert main([*args, *more, "--out", str(out)]) == 0
        assert json.loads(out.with_suffix(".summary.json").read_text())["model"] == model


def test_the_key_of_an_openai_backend_names_the_model_and_the_endpoint(tmp_path):
    pytest.importorskip("openai")
    from tests.llm.test_openai_compatible import StubOpenAI

    server = StubOpenAI()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        out = tmp_path / "items.jsonl"
        args = ["--data", str(_split(tmp_path)), "--entity", "item", "--backend", "openai", "--model", "tiny",
                "--base-url", server.base_url, "--out", str(out), "--no-progress", "--limit", "1", "--max-retries", "0"]  # fmt: skip
        assert main(args) in (0, 1)  # the stub echoes the prompt: whether that parses does not matter here
    finally:
        server.shutdown()
        server.server_close()
    assert json.loads((tmp_path / "items.summary.json").read_text())["model"] == f"tiny@{server.base_url}"


def test_the_fake_backend_follows_the_prefill_flag(tmp_path, capsys):
    split, out = _split(tmp_path), tmp_path / "users.jsonl"
    args = ["--data", str(split), "--entity", "user", "--backend", "fake", "--out", str(out), "--no-progress"]
    assert main([*args, "--no-prefill"]) == 0 and main([*args, "--prefill"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 8 and len({line["key"] for line in lines}) == 2
    assert [line["summary"] for line in lines[:4]] == [line["summary"] for line in lines[4:]]  # the same profiles


def test_bad_arguments_end_with_one_line(tmp_path, capsys):
    split = _split(tmp_path)
    common = ["--entity", "user", "--out", str(tmp_path / "u.jsonl"), "--backend", "fake", "--no-progress"]
    assert main(["--data", str(tmp_path / "nowhere"), *common]) == 2
    assert "darec profiles: error: no data at" in capsys.readouterr().err
    template = tmp_path / "bad.txt"
    template.write_text("{title}")
    assert main(["--data", str(split), *common, "--template", str(template)]) == 2
    assert "unknown field {title}" in capsys.readouterr().err
    assert main(["--data", str(split), *common[:-3], "--backend", "openai", "--no-progress"]) == 2
    assert "--backend openai needs --model" in capsys.readouterr().err


def test_the_darec_command_dispatches_profiles(tmp_path):
    split, out = _split(tmp_path), tmp_path / "users.jsonl"
    command = [str(DAREC)] if DAREC.exists() else [sys.executable, "-m", "darec.cli"]
    env = {**os.environ, "DAREC_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*command, "profiles", "--data", str(split), "--entity", "user", "--backend", "fake", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "user profiles: 4 written, 0 skipped (cached), 0 failed, of 4" in result.stdout
    assert "user/s" in result.stderr or "user profiles" in result.stderr  # the progress bar
    assert [json.loads(line)["entity"] for line in out.read_text().splitlines()] == ["user"] * 4
