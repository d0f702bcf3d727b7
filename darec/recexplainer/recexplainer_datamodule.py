"""Alignment tasks of a trained recommender as a Lightning data module, for ``darec fit``."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from darec.data.datamodule import RecDataModule
from darec.data.sequence_datamodule import SequenceDataModule
from darec.recexplainer.alignment_task import AlignmentTask, write_tasks
from darec.recexplainer.alignment_task_builder import AlignmentTaskBuilder
from darec.recexplainer.catalog import item_catalog
from darec.recexplainer.recexplainer_dataset import RecExplainerDataset
from darec.recexplainer.recommender import Recommender, load_recommender

__all__ = ["RecExplainerDataModule"]

log = logging.getLogger(__name__)


class RecExplainerDataModule(L.LightningDataModule):
    """The alignment tasks of a trained darec recommender, ready for :class:`~darec.recexplainer.RecExplainerModule`.

    It loads the *target* from its checkpoint with the data it was trained on
    (:func:`~darec.recexplainer.load_recommender`, which refuses a checkpoint whose sizes or ids
    differ from the data), builds the tasks with :class:`~darec.recexplainer.AlignmentTaskBuilder`
    (every label from the target's scores; the histories are the training items only), writes
    them as JSON lines to ``tasks_file`` so that they can be read before any training, and holds
    out ``val_fraction`` of the **users** (with their tasks) and of the **items** (with theirs)
    for validation. The token ids need the model's tokenizer, which knows the placeholder tokens:
    :meth:`setup` takes it from the Lightning module being trained (``trainer.lightning_module.injector``)
    or from :meth:`set_tokenizer`.

    On the command line (``darec fit --config examples/configs/ml100k_recexplainer_intention.yaml``)
    ``data`` is given as a ``class_path`` with its own ``init_args``, exactly as in the config
    that trained the target.

    Args:
        data (RecDataModule or SequenceDataModule): the data the target was trained on.
        target (str or os.PathLike): the target's checkpoint (``darec fit`` writes them under
            ``lightning_logs/``).
        mode (str): ``"behavior"``, ``"intention"`` or ``"hybrid"``. (default: :obj:`"intention"`)
        tasks (sequence of str, optional): only these tasks (see
            :data:`~darec.recexplainer.TASK_NUMBERS`). (default: all of the mode's)
        seed (int): seed of the tasks' draws, the user and item samples and the split. (default: :obj:`0`)
        max_users (int, optional): build the user tasks of this many users, sampled (a budget
            for a CPU). (default: :obj:`None`, all)
        max_items (int, optional): build the item tasks of this many items, sampled. (default: all)
        val_fraction (float): share of the users and of the items held out. (default: :obj:`0.1`)
        batch_size (int): examples per batch. (default: :obj:`4`)
        max_history (int): the most history titles in a prompt. (default: :obj:`20`)
        max_length (int, optional): the most tokens of an example (longer ones are refused, named).
            (default: the LM's context)
        system (str, optional): a system prompt for every example. (default: :obj:`None`)
        tasks_file (str, optional): where the tasks are written. (default:
            ``<trainer.log_dir>/alignment_tasks.jsonl``, else ``alignment_tasks.jsonl``)

    Raises:
        ValueError: settings out of range, data without item titles, or a target that does not
            match the data (at :meth:`setup`).
    """

    def __init__(
        self,
        data: RecDataModule | SequenceDataModule,
        target: str | os.PathLike[str],
        mode: str = "intention",
        tasks: Sequence[str] | None = None,
        seed: int = 0,
        max_users: int | None = None,
        max_items: int | None = None,
        val_fraction: float = 0.1,
        batch_size: int = 4,
        max_history: int = 20,
        max_length: int | None = None,
        system: str | None = None,
        tasks_file: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(data, (RecDataModule, SequenceDataModule)):
            raise TypeError(f"`data` must be a darec RecDataModule or SequenceDataModule, got {type(data).__name__}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"`val_fraction` must be in [0, 1), got {val_fraction}")
        for name, value in (("max_users", max_users), ("max_items", max_items), ("batch_size", batch_size)):
            if value is not None and (isinstance(value, bool) or int(value) < 1):
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        self.data = data
        self.target_path = Path(target).expanduser()
        self.mode, self.task_names, self.seed = mode, None if tasks is None else list(tasks), int(seed)
        self.max_users, self.max_items = max_users, max_items
        self.val_fraction, self.batch_size = float(val_fraction), int(batch_size)
        self.max_history, self.max_length, self.system = int(max_history), max_length, system
        self.tasks_file = None if tasks_file is None else Path(tasks_file).expanduser()
        self._target: Recommender | None = None
        self.tokenizer: Any = None
        self.train_tasks: list[AlignmentTask] | None = None
        self.val_tasks: list[AlignmentTask] | None = None
        self.train_set: RecExplainerDataset | None = None
        self.val_set: RecExplainerDataset | None = None

    # -- the target and its tasks ------------------------------------------------------------------
    @property
    def target(self) -> Recommender:
        """The frozen target recommender, loaded (and checked against the data) on first access."""
        if self._target is None:
            if not self.target_path.is_file():
                raise FileNotFoundError(f"target={str(self.target_path)!r}: no such checkpoint")
            self._target = load_recommender(self.target_path, self.data)
        return self._target

    @property
    def rec_dim(self) -> int:
        """The width of the target's vectors (the injector's ``rec_dim`` must equal it)."""
        return int(self.target.dim)

    def builder(self) -> AlignmentTaskBuilder:
        """The task builder over the target, the data's titles and the target's training histories."""
        target = self.target
        return AlignmentTaskBuilder(
            target, item_catalog(self.data), target.histories, self.mode, self.seed, tasks=self.task_names,
            max_history=self.max_history,
        )  # fmt: skip

    def _sample(self, count: int, limit: int | None, salt: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, salt])
        order = rng.permutation(count)
        return np.sort(order[: limit or count])

    def _held_out(self, ids: np.ndarray, salt: int) -> set[int]:
        rng = np.random.default_rng([self.seed, salt])
        count = int(round(len(ids) * self.val_fraction))
        return set(rng.permutation(ids)[:count].tolist())

    def build_tasks(self) -> tuple[list[AlignmentTask], list[AlignmentTask]]:
        """``(train, validation)`` tasks: the sampled users and items, split by user and by item."""
        builder = self.builder()
        users = self._sample(builder.num_users, self.max_users, 1)
        items = self._sample(builder.num_items, self.max_items, 2)
        tasks = builder.build(users=users.tolist(), items=items.tolist())
        val_users, val_items = self._held_out(users, 3), self._held_out(items, 4)
        train, val = [], []
        for task in tasks:
            held = task.user in val_users if task.user is not None else task.items[0] in val_items
            (val if held else train).append(task)
        if not train:
            raise ValueError("no training task is left: lower `val_fraction` or raise `max_users`/`max_items`")
        return train, val

    def set_tokenizer(self, tokenizer: Any) -> None:
        """The tokenizer of the injector to be trained (with its placeholder tokens)."""
        self.tokenizer = tokenizer

    # -- Lightning hooks ----------------------------------------------------------------------------
    def _tasks_path(self) -> Path:
        if self.tasks_file is not None:
            return self.tasks_file
        trainer = getattr(self, "trainer", None)
        log_dir = getattr(trainer, "log_dir", None) if trainer is not None else None
        return Path(log_dir or ".") / "alignment_tasks.jsonl"

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if self.tokenizer is None:
            module = getattr(getattr(self, "trainer", None), "lightning_module", None)
            injector = getattr(module, "injector", None)
            if injector is None:
                raise RuntimeError(
                    "RecExplainerDataModule needs the injector's tokenizer: train it with a RecExplainerModule, or call "
                    "set_tokenizer(injector.tokenizer) first"
                )
            if injector.rec_dim != self.rec_dim:
                raise ValueError(
                    f"the injector's connector takes vectors of width {injector.rec_dim}, the target's are "
                    f"{self.rec_dim} wide: set model.injector.init_args.rec_dim to {self.rec_dim}"
                )
            self.tokenizer = injector.tokenizer
            if self.max_length is None:
                self.max_length = int(injector.context_length)
        self.train_tasks, self.val_tasks = self.build_tasks()
        path = self._tasks_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tasks(path, [*self.train_tasks, *self.val_tasks])
        log.info("wrote %d alignment tasks (%d held out) to %s", len(self.train_tasks) + len(self.val_tasks), len(self.val_tasks), path)
        kwargs = {"max_length": self.max_length, "system": self.system}
        self.train_set = RecExplainerDataset.from_target(self.train_tasks, self.tokenizer, self.target, **kwargs)
        self.val_set = RecExplainerDataset.from_target(self.val_tasks, self.tokenizer, self.target, **kwargs) if self.val_tasks else None

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "call setup() first"
        generator = __import__("torch").Generator().manual_seed(self.seed)
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, collate_fn=self.train_set.collate, generator=generator)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return DataLoader(self.val_set, batch_size=self.batch_size, collate_fn=self.val_set.collate)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(target={str(self.target_path)!r}, mode={self.mode!r}, seed={self.seed}, "
            f"max_users={self.max_users}, max_items={self.max_items})"
        )
