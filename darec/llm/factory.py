"""One backend from command-line settings: what ``--backend``, ``--model`` and ``--base-url`` build."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from darec.llm.backend import LLMBackend

__all__ = ["BACKENDS", "make_backend"]

#: The backend kinds :func:`make_backend` builds (the choices of every ``--backend`` option).
BACKENDS = ("hf", "openai", "fake")

#: The model of ``hf`` when none is given: the offline SmolLM2-135M-Instruct.
DEFAULT_HF_MODEL = "smollm2"

#: What :class:`~darec.llm.FakeLLM` answers from: a string, a list, a callable or a mapping of rules.
FakeResponses = str | Sequence[str] | Callable[[str], str] | Mapping[str, Any]


def make_backend(
    kind: str,
    model: str | None = None,
    *,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    batch_size: int = 8,
    threads: int | None = None,
    fake: FakeResponses | None = None,
    progress: bool = False,
) -> tuple[LLMBackend, str]:
    """Builds the backend that the ``--backend``, ``--model``, ``--base-url`` ... options of a command name.

    The shell commands of darec (``darec profiles``, ``darec preferences``, ``darec explain``)
    all build their language model here, so the options mean the same everywhere. Only the
    backend asked for is imported (``hf`` loads its model, ``openai`` makes a client but sends
    nothing).

    Args:
        kind (str): ``"hf"`` (:class:`~darec.llm.HFCausalLM`, a local model),
            ``"openai"`` (:class:`~darec.llm.OpenAICompatible`, an HTTP endpoint) or ``"fake"``
            (:class:`~darec.llm.FakeLLM`, scripted answers).
        model (str, optional): ``hf``: a local model folder, or ``"smollm2"`` (the offline default,
            used when :obj:`None` or empty); ``openai``: the model name the server knows
            (required); ``fake``: ignored. (default: :obj:`None`)
        base_url (str, optional): ``openai``: the API root, e.g. ``"http://localhost:8000/v1"``.
            (default: :obj:`None`, the OpenAI API)
        api_key_env (str): ``openai``: the environment variable with the key.
            (default: ``"OPENAI_API_KEY"``)
        batch_size (int): ``hf``: prompts per forward pass; ``openai``: requests in flight at
            once. (default: :obj:`8`)
        threads (int, optional): ``hf``: CPU threads. (default: :obj:`None`, torch's setting)
        fake (str, list, callable or mapping, optional): ``fake``: what the
            :class:`~darec.llm.FakeLLM` answers (its ``responses``), e.g. a function of the
            prompt. (default: :obj:`None`, always ``"OK"``)
        progress (bool): ``hf`` and ``openai``: the backend's own progress bar over the prompts
            of a call. (default: :obj:`False`)

    Returns:
        tuple[LLMBackend, str]: the backend and a stable label of it: ``"hf:<model>"``
        (``"hf:smollm2"`` by default), ``"openai:<model>@<endpoint>"`` or ``"fake"``.

    Raises:
        ValueError: an unknown ``kind``, ``openai`` without a ``model``, or a ``batch_size`` or
            ``threads`` below 1 (the message names the command-line option).
        ImportError: the backend's optional package is missing (``pip install "darec[llm]"``).
        ModelNotFoundError: ``hf`` cannot find the model.

    Example:
        >>> from darec.llm import make_backend
        >>> llm, label = make_backend("fake", fake=lambda prompt: f"echo: {prompt}")
        >>> label, llm.generate(["Name a film."])
        ('fake', ['echo: Name a film.'])
        >>> make_backend("openai")
        Traceback (most recent call last):
        ...
        ValueError: --backend openai needs --model: the name of the model the server serves
    """
    if kind not in BACKENDS:
        raise ValueError(f"unknown backend {kind!r}: choose {', '.join(BACKENDS[:-1])} or {BACKENDS[-1]}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch_size!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"--threads must be at least 1, got {threads!r}")
    # Looked up on the package at call time (not imported at the top): tests replace the classes there.
    if kind == "fake":
        from darec.llm import FakeLLM

        return FakeLLM() if fake is None else FakeLLM(fake), "fake"
    if kind == "hf":
        from darec.llm import HFCausalLM

        name = model or DEFAULT_HF_MODEL
        return HFCausalLM(name, max_batch_size=batch_size, num_threads=threads, progress=progress), f"hf:{name}"
    if not model:
        raise ValueError("--backend openai needs --model: the name of the model the server serves")
    from darec.llm import OpenAICompatible

    backend = OpenAICompatible(model, base_url, api_key_env=api_key_env, max_concurrency=batch_size, progress=progress)
    return backend, f"openai:{model}@{getattr(backend, 'endpoint', base_url)}"
