"""darec.llm.make_backend: the one place the shell commands build their backend and its label."""

from __future__ import annotations

import pytest

import darec.llm
from darec.llm import FakeLLM, make_backend


class RecordingHF(FakeLLM):
    """Stands for HFCausalLM: records how it was built, loads nothing."""

    def __init__(self, model, **kwargs) -> None:
        super().__init__("ok")
        self.name, self.kwargs = str(model), kwargs


def test_fake_answers_from_the_script_and_is_labelled_fake():
    llm, label = make_backend("fake", fake=lambda prompt: prompt[::-1])
    assert isinstance(llm, FakeLLM) and label == "fake"
    assert llm.generate(["abc", "xy"]) == ["cba", "yx"]
    llm, _ = make_backend("fake", "ignored-model", base_url="http://ignored/v1")
    assert llm.generate(["hi"]) == ["OK"]  # FakeLLM's default answer


def test_hf_defaults_to_smollm2_and_gets_batch_size_and_threads(monkeypatch):
    monkeypatch.setattr(darec.llm, "HFCausalLM", RecordingHF)
    llm, label = make_backend("hf")
    assert label == "hf:smollm2" and llm.name == "smollm2"
    assert llm.kwargs == {"max_batch_size": 8, "num_threads": None, "progress": False}
    llm, label = make_backend("hf", "models/tiny", batch_size=3, threads=1, progress=True)
    assert label == "hf:models/tiny"
    assert llm.kwargs == {"max_batch_size": 3, "num_threads": 1, "progress": True}
    assert make_backend("hf", "")[1] == "hf:smollm2"  # an empty --model is the default too


def test_openai_needs_a_model_and_is_labelled_with_its_endpoint(monkeypatch):
    with pytest.raises(ValueError, match=r"^--backend openai needs --model: the name of the model the server serves$"):
        make_backend("openai", base_url="http://127.0.0.1:9/v1")
    pytest.importorskip("openai")
    monkeypatch.delenv("DAREC_TEST_KEY", raising=False)
    llm, label = make_backend("openai", "tiny", base_url="http://127.0.0.1:9/v1/", api_key_env="DAREC_TEST_KEY", batch_size=3)
    assert label == "openai:tiny@http://127.0.0.1:9/v1"  # a client is made, nothing is sent
    assert llm.model == "tiny" and llm.max_concurrency == 3 and llm.api_key_env == "DAREC_TEST_KEY"
    assert llm.progress is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "vllm"}, "unknown backend 'vllm': choose hf, openai or fake"),
        ({"kind": "fake", "batch_size": 0}, "--batch-size must be at least 1, got 0"),
        ({"kind": "hf", "threads": 0}, "--threads must be at least 1, got 0"),
    ],
)
def test_bad_settings_are_named(kwargs, message, monkeypatch):
    monkeypatch.setattr(darec.llm, "HFCausalLM", RecordingHF)
    with pytest.raises(ValueError, match=message):
        make_backend(**kwargs)
