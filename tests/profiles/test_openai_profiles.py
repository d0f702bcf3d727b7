"""A ProfileJob through OpenAICompatible against the loopback stub server of tests/llm."""

from __future__ import annotations

import socket

import pytest

from darec.llm import EndpointUnreachableError, ModelNotFoundError
from darec.profiles import ProfileJob, ProfilePrompts, ProfileSource
from tests.llm.test_openai_compatible import MODEL, stub  # noqa: F401  (the fixture)

pytest.importorskip("openai")

# The stub answers "echo: <prompt>": a prompt that holds the JSON answer comes back as one, in prose.
ECHO = ProfilePrompts(item_template='{{"summary": "{name} for fans of {genres}", "reasoning": "{num_users} users"}}')


def _job(profile_data, out, *, model=MODEL, base_url, **kwargs):
    from darec.llm import OpenAICompatible

    data, log = profile_data
    backend = OpenAICompatible(model, base_url=base_url, backoff=0.01, max_backoff=0.05, timeout=5.0, progress=False)
    return ProfileJob(backend, ProfileSource(data, log), "item", out, prompts=ECHO, progress=False, **kwargs)


def test_profiles_through_the_endpoint_with_a_refused_prompt_retried(profile_data, tmp_path, stub):  # noqa: F811
    stub.plan = [413]  # the first request is refused (too long), as a server refuses an over-long prompt
    out = tmp_path / "items.jsonl"
    report = _job(profile_data, out, base_url=stub.base_url, batch_size=3).run()
    assert report.complete and report.written == 6
    from darec.data import read_profiles

    profiles = read_profiles(out, "item")
    assert profiles[0]["summary"] == "Heat (1995) for fans of Action, Crime"
    assert profiles[0]["raw"].startswith("echo: ")
    # 6 answered prompts, the refused attempt, and the batch-mates sent again after the refusal stopped the call:
    assert len(stub.bodies) >= 7


def test_an_unreachable_endpoint_names_it(profile_data, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(EndpointUnreachableError) as info:
        _job(profile_data, tmp_path / "items.jsonl", base_url=url).run()
    message = str(info.value)
    assert url in message and "0 item profile(s) written by this run" in message and "run again to resume" in message


def test_a_wrong_model_names_it_and_keeps_the_file(profile_data, tmp_path, stub):  # noqa: F811
    out = tmp_path / "items.jsonl"
    _job(profile_data, out, base_url=stub.base_url, limit=2).run()
    kept = out.read_text()
    with pytest.raises(ModelNotFoundError, match="gpt-9") as info:
        _job(profile_data, out, model="gpt-9", base_url=stub.base_url).run()
    assert f"kept in {out}" in str(info.value)
    assert out.read_text() == kept
