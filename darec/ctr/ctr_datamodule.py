"""The Lightning data module of click-through-rate prediction: labelled pairs, split by time, optional explanation text."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from darec.ctr.ctr_samples import CTRSamples
from darec.data.interactions import SPLITS, InteractionLog
from darec.text.encoders import DEFAULT_ENCODER, TextEncoder, resolve_encoder

__all__ = ["CTRDataModule"]

_MISSING = ("error", "zeros")


class _PairRows(Dataset):
    """Rows of :class:`CTRSamples` served a batch at a time (``__getitems__``), as darec's CTR batch dicts."""

    def __init__(self, samples: CTRSamples, rows: np.ndarray, text: Tensor | None, text_index: np.ndarray | None) -> None:
        self.rows = torch.from_numpy(rows)
        self.user = torch.from_numpy(samples.user)
        self.item = torch.from_numpy(samples.item)
        self.label = torch.from_numpy(samples.label)
        self.text = text
        self.text_index = torch.from_numpy(text_index) if text_index is not None else None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitems__(self, positions: list[int]) -> dict[str, Tensor]:
        rows = self.rows[torch.as_tensor(positions, dtype=torch.long)]
        batch = {"user": self.user[rows], "item": self.item[rows], "label": self.label[rows]}
        if self.text is not None:
            batch["text"] = self.text[self.text_index[rows]]
        return batch

    def __getitem__(self, position: int) -> dict[str, Tensor]:
        return {key: value[0] for key, value in self.__getitems__([position]).items()}


def _as_batch(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """The collate function: ``__getitems__`` returns whole batches already."""
    return batch


class CTRDataModule(L.LightningDataModule):
    """Labelled (user, item) pairs, split globally by time, served to a :class:`~darec.ctr.CTRModule`.

    The log is read by darec's readers, labelled, ordered and split by
    :meth:`CTRSamples.from_log <darec.ctr.CTRSamples.from_log>`: a rating at or above
    ``positive_threshold`` is a click; the earliest 80 % of the interactions train, the next
    10 % validate, the last 10 % test; every pair gets its user's latest ``history_len`` liked and
    disliked *training* items before it (:attr:`samples`, for the prompts of an explanation
    generator). Training batches are shuffled every epoch; evaluation batches keep time order.

    Batches are dicts of ``user`` and ``item`` (``(B,)`` long), ``label`` (``(B,)`` float, 0 or 1)
    and, with ``explanations``, ``text``: the ``(B, d)`` embedding of the pair's explanation by
    ``text_encoder`` (MiniLM by default; computed once and cached on disk by
    :class:`~darec.text.TextEmbeddingCache`), the dense feature of a text-augmented CTR model
    (ExpCTR-Aug, EC-2). With ``shuffle_explanations=True`` every pair gets *another* pair's
    explanation of the same split (a seeded derangement): the control that shows whether a gain
    comes from the explanations' content.

    ``source`` is a TSV/CSV file with a header naming ``user``, ``item``, ``timestamp`` and either
    ``rating`` (labelled by ``positive_threshold``) or ``label`` (0/1 clicks, used as they are;
    read through :func:`~darec.data.read_csv` as the log's rating column), a RecBole directory
    (``*.inter`` with ratings and timestamps) or a GroupLens folder (``u.data``). Split
    directories have no timestamps and are refused. In Python, :meth:`from_log` wraps an
    :class:`~darec.data.InteractionLog`.

    Args:
        source (str, optional): where the interactions are (see above).
        item_info (str, optional): item metadata (titles, for :attr:`CTRSamples.item_titles
            <darec.ctr.CTRSamples.item_titles>`), as :func:`~darec.data.read_metadata`.
        batch_size (int): training pairs per step. (default: :obj:`1024`)
        eval_batch_size (int): pairs per evaluation batch. (default: :obj:`8192`)
        positive_threshold (float): ratings at or above it are clicks. (default: :obj:`4.0`)
        history_len (int): liked and disliked items kept per pair. (default: :obj:`10`)
        explanations (str, optional): a JSON-lines file of ``{"user", "item", "text"}`` objects
            in raw ids, one explanation per pair (the last line of a pair wins; lines cut by a
            killed run are skipped with a warning). A pair rated several times uses its one
            explanation for every row. (default: :obj:`None`, ids only)
        text_encoder (str or TextEncoder): the encoder of the explanations, used only with
            ``explanations``. (default: :obj:`"all-MiniLM-L6-v2"`)
        shuffle_explanations (bool): give every pair another pair's explanation of the same
            split (the shuffled control). (default: :obj:`False`)
        missing_explanations (str): what a pair without an explanation gets: ``"error"`` (a
            :class:`ValueError` counting them per split) or ``"zeros"`` (a zero text feature, with
            a warning that counts them). (default: :obj:`"error"`)
        users (int, optional): keep only every pair of this many users, drawn with ``user_seed``
            (:meth:`CTRSamples.user_sample <darec.ctr.CTRSamples.user_sample>`): the subsample an
            LLM-explained model is measured on, so that the ID-only model can be compared on the
            same pairs. The split, the histories and the id tables stay those of the whole data.
            (default: :obj:`None`, every pair)
        user_seed (int): the seed of ``users``. (default: :obj:`0`)
        users_from (str, optional): draw ``users`` only among the users with a pair in this split
            (e.g. ``"test"``). (default: :obj:`None`, every user)
        users_scope (str): what the ``users`` subsample restricts: ``"all"`` splits, or only the
            ``"eval"`` splits (validation and test) while training uses every training pair (with
            explanations for the subsample only, so ``missing_explanations="zeros"``): a strong ID
            model, with the text where it exists. (default: :obj:`"all"`)
        cache_dir (str, optional): cache root for downloads and embeddings.
            (default: ``$DAREC_HOME`` or ``~/.cache/darec``)
        seed (int, optional): seed of the training order and of the explanation shuffle; by
            default the global seed set by :func:`lightning.seed_everything`. (default: :obj:`None`)
        num_workers (int): data-loader workers. (default: :obj:`0`)

    Example:
        >>> log = InteractionLog(["a", "b"] * 10, [f"i{k % 7}" for k in range(20)],
        ...                      ratings=[5, 1, 4, 2] * 5, timestamps=range(20))
        >>> dm = CTRDataModule.from_log(log, batch_size=4)
        >>> dm.setup("fit")
        >>> batch = next(iter(dm.train_dataloader()))
        >>> sorted(batch), batch["user"].shape, (dm.num_users, dm.num_items), dm.protocol["train"]
        (['item', 'label', 'user'], torch.Size([4]), (2, 7), 16)
    """

    def __init__(
        self,
        source: str | None = None,
        *,
        item_info: str | None = None,
        batch_size: int = 1024,
        eval_batch_size: int = 8192,
        positive_threshold: float = 4.0,
        history_len: int = 10,
        explanations: str | None = None,
        text_encoder: str | TextEncoder | None = DEFAULT_ENCODER,
        shuffle_explanations: bool = False,
        missing_explanations: str = "error",
        users: int | None = None,
        user_seed: int = 0,
        users_from: str | None = None,
        users_scope: str = "all",
        cache_dir: str | None = None,
        seed: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if users is not None and (isinstance(users, bool) or not isinstance(users, int) or users < 1):
            raise ValueError(f"`users` must be a positive integer (or None for every user), got {users!r}")
        if users_scope not in ("all", "eval"):
            raise ValueError(f"`users_scope` must be 'all' or 'eval', got {users_scope!r}")
        if users_from is not None and users_from not in SPLITS:
            raise ValueError(f"`users_from` must be one of {SPLITS} (or None), got {users_from!r}")
        for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size), ("history_len", history_len)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        if missing_explanations not in _MISSING:
            raise ValueError(f"`missing_explanations` must be one of {_MISSING}, got {missing_explanations!r}")
        if shuffle_explanations and explanations is None:
            raise ValueError("`shuffle_explanations` shuffles the explanations, but `explanations` is None: name the file")
        if explanations is not None and text_encoder is None:
            raise ValueError("`explanations` are texts to embed, but `text_encoder` is None: name an encoder")
        self.source = source
        self.item_info_path = item_info
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.positive_threshold = positive_threshold
        self.history_len = history_len
        self.explanations = explanations
        self.text_encoder = resolve_encoder(text_encoder) if explanations is not None else None
        self.shuffle_explanations = shuffle_explanations
        self.missing_explanations = missing_explanations
        self.users, self.user_seed, self.users_from = users, int(user_seed), users_from
        self.users_scope = users_scope
        self._kept: np.ndarray | None = None
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.seed = seed
        self.num_workers = num_workers
        self._log: InteractionLog | None = None
        self._labels: np.ndarray | None = None  # a `label` column, read as the log's ratings
        self._samples: CTRSamples | None = None
        self._text: tuple[Tensor, np.ndarray] | None = None
        self._explanation_stats: dict[str, Any] = {}

    @classmethod
    def from_log(cls, log: InteractionLog, labels: Any = None, **kwargs: Any) -> CTRDataModule:
        """Wraps an :class:`~darec.data.InteractionLog` in memory (with timestamps, and ratings or ``labels``)."""
        if not isinstance(log, InteractionLog):
            raise TypeError(f"expected darec.data.InteractionLog, got {type(log).__name__}")
        dm = cls(**kwargs)
        dm._log = log
        dm._labels = None if labels is None else np.asarray(labels, dtype=np.float64)
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
            raise ValueError("CTRDataModule has no data: pass `source`, or build it with CTRDataModule.from_log(...)")
        path = Path(self.source).expanduser()
        log = None
        if path.is_file():
            try:  # a `label` column of 0/1 clicks, carried as the log's ratings
                log = readers.read_csv(path, rating_col="label", detect_optional=True)
                self._labels = log.ratings
            except readers.MissingColumnError:
                pass
        if log is None:
            log = readers.read_raw_log(path, needs="the CTR protocol needs", lacks="timestamps or ratings")
        if self.item_info_path is not None:
            log = readers.attach_metadata(log, item_info=Path(self.item_info_path).expanduser())
        self._log = log
        return log

    @property
    def samples(self) -> CTRSamples:
        """The labelled, split pairs with their histories, built on first access."""
        if self._samples is None:
            log = self.load_log()
            self._samples = CTRSamples.from_log(
                log, positive_threshold=self.positive_threshold, labels=self._labels, history_len=self.history_len
            )
        return self._samples

    @property
    def kept_rows(self) -> np.ndarray:
        """The rows of :attr:`samples` this module serves: all, or those of the ``users`` subsample (sorted)."""
        if self._kept is None:
            samples = self.samples
            if self.users is None:
                self._kept = np.arange(len(samples))
            else:
                self._kept = samples.user_sample(self.users, self.user_seed, self.users_from)
        return self._kept

    def split_rows(self, name: str) -> np.ndarray:
        """The rows of split ``name`` this module serves, in time order (the subsample's, with ``users``)."""
        rows = self.samples.split(name)
        if self.users is None or (self.users_scope == "eval" and name == "train"):
            return rows
        return rows[np.isin(rows, self.kept_rows)]

    @property
    def num_users(self) -> int:
        """Number of users: the ``num_users`` of the backbone."""
        return self.samples.num_users

    @property
    def num_items(self) -> int:
        """Number of items: the ``num_items`` of the backbone."""
        return self.samples.num_items

    @property
    def text_dim(self) -> int:
        """Width of the ``text`` feature (``0`` without ``explanations``): the ``text_dim`` of the backbone.

        With explanations, reading it encodes them (once; later reads and runs hit the cache).
        """
        text = self.text_features()
        return 0 if text is None else int(text[0].size(1))

    @property
    def protocol(self) -> dict[str, Any]:
        """How the data were built and how they are evaluated; logged with every result."""
        out = {
            **self.samples.protocol,
            "positive_threshold": self.positive_threshold if self._labels is None else None,
            "metrics": "AUC and LogLoss over every pair of the split",
            "explanations": None if self.explanations is None else str(self.explanations),
        }
        if self.users is not None:
            out.update(
                users=self.users, user_seed=self.user_seed, users_from=self.users_from, users_scope=self.users_scope,
                subsample_rows={name: int(len(self.split_rows(name))) for name in SPLITS},
            )  # fmt: skip
        if self.explanations is not None:
            from darec.utils.io import sha256_file

            file = Path(self.explanations).expanduser()
            out.update(
                explanations_sha256=sha256_file(file) if file.is_file() else None,
                shuffle_explanations=self.shuffle_explanations,
                missing_explanations=self.missing_explanations,
                text_encoder=self.text_encoder.cache_key,
                **self._explanation_stats,
            )
        return out

    # -- explanation text -----------------------------------------------------------------------
    def read_explanations(self) -> dict[tuple[str, str], str]:
        """The explanation of every pair of the ``explanations`` file, ``{(raw user, raw item): text}``.

        The last line of a pair wins; incomplete lines are skipped with a warning.

        Raises:
            FileNotFoundError: the file does not exist.
            ValueError: it holds no explanation.
        """
        from darec.data.readers._common import read_text
        from darec.utils.jsonl import last_records, loads_object

        path = Path(str(self.explanations)).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"explanations={str(self.explanations)!r}: no such file")

        def parse(line: str) -> dict[str, Any] | None:
            record = loads_object(line)
            if record is None or any(record.get(key) is None for key in ("user", "item")):
                return None
            return record if isinstance(record.get("text"), str) and record["text"].strip() else None

        records, bad = last_records(read_text(path), parse, lambda r: (str(r["user"]), str(r["item"])))
        if bad:
            warnings.warn(
                f"explanations={str(self.explanations)!r}: {len(bad)} line(s) are not complete "
                '{"user", "item", "text"} objects with a non-empty text and were skipped (first: line '
                f"{bad[0]})",
                UserWarning,
                stacklevel=3,
            )
        if not records:
            raise ValueError(f"explanations={str(self.explanations)!r}: the file holds no explanation")
        return {key: record["text"].strip() for key, record in records.items()}

    def text_features(self) -> tuple[Tensor, np.ndarray] | None:
        """The explanation features: ``(table, index)``, or :obj:`None` without ``explanations``.

        ``table`` is the ``(T + 1, d)`` float32 embeddings of the ``T`` distinct explanation
        texts, its last row zeros (pairs without explanation under ``missing_explanations="zeros"``);
        ``index`` is the ``(N,)`` row of ``table`` of every pair of :attr:`samples`, after the
        shuffle of ``shuffle_explanations``.

        Raises:
            ValueError: no pair of the data has an explanation (the file was written for other
                data), or some have none under ``missing_explanations="error"``.
        """
        if self.explanations is None:
            return None
        if self._text is not None:
            return self._text
        from darec.text.cache import TextEmbeddingCache

        samples = self.samples
        texts = self.read_explanations()
        keys = list(zip(samples.user_ids[samples.user].tolist(), samples.item_ids[samples.item].tolist()))
        kept = np.zeros(len(keys), dtype=bool)  # the rows this module serves
        for name in SPLITS:
            kept[self.split_rows(name)] = True
        wanted = {key for key, keep in zip(keys, kept) if keep}
        unused = sum(1 for key in texts if key not in wanted)
        unique = sorted({texts[key] for key in wanted if key in texts})
        if not unique:
            raise ValueError(
                f"explanations={str(self.explanations)!r}: none of its {len(texts)} (user, item) pairs is in the data "
                "(raw ids); was it written for other data?"
            )
        where = {text: k for k, text in enumerate(unique)}
        missing_row = len(unique)
        index = np.array([where.get(texts.get(key), missing_row) for key in keys], dtype=np.int64)
        missing = {name: int((index[self.split_rows(name)] == missing_row).sum()) for name in SPLITS}
        if sum(missing.values()):
            first = keys[int(np.flatnonzero((index == missing_row) & kept)[0])]
            counts = ", ".join(f"{name} {count} of {len(self.split_rows(name))}" for name, count in missing.items())
            message = (
                f"explanations={str(self.explanations)!r}: {sum(missing.values())} of {int(kept.sum())} pairs have no "
                f"explanation ({counts}; e.g. the pair {first})"
            )
            if self.missing_explanations == "error":
                raise ValueError(f"{message}; generate them, or pass missing_explanations='zeros'")
            warnings.warn(f"{message}; they get a zero text feature", UserWarning, stacklevel=2)
        if self.shuffle_explanations:
            index = self._deranged(index)
        emb = TextEmbeddingCache(self.cache_root / "embeddings").get(self.text_encoder, unique, name="explanation embeddings")
        table = torch.cat([emb, emb.new_zeros(1, emb.size(1))])
        self._explanation_stats = {
            "explanation_texts": len(unique),
            "explanations_missing": missing,
            "explanations_not_in_data": unused,
        }
        self._text = (table, index)
        return self._text

    def _deranged(self, index: np.ndarray) -> np.ndarray:
        """``index`` with every row given another row's entry of the same split (a seeded derangement)."""
        seed = self.seed if self.seed is not None else torch.initial_seed()
        rng = np.random.default_rng([seed % 2**63, 1])
        out = index.copy()
        for name in SPLITS:
            rows = self.split_rows(name)
            if len(rows) < 2:
                continue
            order = rows[rng.permutation(len(rows))]
            out[order] = index[np.roll(order, -1)]  # row order[k] takes row order[k + 1]'s text
        return out

    # -- Lightning hooks -----------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Obtains the data and encodes the explanations once (into the on-disk cache)."""
        self.text_features()

    def setup(self, stage: str | None = None) -> None:
        _ = self.samples
        self.text_features()

    def rows(self, name: str) -> _PairRows:
        """The dataset of split ``name`` (``"train"``, ``"valid"`` or ``"test"``), in time order."""
        text = self.text_features()
        return _PairRows(self.samples, self.split_rows(name), *(text if text is not None else (None, None)))

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        dataset = self.rows(name)
        if not len(dataset):
            raise ValueError(f"the {name} split is empty")
        if shuffle:
            seed = self.seed if self.seed is not None else torch.initial_seed()
            sampler: Any = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed % 2**63))
        else:
            sampler = SequentialSampler(dataset)
        size = self.batch_size if shuffle else self.eval_batch_size
        return DataLoader(
            dataset,
            batch_sampler=BatchSampler(sampler, size, drop_last=False),
            collate_fn=_as_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """The test pairs, in time order."""
        return self._loader("test", shuffle=False)

    def __repr__(self) -> str:
        loaded = repr(self._samples) if self._samples is not None else "not loaded"
        return f"{type(self).__name__}(source={self.source!r}, {loaded})"
