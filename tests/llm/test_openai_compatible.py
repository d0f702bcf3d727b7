"""OpenAICompatible against a loopback stub of the OpenAI API: order, concurrency, retries, clear errors."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from darec.llm import (
    ChoiceScorer,
    EndpointUnreachableError,
    GenerationError,
    LLMBackend,
    ModelNotFoundError,
    OpenAICompatible,
)

pytest.importorskip("openai")

MODEL = "tiny"


class StubOpenAI(ThreadingHTTPServer):
    """Serves ``/v1/models`` and ``/v1/chat/completions`` for the model ``tiny``.

    ``plan`` holds what the next chat requests get, one entry each (then ``"ok"``): ``"ok"``,
    ``429`` or ``500`` (with ``Retry-After: 0``), ``"drop"`` (the connection is closed without an
    answer), ``"nologprobs"``. An ``ok`` answer is ``echo: <user message>``, after a delay of
    ``wait <seconds>`` when the prompt starts with that.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.plan: list[object] = []
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: StubOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "stub"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        stub = self.server
        with stub.lock:
            stub.bodies.append(body)
            action = stub.plan.pop(0) if stub.plan else "ok"
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        if action == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if action == 413:
            return self._send(413, {"error": {"message": "too long"}})
        if action in (429, 500):
            return self._send(action, {"error": {"message": "slow down" if action == 429 else "oops"}}, {"Retry-After": "0"})
        if body["model"].startswith("pinned"):  # transformers serve's way: 400 with FastAPI's "detail"
            return self._send(400, {"detail": f"Server is pinned to '{MODEL}'; requested '{body['model']}'."})
        if body["model"] != MODEL:
            return self._send(404, {"error": {"message": f"The model `{body['model']}` does not exist.", "code": 404}})
        prompt = body["messages"][-1]["content"]
        with stub.lock:
            stub.in_flight += 1
            stub.most_in_flight = max(stub.most_in_flight, stub.in_flight)
        try:
            if prompt.startswith("wait "):
                time.sleep(float(prompt.split()[1]))
        finally:
            with stub.lock:
                stub.in_flight -= 1
        logprobs = None
        if body.get("logprobs") and action != "nologprobs":
            top = [("Yes", -0.3), (" Yes", -2.0), ("No", -1.6), ("Maybe", -4.0)]
            entries = [{"token": t, "logprob": lp, "bytes": None} for t, lp in top]
            logprobs = {"content": [{"token": "Yes", "logprob": -0.3, "bytes": None, "top_logprobs": entries}]}
        self._send(
            200,
            {
                "id": "cmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f" echo: {prompt} "},
                        "finish_reason": "stop",
                        "logprobs": logprobs,
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            },
        )
        return None


@pytest.fixture
def stub():
    server = StubOpenAI()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _backend(stub: StubOpenAI, **kwargs) -> OpenAICompatible:
    kwargs = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 5.0, "progress": False, **kwargs}
    return OpenAICompatible(MODEL, base_url=stub.base_url, **kwargs)


def test_is_a_backend_and_sends_the_options(stub, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    llm = _backend(stub)
    assert isinstance(llm, LLMBackend) and isinstance(llm, ChoiceScorer)
    assert llm.generate(["the movie"], max_new_tokens=7, system="be brief") == ["echo: the movie"]
    assert llm.generate(["again"], temperature=0.7, top_p=0.9, seed=3) == ["echo: again"]
    first, second = stub.bodies
    assert first["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "the movie"}]
    assert first["max_tokens"] == 7 and first["temperature"] == 0 and "seed" not in first and "top_p" not in first
    assert (second["temperature"], second["top_p"], second["seed"]) == (0.7, 0.9, 3)
    assert llm.stats["prompt_tokens"] == 6 and llm.stats["completion_tokens"] == 4 and llm.stats["requests"] == 2


def test_a_response_prefix_is_ignored_with_one_warning(stub):
    llm = _backend(stub)
    with pytest.warns(UserWarning, match="cannot prefill the answer through a chat API") as caught:
        assert llm.generate(["the movie", "again"], response_prefix='{"summary": "') == ["echo: the movie", "echo: again"]
        assert llm.generate(["more"], response_prefix='{"summary": "') == ["echo: more"]
    assert len([w for w in caught if "prefill" in str(w.message)]) == 1
    assert all(body["messages"][-1]["role"] == "user" and "summary" not in json.dumps(body) for body in stub.bodies)


def test_a_repetition_penalty_is_not_sent_and_warns_once(stub):
    llm = _backend(stub)
    assert llm.generate(["the movie"], repetition_penalty=1.0) == ["echo: the movie"]  # off: no warning
    with pytest.warns(UserWarning, match="no repetition_penalty") as caught:
        llm.generate(["the movie"], repetition_penalty=1.3)
        llm.generate(["again"], repetition_penalty=1.3)
    assert len(caught) == 1
    assert all("repetition" not in json.dumps(body) for body in stub.bodies)


def test_order_is_kept_under_bounded_concurrency(stub):
    llm = _backend(stub, max_concurrency=3)
    delays = [0.3, 0.0, 0.2, 0.0, 0.1, 0.0, 0.25, 0.05]  # later prompts finish first
    prompts = [f"wait {d} prompt {k}" for k, d in enumerate(delays)]
    assert llm.generate(prompts) == [f"echo: {p}" for p in prompts]
    assert stub.most_in_flight == 3  # parallel, and never more than max_concurrency


def test_rate_limits_and_server_errors_are_retried_and_counted(stub):
    llm = _backend(stub, max_concurrency=1)
    stub.plan = [429, 429, 500]
    assert llm.generate(["one", "two"]) == ["echo: one", "echo: two"]
    assert llm.stats["retries"] == 3 and llm.stats["requests"] == 5 and len(stub.bodies) == 5


def test_a_dropped_connection_is_retried_once_the_server_has_answered(stub):
    llm = _backend(stub, max_concurrency=1)
    assert llm.generate(["one"]) == ["echo: one"]
    stub.plan = ["drop"]
    assert llm.generate(["two"]) == ["echo: two"]
    assert llm.stats["retries"] == 1


def test_retries_are_bounded_and_the_error_names_the_prompt(stub):
    llm = _backend(stub, max_retries=2, max_concurrency=1)
    stub.plan = ["ok", 429, 429, 429, 429]
    with pytest.raises(GenerationError, match=r"prompt 1: .* still failed after 3 attempts .*'tiny'") as info:
        llm.generate(["one", "two", "three"])
    assert info.value.index == 1 and llm.stats["retries"] == 2
    assert len(stub.bodies) == 4  # the third prompt was never sent


def test_an_unreachable_endpoint_fails_at_once_naming_it():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    llm = OpenAICompatible(MODEL, base_url=url, backoff=1.0, progress=False)
    start = time.perf_counter()
    with pytest.raises(EndpointUnreachableError, match=f"cannot reach the OpenAI-compatible endpoint {url}"):
        llm.generate(["a", "b", "c"])
    assert time.perf_counter() - start < 5 and llm.stats["retries"] == 0


def test_a_wrong_model_is_named_with_the_models_the_server_has(stub):
    llm = OpenAICompatible("gpt-99", base_url=stub.base_url, progress=False)
    with pytest.raises(ModelNotFoundError, match=r"has no model 'gpt-99' .* It serves: 'tiny'\."):
        llm.generate(["hello"])
    assert llm.stats["retries"] == 0
    pinned = OpenAICompatible("pinned-x", base_url=stub.base_url, progress=False)
    expected = r"has no model 'pinned-x' \(400: Server is pinned to 'tiny'.*It serves: 'tiny'"
    with pytest.raises(ModelNotFoundError, match=expected):
        pinned.generate(["hello"])


def test_other_refusals_name_the_prompt_and_the_servers_words(stub):
    llm = _backend(stub, max_concurrency=1)
    stub.plan = ["ok", 413]
    with pytest.raises(GenerationError, match=r"prompt 1 was refused by .* \(413\): too long") as info:
        llm.generate(["a", "b"])
    assert info.value.index == 1 and llm.stats["retries"] == 0


def test_choice_logits_from_top_logprobs(stub):
    llm = _backend(stub)
    scores = llm.choice_logits("Is it good?", ["Yes", "No", "Never"])
    body = stub.bodies[-1]
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["max_tokens"] == 1
    expected_yes = torch.tensor([-0.3, -2.0], dtype=torch.float64).logsumexp(0).item()  # "Yes" and " Yes"
    torch.testing.assert_close(scores, torch.tensor([expected_yes, -1.6, float("-inf")]))
    stub.plan = ["nologprobs"]
    with pytest.raises(NotImplementedError, match="returned no log-probabilities for model 'tiny'"):
        llm.choice_logits("Is it good?", ["Yes", "No"])


def test_keys_and_bad_arguments(monkeypatch):
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(ValueError, match="set the MY_KEY environment variable"):
        OpenAICompatible("gpt-4o-mini", api_key_env="MY_KEY")
    monkeypatch.setenv("MY_KEY", "sk-test")
    assert OpenAICompatible("gpt-4o-mini", api_key_env="MY_KEY")._client.api_key == "sk-test"
    assert OpenAICompatible("m", base_url="http://localhost:8000/v1")._client.api_key == "not-needed"
    with pytest.raises(ValueError, match="max_concurrency"):
        OpenAICompatible("m", base_url="http://localhost:8000/v1", max_concurrency=0)
    with pytest.raises(TypeError, match="unknown generation option 'stop'"):
        OpenAICompatible("m", base_url="http://localhost:8000/v1").generate(["a"], stop=["\n"])


def test_missing_openai_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ImportError, match=r'OpenAICompatible needs the `openai` package.*pip install "darec\[llm\]"'):
        OpenAICompatible("m", base_url="http://localhost:8000/v1")

