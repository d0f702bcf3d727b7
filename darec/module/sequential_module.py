"""The Lightning module of next-item recommendation: a sequential backbone, BCE, both ranking protocols,
``predict`` and :meth:`~SequentialModule.recommend`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from darec.data.sequence_datamodule import left_pad
from darec.data.user_sequences import UserSequences
from darec.metrics import rank_items, ranking_metrics
from darec.module.ranking import _drop_excluded, _mask_, _member, check_exclude
from darec.utils.spec import build_from_spec, describe

__all__ = ["SequentialModule"]

_ITEM_INIT = ("random", "titles")


class SequentialModule(L.LightningModule):
    r"""Trains a sequential recommender for the next item, and evaluates it by full and sampled ranking.

    The backbone is any :class:`~torch.nn.Module` with ``sequence_states(seq)`` (``(B, L)``
    left-padded item ids, ``0`` padding -> ``(B, L, d)`` causal states) and ``item_embeddings()``
    (the ``(num_items + 1, d)`` item table, row 0 padding), e.g. :class:`~darec.backbones.SASRec`.
    A position's score for item :math:`i` is :math:`h_t \cdot e_i`. Training is SASRec's binary
    cross-entropy over every non-padded position :math:`t` with its next item :math:`p_t` and one
    sampled negative :math:`n_t` (from :class:`~darec.data.SequenceDataModule`):

    .. math::
        \mathcal{L} = -\frac{1}{|T|} \sum_{t \in T} \big[\log \sigma(h_t \cdot e_{p_t})
            + \log(1 - \sigma(h_t \cdot e_{n_t}))\big],

    optimised with Adam (:math:`\beta = (0.9, 0.98)`, as SASRec).

    Validation and test score the user's next item from the state after the input sequence,
    in two protocols, whose logged names say which:

    - ``val/full/recall@k``, ``val/full/ndcg@k``, ``val/full/hit_rate@k`` (and ``test/full/...``):
      all items ranked, the input history masked (the target itself never is);
    - ``val/sampled/hit_rate@k`` and ``val/sampled/ndcg@k`` for ``k`` in ``sampled_ks``: the
      target among the data module's fixed, seeded sampled items
      (:class:`~darec.metrics.SampledRankingEvaluator`), LANE's protocol.

    With ``item_init="titles"`` the backbone's item table is initialised in :meth:`setup` (at the
    start of ``fit``) from the data module's :attr:`~darec.data.SequenceDataModule.title_embeddings`
    through the backbone's ``init_item_embeddings(matrix)`` (LANE, LN-1); a resumed fit keeps the
    checkpoint's trained table.

    ``predict`` (:meth:`predict_step`, with :meth:`SequenceDataModule.predict_dataloader
    <darec.data.SequenceDataModule.predict_dataloader>`) and :meth:`recommend` rank all items
    after each user's whole sequence (training, validation and test items): what comes next after
    everything known. The users' sequences come from the data module in :meth:`setup`, or from
    :meth:`set_sequences`, and are kept in the module's checkpoints, so that
    ``SequentialModule.load_from_checkpoint(path).recommend([0, 1])`` needs nothing else.

    Args:
        backbone (torch.nn.Module): the sequential model (or its ``class_path`` spec).
        lr (float): Adam learning rate. (default: :obj:`1e-3`)
        weight_decay (float): Adam weight decay. (default: :obj:`0.0`)
        ks (Sequence[int]): cut-offs of the full-ranking metrics. (default: ``(5, 10, 20)``)
        sampled_ks (Sequence[int]): cut-offs of the sampled-ranking metrics. (default: ``(5, 10)``)
        item_init (str): ``"random"`` (the backbone's own initialisation) or ``"titles"``.
            (default: :obj:`"random"`)
        predict_k (int): items recommended per user by ``predict``. (default: :obj:`20`)
        predict_exclude (str, optional): what ``predict`` never recommends, as ``exclude`` of
            :meth:`recommend`: ``"known"``, every item of the user's sequence (train, valid and
            test); ``"train"``, the training items only; :obj:`None`, nothing.
            (default: :obj:`"known"`)

    Example:
        >>> from darec.backbones import SASRec
        >>> model = SequentialModule(SASRec(num_items=5, embedding_dim=8, max_len=4))
        >>> batch = {"seq": torch.tensor([[0, 1, 2, 3]]), "pos": torch.tensor([[0, 2, 3, 4]]),
        ...          "neg": torch.tensor([[0, 5, 5, 5]])}
        >>> model.loss(batch).shape
        torch.Size([])
    """

    def __init__(
        self,
        backbone: nn.Module,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        ks: Sequence[int] = (5, 10, 20),
        sampled_ks: Sequence[int] = (5, 10),
        item_init: str = "random",
        predict_k: int = 20,
        predict_exclude: str | None = "known",
    ) -> None:
        super().__init__()
        if isinstance(backbone, dict):
            backbone = build_from_spec(backbone, what="the backbone")
        missing = [name for name in ("sequence_states", "item_embeddings") if not callable(getattr(backbone, name, None))]
        if missing:
            raise TypeError(f"the backbone {type(backbone).__name__} lacks {', '.join(missing)}(): see darec.backbones.SASRec")
        if lr <= 0:
            raise ValueError(f"`lr` must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"`weight_decay` must be non-negative, got {weight_decay}")
        if item_init not in _ITEM_INIT:
            raise ValueError(f"`item_init` must be one of {_ITEM_INIT}, got {item_init!r}")
        if item_init == "titles" and not callable(getattr(backbone, "init_item_embeddings", None)):
            raise TypeError(f"item_init='titles' needs a backbone with init_item_embeddings(matrix); {type(backbone).__name__} has none")
        if isinstance(predict_k, bool) or not isinstance(predict_k, (int, np.integer)) or predict_k < 1:
            raise ValueError(f"`predict_k` must be a positive integer, got {predict_k!r}")
        check_exclude(predict_exclude, "predict_exclude")
        self.backbone = backbone
        self.save_hyperparameters(ignore=["backbone"])
        spec = describe(self.backbone)
        if spec is not None:  # so that load_from_checkpoint(path) rebuilds the backbone
            self.hparams["backbone"] = spec
        self.val_full = ranking_metrics(ks, names=("recall", "ndcg", "hit_rate"), prefix="val/full/")
        self.test_full = ranking_metrics(ks, names=("recall", "ndcg", "hit_rate"), prefix="test/full/")
        self.val_sampled: nn.Module | None = None  # built in setup from the data module
        self.test_sampled: nn.Module | None = None
        #: The users' whole sequences (:class:`~darec.data.UserSequences`), from the data module, the
        #: checkpoint or :meth:`set_sequences`: the input and the masked items of :meth:`recommend`.
        self.user_sequences: UserSequences | None = None

    # -- setup ---------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None:
            return
        if stage == "fit" and self.hparams.item_init == "titles":
            titles = getattr(datamodule, "title_embeddings", None)
            if titles is None:
                raise ValueError(
                    "item_init='titles' needs title embeddings, but the data module has none: give it a "
                    "title_encoder (e.g. 'all-MiniLM-L6-v2')"
                )
            self.backbone.init_item_embeddings(titles)
        sequences = getattr(datamodule, "sequences", None)
        if isinstance(sequences, UserSequences):
            self.set_sequences(sequences)
        if stage != "predict" and hasattr(datamodule, "sampled_evaluator"):
            ks = tuple(self.hparams.sampled_ks)
            if self.val_sampled is None:
                self.val_sampled = datamodule.sampled_evaluator(prefix="val/sampled/", ks=ks).to(self.device)
            if self.test_sampled is None:
                self.test_sampled = datamodule.sampled_evaluator(prefix="test/sampled/", ks=ks).to(self.device)

    # -- training ------------------------------------------------------------------------------
    def forward(self, seq: Tensor) -> Tensor:
        """``(B, d)``: the state after the last position of the left-padded ``(B, L)`` ``seq``."""
        return self.backbone.sequence_states(seq)[:, -1]

    def sequence_states(self, batch: dict[str, Tensor]) -> Tensor:
        """``(B, L, d)``: the states that score the items of ``batch`` (``"seq"``, and ``"user"`` where given).

        The backbone's states of ``batch["seq"]``; the training loss and both rankings use them,
        so a subclass that changes them (:class:`~darec.lane.PreferenceAttentionFusion` fuses
        the user's preferences in) changes training and evaluation alike.
        """
        return self.backbone.sequence_states(batch["seq"])

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The BCE of a training batch ``{"seq", "pos", "neg"}``, averaged over non-padded positions."""
        states = self.sequence_states(batch)
        table = self.backbone.item_embeddings()
        pos = (states * table[batch["pos"]]).sum(-1)
        neg = (states * table[batch["neg"]]).sum(-1)
        real = batch["pos"] != 0
        pos, neg = pos[real], neg[real]
        return F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + F.binary_cross_entropy_with_logits(
            neg, torch.zeros_like(neg)
        )

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["seq"]))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            self.parameters(), lr=self.hparams.lr, betas=(0.9, 0.98), weight_decay=self.hparams.weight_decay
        )

    # -- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def score_items(self, seq: Tensor) -> Tensor:
        """``(B, num_items)`` float32 scores of items ``1 .. num_items`` (column ``i - 1``) after ``seq``."""
        states = self(seq).float()
        return states @ self.backbone.item_embeddings()[1:].float().T

    def _evaluation_step(self, batch: dict[str, Tensor], full: Any, sampled: Any) -> None:
        users, target = batch["user"], batch["target"]
        states = self.sequence_states(batch)[:, -1].float()
        table = self.backbone.item_embeddings().float()
        scores = states @ table[1:].T
        exclude = batch["exclude"]
        if exclude.numel():
            scores.index_put_((exclude[0], exclude[1] - 1), scores.new_full((), float("-inf")))
        relevant = torch.zeros_like(scores, dtype=torch.bool)
        relevant[torch.arange(len(target), device=scores.device), target - 1] = True
        full.update(rank_items(scores, full.max_k), relevant, num_relevant=torch.ones_like(target))
        if sampled is not None:
            candidates, keep = sampled.candidates(users, target)
            if keep.any():
                sampled.update(torch.einsum("bd,bcd->bc", states[keep], table[candidates]))

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, self.val_full, self.val_sampled)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, self.test_full, self.test_sampled)

    def _evaluation_end(self, full: Any, sampled: Any) -> None:
        values = full.compute()
        full.reset()
        if sampled is not None:
            values.update(sampled.compute())
            sampled.reset()
        self.log_dict(values)

    def on_validation_epoch_end(self) -> None:
        self._evaluation_end(self.val_full, self.val_sampled)

    def on_test_epoch_end(self) -> None:
        self._evaluation_end(self.test_full, self.test_sampled)

    def on_fit_start(self) -> None:
        self._log_protocol()

    def on_test_start(self) -> None:
        self._log_protocol()

    def _log_protocol(self) -> None:
        from darec.loggers import log_data_protocol

        log_data_protocol(self)

    # -- recommendation ------------------------------------------------------------------------
    @property
    def num_items(self) -> int:
        """Number of items (ids ``1 .. num_items``; ``0`` is padding): the backbone's item table less its padding row."""
        return int(self.backbone.item_embeddings().size(0)) - 1

    def set_sequences(self, sequences: UserSequences) -> None:
        """Gives the module the users' whole sequences, for :meth:`recommend` by user and for ``predict``.

        The data module gives them in :meth:`setup` and checkpoints keep them; call this after
        building a module without either.

        Args:
            sequences (UserSequences): the data's sequences (e.g. ``datamodule.sequences``), with
                the model's ``num_items``.

        Raises:
            TypeError: ``sequences`` is not a :class:`~darec.data.UserSequences`.
            ValueError: the sequences number their items otherwise than the model.
        """
        if not isinstance(sequences, UserSequences):
            raise TypeError(f"expected darec.data.UserSequences, got {type(sequences).__name__}")
        if sequences.num_items != self.num_items:
            raise ValueError(
                f"the sequences have {sequences.num_items} items but the model's item table has {self.num_items} "
                "(ids 1 .. num_items): build the backbone with the data's num_items"
            )
        self.user_sequences = sequences

    def _item_scores(self, states: Tensor) -> Tensor:
        """``(B, num_items)`` float32 scores of items ``1 .. num_items`` (column ``i - 1``) for the ``(B, d)``
        ``states``, also under mixed precision (bfloat16 would reorder nearly tied items)."""
        table = self.backbone.item_embeddings()
        with torch.autocast(device_type=states.device.type, enabled=False):
            return states.float() @ table[1:].float().T

    def _top_items(self, batch: dict[str, Tensor], pairs: Tensor | None, k: int) -> tuple[Tensor, Tensor]:
        """Top-``k`` items (ids ``1 .. num_items``) after ``batch["seq"]`` and their scores, the ``(2, nnz)``
        (row, column ``item - 1``) ``pairs`` masked; item ``-1`` (score ``-inf``) where a row has no item left."""
        scores = _mask_(self._item_scores(self.sequence_states(batch)[:, -1]), pairs)
        columns = rank_items(scores, min(k, self.num_items))
        return _drop_excluded(columns + 1, scores.gather(1, columns), _member(pairs, columns, self.num_items))

    def _history_pairs(self, histories: Sequence[np.ndarray]) -> Tensor:
        """``(2, nnz)`` (row, column ``item - 1``) pairs of the items of ``histories[row]``, on the module's device."""
        items = [np.unique(np.asarray(h, dtype=np.int64)) for h in histories]
        rows = [np.full(len(found), row, dtype=np.int64) for row, found in enumerate(items)]
        none = [np.zeros(0, dtype=np.int64)]
        pairs = np.stack([np.concatenate(rows or none), np.concatenate(items or none) - 1])
        return torch.from_numpy(pairs).to(self.device)

    def _exclusion_pairs(self, users: Tensor, exclude: str | None) -> Tensor | None:
        """The ``(2, nnz)`` (row in ``users``, column ``item - 1``) pairs that ``exclude`` rules out for ``users``."""
        if exclude is None:
            return None
        data = self._known_sequences()
        cut = "predict" if exclude == "known" else "fit"
        return self._history_pairs([data.history(int(u), cut) for u in users.tolist()])

    def _known_sequences(self) -> UserSequences:
        if self.user_sequences is None:
            raise RuntimeError(
                "the module has no user sequences: fit or predict with a SequenceDataModule, load a checkpoint, "
                "call set_sequences(datamodule.sequences), or pass the input as recommend(sequences=...)"
            )
        return self.user_sequences

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """Top-``predict_k`` items per user of a prediction batch, as :meth:`recommend` ranks them.

        The batch (:meth:`SequenceDataModule.predict_dataloader
        <darec.data.SequenceDataModule.predict_dataloader>`) holds ``user``, ``seq`` (the whole
        sequence, its last ``max_len`` items) and ``exclude`` (the ``(2, nnz)`` (row, item) pairs
        of the whole sequence). What is masked follows ``predict_exclude``: by default
        (``"known"``) the batch's ``exclude`` pairs, every item of the user's sequence;
        ``"train"`` the training items only; :obj:`None` nothing. Padding (item ``0``) is never
        recommended.

        Returns:
            ``{"user": (B,), "item": (B, K), "score": (B, K)}`` on the CPU, items ``1 .. num_items``
            best first, ``K = min(predict_k, num_items)``; a user with fewer than ``K`` items left
            to recommend gets item ``-1`` (score ``-inf``) in the remaining positions.
        """
        users = batch["user"]
        mode = self.hparams.get("predict_exclude", "known")
        if mode == "known" and "exclude" in batch:
            exclude = batch["exclude"]
            pairs = torch.stack([exclude[0], exclude[1] - 1])
        else:
            pairs = self._exclusion_pairs(users, mode)
        items, scores = self._top_items(batch, pairs, self.hparams.get("predict_k", 20))
        return {"user": users.cpu(), "item": items.cpu(), "score": scores.cpu()}

    def _checked_users(self, users: Any, known: bool) -> Tensor:
        """``users`` as a ``(B,)`` long tensor of internal ids, checked against the known users when ``known``."""
        array = np.asarray(users.cpu() if isinstance(users, Tensor) else users)
        if array.dtype.kind not in "iu" and not (array.size == 0 and array.dtype.kind == "f"):
            raise TypeError(
                f"`users` must be internal user ids (integers 0 .. num_users - 1), got {array.dtype} values such as "
                f"{array.reshape(-1)[:3].tolist()}; raw ids map to internal ones through user_sequences.user_ids"
            )
        found = torch.as_tensor(array.astype(np.int64)).reshape(-1)
        if known and found.numel():
            count = self._known_sequences().num_users
            if found.min() < 0 or found.max() >= count:
                unknown = sorted({int(u) for u in found.tolist() if not 0 <= u < count})
                raise ValueError(f"unknown user id(s) {unknown[:5]}: user ids must be in [0, {count})")
        return found

    def _checked_sequences(self, sequences: Any) -> tuple[Tensor, list[np.ndarray]]:
        """The left-padded ``(B, L)`` input of ``sequences`` and each row's items (for the mask)."""
        max_len = getattr(self.backbone, "max_len", None)
        if isinstance(sequences, Tensor):
            if sequences.dim() != 2:
                raise ValueError(
                    f"`sequences` as a tensor must be (B, L) left-padded item ids, got shape {tuple(sequences.shape)}; "
                    "a single sequence is sequences=[[...]]"
                )
            padded = sequences.detach().cpu().long()
            rows = [row[row != 0].numpy() for row in padded]
            if max_len is not None:
                padded = padded[:, -max_len:]
        else:
            if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__iter__"):
                raise TypeError(
                    f"`sequences` must be a (B, L) tensor or a list of item-id sequences, got {type(sequences).__name__}"
                )
            rows = [np.asarray(row.cpu() if isinstance(row, Tensor) else row, dtype=np.int64).reshape(-1) for row in sequences]
            if any(0 in row for row in rows):
                raise ValueError("`sequences` given as a list hold item ids 1 .. num_items without padding; 0 is padding")
            padded = torch.from_numpy(left_pad(rows, max_len or max((len(row) for row in rows), default=1)))
        empty = [index for index, row in enumerate(rows) if len(row) == 0]
        if empty:
            raise ValueError(f"sequence(s) {empty[:5]} hold no item: there is nothing to recommend after")
        if rows:
            lo, hi = min(int(row.min()) for row in rows), max(int(row.max()) for row in rows)
            if lo < 0 or hi > self.num_items:
                raise ValueError(f"item ids in `sequences` must be in 1 .. {self.num_items} (0 is padding), got {lo} .. {hi}")
        return padded, rows

    # Over 50 lines for its docstring (what it ranks, what it masks, its arguments, an example).
    @torch.no_grad()
    def recommend(
        self,
        users: Tensor | Sequence[int] | None = None,
        k: int = 10,
        exclude: str | None = "known",
        *,
        sequences: Tensor | Sequence[Sequence[int]] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Top-``k`` next items after each user's sequence, best first, as ``predict`` ranks them.

        By user (``users``): the input is the user's whole sequence (training, validation and test
        items, the latest ``max_len``) from :attr:`user_sequences`; ``exclude="known"`` masks every
        item of that sequence, ``"train"`` the training items only, :obj:`None` nothing. By
        sequence (``sequences``): the input is each given sequence, and ``"known"`` masks its
        items. :class:`~darec.lane.PreferenceAttentionFusion` also needs ``users`` with
        ``sequences`` (the rows of its preferences). Padding (item ``0``) is never recommended.

        Args:
            users (Tensor or sequence of int, optional): ``(B,)`` internal user ids,
                ``0 .. num_users - 1`` (``user_sequences.user_ids`` holds their raw ids).
            k (int): items per user. (default: :obj:`10`)
            exclude (str, optional): ``"known"``, ``"train"`` (by user only) or :obj:`None`.
                (default: :obj:`"known"`)
            sequences (Tensor or list, optional): the input instead of the users' sequences: a
                ``(B, L)`` tensor of left-padded item ids (``0`` padding), or ``B`` lists of item ids
                ``1 .. num_items``, oldest first (their last ``max_len`` items are the input).

        Returns:
            ``(items, scores)``: two ``(B, min(k, num_items))`` tensors on the module's device, item
            ids ``1 .. num_items`` (``user_sequences.item_ids[i - 1]`` is item ``i``'s raw id) and
            their scores, best first. A row with fewer items left than columns gets item ``-1``
            with score ``-inf`` in the remaining positions.

        Raises:
            ValueError: ``k`` is not a positive integer, a user id is unknown, ``exclude`` is not
                one of the three, or ``sequences`` hold ids outside ``1 .. num_items`` or no item.
            TypeError: neither ``users`` nor ``sequences`` is given, or ``users`` are not integers.
            RuntimeError: ``users`` alone, but the module has no sequences (see :meth:`set_sequences`).

        Example:
            >>> from darec.backbones import SASRec
            >>> from darec.data import UserSequences
            >>> model = SequentialModule(SASRec(num_items=5, embedding_dim=8, max_len=4))
            >>> model.set_sequences(UserSequences([np.array([1, 2, 3]), np.array([2, 4, 5, 1])], num_items=5))
            >>> items, scores = model.recommend([0, 1], k=3)  # 3 columns; user 1 has one item left
            >>> sorted(items[0, :2].tolist()), items[1].tolist()
            ([4, 5], [3, -1, -1])
            >>> model.recommend(sequences=[[1, 2]], k=2)[0].shape  # after a sequence of one's own
            torch.Size([1, 2])
            >>> model.recommend([7])
            Traceback (most recent call last):
            ...
            ValueError: unknown user id(s) [7]: user ids must be in [0, 2)
        """
        check_exclude(exclude)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"`k` must be a positive integer, got {k!r}")
        if users is None and sequences is None:
            raise TypeError("recommend() needs `users` (internal user ids) or `sequences` (item-id sequences)")
        found = None if users is None else self._checked_users(users, known=sequences is None)
        if sequences is None:
            data = self._known_sequences()
            histories = [data.history(int(u), "predict") for u in found.tolist()]
            max_len = getattr(self.backbone, "max_len", None) or max((len(h) for h in histories), default=1)
            seq = torch.from_numpy(left_pad(histories, max_len))
            pairs = self._exclusion_pairs(found, exclude)
        else:
            if exclude == "train":
                raise ValueError(
                    "exclude='train' needs `users` (their training items): with `sequences` use 'known' (the "
                    "sequence's items) or None"
                )
            seq, rows = self._checked_sequences(sequences)
            if found is not None and len(found) != len(seq):
                raise ValueError(f"`users` has {len(found)} ids for {len(seq)} sequences: give one user per sequence")
            pairs = self._history_pairs(rows) if exclude == "known" else None
        batch = {"seq": seq.to(self.device)}
        if found is not None:
            batch["user"] = found.to(self.device)
        was_training = self.training
        self.eval()
        try:
            return self._top_items(batch, pairs, int(k))
        finally:
            self.train(was_training)

    # -- checkpoints ---------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keeps the users' sequences and raw ids in the checkpoint's ``"darec"`` entry, for
        :meth:`recommend` from the checkpoint alone and ``darec predict --ckpt_path``."""
        data = self.user_sequences
        state: dict[str, Any] = {"num_items": self.num_items, "sequences": None}
        if data is not None:
            state["sequences"] = {
                "items": torch.from_numpy(np.concatenate(data.sequences)),
                "lengths": torch.tensor([len(s) for s in data.sequences], dtype=torch.long),
                "user_ids": data.user_ids.tolist(),
                "item_ids": data.item_ids.tolist(),
            }
        checkpoint["darec"] = state

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = (checkpoint.get("darec") or {}).get("sequences")
        if saved is not None:
            splits = np.cumsum(saved["lengths"].numpy())[:-1]
            sequences = np.split(saved["items"].numpy(), splits)
            self.set_sequences(
                UserSequences(sequences, self.num_items, user_ids=saved["user_ids"], item_ids=saved["item_ids"])
            )
