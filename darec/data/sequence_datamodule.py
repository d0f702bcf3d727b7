"""The Lightning data module of next-item recommendation: time-ordered sequences, leave-one-out."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from darec.data.interactions import InteractionLog
from darec.data.user_sequences import UserSequences

__all__ = ["SequenceDataModule"]


def left_pad(sequences: list[np.ndarray], max_len: int) -> np.ndarray:
    """``(n, max_len)`` int64: the last ``max_len`` items of each sequence, right-aligned, ``0`` before."""
    out = np.zeros((len(sequences), max_len), dtype=np.int64)
    for row, seq in enumerate(sequences):
        tail = seq[-max_len:] if max_len else seq[:0]
        if len(tail):
            out[row, max_len - len(tail) :] = tail
    return out


def _sample_negatives(
    users: np.ndarray, shape: tuple[int, int], keys: np.ndarray, num_items: int, rng: np.random.Generator
) -> np.ndarray:
    """``shape`` items in ``1 .. num_items``, row ``r`` never among the items of ``users[r]`` (``keys``:
    the sorted ``user * (num_items + 1) + item`` codes of the excluded pairs). Rejection sampling."""
    out = rng.integers(1, num_items + 1, size=shape)
    redo = np.ones(shape, dtype=bool)
    base = users[:, None] * (num_items + 1)
    while redo.any():
        codes = base + out
        pos = np.clip(np.searchsorted(keys, codes), 0, max(len(keys) - 1, 0))
        redo = keys[pos] == codes if len(keys) else np.zeros(shape, dtype=bool)
        out[redo] = rng.integers(1, num_items + 1, size=int(redo.sum()))
    return out


class _NextItemBatches(IterableDataset):
    """One epoch: every training user once, shuffled, with one negative per non-padded position,
    drawn from ``numpy.random.default_rng([seed, epoch])`` (so each epoch is reproducible)."""

    def __init__(self, users: np.ndarray, inputs: np.ndarray, positives: np.ndarray, keys: np.ndarray,
                 num_items: int, batch_size: int, seed: int) -> None:  # fmt: skip
        self.users, self.inputs, self.positives, self.keys = users, inputs, positives, keys
        self.num_items, self.batch_size, self.seed = num_items, batch_size, seed
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(len(self.users) / self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = rng.permutation(len(self.users))
        negatives = _sample_negatives(self.users[order], self.positives.shape, self.keys, self.num_items, rng)
        negatives[self.positives[order] == 0] = 0
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            yield {
                "user": torch.from_numpy(self.users[rows]),
                "seq": torch.from_numpy(self.inputs[rows]),
                "pos": torch.from_numpy(self.positives[rows]),
                "neg": torch.from_numpy(negatives[start : start + self.batch_size]),
            }


class _RankingBatches(IterableDataset):
    """Users in order, with their input sequence, their target and the ``(2, nnz)`` (row, item)
    pairs of their history to mask (the target itself is never masked). Without ``targets``
    (prediction) the batches carry no ``target`` and the whole history is masked."""

    def __init__(
        self, inputs: np.ndarray, targets: np.ndarray | None, histories: list[np.ndarray], batch_size: int
    ) -> None:
        self.inputs, self.targets, self.histories, self.batch_size = inputs, targets, histories, batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.inputs) / self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        for start in range(0, len(self.inputs), self.batch_size):
            users = np.arange(start, min(start + self.batch_size, len(self.inputs)))
            rows, items = [], []
            for row, user in enumerate(users):
                seen = np.unique(self.histories[user])
                if self.targets is not None:
                    seen = seen[seen != self.targets[user]]
                rows.append(np.full(len(seen), row, dtype=np.int64))
                items.append(seen)
            batch = {"user": torch.from_numpy(users), "seq": torch.from_numpy(self.inputs[users])}
            if self.targets is not None:
                batch["target"] = torch.from_numpy(self.targets[users])
            batch["exclude"] = torch.from_numpy(np.stack([np.concatenate(rows), np.concatenate(items)]).astype(np.int64))
            yield batch


class SequenceDataModule(L.LightningDataModule):
    """Time-ordered user sequences, split leave-one-out, served to a :class:`~darec.module.SequentialModule`.

    The interactions are read by darec's readers (the same sources as
    :class:`~darec.data.RecDataModule`, as long as they carry timestamps), ordered in time per
    user and split leave-one-out by :class:`~darec.data.UserSequences`: the last item of each user
    is the test target, the second-last the validation target, the rest the training sequence.
    Items are ``1 .. num_items``; ``0`` is padding.

    - Training batches ``{"user", "seq", "pos", "neg"}``, each ``(B, max_len)`` but ``user``: one
      window per user and epoch, the last ``max_len + 1`` training items, as inputs ``seq`` and
      next items ``pos`` (SASRec's scheme), left-padded with ``0``; ``neg`` holds one item per
      non-padded position that is not among the user's training items, redrawn every epoch from
      ``numpy.random.default_rng([seed, epoch])``. Users with a single training item have no
      next-item pair and are left out of training (still evaluated).
    - Ranking batches ``{"user", "seq", "target", "exclude"}``: the input is the training sequence
      (validation) or the training sequence and the validation item (test), its last ``max_len``
      items; ``exclude`` holds the ``(2, nnz)`` (row, item) pairs of the whole input history,
      which full ranking masks (the target itself is never masked).
    - Prediction batches ``{"user", "seq", "exclude"}`` (:meth:`predict_dataloader`): every user
      once, in order, whose input is the whole sequence (training, validation and test items, the
      last ``max_len``): what comes after everything known. ``exclude`` holds the pairs of the
      whole sequence, which :meth:`SequentialModule.predict_step
      <darec.module.SequentialModule.predict_step>` masks by default.
    - :meth:`sampled_evaluator`: the 1 + ``eval_negatives`` protocol of SASRec and LANE, with one
      table of negatives per user drawn from ``eval_seed``, outside the user's whole sequence.
    - :attr:`title_embeddings`: with a ``title_encoder``, the ``(num_items + 1, d)`` title
      embeddings (:class:`~darec.text.TitleEmbedder`, cached on disk), for
      ``SequentialModule(item_init="titles")``.
    - :attr:`preference_texts` and :attr:`preference_embeddings`: with a ``preferences`` file
      (LANE, LN-2: written by :class:`~darec.lane.PreferenceExtractor`), the ``num_preferences``
      preference strings of every user and their ``(num_users, num_preferences, d)`` embeddings
      by ``preference_encoder`` (cached on disk), for :class:`~darec.lane.PreferenceAttentionFusion`.
      Batches carry ``user``, the row of these tables.

    Args:
        source (str, optional): a RecBole directory (``*.inter``), a GroupLens folder
            (``u.data``) or a TSV/CSV file with ``user``, ``item`` and ``timestamp`` columns.
            A split directory has no timestamps and is refused.
        item_info (str, optional): item metadata (titles), as :func:`~darec.data.read_metadata`.
        max_len (int): longest input sequence. (default: :obj:`50`)
        batch_size (int): users per training step. (default: :obj:`128`)
        eval_batch_size (int): users per ranking batch. (default: :obj:`256`)
        positive_threshold (float, optional): keep only ratings at or above it; by default every
            interaction counts. (default: :obj:`None`)
        min_length (int): users with fewer interactions are dropped (at least 3; the count is
            logged). (default: :obj:`3`)
        title_encoder (str, optional): encoder of the item titles, e.g. ``"all-MiniLM-L6-v2"``;
            :obj:`None` computes no title embeddings. (default: :obj:`None`)
        eval_negatives (int): sampled items per user in the sampled protocol. (default: :obj:`100`)
        eval_seed (int): seed of the table of sampled negatives. (default: :obj:`2024`)
        max_eval_users (int, optional): evaluate the sampled protocol on a random subset of this
            many users (seeded by ``eval_seed``). (default: :obj:`None`, every user)
        cache_dir (str, optional): cache root for downloads and embeddings.
            (default: ``$DAREC_HOME`` or ``~/.cache/darec``)
        seed (int, optional): seed of the training negatives; by default the global seed set by
            :func:`lightning.seed_everything`. (default: :obj:`None`)
        preferences (str, optional): a preference file (``.jsonl``, :func:`~darec.data.read_preferences`);
            it is read in :meth:`setup`, so a path that does not exist yet fails only then.
            (default: :obj:`None`, no preferences)
        preference_encoder (str, optional): encoder of the preference strings; LANE uses the
            title encoder, all-MiniLM-L6-v2. (default: :obj:`"all-MiniLM-L6-v2"`)
        num_preferences (int): preferences per user (LANE's ``m``). (default: :obj:`5`)
        missing_preferences (str): what a user without preferences in the file gets: ``"error"``
            (a :class:`ValueError` naming the users) or ``"titles"`` (the user's latest
            ``num_preferences`` distinct training titles, each as ``"Enjoys <title>"``; a warning
            counts them). (default: :obj:`"error"`)

    Example:
        >>> log = InteractionLog(["a"] * 4 + ["b"] * 3, list("wxyzxyz"), timestamps=range(7))
        >>> dm = SequenceDataModule.from_log(log, max_len=3)
        >>> dm.setup("fit")
        >>> batch = next(iter(dm.train_dataloader()))
        >>> batch["seq"].shape, dm.num_items
        (torch.Size([1, 3]), 4)
    """

    def __init__(
        self,
        source: str | None = None,
        *,
        item_info: str | None = None,
        max_len: int = 50,
        batch_size: int = 128,
        eval_batch_size: int = 256,
        positive_threshold: float | None = None,
        min_length: int = 3,
        title_encoder: str | None = None,
        eval_negatives: int = 100,
        eval_seed: int = 2024,
        max_eval_users: int | None = None,
        cache_dir: str | None = None,
        seed: int | None = None,
        preferences: str | None = None,
        preference_encoder: str | None = "all-MiniLM-L6-v2",
        num_preferences: int = 5,
        missing_preferences: str = "error",
    ) -> None:
        super().__init__()
        for name, value in (("max_len", max_len), ("batch_size", batch_size), ("eval_batch_size", eval_batch_size),
                            ("eval_negatives", eval_negatives)):  # fmt: skip
            if value < 1:
                raise ValueError(f"`{name}` must be positive, got {value}")
        if min_length < 3:
            raise ValueError(f"`min_length` must be at least 3 (train, valid and test items), got {min_length}")
        if num_preferences < 1:
            raise ValueError(f"`num_preferences` must be positive, got {num_preferences}")
        if missing_preferences not in ("error", "titles"):
            raise ValueError(f"`missing_preferences` must be 'error' or 'titles', got {missing_preferences!r}")
        if preferences is not None and preference_encoder is None:
            raise ValueError("`preferences` needs a `preference_encoder` (e.g. 'all-MiniLM-L6-v2') to embed them")
        self.source = source
        self.item_info_path = item_info
        self.max_len = max_len
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.positive_threshold = positive_threshold
        self.min_length = min_length
        self.title_encoder = title_encoder
        self.eval_negatives = eval_negatives
        self.eval_seed = eval_seed
        self.max_eval_users = max_eval_users
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.seed = seed
        self.preferences = preferences
        self.preference_encoder = preference_encoder
        self.num_preferences = num_preferences
        self.missing_preferences = missing_preferences
        self.preference_texts: list[list[str]] | None = None
        self.preference_embeddings: Tensor | None = None
        self._sequences: UserSequences | None = None
        self._log: InteractionLog | None = None
        self.title_embeddings: Tensor | None = None
        self._train_set: _NextItemBatches | None = None
        self._epoch_state: int | None = None

    @classmethod
    def from_log(cls, log: InteractionLog, **kwargs: Any) -> SequenceDataModule:
        """Wraps an :class:`~darec.data.InteractionLog` in memory (it needs timestamps)."""
        if not isinstance(log, InteractionLog):
            raise TypeError(f"expected darec.data.InteractionLog, got {type(log).__name__}")
        dm = cls(**kwargs)
        dm._log = log
        return dm

    @classmethod
    def from_sequences(cls, sequences: UserSequences, **kwargs: Any) -> SequenceDataModule:
        """Wraps :class:`~darec.data.UserSequences` built already."""
        if not isinstance(sequences, UserSequences):
            raise TypeError(f"expected darec.data.UserSequences, got {type(sequences).__name__}")
        dm = cls(**kwargs)
        dm._sequences = sequences
        return dm

    # -- loading ------------------------------------------------------------------------------
    @property
    def cache_root(self) -> Path:
        from darec.utils.io import default_cache_dir

        return self.cache_dir or default_cache_dir()

    def load_log(self) -> InteractionLog:
        """Reads the raw interaction log of ``source``; override to add a source."""
        from darec.data import readers

        if self._log is not None:
            return self._log
        if self.source is None:
            raise ValueError("SequenceDataModule has no data: pass `source`, or build it with from_log(...)")
        log = readers.read_raw_log(self.source, needs="sequences need")
        if self.item_info_path is not None:
            log = readers.attach_metadata(log, item_info=Path(self.item_info_path).expanduser())
        return log

    @property
    def sequences(self) -> UserSequences:
        """The user sequences, loaded on first access."""
        if self._sequences is None:
            self._sequences = UserSequences.from_log(
                self.load_log(), positive_threshold=self.positive_threshold, min_length=self.min_length
            )
        return self._sequences

    @property
    def num_users(self) -> int:
        return self.sequences.num_users

    @property
    def num_items(self) -> int:
        """Number of items (ids ``1 .. num_items``): the ``num_items`` of :class:`~darec.backbones.SASRec`."""
        return self.sequences.num_items

    @property
    def protocol(self) -> dict[str, Any]:
        """How the data were built and how they are evaluated; logged with every result."""
        data = self.sequences
        return {
            **data.protocol,
            **{f"count_{k}": v for k, v in data.stats().items()},
            "max_len": self.max_len,
            "training": "last max_len + 1 training items per user and epoch, 1 negative per position (not a training item)",
            "full_ranking": "all items, the input history masked (except the target)",
            "sampled_ranking": f"target + {self.eval_negatives} items outside the user's sequence, seed {self.eval_seed}, "
            f"users: {self.max_eval_users or 'all'}",
            "title_encoder": self.title_encoder,
            "preferences": None if self.preferences is None else str(self.preferences),
            "num_preferences": self.num_preferences if self.preferences is not None else None,
        }

    # -- titles -------------------------------------------------------------------------------
    def _title_embeddings(self) -> Tensor | None:
        if self.title_encoder is None:
            return None
        from darec.text.title_embedder import TitleEmbedder

        titles = self.sequences.item_titles
        if titles is None:
            raise ValueError(
                f"title_encoder={self.title_encoder!r} embeds item titles, but the data have none: give the items "
                "metadata with titles (`item_info`, or a RecBole/GroupLens folder with its item file)"
            )
        return TitleEmbedder(self.title_encoder, cache_dir=self.cache_root / "embeddings")(titles)

    def _fallback_preferences(self, user: int) -> list[str]:
        """The latest ``num_preferences`` distinct training titles of ``user``, as ``"Enjoys <title>"``."""
        data = self.sequences
        titles: list[str] = []
        for item in data.train_sequence(user)[::-1].tolist():
            title = data.item_titles[item - 1] if data.item_titles is not None else f"Item {data.item_ids[item - 1]}"
            if f"Enjoys {title}" not in titles:
                titles.append(f"Enjoys {title}")
            if len(titles) == self.num_preferences:
                break
        distinct = len(titles)  # at least 1: every user has a training item
        return [titles[k % distinct] for k in range(self.num_preferences)]  # fewer distinct items: repeated

    def _preferences(self) -> tuple[list[list[str]], Tensor] | None:
        """The preference strings of every user and their ``(num_users, m, d)`` embeddings."""
        if self.preferences is None:
            return None
        import warnings

        from darec.data.readers.preferences import read_preferences
        from darec.text import TextEmbeddingCache, resolve_encoder

        data = self.sequences
        missing: list[int] = []

        def fallback(user: int) -> list[str]:
            missing.append(user)
            return self._fallback_preferences(user)

        texts = read_preferences(
            self.preferences, data.user_ids.tolist(), self.num_preferences,
            fallback=fallback if self.missing_preferences == "titles" else None,
        )  # fmt: skip
        if missing:
            warnings.warn(
                f"{len(missing)} of {data.num_users} user(s) have no preferences in {self.preferences} (e.g. raw ids "
                f"{[str(data.user_ids[u]) for u in missing[:5]]}); they get their latest training titles instead",
                UserWarning,
                stacklevel=3,
            )
        encoder = resolve_encoder(self.preference_encoder)
        unique = sorted({text for row in texts for text in row})
        index = {text: k for k, text in enumerate(unique)}
        emb = TextEmbeddingCache(self.cache_root / "embeddings").get(encoder, unique, name="preference embeddings")
        rows = torch.tensor([[index[text] for text in row] for row in texts], dtype=torch.long)
        return texts, emb[rows]

    def prepare_data(self) -> None:
        """Obtains the data and encodes the titles and preferences once (into the on-disk cache)."""
        self._title_embeddings()
        self._preferences()

    def setup(self, stage: str | None = None) -> None:
        data = self.sequences
        if self.title_embeddings is None:
            self.title_embeddings = self._title_embeddings()
        if self.preference_embeddings is None and self.preferences is not None:
            self.preference_texts, self.preference_embeddings = self._preferences()
        if self._train_set is None:
            train = [data.train_sequence(u)[-(self.max_len + 1) :] for u in range(data.num_users)]
            users = np.array([u for u, s in enumerate(train) if len(s) >= 2], dtype=np.int64)
            if not len(users):
                raise ValueError("no user has two training items: there is no next-item pair to learn from")
            inputs = left_pad([train[u][:-1] for u in users], self.max_len)
            positives = left_pad([train[u][1:] for u in users], self.max_len)
            keys = np.unique(np.concatenate([u * (data.num_items + 1) + np.unique(data.train_sequence(u)) for u in users]))
            full = np.bincount(keys // (data.num_items + 1), minlength=data.num_users) >= data.num_items
            if full.any():
                raise ValueError(f"user {int(np.flatnonzero(full)[0])} has every item in training: no negative can be drawn")
            seed = self.seed if self.seed is not None else torch.initial_seed()
            self._train_set = _NextItemBatches(users, inputs, positives, keys, data.num_items, self.batch_size, seed % 2**63)
            if self._epoch_state is not None:
                self._train_set.epoch = self._epoch_state

    # -- evaluation ---------------------------------------------------------------------------
    def sampled_evaluator(self, prefix: str = "", ks: tuple[int, ...] = (5, 10)) -> Any:
        """A :class:`~darec.metrics.SampledRankingEvaluator` over these users: the negatives of
        every user drawn from ``eval_seed`` outside the user's whole sequence, the same for every
        model and for validation and test."""
        from darec.metrics import SampledRankingEvaluator

        data = self.sequences
        return SampledRankingEvaluator(
            data.sequences, data.num_items + 1, num_negatives=self.eval_negatives, ks=ks, seed=self.eval_seed,
            max_users=self.max_eval_users, user_seed=self.eval_seed, padding_idx=0, prefix=prefix,
        )  # fmt: skip

    def ranking_batches(self, stage: str) -> _RankingBatches:
        """Ranking batches of ``stage``: ``"validate"`` or ``"test"`` (with targets), or ``"predict"``
        (the whole sequence as input, no target)."""
        data = self.sequences
        if stage not in ("validate", "test", "predict"):
            raise ValueError(f"unknown stage {stage!r}; expected 'validate', 'test' or 'predict'")
        histories = [data.history(u, stage) for u in range(data.num_users)]
        targets = {"validate": data.valid_target, "test": data.test_target, "predict": None}[stage]
        return _RankingBatches(left_pad(histories, self.max_len), targets, histories, self.eval_batch_size)

    # -- loaders ------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        if self._train_set is None:
            self.setup("fit")
        return DataLoader(self._train_set, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.ranking_batches("validate"), batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.ranking_batches("test"), batch_size=None)

    def predict_dataloader(self) -> DataLoader:
        """Every user once, in order: ``{"user", "seq", "exclude"}``, the input the user's whole
        sequence (its last ``max_len`` items), ``exclude`` the ``(2, nnz)`` (row, item) pairs of
        the whole sequence."""
        return DataLoader(self.ranking_batches("predict"), batch_size=None)

    # -- checkpointing ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._train_set.epoch} if self._train_set is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._epoch_state = state_dict.get("epoch")
        if self._train_set is not None and self._epoch_state is not None:
            self._train_set.epoch = self._epoch_state

    def __repr__(self) -> str:
        loaded = repr(self._sequences) if self._sequences is not None else "not loaded"
        return f"{type(self).__name__}(source={self.source!r}, {loaded})"
