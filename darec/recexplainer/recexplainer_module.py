"""The Lightning module that aligns an LLM with a recommender: response-only language-model loss on the embedding injector."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.nn.modules.module import _IncompatibleKeys

from darec.recexplainer.rec_embedding_injector import RecEmbeddingInjector
from darec.utils.spec import build_from_spec, describe

__all__ = ["RecExplainerModule"]

_PREFIX = "injector."


class RecExplainerModule(L.LightningModule):
    r"""Trains a :class:`~darec.recexplainer.RecEmbeddingInjector` on alignment tasks with a response-only loss (RX-2).

    The loss is the LM's causal cross-entropy averaged over the response tokens of the batch,

    .. math::
        \mathcal{L} = -\frac{1}{|R|} \sum_{(b, t) \in R} \log p_\theta(x_{b,t} \mid x_{b,<t}, e),

    where :math:`R` holds the positions whose label is not ``-100`` (the prompt and the padding
    are masked by :class:`~darec.recexplainer.RecExplainerDataset`) and :math:`e` are the target's
    vectors at the placeholders. AdamW updates the trainable parameters only: LoRA, the
    connectors and the placeholder rows; the LM's weights and the target recommender stay
    frozen. On a GPU that supports it, the forward pass runs under bfloat16 autocast; on the CPU
    in float32 (the Trainer's ``accelerator="auto"`` picks the GPU when there is one).

    **Checkpoints** are small: they hold the trainable parameters only (and the injector's
    configuration, checked on loading), not the LM. An injector whose LM was loaded from a path
    is recorded in the hyperparameters, so that ``RecExplainerModule.load_from_checkpoint(path)``
    rebuilds it from that path; otherwise pass ``injector=`` to ``load_from_checkpoint``.

    Args:
        injector (RecEmbeddingInjector or dict): the model to train (or its ``class_path`` spec).
        lr (float): AdamW learning rate. (default: :obj:`1e-4`, RecExplainer's)
        weight_decay (float): AdamW weight decay. (default: :obj:`0.0`)
        warmup_steps (int): steps of linear learning-rate warm-up from ``lr / warmup_steps``.
            (default: :obj:`0`)
        bf16 (bool, optional): run the forward pass under bfloat16 autocast; :obj:`None` does
            so on a CUDA device that supports bfloat16. (default: :obj:`None`)

    Raises:
        TypeError: ``injector`` is not a :class:`~darec.recexplainer.RecEmbeddingInjector`.
        ValueError: a learning rate, weight decay or warm-up out of range.

    Example:
        >>> import torch
        >>> from tokenizers import Tokenizer, models, pre_tokenizers
        >>> from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
        >>> from darec.recexplainer.rec_embedding_injector import RecEmbeddingInjector
        >>> from darec.recexplainer.recexplainer_dataset import RecExplainerDataset
        >>> words = ["<unk>", "</s>", "next", "for", "Heat", "Alien"]
        >>> backend = Tokenizer(models.WordLevel({w: k for k, w in enumerate(words)}, unk_token="<unk>"))
        >>> backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        >>> tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="</s>")
        >>> _ = torch.manual_seed(0)
        >>> lm = LlamaForCausalLM(LlamaConfig(vocab_size=6, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        ...                                   num_attention_heads=4, max_position_embeddings=64))
        >>> module = RecExplainerModule(RecEmbeddingInjector(lm, rec_dim=2, tokenizer=tokenizer, lora_r=4), lr=1e-2)
        >>> records = [{"prompt": "next for <user>", "response": "Heat", "placeholders": [["user", 0]]},
        ...            {"prompt": "next for <user>", "response": "Alien", "placeholders": [["user", 1]]}]
        >>> data = RecExplainerDataset(records, module.injector.tokenizer, user_vectors=torch.eye(2))
        >>> module.loss(data.collate([data[0], data[1]])).shape
        torch.Size([])
    """

    def __init__(
        self,
        injector: RecEmbeddingInjector | dict[str, Any],
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        bf16: bool | None = None,
    ) -> None:
        super().__init__()
        if isinstance(injector, dict):
            injector = build_from_spec(injector, what="the injector")
        if not isinstance(injector, RecEmbeddingInjector):
            raise TypeError(f"`injector` must be a RecEmbeddingInjector, got {type(injector).__name__}")
        if not lr > 0:
            raise ValueError(f"`lr` must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"`weight_decay` must be non-negative, got {weight_decay}")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be a non-negative integer, got {warmup_steps!r}")
        self.injector = injector
        self.save_hyperparameters(ignore=["injector"])
        spec = describe(injector)
        if spec is not None:  # so that load_from_checkpoint(path) rebuilds the injector from its LM's path
            self.hparams["injector"] = spec

    # -- forward and loss --------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        enabled = self.hparams.bf16
        if enabled is None:
            enabled = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        if not enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        rec_vectors: Tensor | Sequence[Tensor | None] | None = None,
        labels: Tensor | None = None,
    ) -> Any:
        """The injector's output (``logits``, and ``loss`` with ``labels``), under autocast where it applies."""
        with self._autocast():
            return self.injector(input_ids, attention_mask, rec_vectors, labels, use_cache=False)

    def loss(self, batch: dict[str, Any]) -> Tensor:
        """The response-only cross-entropy of a batch of :meth:`RecExplainerDataset.collate <darec.recexplainer.RecExplainerDataset.collate>`.

        Raises:
            ValueError: the batch has no labels, or no response token.
        """
        labels = batch.get("labels")
        if labels is None:
            raise ValueError("the batch has no `labels`: build it with RecExplainerDataset.collate")
        if not bool((labels[:, 1:] != -100).any()):
            raise ValueError("the batch has no response token to learn (every label is -100)")
        out = self(batch["input_ids"], batch.get("attention_mask"), batch.get("rec_vectors"), labels)
        return out.loss.float()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].size(0))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=batch["input_ids"].size(0))
        return loss

    def generate_text(self, prompts: Sequence[str], rec_vectors: Any = None, **kwargs: Any) -> list[str]:
        """The explainer's answers: :meth:`RecEmbeddingInjector.generate_text <darec.recexplainer.RecEmbeddingInjector.generate_text>`, under autocast where it applies."""
        with self._autocast():
            return self.injector.generate_text(prompts, rec_vectors, **kwargs)

    # -- optimisation ------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        params = list(self.injector.trainable_parameters())
        if not params:
            raise ValueError("the injector has no trainable parameter")
        optimizer = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        warmup = self.hparams.warmup_steps
        if not warmup:
            return optimizer
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # -- checkpoints: trainable parts only ---------------------------------------------------------
    def _trainable_keys(self) -> set[str]:
        return {_PREFIX + name for name, p in self.injector.named_parameters() if p.requires_grad}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        keep = self._trainable_keys()
        checkpoint["state_dict"] = {key: value for key, value in checkpoint["state_dict"].items() if key in keep}
        checkpoint["recexplainer"] = self.injector.trainable_config()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        config = checkpoint.get("recexplainer")
        if config is not None:
            self.injector.check_compatible(config)

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Loads a state of the trainable parameters only (what this module's checkpoints hold), or a full one.

        Raises:
            ValueError: a state of trainable parameters that lacks some of them or has others.
        """
        trainable = self._trainable_keys()
        frozen = set(super().state_dict()) - trainable
        if frozen.intersection(state_dict):  # a full state (the LM's weights included)
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        outside = sorted(key for key in state_dict if not key.startswith(_PREFIX))
        if outside:
            raise ValueError(f"the checkpoint has keys outside the injector: {outside[:3]}")
        self.injector.load_trainable_state_dict({key[len(_PREFIX) :]: value for key, value in state_dict.items()})
        return _IncompatibleKeys(missing_keys=[], unexpected_keys=[])
