"""One RL stage of ExpCTR: LoRA fine-tuning of the explanation generator with TRL and a reward callable."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from darec.llm._imports import require

log = logging.getLogger(__name__)


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a conversational list of ``{"role", "content"}`` messages."""
    if isinstance(completion, str):
        return completion.strip()
    if isinstance(completion, list):
        return " ".join(str(m.get("content", "")) for m in completion if isinstance(m, dict)).strip()
    if isinstance(completion, dict):
        return str(completion.get("content", "")).strip()
    return str(completion).strip()


def train_policy(
    base: str,
    adapter_in: str | None,
    adapter_out: Path,
    records: Sequence[dict[str, Any]],
    reward: Callable[..., list[float]],
    *,
    algorithm: str,
    steps: int,
    num_generations: int,
    prompts_per_step: int,
    learning_rate: float,
    temperature: float,
    max_new_tokens: int,
    lora: dict[str, Any],
    seed: int,
    work_dir: Path,
    progress: bool = True,
    keep_model: bool = False,
) -> dict[str, Any]:
    """Trains the generator's LoRA weights for ``steps`` steps of GRPO or RLOO and saves the adapter to ``adapter_out``.

    ``records`` are the training pairs, dicts with ``prompt`` (the explanation prompt) and the
    columns the reward reads (``label``, ``user``, ``item``); TRL passes them to ``reward`` as
    keyword arguments next to ``completions``. The base model is loaded frozen from ``base``;
    ``adapter_in`` (an earlier stage's adapter) is trained further, otherwise a fresh LoRA adapter
    is made from ``lora``. Returns the trainer's log history, the wall time and the number of
    trainable parameters (and, with ``keep_model``, the trained model).
    """
    transformers = require("transformers", "the ExpCTR RL stage")
    peft = require("peft", "the ExpCTR RL stage")
    trl = require("trl", "the ExpCTR RL stage")
    datasets = require("datasets", "the ExpCTR RL stage")
    start = time.perf_counter()
    tokenizer = transformers.AutoTokenizer.from_pretrained(base, local_files_only=True)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = transformers.AutoModelForCausalLM.from_pretrained(base, local_files_only=True, dtype=torch.float32)
    peft_config = None
    if adapter_in is not None:
        model = peft.PeftModel.from_pretrained(model, adapter_in, is_trainable=True)
    else:
        peft_config = peft.LoraConfig(task_type="CAUSAL_LM", **lora)
    chat = bool(getattr(tokenizer, "chat_template", None))
    columns: dict[str, list[Any]] = {key: [r[key] for r in records] for key in records[0] if key != "prompt"}
    prompts = [[{"role": "user", "content": r["prompt"]}] if chat else r["prompt"] for r in records]
    dataset = datasets.Dataset.from_dict({"prompt": prompts, **columns})
    name = {"grpo": ("GRPOConfig", "GRPOTrainer"), "rloo": ("RLOOConfig", "RLOOTrainer")}[algorithm]
    config_cls, trainer_cls = getattr(trl, name[0]), getattr(trl, name[1])
    args = config_cls(
        output_dir=str(work_dir), max_steps=steps, num_generations=num_generations,
        per_device_train_batch_size=num_generations * prompts_per_step, gradient_accumulation_steps=1,
        max_completion_length=max_new_tokens, learning_rate=learning_rate, temperature=temperature,
        logging_steps=1, save_strategy="no", report_to=[], seed=seed, use_cpu=not torch.cuda.is_available(),
        disable_tqdm=not progress, beta=0.0,
        # TRL turns gradient checkpointing on by default, which also makes sampling run without a KV cache:
        # five times slower for a 135M model on a CPU, for memory that a small LoRA model does not need
        gradient_checkpointing=False,
    )  # fmt: skip
    trainer = trainer_cls(
        model=model, reward_funcs=[reward], args=args, train_dataset=dataset, processing_class=tokenizer,
        peft_config=peft_config,
    )  # fmt: skip
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    trainer.train()
    adapter_out.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(str(adapter_out))
    out: dict[str, Any] = {
        "steps": int(trainer.state.global_step), "seconds": time.perf_counter() - start,
        "trainable_parameters": int(trainable),
        "log_history": [{k: v for k, v in entry.items() if isinstance(v, (int, float))} for entry in trainer.state.log_history],
    }  # fmt: skip
    if keep_model:
        out["model"] = trainer.model
    return out
