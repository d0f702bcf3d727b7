"""The Lightning data module: interactions -> BPR batches and full-ranking batches, text -> embeddings."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from darec.data.interactions import Interactions
from darec.data.sampling import BPRTriplets, RankingUsers
from darec.data.text import with_text
from darec.text.cache import TextEmbeddingCache, check_embeddings, load_embeddings
from darec.text.encoders import DEFAULT_ENCODER, TextEncoder, resolve_encoder

__all__ = ["RecDataModule", "quiet_lightning_warnings"]

# Lightning warnings that do not apply to darec's loaders (see quiet_lightning_warnings).
_LIGHTNING_WARNINGS = (
    r".*Your `IterableDataset` has `__len__` defined.*",
    r".*Couldn't infer the batch indices fetched from your dataloader.*",
)


@contextlib.contextmanager
def quiet_lightning_warnings() -> Iterator[None]:
    """Hides, inside the block only, two Lightning warnings that do not apply to darec's loaders.

    Lightning warns about every ``IterableDataset`` that defines ``__len__`` (its length could be
    wrong under several workers) and, in ``predict`` with a prediction writer, that it cannot infer
    the batch indices of such a loader. Both darec datasets shard themselves per process and have
    an exact ``__len__``, and :class:`~darec.callbacks.PredictionWriter` does not use batch indices.

    The ``darec`` command runs in this block; wrap your own ``trainer.fit(...)`` in it to hide the
    warnings too. Importing darec installs no warning filter, and the process's filters are as
    before once the block ends.

    Example:
        >>> import warnings
        >>> before = list(warnings.filters)
        >>> with quiet_lightning_warnings():
        ...     pass
        >>> warnings.filters == before
        True
    """
    with warnings.catch_warnings():
        for message in _LIGHTNING_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        yield


def _seed_of_rank_zero(seed: int) -> int:
    """``seed`` of process 0 under ``torch.distributed`` (``seed`` itself otherwise).

    Every process must draw the same epoch of triplets, of which it takes every ``world_size``-th
    batch; processes started without a common seed (e.g. by ``torchrun`` without
    ``seed_everything``) would each draw their own. Called by every process, in ``setup``."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return seed
    if torch.distributed.get_world_size() == 1:
        return seed
    box = [seed]
    torch.distributed.broadcast_object_list(box, src=0)
    return int(box[0])


class RecDataModule(L.LightningDataModule):
    """Interactions and their text, served to a :class:`~darec.DaRecModule`.

    Data flow one way: the interactions are read (and split, if they are not split yet), the
    text profiles are encoded once by a frozen encoder and cached on disk, and the module receives

    - training batches ``{"user", "pos", "neg"}``: every training pair once per epoch, shuffled, each
      with one uniform negative that is not among the user's training positives (redrawn every
      epoch, vectorised);
    - ranking batches ``{"user", "exclude", "target"}`` for full ranking: validation masks the
      training items, test masks training and validation items, prediction masks all known items.

    ``source`` may be a ready split directory (``train.tsv``, ``valid.tsv``, ``test.tsv``, optional
    ``user_text.jsonl``/``item_text.jsonl``, as written by :func:`~darec.data.write_split_dir`), a
    directory of RecBole atomic files, a directory of RLMRec pickles (with ``trust_pickle=True``),
    or a TSV/CSV file of ``user``/``item`` (optional ``rating``/``timestamp``) columns. Unsplit
    sources are filtered and split with the protocol arguments below; their text is built from
    their metadata (``item_info``/``user_info`` files, or the ``.item``/``.user`` and ``u.item``/
    ``u.user`` files of RecBole and GroupLens) and the training interactions. A TSV/CSV file
    without metadata files has no text. In Python,
    :meth:`from_interactions` wraps an :class:`~darec.data.Interactions` directly.

    Args:
        source (str, optional): where the interactions are (see above).
        item_info (str, optional): item metadata for the item (and user) text of an unsplit
            source: a TSV/CSV file with an id column (``item_id``, ``item`` or ``id``) and any
            other columns (``title``, ``year``, ``genres``, ``description``, ...), or a
            ``.jsonl`` file of one object per item; see :func:`~darec.data.read_metadata`.
            Replaces the item metadata the source itself may have.
        user_info (str, optional): user metadata likewise (id column ``user_id``, ``user`` or
            ``id``; e.g. ``age``, ``gender``, ``occupation``).
        batch_size (int): training triplets per step. (default: :obj:`4096`)
        eval_batch_size (int): users per full-ranking batch. (default: :obj:`1024`)
        text_encoder (str or TextEncoder, optional): encoder of the text profiles; a model name or
            directory gives a sentence-transformers model; :obj:`None` skips text.
            (default: :obj:`"all-MiniLM-L6-v2"`)
        user_embeddings (str, optional): precomputed ``(num_users, d)`` user text embeddings
            (``.pt``/``.npy``/``.npz``), used instead of encoding user text.
        item_embeddings (str, optional): precomputed ``(num_items, d)`` item text embeddings.
        user_profiles (str, optional): a profile file written by a language model (``darec
            profiles --entity user``, :class:`~darec.profiles.ProfileJob`): each user's ``summary``
            replaces the user's template text, and is embedded by ``text_encoder`` and cached like
            it (the cache is keyed by the texts, so a changed file is encoded again). Lines are
            matched by internal id; a ``raw_id`` that disagrees with the data is an error (the
            profiles were written for another split). See :func:`~darec.data.read_profiles`.
        item_profiles (str, optional): the same for items.
        missing_profiles (str): what to do with users or items that have no line in their profile
            file: ``"error"`` stops with a :class:`ValueError` that counts them and names a few ids;
            ``"template"`` keeps their template text (with a warning that counts them).
            (default: :obj:`"error"`)
        cache_dir (str, optional): cache root for downloads and embeddings.
            (default: ``$DAREC_HOME`` or ``~/.cache/darec``)
        split (str): ``"random"`` (per-user 3:1:1) or ``"temporal"`` (leave-latest), for unsplit
            sources. (default: :obj:`"random"`)
        positive_threshold (float, optional): ratings at or above it are positives (sources with
            ratings only). (default: :obj:`4.0`)
        min_user_positives (int): users with fewer positives are dropped. (default: :obj:`5`)
        split_seed (int): seed of the random split. (default: :obj:`2024`)
        trust_pickle (bool): allow reading RLMRec's pickles, which can run code. Only for files you
            trust. (default: :obj:`False`)
        seed (int, optional): seed of negative sampling; by default the global seed set by
            :func:`lightning.seed_everything` (under several processes, process 0's, so that all
            draw the same epochs). (default: :obj:`None`)
        num_workers (int): data-loader workers. A fit resumed from a checkpoint is the exact
            continuation of the interrupted one only without workers (see
            :class:`~darec.data.BPRTriplets`). (default: :obj:`0`)
    """

    def __init__(
        self,
        source: str | None = None,
        *,
        item_info: str | None = None,
        user_info: str | None = None,
        batch_size: int = 4096,
        eval_batch_size: int = 1024,
        text_encoder: str | TextEncoder | None = DEFAULT_ENCODER,
        user_embeddings: str | None = None,
        item_embeddings: str | None = None,
        user_profiles: str | None = None,
        item_profiles: str | None = None,
        missing_profiles: str = "error",
        cache_dir: str | None = None,
        split: str = "random",
        positive_threshold: float | None = 4.0,
        min_user_positives: int = 5,
        split_seed: int = 2024,
        trust_pickle: bool = False,
        seed: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"`batch_size` must be positive, got {batch_size}")
        if eval_batch_size <= 0:
            raise ValueError(f"`eval_batch_size` must be positive, got {eval_batch_size}")
        if split not in ("random", "temporal"):
            raise ValueError(f"`split` must be 'random' or 'temporal', got {split!r}")
        if missing_profiles not in ("error", "template"):
            raise ValueError(f"`missing_profiles` must be 'error' or 'template', got {missing_profiles!r}")
        if text_encoder is None and (user_profiles is not None or item_profiles is not None):
            raise ValueError(
                "`user_profiles`/`item_profiles` are texts to embed, but `text_encoder` is None: name an encoder"
            )
        self.source = source
        self.item_info_path = item_info
        self.user_info_path = user_info
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.text_encoder = resolve_encoder(text_encoder)
        self.user_embeddings_path = user_embeddings
        self.item_embeddings_path = item_embeddings
        self.profile_paths = {
            side: str(path) for side, path in (("user", user_profiles), ("item", item_profiles)) if path is not None
        }
        self.missing_profiles = missing_profiles
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.split = split
        self.positive_threshold = positive_threshold
        self.min_user_positives = min_user_positives
        self.split_seed = split_seed
        self.trust_pickle = trust_pickle
        self.seed = seed
        self.num_workers = num_workers
        self._interactions: Interactions | None = None
        self._raw_log: Any = None
        self._source_embeddings: dict[str, np.ndarray] = {}
        self.text_embeddings: dict[str, Tensor] = {}
        self._train_set: BPRTriplets | None = None
        self._sampler_state: dict[str, Any] | None = None

    @classmethod
    def from_interactions(cls, interactions: Interactions, **kwargs: Any) -> RecDataModule:
        """Wraps interactions already in memory (e.g. from a reader and a split function).

        Example:
            >>> data = Interactions(2, 3, train=[[0, 0], [1, 1]], valid=[[0, 2]])
            >>> dm = RecDataModule.from_interactions(data, text_encoder=None)
            >>> dm.num_users, dm.num_items, dm.num_nodes
            (2, 3, 5)
        """
        if not isinstance(interactions, Interactions):
            raise TypeError(f"expected darec.data.Interactions, got {type(interactions).__name__}")
        dm = cls(**kwargs)
        if dm.item_info_path is not None or dm.user_info_path is not None:
            raise ValueError(
                "item_info/user_info are read with a `source`; for interactions in memory, build the text "
                "with darec.data.with_text(interactions, log) before from_interactions"
            )
        dm._interactions = interactions
        return dm

    # -- loading ------------------------------------------------------------------------------
    @property
    def cache_root(self) -> Path:
        from darec.utils.io import default_cache_dir

        return self.cache_dir or default_cache_dir()

    def load_interactions(self) -> Interactions:
        """Reads (and if needed splits) the interactions; override to add a new source."""
        from darec.data import readers

        if self.source is None:
            raise ValueError(
                "RecDataModule has no data: pass `source` (a split directory, RecBole directory or "
                "TSV/CSV file) or build it with RecDataModule.from_interactions(...)"
            )
        path = Path(self.source).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"data source {path} does not exist")
        metadata = {
            key: Path(value).expanduser()
            for key, value in (("item_info", self.item_info_path), ("user_info", self.user_info_path))
            if value is not None
        }
        for key, value in metadata.items():
            if not value.is_file():
                raise FileNotFoundError(f"{key}={str(value)!r}: no such metadata file")
        split_dir = readers.is_split_dir(path)
        if metadata and split_dir:
            raise ValueError(
                f"{' and '.join(f'{k}=' for k in metadata)} only apply to unsplit sources (a TSV/CSV file, RecBole "
                f"or GroupLens folder), but {path} is already split: put the texts in its item_text.jsonl/"
                "user_text.jsonl, or pass precomputed user_embeddings/item_embeddings"
            )
        if path.is_dir() and (path / "train.tsv").is_file():
            return readers.read_split_dir(path)
        if path.is_dir() and (path / "trn_mat.pkl").is_file():
            interactions, embeddings = readers.read_rlmrec(path, trust_pickle=self.trust_pickle)
            self._source_embeddings = embeddings
            return interactions
        try:
            log = readers.read_raw_log(path)
        except ValueError as err:
            if "cannot tell the layout" not in str(err):
                raise
            raise ValueError(
                f"cannot tell the layout of {path}: expected train.tsv (split directory), *.inter "
                "(RecBole), trn_mat.pkl (RLMRec), u.data (GroupLens) or a .tsv/.csv file"
            ) from None
        if not metadata:
            return self.split_log(log)
        interactions = self.split_log(readers.attach_metadata(log, **metadata))
        interactions.protocol["metadata_files"] = {key: str(value) for key, value in metadata.items()}
        return interactions

    def split_log(self, log: Any) -> Interactions:
        """Applies this module's protocol (filtering, split, text) to a raw interaction log."""
        from darec.data import split as splits

        if self.split == "random":
            interactions = splits.random_split(
                log,
                positive_threshold=self.positive_threshold,
                min_user_positives=self.min_user_positives,
                seed=self.split_seed,
            )
        else:
            interactions = splits.temporal_split(
                log, positive_threshold=self.positive_threshold, min_user_positives=self.min_user_positives
            )
        if log.item_info or log.user_info:
            interactions = with_text(interactions, log)
        self._raw_log = log
        return interactions

    @property
    def raw_log(self) -> Any:
        """The :class:`~darec.data.InteractionLog` the split was made from (ratings, timestamps, metadata).

        :obj:`None` for sources that are split already (a split directory, RLMRec's pickles, or
        :meth:`from_interactions`). Loads the data on first access.
        """
        _ = self.interactions
        return self._raw_log

    @property
    def interactions(self) -> Interactions:
        """The split interactions, loaded on first access."""
        if self._interactions is None:
            self._interactions = self.load_interactions()
        return self._interactions

    @property
    def num_users(self) -> int:
        return self.interactions.num_users

    @property
    def num_items(self) -> int:
        return self.interactions.num_items

    @property
    def num_nodes(self) -> int:
        """Users plus items: the ``num_nodes`` of a graph backbone."""
        return self.interactions.num_nodes

    @property
    def protocol(self) -> dict[str, Any]:
        """How the data were built and how they are evaluated; logged with every result."""
        data = self.interactions
        return {
            **data.protocol,
            **{f"count_{k}": v for k, v in data.stats().items()},
            "negatives": "1 uniform per positive, resampled each epoch, never a training positive",
            "ranking": "full ranking over all items",
            "masked_at_validation": "train",
            "masked_at_test": "train+valid",
            "text_encoder": None if self.text_encoder is None else self.text_encoder.cache_key,
            **({"text_profiles": self._profile_protocol()} if self.profile_paths else {}),
        }

    def _profile_protocol(self) -> dict[str, Any]:
        from darec.utils.io import sha256_file

        out: dict[str, Any] = {}
        for side, path in self.profile_paths.items():
            file = Path(path).expanduser()
            out[side] = {"path": path, "sha256": sha256_file(file) if file.is_file() else None}
        out["missing_profiles"] = self.missing_profiles
        return out

    # -- text ---------------------------------------------------------------------------------
    def _texts(self) -> dict[str, list[str]]:
        data = self.interactions
        texts = {side: text for side, text in (("user", data.user_text), ("item", data.item_text)) if text}
        for side, path in self.profile_paths.items():
            texts[side] = self._profile_texts(side, path, texts.get(side))
        return texts

    def _profile_texts(self, side: str, path: str, template: list[str] | None) -> list[str]:
        """The ``summary`` of every ``side`` in the profile file ``path``, by internal id (see ``missing_profiles``)."""
        from darec.data.readers.profiles import read_profiles

        data = self.interactions
        count = data.num_users if side == "user" else data.num_items
        raw_ids = data.user_ids if side == "user" else data.item_ids
        records = read_profiles(path, side)
        where = f"{side}_profiles={path!r}"
        if not records:
            raise ValueError(f"{where}: the file holds no {side} profiles (is it the other entity's file?)")
        outside = sorted(k for k in records if k >= count)
        if outside:
            raise ValueError(
                f"{where}: {len(outside)} profile(s) have ids outside 0 .. {count - 1}, e.g. {outside[:5]}: "
                "the file was written for other data"
            )
        clashes = [
            (k, r["raw_id"], raw_ids[k]) for k, r in sorted(records.items())
            if r.get("raw_id") is not None and str(r["raw_id"]) != str(raw_ids[k])
        ]  # fmt: skip
        if clashes:
            examples = ", ".join(f"id {k}: {a!r} in the file, {b!r} in the data" for k, a, b in clashes[:3])
            raise ValueError(
                f"{where}: {len(clashes)} profile(s) name another raw id than the data ({examples}): "
                "the file was written for another split"
            )
        missing = [k for k in range(count) if k not in records]
        if missing:
            shown = ", ".join(f"{k} ({raw_ids[k]})" for k in missing[:5])
            if self.missing_profiles == "error" or template is None:
                hint = (
                    "generate them (darec profiles ... without --limit resumes the run), or pass "
                    "missing_profiles='template' to keep their template text"
                    if template is not None
                    else "generate them (darec profiles ... without --limit resumes the run); the data have no "
                    "template text to fall back on"
                )
                raise ValueError(
                    f"{where}: {len(missing)} of {count} {side}s have no profile, e.g. ids {shown}; {hint}"
                )
            warnings.warn(
                f"{where}: {len(missing)} of {count} {side}s have no profile (e.g. ids {shown}); they keep their "
                "template text",
                UserWarning,
                stacklevel=2,
            )
        return [records[k]["summary"].strip() if k in records else template[k] for k in range(count)]

    def _compute_text_embeddings(self) -> dict[str, Tensor]:
        data = self.interactions
        sizes = {"user": data.num_users, "item": data.num_items}
        out: dict[str, Tensor] = {}
        for side, path in (("user", self.user_embeddings_path), ("item", self.item_embeddings_path)):
            if path is not None:
                out[side] = load_embeddings(path, sizes[side], f"{side} embeddings from {path}")
            elif side in self._source_embeddings:
                out[side] = check_embeddings(self._source_embeddings[side], sizes[side], f"{side} embeddings")
        if self.text_encoder is not None:
            cache = TextEmbeddingCache(self.cache_root / "embeddings")
            for side, texts in self._texts().items():
                if side not in out:
                    out[side] = cache.get(self.text_encoder, texts, name=f"{side} text embeddings")
        return out

    def prepare_data(self) -> None:
        """Obtains the data and encodes the text once (into the on-disk cache)."""
        self._compute_text_embeddings()

    def setup(self, stage: str | None = None) -> None:
        data = self.interactions
        self.text_embeddings = self._compute_text_embeddings()
        if self._train_set is None:
            seed = self.seed if self.seed is not None else _seed_of_rank_zero(torch.initial_seed())
            self._train_set = BPRTriplets(data.train, data.num_items, self.batch_size, seed=seed % 2**63)
            if self._sampler_state is not None:
                self._train_set.load_state_dict(self._sampler_state)

    # -- loaders ------------------------------------------------------------------------------
    def _loader(self, dataset: Any) -> DataLoader:
        return DataLoader(
            dataset, batch_size=None, num_workers=self.num_workers, persistent_workers=self.num_workers > 0
        )

    def train_dataloader(self) -> DataLoader:
        if self._train_set is None:
            self.setup("fit")
        return self._loader(self._train_set)

    def ranking_users(self, stage: str) -> RankingUsers:
        """Full-ranking batches for ``stage`` in ``"validate"``, ``"test"``, ``"predict"``."""
        data = self.interactions
        masks = {"validate": ("train",), "test": ("train", "valid"), "predict": ("train", "valid", "test")}
        if stage not in masks:
            raise ValueError(f"unknown stage {stage!r}; expected one of {sorted(masks)}")
        exclude = np.concatenate([data.split(name) for name in masks[stage]])
        target = {"validate": data.valid, "test": data.test}.get(stage)
        if target is not None and len(target) == 0:
            name = "valid" if stage == "validate" else "test"
            raise ValueError(f"the {name} split is empty: there is nothing to {stage} on")
        return RankingUsers(data.num_users, exclude, target, self.eval_batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.ranking_users("validate"))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.ranking_users("test"))

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.ranking_users("predict"))

    # -- checkpointing ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self._train_set.state_dict()} if self._train_set is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.num_workers > 0:
            warnings.warn(
                f"resuming with num_workers={self.num_workers}: the negative sampler's state in the checkpoint is the "
                "main process's, which workers do not advance, so the resumed epochs draw other batches than an "
                "uninterrupted run would (resume with num_workers=0 for an exact continuation)",
                UserWarning,
                stacklevel=2,
            )
        self._sampler_state = state_dict.get("sampler")
        if self._train_set is not None and self._sampler_state is not None:
            self._train_set.load_state_dict(self._sampler_state)

    def __repr__(self) -> str:
        loaded = repr(self._interactions) if self._interactions is not None else "not loaded"
        return f"{type(self).__name__}(source={self.source!r}, {loaded})"


