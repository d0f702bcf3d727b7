"""The settings of an :class:`~darec.expctr.ExpCTRLoop` run, read from Python or a YAML file."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

__all__ = ["CTR_MODELS", "ExpCTRConfig"]

#: The CTR backbones the loop trains, by name.
CTR_MODELS = ("fm", "deepfm", "dcnv2")
#: The policy-optimisation algorithms of TRL the loop can use.
ALGORITHMS = ("grpo", "rloo")
#: Fields that change how fast a run goes, not what it computes: they may differ on resume.
RUNTIME_FIELDS = ("threads", "progress", "explain_batch_size")


@dataclasses.dataclass
class ExpCTRConfig:
    """Everything an ExpCTR run depends on; the run's ``state.json`` keeps it, and a resume must match it.

    Data (as :class:`~darec.ctr.CTRDataModule`): ``data`` is ``"ml100k"`` or a path (a TSV/CSV
    file with user, item, timestamp and rating or label columns, a RecBole or GroupLens folder;
    ``item_info`` gives its titles), ``positive_threshold`` turns ratings into clicks, and
    ``users``/``user_seed``/``users_from`` keep every pair of a seeded subsample of users (an LLM on
    a CPU cannot explain every pair; :meth:`CTRSamples.user_sample
    <darec.ctr.CTRSamples.user_sample>`).

    Generator: ``generator`` is a local causal LM folder or ``"smollm2"`` (the offline default);
    only LoRA weights (``lora_r``, ``lora_alpha``, ``lora_dropout``, ``lora_target_modules``)
    are trained. ``scorer`` is the frozen LLM of the LC reward and of ExpCTR-LLM (default: the
    generator's base model). Explanations use ``max_liked``/``max_disliked`` history titles and
    at most ``max_new_tokens`` tokens, greedy.

    RL (TRL): ``algorithm`` ``"grpo"`` (:class:`trl.GRPOTrainer`) or ``"rloo"``
    (:class:`trl.RLOOTrainer`), ``rounds`` of ``lc_steps`` LC-rewarded then ``ic_steps``
    IC-rewarded steps, each step ``prompts_per_step`` training pairs x ``num_generations``
    sampled explanations at ``temperature``, Adam at ``learning_rate``.

    CTR: ``ctr_model`` (one of :data:`CTR_MODELS`) with ``ctr_embedding_dim``, trained
    ``ctr_epochs`` epochs (best validation AUC kept) with batch ``ctr_batch_size``, learning rate
    ``ctr_lr`` and ``ctr_weight_decay``; explanations embedded by ``text_encoder``;
    ``shuffled_control`` also trains each augmented model on shuffled explanations.

    ``zero_shot`` explains every pair with the untrained generator first (the before-RL
    baseline). ``seed`` seeds everything; ``threads`` caps CPU threads.
    """

    data: str = "ml100k"
    item_info: str | None = None
    positive_threshold: float = 4.0
    users: int | None = None
    user_seed: int = 0
    users_from: str | None = None
    generator: str = "smollm2"
    scorer: str | None = None
    max_liked: int = 10
    max_disliked: int = 10
    max_new_tokens: int = 48
    explain_batch_size: int = 16
    algorithm: str = "grpo"
    rounds: int = 1
    lc_steps: int = 20
    ic_steps: int = 20
    prompts_per_step: int = 2
    num_generations: int = 4
    learning_rate: float = 5e-5
    temperature: float = 1.0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | None = None
    zero_shot: bool = True
    ctr_model: str = "deepfm"
    ctr_embedding_dim: int = 16
    ctr_epochs: int = 30
    ctr_batch_size: int = 256
    ctr_lr: float = 1e-3
    ctr_weight_decay: float = 0.0
    shuffled_control: bool = True
    text_encoder: str = "all-MiniLM-L6-v2"
    seed: int = 0
    threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        positive = ("max_new_tokens", "explain_batch_size", "rounds", "prompts_per_step", "lora_r", "lora_alpha",
                    "ctr_embedding_dim", "ctr_epochs", "ctr_batch_size")  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ExpCTRConfig.{name} must be a positive integer, got {value!r}")
        for name in ("lc_steps", "ic_steps", "max_liked", "max_disliked"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"ExpCTRConfig.{name} must be a non-negative integer, got {value!r}")
        for name in ("users", "threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"ExpCTRConfig.{name} must be a positive integer or None, got {value!r}")
        if self.num_generations < 2:
            raise ValueError(f"ExpCTRConfig.num_generations must be at least 2 (rewards are compared within a group), "
                             f"got {self.num_generations}")  # fmt: skip
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"ExpCTRConfig.algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        if self.ctr_model not in CTR_MODELS:
            raise ValueError(f"ExpCTRConfig.ctr_model must be one of {CTR_MODELS}, got {self.ctr_model!r}")
        if self.users_from not in (None, "train", "valid", "test"):
            raise ValueError(f"ExpCTRConfig.users_from must be train, valid, test or None, got {self.users_from!r}")
        for name in ("learning_rate", "ctr_lr", "temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ExpCTRConfig.{name} must be positive, got {getattr(self, name)!r}")
        if not 0 <= self.lora_dropout < 1 or self.ctr_weight_decay < 0:
            raise ValueError("ExpCTRConfig.lora_dropout must be in [0, 1) and ctr_weight_decay non-negative")
        if self.lora_target_modules is not None:
            self.lora_target_modules = [str(name) for name in self.lora_target_modules]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **overrides: Any) -> ExpCTRConfig:
        """Reads a YAML (or JSON) file of these fields; an unknown key is an error that lists the known ones.

        Example:
            >>> import pathlib, tempfile
            >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.yaml"
            >>> _ = path.write_text("users: 10\\nlc_step: 5\\n")
            >>> ExpCTRConfig.from_file(path)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: ...run.yaml: unknown key(s) lc_step (did you mean lc_steps?); the keys are data, ...
        """
        from omegaconf import OmegaConf

        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no config file at {path}")
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=True) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of settings, got {type(loaded).__name__}")
        return cls.from_dict({**loaded, **overrides}, where=str(path))

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "the config") -> ExpCTRConfig:
        """Builds the config from a mapping; unknown keys are an error naming the closest known key."""
        import difflib

        known = [field.name for field in dataclasses.fields(cls)]
        unknown = [key for key in values if key not in known]
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(str(key), known, n=1)
                hints.append(f"{key} (did you mean {close[0]}?)" if close else str(key))
            raise ValueError(f"{where}: unknown key(s) {', '.join(hints)}; the keys are {', '.join(known)}")
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> dict[str, Any]:
        """The fields that decide the results (all but :data:`RUNTIME_FIELDS`)."""
        return {key: value for key, value in self.as_dict().items() if key not in RUNTIME_FIELDS}
