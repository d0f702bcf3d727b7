"""Any server that speaks the OpenAI chat-completions API, as a text-generation backend."""

from __future__ import annotations

import concurrent.futures
import email.utils
import ipaddress
import logging
import math
import os
import random
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

import torch
from tqdm.auto import tqdm

from darec.llm._imports import require
from darec.llm.errors import EndpointUnreachableError, GenerationError, ModelNotFoundError
from darec.llm.options import GenerationOptions, check_prompts

__all__ = ["OpenAICompatible"]

log = logging.getLogger(__name__)

#: The key sent to servers that need none (vLLM, llama.cpp, Ollama and ``transformers serve`` accept any).
PLACEHOLDER_KEY = "not-needed"


def _is_local(base_url: str) -> bool:
    host = urlparse(base_url).hostname or ""
    if host in {"localhost", "host.docker.internal"} or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def _retry_after(err: Exception) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (a number or an HTTP date), if any."""
    response = getattr(err, "response", None)
    value = getattr(response, "headers", {}).get("retry-after") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _server_message(err: Any) -> str:
    """The server's own words from an error answer: OpenAI's ``error.message``, FastAPI's ``detail``, or the body."""
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            for key in ("message", "detail"):
                if inner.get(key):
                    return str(inner[key])
        elif isinstance(inner, str) and inner:
            return inner
        if body.get("detail"):
            return str(body["detail"])
    response = getattr(err, "response", None)
    text = getattr(response, "text", "") if response is not None else ""
    return (text or getattr(err, "message", "") or str(err)).strip()[:500]


def _normalised(token: str) -> str:
    return token.lstrip("Ġ▁ \t\n")


class OpenAICompatible:
    r"""A model behind an OpenAI-compatible HTTP endpoint, as an :class:`~darec.llm.LLMBackend`.

    One client covers the hosted OpenAI API (``base_url`` left out), Azure OpenAI and other hosted
    services with an OpenAI-compatible endpoint, and local servers: ``vllm serve``, llama.cpp's
    ``llama-server``, Ollama (``http://localhost:11434/v1``) and ``transformers serve``. It uses
    the ``openai>=1`` client and sends each prompt as the user message of a chat completion
    (after the system prompt, if any). A chat API takes whole messages, so the answer cannot be
    prefilled: the ``response_prefix`` option is ignored, with a warning on first use, and the
    answers are the model's own (capable models follow a format asked for in the prompt).

    Prompts are sent by a pool of ``max_concurrency`` threads; the answers come back in the order
    of the prompts. The client's own retries are switched off and this class retries instead, so
    that retries are counted (``stats["retries"]``) and bounded the same way for every server: a
    request that fails with 429 (rate limit), a 5xx status, a timeout, or a dropped connection to
    a server that has answered before is retried up to ``max_retries`` times, waiting
    ``backoff * 2**attempt`` seconds (at most ``max_backoff``, or longer if the server's
    ``Retry-After`` header asks, with up to 25% random jitter). A connection that fails before the
    server has ever answered is not retried: the endpoint is down or the URL is wrong, and
    :class:`~darec.llm.EndpointUnreachableError` says so at once. Other errors are not retried.

    Args:
        model (str): the model name the server knows (``"gpt-4o-mini"``, the folder or hub id
            given to ``vllm serve``, an Ollama tag such as ``"smollm2:135m"``, ...).
        base_url (str, optional): the API root, usually ending in ``/v1``
            (e.g. ``"http://localhost:8000/v1"``). (default: :obj:`None`, the OpenAI API)
        api_key (str, optional): the API key. (default: the ``api_key_env`` environment variable;
            for a local or private-network ``base_url`` without one, a placeholder key)
        api_key_env (str): the environment variable that holds the key. (default: ``"OPENAI_API_KEY"``)
        timeout (float): seconds to wait for one answer. (default: ``60.0``)
        max_retries (int): retries of one request after a transient failure. (default: ``5``)
        backoff (float): the first wait before a retry, in seconds. (default: ``1.0``)
        max_backoff (float): the longest wait before a retry, in seconds. (default: ``30.0``)
        max_concurrency (int): requests in flight at once. (default: ``8``)
        extra_body (dict, optional): extra fields sent with every request, for server-specific
            options (e.g. ``{"top_k": 20}`` for vLLM). (default: :obj:`None`)
        progress (bool): show a progress bar over the prompts. (default: :obj:`True`)

    Attributes:
        stats (dict): totals over all calls: ``requests`` (sent, retries included), ``retries``,
            ``prompt_tokens`` and ``completion_tokens`` (as reported by the server) and
            ``seconds`` spent in :meth:`generate`.

    Raises:
        ImportError: the ``openai`` package is not installed.
        ValueError: no key for the hosted API, or a bad argument.

    Example:
        >>> from darec.llm import OpenAICompatible, fetch_smollm2
        >>> folder = str(fetch_smollm2())  # served by: transformers serve FOLDER --device cpu --port 8123  # doctest: +SKIP
        >>> llm = OpenAICompatible(folder, base_url="http://localhost:8123/v1", max_concurrency=4)  # doctest: +SKIP
        >>> llm.generate(["Name one famous science-fiction film."], max_new_tokens=32)  # doctest: +SKIP
        ['One of the most iconic examples of science-fiction film is Star Wars. However, I can also add to that list: The Matrix, which was a film']
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_concurrency: int = 8,
        extra_body: Mapping[str, Any] | None = None,
        progress: bool = True,
    ) -> None:
        if not model:
            raise ValueError("model must name the model the server serves")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be at least 0, got {max_retries}")
        if timeout <= 0 or backoff < 0 or max_backoff < 0:
            raise ValueError("timeout must be positive, backoff and max_backoff not negative")
        openai = require("openai", "OpenAICompatible")
        self.model = model
        self.base_url = base_url.rstrip("/") if base_url else None
        key = api_key or os.environ.get(api_key_env)
        if not key:
            if self.base_url is None:
                raise ValueError(
                    f"no API key for the OpenAI API: set the {api_key_env} environment variable or pass api_key"
                )
            if not _is_local(self.base_url):
                log.warning("no API key in $%s for %s; sending a placeholder key", api_key_env, self.base_url)
            key = PLACEHOLDER_KEY
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_concurrency = int(max_concurrency)
        self.extra_body = dict(extra_body or {})
        self.progress = progress
        self._openai = openai
        self._client = openai.OpenAI(api_key=key, base_url=self.base_url, timeout=self.timeout, max_retries=0)
        self._lock = threading.Lock()
        self._reached = False  # set once the server has answered anything: later connection errors are transient
        self._jitter = random.Random()
        self._warned_prefix = False
        self._warned_penalty = False
        self.stats = {"requests": 0, "retries": 0, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}

    @property
    def endpoint(self) -> str:
        """The API root requests go to (the OpenAI API when ``base_url`` is not set)."""
        return self.base_url or str(self._client.base_url).rstrip("/")

    def _count(self, **increments: int) -> None:
        with self._lock:
            for key, value in increments.items():
                self.stats[key] += value

    # -- requests ----------------------------------------------------------------------------------

    def _messages(self, prompt: str, system: str | None) -> list[dict[str, str]]:
        messages = [{"role": "user", "content": prompt}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        return messages

    def _request(self, index: int, stop: threading.Event | None = None, **body: Any) -> Any:
        """One chat completion with this class's retries; errors name the endpoint, the model and the prompt."""
        openai = self._openai
        for attempt in range(self.max_retries + 1):
            self._count(requests=1)
            try:
                response = self._client.chat.completions.create(model=self.model, extra_body=self.extra_body or None, **body)
            except openai.APIConnectionError as err:  # APITimeoutError included
                timed_out = isinstance(err, openai.APITimeoutError)
                if not timed_out and not self._reached:
                    raise EndpointUnreachableError(
                        f"cannot reach the OpenAI-compatible endpoint {self.endpoint}: {err.__cause__ or err}. "
                        "Is the server running, and does base_url include the API prefix (usually /v1)?"
                    ) from err
                failure: Exception = err
            except openai.APIStatusError as err:
                self._reached = True
                status = err.status_code
                if status == 429 or status >= 500:
                    failure = err
                else:
                    raise self._status_error(err, index) from err
            else:
                self._reached = True
                usage = getattr(response, "usage", None)
                if usage is not None:
                    self._count(prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0)
                return response
            if attempt == self.max_retries or (stop is not None and stop.is_set()):
                break
            delay = min(self.max_backoff, self.backoff * 2**attempt)
            asked = _retry_after(failure)
            if asked is not None:
                delay = min(max(delay, asked), self.max_backoff)
            delay *= 1 + 0.25 * self._jitter.random()
            log.info("prompt %d: %s; retry %d of %d in %.1f s", index, failure, attempt + 1, self.max_retries, delay)
            self._count(retries=1)
            if stop is not None:
                if stop.wait(delay):
                    break
            else:
                time.sleep(delay)
        if isinstance(failure, openai.APIConnectionError):
            raise EndpointUnreachableError(
                f"prompt {index}: the OpenAI-compatible endpoint {self.endpoint} did not answer after "
                f"{self.max_retries + 1} attempts: {failure}"
            ) from failure
        raise GenerationError(
            f"prompt {index}: {self.endpoint} still failed after {self.max_retries + 1} attempts for model "
            f"{self.model!r}: {failure}",
            index,
        ) from failure

    def _status_error(self, err: Any, index: int) -> Exception:
        status = err.status_code
        message = _server_message(err)
        if status in (400, 404, 422):
            served = self._served_models()
            if status == 404 or (served and self.model not in served):
                # 404 is how OpenAI, vLLM and Ollama refuse an unknown model; others say 400 (transformers
                # serve) or 422, so the model list decides there.
                return ModelNotFoundError(
                    f"the OpenAI-compatible endpoint {self.endpoint} has no model {self.model!r} ({status}: "
                    f"{message}).{self._describe_models(served)}"
                )
        if status in (401, 403):
            return PermissionError(
                f"{self.endpoint} refused the request ({status}): {message}. Check the API key "
                f"(${self.api_key_env} or the api_key argument)"
            )
        return GenerationError(
            f"prompt {index} was refused by {self.endpoint} for model {self.model!r} ({status}): {message}. "
            "If the prompt is longer than the model's context, shorten it or lower max_new_tokens",
            index,
        )

    def _served_models(self) -> list[str] | None:
        """The model names the endpoint lists, or None if it does not list them."""
        try:
            return sorted(model.id for model in self._client.models.list(timeout=min(self.timeout, 10.0)))
        except Exception:  # the list is only a hint
            return None

    @staticmethod
    def _describe_models(names: list[str] | None) -> str:
        if names is None:
            return " The endpoint did not list its models either: check that base_url includes the API prefix (usually /v1)."
        if not names:
            return ""
        shown = ", ".join(repr(name) for name in names[:20]) + (", ..." if len(names) > 20 else "")
        return f" It serves: {shown}."

    # -- generation --------------------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], **options: Any) -> list[str]:
        """One answer per prompt, in order (see :class:`~darec.llm.GenerationOptions` for the options).

        ``max_new_tokens`` is sent as ``max_tokens``; ``seed`` as ``seed`` (servers that support it
        make sampling reproducible). ``response_prefix`` is ignored (a :class:`UserWarning` says so
        once per backend): the answers are what the model wrote, without the prefix. So is a
        ``repetition_penalty`` other than ``1`` (the chat API has no such field).

        Raises:
            TypeError: an unknown option, or a prompt that is not a string.
            ValueError: an empty prompt or a bad option value.
            EndpointUnreachableError: the server cannot be reached (the message names ``base_url``).
            ModelNotFoundError: the server has no such model (the message names it and those it has).
            PermissionError: the server refused the API key.
            GenerationError: a prompt failed for another reason, or still failed after the retries
                (the message names its index; ``err.index`` holds it).
        """
        settings = GenerationOptions.from_kwargs(**options)
        checked = check_prompts(prompts)
        if settings.response_prefix is not None and not self._warned_prefix:
            self._warned_prefix = True
            warnings.warn(
                f"OpenAICompatible cannot prefill the answer through a chat API: response_prefix "
                f"{settings.response_prefix!r} is ignored and the answers are the model's own",
                UserWarning,
                stacklevel=2,
            )
        if settings.repetition_penalty != 1.0 and not self._warned_penalty:
            self._warned_penalty = True
            warnings.warn(
                f"OpenAICompatible sends no repetition_penalty (the chat API has no such field): "
                f"{settings.repetition_penalty!r} is ignored",
                UserWarning,
                stacklevel=2,
            )
        body: dict[str, Any] = {"max_tokens": settings.max_new_tokens, "temperature": settings.temperature}
        if not settings.greedy:
            body["top_p"] = settings.top_p
        if settings.seed is not None:
            body["seed"] = settings.seed
        answers: list[str] = [""] * len(checked)
        if not checked:
            return answers
        stop = threading.Event()
        start = time.perf_counter()

        def one(index: int) -> None:
            if stop.is_set():
                return
            try:
                response = self._request(index, stop, messages=self._messages(checked[index], settings.system), **body)
                if not response.choices:
                    raise GenerationError(f"prompt {index}: {self.endpoint} returned no answer (no choices)", index)
            except BaseException:
                stop.set()  # prompts not yet sent are skipped
                raise
            answers[index] = (response.choices[0].message.content or "").strip()

        pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(checked)))
        bar = tqdm(total=len(checked), desc=f"generating ({self.model})", unit="prompt", disable=not self.progress)
        try:
            with bar:
                futures = [pool.submit(one, index) for index in range(len(checked))]
                for future in concurrent.futures.as_completed(futures):
                    future.result()  # the first failure stops the rest
                    bar.update()
        except BaseException:
            stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._count(seconds=time.perf_counter() - start)
        return answers

    # -- scoring -----------------------------------------------------------------------------------

    def choice_logits(
        self, prompt: str, options: Sequence[str], *, system: str | None = None, top_logprobs: int = 20
    ) -> torch.Tensor:
        """Log-probability that the answer to ``prompt`` starts with each option, from the server's ``top_logprobs``.

        One request asks for a single token with its ``top_logprobs`` most likely alternatives
        (OpenAI allows at most 20). An alternative counts for an option when, leading spaces
        aside, it is the option or a prefix of it that no other option shares; the probabilities
        of the alternatives that count for an option are added up (``"Yes"`` and ``" Yes"``).
        An option none of them counts for gets ``-inf``.

        Returns:
            A float32 tensor of shape ``(len(options),)``, not renormalised over the options.

        Raises:
            NotImplementedError: the server does not return log-probabilities (the message names it).
        """
        check_prompts([prompt])
        options = list(options)
        if not options:
            raise ValueError("choice_logits needs at least one option")
        body = {"max_tokens": 1, "temperature": 0.0, "logprobs": True, "top_logprobs": int(top_logprobs)}
        try:
            response = self._request(0, messages=self._messages(prompt, system), **body)
        except GenerationError as err:
            raise NotImplementedError(
                f"{self.endpoint} refused a request for log-probabilities for model {self.model!r}: {err}"
            ) from err
        logprobs = response.choices[0].logprobs if response.choices else None
        content = getattr(logprobs, "content", None) if logprobs is not None else None
        if not content:
            raise NotImplementedError(
                f"{self.endpoint} returned no log-probabilities for model {self.model!r}; choice_logits needs a server "
                "that supports `logprobs` and `top_logprobs` in chat completions (OpenAI, vLLM, ...)"
            )
        alternatives = [(_normalised(item.token), item.logprob) for item in content[0].top_logprobs or []]
        if not alternatives:
            alternatives = [(_normalised(content[0].token), content[0].logprob)]
        stripped = [option.strip() for option in options]
        scores = []
        for option in stripped:
            matched = [
                logprob
                for token, logprob in alternatives
                if token
                and (token == option or (option.startswith(token) and sum(o.startswith(token) for o in stripped) == 1))
            ]
            scores.append(torch.tensor(matched, dtype=torch.float64).logsumexp(0).item() if matched else -math.inf)
        return torch.tensor(scores, dtype=torch.float32)

    def __repr__(self) -> str:
        base = f", base_url={self.base_url!r}" if self.base_url else ""
        return f"OpenAICompatible({self.model!r}{base}, max_concurrency={self.max_concurrency})"
