"""Evaluation and recommendation: full ranking of all items for validation, test, predict and ``recommend``."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from darec.metrics import RankingMetrics, rank_items
from darec.module.convergence import still_improving

__all__ = ["Ranking"]

_EXCLUDE = ("known", "train", None)


def _dense(pairs: Tensor, rows: int, cols: int) -> Tensor:
    """A ``(rows, cols)`` bool matrix that is True at the ``(2, nnz)`` (row, col) ``pairs``."""
    out = torch.zeros(rows, cols, dtype=torch.bool, device=pairs.device)
    out[pairs[0], pairs[1]] = True
    return out


def _mask_(scores: Tensor, pairs: Tensor | None) -> Tensor:
    """Sets ``scores`` to ``-inf`` at the ``(2, nnz)`` (row, col) ``pairs``, in place: the same
    ranking as :func:`rank_items` with a ``(B, I)`` exclusion mask, without building the mask or
    copying the scores (memory stays one ``(B, I)`` score matrix)."""
    if pairs is not None and pairs.numel():
        scores.index_put_((pairs[0], pairs[1]), scores.new_full((), float("-inf")))
    return scores


def _member(pairs: Tensor | None, items: Tensor, num_items: int) -> Tensor | None:
    """``(B, k)`` bool: whether ``(b, items[b, j])`` is among the ``(2, nnz)`` (row, col) ``pairs``
    (``_dense(pairs, B, I).gather(1, items)``, by binary search in the sorted pair keys)."""
    if pairs is None:
        return None
    keys = torch.sort(pairs[0] * num_items + pairs[1]).values
    if keys.numel() == 0:
        return torch.zeros_like(items, dtype=torch.bool)
    query = torch.arange(len(items), device=items.device).unsqueeze(1) * num_items + items
    return keys[torch.searchsorted(keys, query).clamp(max=len(keys) - 1)] == query


def _drop_excluded(items: Tensor, scores: Tensor, filler: Tensor | None) -> tuple[Tensor, Tensor]:
    """Marks the positions that :func:`rank_items` filled with excluded items (``filler``, a user
    with fewer than ``k`` allowed items) as item ``-1`` with score ``-inf``, so that they are never
    recommended."""
    if filler is None:
        return items, scores
    return items.masked_fill(filler, -1), scores.masked_fill(filler, float("-inf"))


def check_exclude(exclude: str | None, name: str = "exclude") -> None:
    """Raises ``ValueError`` unless ``exclude`` is ``"known"``, ``"train"`` or :obj:`None`."""
    if exclude not in _EXCLUDE:
        raise ValueError(f"`{name}` must be 'known', 'train' or None, got {exclude!r}")


class Ranking:
    """Mixin of :class:`~darec.DaRecModule`: ranks all items for every user with its embeddings
    (``forward``), masking what ``exclude`` rules out, in the validation, test and predict loops
    and in :meth:`recommend` / :meth:`recommend_raw`."""

    num_users: int
    num_items: int
    _eval_embedding: Tensor | None

    # -- evaluation --------------------------------------------------------------------------
    def _scores(self, users: Tensor) -> Tensor:
        """``(B, I)`` float32 scores, also under mixed precision: bfloat16 keeps 8 significant bits,
        which reorders nearly tied items and so changes NDCG and the order ``predict`` writes."""
        emb = self._eval_embedding if self._eval_embedding is not None else self()
        with torch.autocast(device_type=emb.device.type, enabled=False):
            return emb[users].float() @ emb[self.num_users :].float().T

    def _rank_batch(self, batch: dict[str, Tensor], k: int) -> tuple[Tensor, Tensor]:
        """Top-``k`` items of a ranking batch and their scores (``-inf`` for excluded items), the
        batch's ``exclude`` ``(2, nnz)`` (row, item) pairs masked in place on its score matrix."""
        scores = _mask_(self._scores(batch["user"]), batch["exclude"])
        items = rank_items(scores, k)
        return items, scores.gather(1, items)

    def _evaluation_start(self) -> None:
        self._graph_on_device()
        with torch.no_grad():
            self._eval_embedding = self()

    def _evaluation_step(self, batch: dict[str, Tensor], metrics: Any) -> None:
        items, _ = self._rank_batch(batch, metrics.max_k)
        pairs, size = batch["target"], len(batch["user"])
        target = _dense(pairs, size, self.num_items)
        if isinstance(metrics, RankingMetrics):  # the held-out pairs are unique: count them without a pass over target
            metrics.update(items, target, num_relevant=torch.bincount(pairs[0], minlength=size))
        else:
            metrics.update(items, target)

    def _evaluation_end(self, metrics: Any) -> None:
        self.log_dict(metrics.compute())
        metrics.reset()
        self._eval_embedding = None

    on_validation_epoch_start = on_test_epoch_start = on_predict_epoch_start = _evaluation_start

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, self.val_metrics)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, self.test_metrics)

    def on_validation_epoch_end(self) -> None:
        self._evaluation_end(self.val_metrics)
        trainer = self._trainer
        if trainer is not None and not trainer.sanity_checking:
            value = trainer.callback_metrics.get(self._convergence_metric)
            if value is not None:
                self._val_history.append((self.current_epoch, float(value)))

    @property
    def _convergence_metric(self) -> str:
        """The validation metric whose curve :meth:`on_fit_end` checks: recall at the largest cut-off."""
        return f"val/recall@{max(self.hparams.ks)}"

    def on_fit_end(self) -> None:
        """Warns when validation was still rising clearly at the end of training (see
        :func:`~darec.module.convergence.still_improving`)."""
        gain = still_improving(self._val_history)
        if gain is not None:
            rank_zero_warn(
                f"{self._convergence_metric} {gain}: training ended before the model converged. Raise "
                "`trainer.max_epochs` (or the early-stopping patience), or train with a higher `lr` and "
                "`lr_schedule: cosine` (docs: Training to convergence).",
                category=UserWarning,
            )

    def on_test_epoch_end(self) -> None:
        self._evaluation_end(self.test_metrics)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """Top-``predict_k`` items per user of a ranking batch, as :meth:`recommend` ranks them.

        What is masked follows ``predict_exclude``: by default (``"known"``) every interaction the
        data module knows of (train, valid and test, the batch's ``exclude`` pairs), as
        ``recommend(..., exclude="known")``; ``"train"`` masks the training items only, :obj:`None`
        nothing.

        Returns:
            ``{"user": (B,), "item": (B, K), "score": (B, K)}`` on the CPU, with
            ``K = min(predict_k, num_items)``; a user with fewer than ``K`` items left to recommend
            gets item ``-1`` (score ``-inf``) in the remaining positions.
        """
        users = batch["user"]
        mode = self.hparams.get("predict_exclude", "known")
        if mode == "known" and "exclude" in batch:
            exclude = batch["exclude"]
        else:
            exclude = self._exclusion_pairs(users, mode)
        scores = _mask_(self._scores(users), exclude)
        items = rank_items(scores, min(self.hparams.predict_k, self.num_items))
        items, scores = _drop_excluded(items, scores.gather(1, items), _member(exclude, items, self.num_items))
        return {"user": users.cpu(), "item": items.cpu(), "score": scores.cpu()}

    def on_predict_epoch_end(self) -> None:
        self._eval_embedding = None

    def _exclusion_pairs(self, users: Tensor, exclude: str | None) -> Tensor | None:
        """The ``(2, nnz)`` (row in ``users``, item) pairs ``exclude`` rules out (``None``: nothing)."""
        if exclude is None:
            return None
        known = [self._train_pairs]
        if exclude == "known" and self._heldout_pairs is not None:
            known.append(self._heldout_pairs)
        pairs = torch.cat(known).to(self.device)
        position = torch.full((self.num_users,), -1, dtype=torch.long, device=self.device)
        position[users] = torch.arange(len(users), device=self.device)
        keep = position[pairs[:, 0]] >= 0
        return torch.stack([position[pairs[keep, 0]], pairs[keep, 1]])

    # Over 60 lines for its docstring (what it computes, its arguments, examples); the code is 27 lines.
    @torch.no_grad()
    def recommend(
        self,
        users: Tensor | Sequence[int],
        k: int = 10,
        exclude: str | None = "known",
        *,
        exclude_seen: bool | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Top-``k`` items for ``users`` (internal ids), best first.

        By default nothing the user already has is recommended: ``exclude="known"`` masks every
        interaction the module knows of, the training pairs and the held-out (validation and test)
        pairs of the data it was fitted on (stored in its checkpoints; the held-out pairs never
        enter the graph). ``predict`` masks the same by default (``predict_exclude``). A module
        given only :meth:`set_graph` ``(train_pairs)`` knows its training pairs only.

        Args:
            users (Tensor or sequence of int): ``(B,)`` internal user ids, ``0 .. num_users - 1``.
            k (int): items per user. (default: :obj:`10`)
            exclude (str, optional): ``"known"``, every known interaction; ``"train"``, the
                training items only (the former default);
                :obj:`None`, nothing. (default: :obj:`"known"`)
            exclude_seen (bool, optional): deprecated; ``True`` is ``exclude="train"`` and
                ``False`` is ``exclude=None``.

        Returns:
            ``(items, scores)``: two ``(B, min(k, num_items))`` tensors on the module's device,
            internal item ids and their scores, best first. ``k`` larger than the catalogue gives
            ``num_items`` columns. A user with fewer items left than columns (the others excluded)
            gets item ``-1`` with score ``-inf`` in the remaining positions. For raw ids, see
            :meth:`recommend_raw`.

        Example:
            >>> from darec import DaRecModule
            >>> from darec.backbones import MatrixFactorization
            >>> model = DaRecModule(MatrixFactorization(num_nodes=7, embedding_dim=8), num_users=3, num_items=4)
            >>> model.set_graph(torch.tensor([[0, 0], [1, 1], [2, 3]]), heldout_pairs=torch.tensor([[0, 1]]))
            >>> items, scores = model.recommend([0], k=10)  # k > 4 items: 4 columns
            >>> items.shape, sorted(items[0, :2].tolist()), items[0, 2:].tolist()  # items 0 and 1 are known
            (torch.Size([1, 4]), [2, 3], [-1, -1])
            >>> sorted(model.recommend([0], k=10, exclude="train")[0][0, :3].tolist())  # item 1 is allowed
            [1, 2, 3]
        """
        if isinstance(exclude, bool):  # recommend(users, k, True): the former positional exclude_seen
            exclude_seen, exclude = exclude, "known"
        if exclude_seen is not None:
            warnings.warn(
                "`exclude_seen` is deprecated: use exclude='train' for exclude_seen=True (training items "
                "only), exclude=None for exclude_seen=False, or the default exclude='known'",
                FutureWarning,
                stacklevel=3,  # through torch.no_grad's wrapper
            )
            exclude = "train" if exclude_seen else None
        check_exclude(exclude)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"`k` must be a positive integer, got {k!r}")
        if self._train_pairs is None:
            raise RuntimeError("no training graph: load a checkpoint, call set_graph(...) or fit first")
        users = torch.as_tensor(users, dtype=torch.long, device=self.device).flatten()
        if users.numel() and (users.min() < 0 or users.max() >= self.num_users):
            raise ValueError(f"user ids must be in [0, {self.num_users}), got {users.min().item()}..{users.max().item()}")
        was_training = self.training
        self.eval()
        try:
            pairs = self._exclusion_pairs(users, exclude)
            scores = _mask_(self._scores(users), pairs)
            items = rank_items(scores, min(int(k), self.num_items))
            return _drop_excluded(items, scores.gather(1, items), _member(pairs, items, self.num_items))
        finally:
            self.train(was_training)

    # Over 60 lines for its docstring (what it computes, its arguments, examples); the code is 25 lines.
    def recommend_raw(
        self, users: Sequence[Any] | np.ndarray, k: int = 10, exclude: str | None = "known"
    ) -> tuple[np.ndarray, Tensor]:
        """Top-``k`` items for ``users`` in the raw ids of the data, best first.

        The same ranking as :meth:`recommend` (same ``exclude`` default), translated with the raw id
        maps the module keeps from its data module (:attr:`user_ids`, :attr:`item_ids`, stored in
        its checkpoints): ``DaRecModule.load_from_checkpoint(path).recommend_raw(["196"])`` needs
        nothing else. Raw ids are compared as strings (as the data module reads them), so
        MovieLens user ``196`` may be given as ``196`` or ``"196"``.

        Args:
            users (sequence): ``B`` raw user ids.
            k (int): items per user. (default: :obj:`10`)
            exclude (str, optional): as in :meth:`recommend`. (default: :obj:`"known"`)

        Returns:
            ``(items, scores)``: ``items`` a ``(B, min(k, num_items))`` numpy array of objects, the raw
            item ids (strings), best first, with :obj:`None` where a user has no item left;
            ``scores`` the ``(B, min(k, num_items))`` tensor of :meth:`recommend` (``-inf`` there).

        Raises:
            KeyError: a user id is not among the users of the data (the message lists them).
            RuntimeError: the module has no raw ids (fitted with :meth:`set_graph` alone, or a
                checkpoint written before darec stored them); use :meth:`recommend`.

        Example:
            >>> from darec import DaRecModule
            >>> from darec.backbones import MatrixFactorization
            >>> model = DaRecModule(MatrixFactorization(num_nodes=5, embedding_dim=8), num_users=2, num_items=3)
            >>> model.set_graph(
            ...     torch.tensor([[0, 0], [1, 1]]), user_ids=["ann", "bob"], item_ids=["tea", "jam", "oat"],
            ...     heldout_pairs=torch.tensor([[0, 2]]),
            ... )
            >>> items, scores = model.recommend_raw(["ann"], k=3)  # "tea" and "oat" are known for ann
            >>> items.tolist(), scores.shape
            ([['jam', None, None]], torch.Size([1, 3]))
            >>> model.recommend_raw(["zoe"])
            Traceback (most recent call last):
            ...
            KeyError: "unknown user id(s) 'zoe': not among the 2 users of the data this model was fitted on (e.g. 'ann', 'bob')"
        """
        if self.user_ids is None or self.item_ids is None:
            raise RuntimeError(
                "raw ids are unknown: this model was not fitted with a darec data module (set_graph(...) "
                "without user_ids/item_ids, or a checkpoint written before darec stored them); use "
                "recommend() with internal ids, or set_graph(..., user_ids=..., item_ids=...)"
            )
        if isinstance(users, (str, bytes)) or not hasattr(users, "__iter__"):
            raise TypeError(f"`users` must be a sequence of raw user ids, e.g. [{users!r}], got {type(users).__name__}")
        if self._user_index is None:
            self._user_index = {raw: index for index, raw in enumerate(self.user_ids.tolist())}
        raw_users = [str(user) for user in users]
        unknown = [user for user in raw_users if user not in self._user_index]
        if unknown:
            listed = ", ".join(repr(user) for user in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            examples = ", ".join(repr(user) for user in self.user_ids[:3].tolist())
            raise KeyError(
                f"unknown user id(s) {listed}: not among the {len(self.user_ids)} users of the data this "
                f"model was fitted on (e.g. {examples})"
            )
        internal = torch.tensor([self._user_index[user] for user in raw_users], dtype=torch.long)
        items, scores = self.recommend(internal, k, exclude)
        found = items.cpu().numpy()
        raw = np.full(found.shape, None, dtype=object)
        raw[found >= 0] = self.item_ids[found[found >= 0]]
        return raw, scores

