"""RecExplainer's intention/hybrid model: a causal LM with LoRA whose ``<user>``/``<item>`` tokens carry a recommender's vectors."""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from darec.functional._checks import positive_int
from darec.llm._imports import require
from darec.llm.hf_causal_lm import HFCausalLM, _resolve_dtype
from darec.recexplainer._prompting import PLACEHOLDERS, pad_rows, placeholder_ids, prompt_ids
from darec.recexplainer.rec_connector import RecConnector
from darec.utils.io import atomic_write

__all__ = ["RecEmbeddingInjector"]

MODES = ("add", "replace")
#: LoRA's target modules by default: the attention projections of Llama-like models (RecExplainer's code).
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
#: The version of the file :meth:`RecEmbeddingInjector.save_trainable` writes.
FILE_FORMAT = "darec.recexplainer.injector/1"
#: What a saved file must agree on with the injector that loads it (``model`` is informative only).
_MUST_MATCH = (
    "hidden_size",
    "rec_dim",
    "connector_hidden_dim",
    "mode",
    "shared_connector",
    "train_placeholder_embeddings",
    "lora_r",
    "lora_target_modules",
)


class RecEmbeddingInjector(nn.Module):
    r"""A Hugging Face causal LM whose ``<user>``/``<item>`` placeholder tokens receive a recommender's vectors (RX-2).

    RecExplainer's intention and hybrid styles (Lei et al., KDD 2024) show the target recommender's
    user and item vectors to the LLM: a :class:`~darec.recexplainer.RecConnector` per kind maps a
    vector :math:`e` of width ``rec_dim`` to the LLM's hidden size :math:`H`
    (:math:`d_{rec} \to H/2 \to \mathrm{GELU} \to H`), and the result goes into the input
    embeddings at the position of its placeholder token:

    - ``mode="add"`` (RecExplainer): :math:`x_t = E[\texttt{<user>}] + \tilde e`, the
      placeholder's own embedding plus the projection;
    - ``mode="replace"`` (XRec): :math:`x_t = \tilde e`.

    Every other position keeps its token embedding, and the LM runs on these ``inputs_embeds``.
    The placeholders :data:`~darec.recexplainer.USER_TOKEN` and :data:`~darec.recexplainer.ITEM_TOKEN`
    are added to the tokenizer (in place) as special tokens, and the LM's embedding matrices grow
    by their rows (initialised to the mean of the old rows). The LM's own weights are frozen;
    what trains is LoRA adapters (``peft``) on ``lora_target_modules``, the connectors and, with
    ``train_placeholder_embeddings``, a trainable copy of the two placeholder rows (``"add"``
    mode only: ``"replace"`` never reads them). The target recommender is not part of this
    module: its vectors are inputs, detached.

    **Vectors.** ``rec_vectors`` gives one vector per placeholder, in reading order: either one
    ``(P, rec_dim)`` tensor for the whole batch (row 0's placeholders left to right, then row
    1's, ...; with one placeholder per prompt, simply one vector per row), or a sequence of ``B``
    per-row tensors ``(p_b, rec_dim)`` (:obj:`None` for a row without placeholders). The kind of
    a placeholder (its token) chooses the connector. An
    :class:`~darec.recexplainer.AlignmentTask`'s ``placeholders`` say which vector each of its
    placeholders takes; :class:`~darec.recexplainer.RecExplainerDataset` looks them up.

    **Checkpoints** hold the trainable parts only (:meth:`save_trainable`, :meth:`load_trainable`,
    :meth:`from_trainable`): LoRA, the connectors and the placeholder rows, kilobytes to a few
    megabytes, loaded over the same base LM.

    - [0] Lei et al., "RecExplainer: Aligning Large Language Models for Explaining Recommendation
      Models", KDD 2024, arXiv:2311.10947.
    - [1] Ma et al., "XRec: Large Language Models for Explainable Recommendation", EMNLP 2024
      Findings, arXiv:2406.02377 (``mode="replace"``).

    Args:
        model (str, os.PathLike or torch.nn.Module): the causal LM: a ``transformers`` model (with
            ``tokenizer``), or a local folder, a cached hub id or ``"smollm2"``, loaded as
            :class:`~darec.llm.HFCausalLM` loads it (with its tokenizer).
        rec_dim (int): width of the recommender's vectors.
        tokenizer (optional): the model's tokenizer; required when ``model`` is a module. The
            placeholders are added to it (and a missing pad token is set to the end-of-sequence
            token). (default: :obj:`None`)
        mode (str): ``"add"`` or ``"replace"``. (default: :obj:`"add"`)
        shared_connector (bool): one connector for users and items instead of one each.
            (default: :obj:`False`)
        connector_hidden_dim (int, optional): middle width of the connectors. (default: ``H // 2``)
        lora_r (int): rank of the LoRA adapters; ``0`` trains no adapter (connectors and
            placeholder rows only). (default: :obj:`16`)
        lora_alpha (float): LoRA's scale numerator. (default: :obj:`32`)
        lora_dropout (float): dropout on the adapters' input. (default: :obj:`0.05`)
        lora_target_modules (sequence of str): names of the linear layers that get adapters.
            (default: ``("q_proj", "k_proj", "v_proj", "o_proj")``, Llama-like attention)
        train_placeholder_embeddings (bool): train the placeholder rows (``"add"`` mode).
            (default: :obj:`True`)
        context_length (int, optional): the most tokens (prompt, answer and new tokens) the
            model may see. (default: the model's ``max_position_embeddings``)
        dtype (str or torch.dtype): weights of a model loaded from a path: ``"auto"`` is bfloat16
            when a GPU that supports it is present, float32 otherwise. (default: :obj:`"auto"`)

    Attributes:
        model: the LM (a ``peft`` model when ``lora_r > 0``).
        tokenizer: its tokenizer, placeholders included.
        connectors (torch.nn.ModuleDict): ``"user"`` and ``"item"`` (or ``"shared"``) connectors.
        placeholder_token_ids (dict): ``{"user": id, "item": id}``.
        hidden_size (int): the LM's hidden size :math:`H`.
        context_length (int): as above.

    Raises:
        ImportError: ``transformers`` (or ``peft`` for LoRA) is not installed.
        ValueError: an unknown mode, a bad width or LoRA setting, ``lora_target_modules`` that name
            no layer of the model (the message lists the linear layers it has), or a module
            without a tokenizer.

    Example:
        >>> import torch
        >>> from tokenizers import Tokenizer, models, pre_tokenizers
        >>> from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
        >>> words = ["<unk>", "</s>", "recommend", "for", "Heat", "Alien"]
        >>> backend = Tokenizer(models.WordLevel({w: k for k, w in enumerate(words)}, unk_token="<unk>"))
        >>> backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        >>> tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="</s>")
        >>> _ = torch.manual_seed(0)
        >>> lm = LlamaForCausalLM(LlamaConfig(vocab_size=6, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        ...                                   num_attention_heads=4, max_position_embeddings=64))
        >>> injector = RecEmbeddingInjector(lm, rec_dim=8, tokenizer=tokenizer, lora_r=4)
        >>> batch = tokenizer(["recommend for <user>"], return_tensors="pt")
        >>> out = injector(batch["input_ids"], batch["attention_mask"], rec_vectors=torch.randn(1, 8))
        >>> out.logits.shape  # 6 words + <user> and <item>
        torch.Size([1, 3, 8])
        >>> sorted({name.split(".")[0] for name, p in injector.named_parameters() if p.requires_grad})
        ['connectors', 'model', 'placeholder_embeddings']
        >>> answers = injector.generate_text(["recommend for <user>"], torch.randn(1, 8), max_new_tokens=2)
        >>> len(answers)
        1
        >>> injector(batch["input_ids"], batch["attention_mask"])  # a <user> without a vector
        Traceback (most recent call last):
        ...
        ValueError: the prompts hold 1 placeholder(s) (row 0: 1) but no rec_vectors were given
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | nn.Module,
        rec_dim: int,
        tokenizer: Any = None,
        *,
        mode: str = "add",
        shared_connector: bool = False,
        connector_hidden_dim: int | None = None,
        lora_r: int = 16,
        lora_alpha: float = 32.0,
        lora_dropout: float = 0.05,
        lora_target_modules: Sequence[str] = DEFAULT_LORA_TARGETS,
        train_placeholder_embeddings: bool = True,
        context_length: int | None = None,
        dtype: str | torch.dtype = "auto",
    ) -> None:
        super().__init__()
        self.rec_dim = positive_int(rec_dim, "rec_dim")
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {list(MODES)}, got {mode!r}")
        if isinstance(lora_r, bool) or not isinstance(lora_r, int) or lora_r < 0:
            raise ValueError(f"`lora_r` must be a non-negative integer (0: no LoRA), got {lora_r!r}")
        if lora_alpha <= 0:
            raise ValueError(f"`lora_alpha` must be positive, got {lora_alpha}")
        if not 0.0 <= lora_dropout < 1.0:
            raise ValueError(f"`lora_dropout` must be in [0, 1), got {lora_dropout}")
        if isinstance(lora_target_modules, str):
            lora_target_modules = [lora_target_modules]
        targets = [str(name) for name in lora_target_modules]
        if lora_r and not targets:
            raise ValueError("`lora_target_modules` is empty: name the linear layers that get adapters, or set lora_r=0")
        if context_length is not None and (isinstance(context_length, bool) or context_length < 2):
            raise ValueError(f"`context_length` must be at least 2, got {context_length!r}")
        require("transformers", "RecEmbeddingInjector")

        self._source: str | None = None  # the path the model was loaded from, for darec_spec()
        if isinstance(model, (str, os.PathLike)):
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            backend = HFCausalLM(model, device="cpu", dtype=_resolve_dtype(dtype, device), progress=False)
            self._source, self._dtype = str(model), dtype
            lm, tokenizer = backend.model, tokenizer if tokenizer is not None else backend.tokenizer
            self.name = backend.name
        elif isinstance(model, nn.Module):
            if tokenizer is None:
                raise ValueError("a model given as a module needs its `tokenizer`")
            if hasattr(model, "peft_config"):
                raise ValueError("give the base model, not a peft model: the injector adds its own LoRA adapters")
            lm, self.name = model, type(model).__name__
        else:
            raise TypeError(f"`model` must be a path, a model name or a torch.nn.Module, got {type(model).__name__}")
        if not callable(getattr(lm, "get_input_embeddings", None)):
            raise TypeError(f"{type(lm).__name__} is not a Hugging Face model: it has no get_input_embeddings()")

        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token is None:
                raise ValueError("the tokenizer has neither a pad nor an end-of-sequence token")
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.add_tokens(list(PLACEHOLDERS.values()), special_tokens=True)
        self.tokenizer = tokenizer
        self.placeholder_token_ids = placeholder_ids(tokenizer)
        self._grow_vocabulary(lm, max(self.placeholder_token_ids.values()) + 1)
        embedding = lm.get_input_embeddings()
        self.hidden_size = int(embedding.embedding_dim)
        config = getattr(lm, "config", None)
        self.context_length = int(context_length or getattr(config, "max_position_embeddings", 0) or 2048)

        self.mode = mode
        self.shared_connector = bool(shared_connector)
        kinds = ("shared",) if self.shared_connector else ("user", "item")
        self.connectors = nn.ModuleDict({kind: RecConnector(rec_dim, self.hidden_size, connector_hidden_dim) for kind in kinds})
        self.connector_hidden_dim = self.connectors[kinds[0]].hidden_dim

        lm.requires_grad_(False)
        self.lora_r, self.lora_alpha, self.lora_dropout = lora_r, float(lora_alpha), float(lora_dropout)
        self.lora_target_modules = tuple(targets) if lora_r else ()
        if lora_r:
            lm = self._with_lora(lm)
        self.model = lm
        self.train_placeholder_embeddings = bool(train_placeholder_embeddings) and mode == "add"
        if self.train_placeholder_embeddings:
            rows = embedding.weight.detach()[[self.placeholder_token_ids["user"], self.placeholder_token_ids["item"]]]
            self.placeholder_embeddings = nn.Parameter(rows.float().clone())
        else:
            self.register_parameter("placeholder_embeddings", None)
        self.train()  # like any new module (a loaded LM comes in eval mode): LoRA's dropout acts while training

    # -- building ----------------------------------------------------------------------------------
    @staticmethod
    @torch.no_grad()
    def _grow_vocabulary(lm: nn.Module, size: int) -> None:
        """Gives ``lm`` at least ``size`` token rows, the new ones the mean of the old (deterministic, unlike transformers' default)."""
        rows = lm.get_input_embeddings().num_embeddings
        if size <= rows:
            return
        old_in = lm.get_input_embeddings().weight[:rows].float().mean(0)
        output = lm.get_output_embeddings() if callable(getattr(lm, "get_output_embeddings", None)) else None
        old_out = output.weight[:rows].float().mean(0) if output is not None else None
        lm.resize_token_embeddings(size, mean_resizing=False)
        weight = lm.get_input_embeddings().weight
        weight[rows:] = old_in.to(weight.dtype)
        output = lm.get_output_embeddings() if output is not None else None
        if output is not None and output.weight is not weight:  # untied output head: its own mean
            output.weight[rows:] = old_out.to(output.weight.dtype)
            if getattr(output, "bias", None) is not None:
                output.bias[rows:] = output.bias[:rows].mean()

    def _with_lora(self, lm: nn.Module) -> nn.Module:
        peft = require("peft", "the LoRA adapters of RecEmbeddingInjector")
        config = peft.LoraConfig(
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=list(self.lora_target_modules),
            task_type="CAUSAL_LM",
        )
        linear = sorted({name.rsplit(".", 1)[-1] for name, module in lm.named_modules() if isinstance(module, nn.Linear)})
        # plain names must all exist (peft ignores a misspelt one as long as another matches); dotted
        # or regular-expression targets are left to peft
        plain = [name for name in self.lora_target_modules if re.fullmatch(r"\w+", name)]
        missing = [name for name in plain if name not in linear]
        if missing:
            raise ValueError(f"lora_target_modules {missing} name no linear layer of {self.name}; its linear layers are {linear}")
        try:
            with warnings.catch_warnings():  # peft asks transformers>=5 a deprecated question; nothing for the user to do
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                return peft.get_peft_model(lm, config)
        except ValueError as err:  # peft's NoMatchingPeftModuleError
            raise ValueError(
                f"lora_target_modules {list(self.lora_target_modules)} match no layer of {self.name} ({err}); its linear "
                f"layers are {linear}"
            ) from err

    # -- properties --------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the LM's input embeddings are."""
        return self.model.get_input_embeddings().weight.device

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters that train: LoRA adapters, connectors and placeholder rows."""
        return (p for p in self.parameters() if p.requires_grad)

    def extra_repr(self) -> str:
        return (
            f"model={self.name!r}, mode={self.mode!r}, rec_dim={self.rec_dim}, hidden_size={self.hidden_size}, "
            f"lora_r={self.lora_r}, context_length={self.context_length}"
        )

    # -- embedding ---------------------------------------------------------------------------------
    def _check_length(self, input_ids: Tensor, attention_mask: Tensor | None, new_tokens: int = 0) -> None:
        if input_ids.dim() != 2:
            raise ValueError(f"`input_ids` must be a (B, T) tensor, got shape {tuple(input_ids.shape)}")
        if input_ids.size(1) + new_tokens <= self.context_length:
            return
        lengths = attention_mask.sum(1) if attention_mask is not None else torch.full((input_ids.size(0),), input_ids.size(1))
        row = int(lengths.argmax())
        extra = f" and {new_tokens} new tokens" if new_tokens else ""
        raise ValueError(
            f"row {row} of the batch has {int(lengths[row])} tokens{extra}, more than the context of {self.name} "
            f"({self.context_length} tokens): shorten the prompt (e.g. the task builder's max_history)"
        )

    def _flat_vectors(self, rec_vectors: Tensor | Sequence[Tensor | None] | None, counts: Tensor) -> Tensor | None:
        """The ``(P, rec_dim)`` vectors of the batch's ``P`` placeholders, in reading order, checked against ``counts``."""
        total = int(counts.sum())
        per_row = ", ".join(f"row {r}: {int(c)}" for r, c in enumerate(counts.tolist()[:8])) + (", ..." if len(counts) > 8 else "")
        if rec_vectors is None:
            if total:
                raise ValueError(f"the prompts hold {total} placeholder(s) ({per_row}) but no rec_vectors were given")
            return None
        if isinstance(rec_vectors, Tensor):
            vectors = rec_vectors
            if vectors.dim() != 2:
                raise ValueError(f"`rec_vectors` must be (P, {self.rec_dim}) or a list of per-row tensors, got shape {tuple(vectors.shape)}")
            if vectors.size(0) != total:
                raise ValueError(
                    f"{vectors.size(0)} rec_vectors were given for {total} placeholder(s) ({per_row}): a prompt "
                    + ("lacks a placeholder that a vector was given for" if vectors.size(0) > total else "holds a placeholder without a vector")
                )
        else:
            rows = list(rec_vectors)
            if len(rows) != len(counts):
                raise ValueError(f"`rec_vectors` has {len(rows)} per-row entries for a batch of {len(counts)} prompts")
            pieces = []
            for r, (row, count) in enumerate(zip(rows, counts.tolist())):
                row = torch.empty(0, self.rec_dim) if row is None else torch.as_tensor(row)
                row = row.unsqueeze(0) if row.dim() == 1 else row
                if row.dim() != 2:
                    raise ValueError(f"the rec_vectors of row {r} must be (p, {self.rec_dim}), got shape {tuple(row.shape)}")
                if row.size(0) != count:
                    why = "the prompt lacks a placeholder for" if row.size(0) > count else "the prompt holds more placeholders than"
                    raise ValueError(f"row {r} holds {count} placeholder(s) but {row.size(0)} vector(s) were given: {why} them")
                pieces.append(row.to(self.device))
            vectors = torch.cat(pieces) if pieces else torch.empty(0, self.rec_dim)
        if vectors.size(-1) != self.rec_dim:
            raise ValueError(f"the rec_vectors have width {vectors.size(-1)}, but the connectors take rec_dim={self.rec_dim}")
        return vectors if total else None

    def _project(self, vectors: Tensor, is_user: Tensor) -> Tensor:
        """``(P, H)`` connector outputs of ``(P, rec_dim)`` vectors, each by its kind's connector."""
        if self.shared_connector:
            return self.connectors["shared"](vectors)
        projected = []
        order = []
        for kind, select in (("user", is_user), ("item", ~is_user)):
            index = select.nonzero(as_tuple=True)[0]
            if index.numel():
                projected.append(self.connectors[kind](vectors[index]))
                order.append(index)
        index = torch.cat(order)
        return torch.cat(projected)[torch.argsort(index)]

    def embed(
        self,
        input_ids: Tensor,
        rec_vectors: Tensor | Sequence[Tensor | None] | None = None,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        """The ``(B, T, H)`` input embeddings of ``input_ids`` with the projected vectors at the placeholders.

        Args:
            input_ids (Tensor): ``(B, T)`` token ids.
            rec_vectors: the placeholders' vectors: ``(P, rec_dim)`` in reading order, or ``B``
                per-row ``(p_b, rec_dim)`` tensors (see the class). Detached: no gradient reaches
                the recommender.
            attention_mask (Tensor, optional): ``(B, T)``, only to name the longest row in errors.

        Raises:
            ValueError: a batch longer than the context, or vectors that do not match the
                placeholders (a count or a width).
        """
        self._check_length(input_ids, attention_mask)
        input_ids = input_ids.to(self.device)
        embeds = self.model.get_input_embeddings()(input_ids)
        is_user = input_ids == self.placeholder_token_ids["user"]
        is_slot = is_user | (input_ids == self.placeholder_token_ids["item"])
        vectors = self._flat_vectors(rec_vectors, is_slot.sum(1).cpu())
        if vectors is None:
            return embeds
        rows, cols = is_slot.nonzero(as_tuple=True)  # row-major: reading order
        slot_is_user = is_user[rows, cols]
        weight = next(self.connectors.parameters())
        projected = self._project(vectors.detach().to(device=weight.device, dtype=weight.dtype), slot_is_user)
        if self.mode == "add":
            if self.placeholder_embeddings is not None:
                base = self.placeholder_embeddings[(~slot_is_user).long()]
            else:
                base = embeds[rows, cols]
            values = base.to(projected.dtype) + projected
        else:
            values = projected
        return embeds.index_put((rows, cols), values.to(embeds.dtype))

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        rec_vectors: Tensor | Sequence[Tensor | None] | None = None,
        labels: Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        """Runs the LM on the embeddings of :meth:`embed`.

        Args:
            input_ids (Tensor): ``(B, T)`` token ids, placeholders included.
            attention_mask (Tensor, optional): ``(B, T)``, 1 on tokens and 0 on padding.
            rec_vectors: the placeholders' vectors (see :meth:`embed`).
            labels (Tensor, optional): ``(B, T)`` targets, ``-100`` where no loss is taken
                (prompt and padding); the LM shifts them.
            **kwargs: passed to the LM (e.g. ``use_cache=False``).

        Returns:
            The LM's output: ``logits`` of shape ``(B, T, V)`` (``V`` counts the two placeholders),
            and ``loss``, the mean cross-entropy over the labelled tokens, when ``labels`` are given.
        """
        embeds = self.embed(input_ids, rec_vectors, attention_mask)
        if attention_mask is not None:
            attention_mask = attention_mask.to(embeds.device)
        if labels is not None:
            labels = labels.to(embeds.device)
        return self.model(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, **kwargs)

    # -- generation --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _evaluating(self) -> Iterator[None]:
        training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(training)

    def generate(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        rec_vectors: Tensor | Sequence[Tensor | None] | None = None,
        **kwargs: Any,
    ) -> Tensor:
        """New tokens after left-padded prompts whose placeholders carry ``rec_vectors`` (through ``inputs_embeds``).

        Runs in eval mode (no dropout), greedy unless ``do_sample=True`` is given; the placeholder
        tokens are never generated.

        Args:
            input_ids (Tensor): ``(B, T)`` prompts, padded on the left.
            attention_mask (Tensor, optional): ``(B, T)``.
            rec_vectors: the placeholders' vectors (see :meth:`embed`).
            **kwargs: passed to the LM's ``generate`` (``max_new_tokens``, ...).

        Returns:
            Tensor: ``(B, N)`` generated ids only (padded after an end-of-sequence token).

        Raises:
            ValueError: the prompt and ``max_new_tokens`` do not fit in the context, or
                mismatched vectors.
        """
        new_tokens = int(kwargs.get("max_new_tokens") or getattr(self.model.generation_config, "max_new_tokens", None) or 20)
        self._check_length(input_ids, attention_mask, new_tokens)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        kwargs.setdefault("max_new_tokens", new_tokens)
        kwargs.setdefault("do_sample", False)
        kwargs.setdefault("pad_token_id", self.tokenizer.pad_token_id)
        kwargs.setdefault("suppress_tokens", sorted(self.placeholder_token_ids.values()))
        with self._evaluating(), torch.no_grad():
            embeds = self.embed(input_ids, rec_vectors, attention_mask)
            return self.model.generate(inputs_embeds=embeds, attention_mask=attention_mask.to(embeds.device), **kwargs)

    def generate_text(
        self,
        prompts: Sequence[str],
        rec_vectors: Tensor | Sequence[Tensor | None] | None = None,
        *,
        system: str | None = None,
        max_new_tokens: int = 32,
        **kwargs: Any,
    ) -> list[str]:
        """Answers to ``prompts`` (wrapped in the chat template when the tokenizer has one), in order.

        Args:
            prompts (sequence of str): the user prompts, with their placeholders.
            rec_vectors: the placeholders' vectors (see :meth:`embed`), in the order of ``prompts``.
            system (str, optional): a system prompt. (default: :obj:`None`)
            max_new_tokens (int): the longest answer. (default: :obj:`32`)
            **kwargs: passed to :meth:`generate`.

        Returns:
            list[str]: the answers, up to the end-of-sequence token, without special tokens, stripped.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        rows = [prompt_ids(self.tokenizer, prompt, system) for prompt in prompts]
        input_ids, attention_mask = pad_rows(rows, self.tokenizer.pad_token_id, "left")
        new = self.generate(input_ids, attention_mask, rec_vectors, max_new_tokens=max_new_tokens, **kwargs).cpu()
        eos = kwargs.get("eos_token_id", self.model.generation_config.eos_token_id)
        eos = {self.tokenizer.eos_token_id} | set([eos] if isinstance(eos, int) else (eos or []))
        answers = []
        for row in new.tolist():
            cut = next((k for k, token in enumerate(row) if token in eos), len(row))
            answers.append(self.tokenizer.decode(row[:cut], skip_special_tokens=True).strip())
        return answers

    # -- trainable parts ---------------------------------------------------------------------------
    def trainable_config(self) -> dict[str, Any]:
        """What a file of trainable parts records about their shapes (plain values)."""
        return {
            "model": self.name,
            "hidden_size": self.hidden_size,
            "rec_dim": self.rec_dim,
            "connector_hidden_dim": self.connector_hidden_dim,
            "mode": self.mode,
            "shared_connector": self.shared_connector,
            "train_placeholder_embeddings": self.train_placeholder_embeddings,
            "lora_r": self.lora_r,
            "lora_alpha": self.lora_alpha,
            "lora_dropout": self.lora_dropout,
            "lora_target_modules": list(self.lora_target_modules),
        }

    def check_compatible(self, config: dict[str, Any], source: str = "the checkpoint") -> None:
        """Raises a ``ValueError`` naming what differs if trainable parts saved with ``config`` cannot load here."""
        mine = self.trainable_config()
        if config.get("hidden_size") != self.hidden_size:
            raise ValueError(
                f"{source} holds connectors built for an LM of hidden size {config.get('hidden_size')} "
                f"({config.get('model')}), but {self.name}'s hidden size is {self.hidden_size}: load it over the LM it was trained with"
            )
        if config.get("rec_dim") != self.rec_dim:
            raise ValueError(
                f"{source} holds connectors for recommender vectors of width {config.get('rec_dim')}, but this injector "
                f"takes rec_dim={self.rec_dim}"
            )
        differ = [
            f"{key}={config.get(key)!r} (here {mine[key]!r})"
            for key in _MUST_MATCH
            if key in config and (list(config[key]) if isinstance(config[key], tuple) else config[key]) != mine[key]
        ]
        if differ:
            raise ValueError(f"{source} was saved by an injector with {', '.join(differ)}")

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """The state of the trainable parameters only (LoRA, connectors, placeholder rows), on the CPU."""
        names = {name for name, p in self.named_parameters() if p.requires_grad}
        return {key: value.detach().cpu().clone() for key, value in self.state_dict().items() if key in names}

    def load_trainable_state_dict(self, state: dict[str, Tensor], source: str = "the checkpoint") -> None:
        """Loads what :meth:`trainable_state_dict` returned; every trainable parameter must be there, nothing else.

        Raises:
            ValueError: keys missing or unknown, or a shape that differs.
        """
        expected = {name for name, p in self.named_parameters() if p.requires_grad}
        missing, unknown = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unknown:
            raise ValueError(
                f"{source} does not match this injector's trainable parameters: "
                f"{len(missing)} missing (e.g. {missing[:3]}), {len(unknown)} unknown (e.g. {unknown[:3]})"
            )
        own = self.state_dict()
        wrong = [f"{k}: {tuple(v.shape)} (here {tuple(own[k].shape)})" for k, v in state.items() if v.shape != own[k].shape]
        if wrong:
            raise ValueError(f"{source} has parameters of other shapes: {', '.join(wrong[:3])}")
        self.load_state_dict(state, strict=False)

    def save_trainable(self, path: str | os.PathLike[str]) -> Path:
        """Writes the trainable parts and their configuration to one file (``torch.save``), atomically.

        Returns:
            Path: the file.
        """
        path = Path(path).expanduser()
        record = {"format": FILE_FORMAT, "config": self.trainable_config(), "state_dict": self.trainable_state_dict()}
        with atomic_write(path, "wb") as handle:
            torch.save(record, handle)
        return path

    @staticmethod
    def read_trainable(path: str | os.PathLike[str]) -> dict[str, Any]:
        """The ``{"format", "config", "state_dict"}`` record of a file written by :meth:`save_trainable`.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not such a record.
        """
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"the injector file {path} does not exist")
        try:
            record = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle, zip and weights_only errors of every kind
            raise ValueError(f"{path} is not a file of RecEmbeddingInjector.save_trainable: {err}") from err
        if not isinstance(record, dict) or record.get("format") != FILE_FORMAT:
            raise ValueError(f"{path} is not a file of RecEmbeddingInjector.save_trainable (format {FILE_FORMAT!r})")
        return record

    def load_trainable(self, path: str | os.PathLike[str]) -> RecEmbeddingInjector:
        """Loads the trainable parts written by :meth:`save_trainable` into this injector (built over the same base LM).

        Returns:
            RecEmbeddingInjector: ``self``.

        Raises:
            FileNotFoundError: no such file.
            ValueError: not such a file, or saved for another LM width, vector width or configuration.
        """
        record = self.read_trainable(path)
        self.check_compatible(record["config"], source=str(path))
        self.load_trainable_state_dict(record["state_dict"], source=str(path))
        return self

    @classmethod
    def from_trainable(
        cls, path: str | os.PathLike[str], model: str | os.PathLike[str] | nn.Module, tokenizer: Any = None, **kwargs: Any
    ) -> RecEmbeddingInjector:
        """An injector over ``model`` built with the configuration saved in ``path``, its trainable parts loaded.

        Args:
            path: a file written by :meth:`save_trainable`.
            model, tokenizer: the base LM, as for the constructor (the one the file was trained with).
            **kwargs: other constructor arguments (``context_length``, ``dtype``, ...).
        """
        config = cls.read_trainable(path)["config"]
        settings = {
            "mode": config["mode"],
            "shared_connector": config["shared_connector"],
            "connector_hidden_dim": config["connector_hidden_dim"],
            "lora_r": config["lora_r"],
            "lora_alpha": config["lora_alpha"],
            "lora_dropout": config["lora_dropout"],
            "train_placeholder_embeddings": config["train_placeholder_embeddings"],
        }
        if config["lora_target_modules"]:
            settings["lora_target_modules"] = config["lora_target_modules"]
        injector = cls(model, config["rec_dim"], tokenizer, **{**settings, **kwargs})
        return injector.load_trainable(path)

    def darec_spec(self) -> dict[str, Any] | None:
        """The constructor arguments that rebuild this injector (untrained), when its LM was loaded from a path."""
        if self._source is None:
            return None
        spec = {
            "model": self._source,
            "rec_dim": self.rec_dim,
            "mode": self.mode,
            "shared_connector": self.shared_connector,
            "connector_hidden_dim": self.connector_hidden_dim,
            "lora_r": self.lora_r,
            "lora_alpha": self.lora_alpha,
            "lora_dropout": self.lora_dropout,
            "train_placeholder_embeddings": self.train_placeholder_embeddings,
            "context_length": self.context_length,
            "dtype": self._dtype if isinstance(self._dtype, str) else str(self._dtype).removeprefix("torch."),
        }
        if self.lora_target_modules:
            spec["lora_target_modules"] = list(self.lora_target_modules)
        return spec
