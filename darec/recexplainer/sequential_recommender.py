"""A trained sequential model (SASRec, LANE's fusion) as a frozen RecExplainer target."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from darec.recexplainer.recommender import _checked_ids, _gather

__all__ = ["SequentialRecommender"]


class SequentialRecommender(nn.Module):
    r"""A trained :class:`~darec.module.SequentialModule`, frozen, as a :class:`~darec.recexplainer.Recommender`.

    A user's vector :math:`e_u` is the model's state after the user's history (its latest
    ``max_len`` items, left-padded; for :class:`~darec.lane.PreferenceAttentionFusion`, the state
    fused with the user's preferences), an item's vector :math:`e_i` its row of the backbone's
    item table, and :math:`f(u, i) = \langle e_u, e_i \rangle`: the module's ``score_items``.
    RecExplainer's own target is such a SASRec.

    Item ids are shifted to the :class:`~darec.recexplainer.Recommender` convention: the model's
    item ``i + 1`` (``0`` is its padding) is item ``i`` here, so that ``catalog[i]`` is
    ``UserSequences.item_titles[i]``. ``histories`` use the same ids.

    The target is frozen here: eval mode (no dropout; it stays in eval mode when a parent calls
    ``train()``), ``requires_grad=False``, and every output is computed without gradient.

    Args:
        module (SequentialModule): the trained module (or :class:`~darec.lane.PreferenceAttentionFusion`
            with its preferences set).
        histories (sequence of sequences of int): each user's history, oldest first, in item ids
            ``0 .. num_items - 1``: what :meth:`user_embeddings` encodes. For RecExplainer's
            tasks, the training sequence (:meth:`from_checkpoint` takes it from the data).
        max_len (int, optional): the most (latest) items encoded; the backbone's ``max_len`` by default.

    Attributes:
        module (SequentialModule): the frozen module.
        histories (list[list[int]]): the histories, as given.

    Raises:
        ValueError: a history is empty or holds ids outside ``0 .. num_items - 1``, or the
            preferences of a fusion model do not cover every user.

    Example:
        >>> from darec.backbones import SASRec
        >>> from darec.module import SequentialModule
        >>> model = SequentialModule(SASRec(num_items=5, embedding_dim=8, max_len=4))
        >>> target = SequentialRecommender(model, histories=[[0, 1, 2], [4, 3]])
        >>> target.num_users, target.num_items, target.dim
        (2, 5, 8)
        >>> seq = torch.tensor([[0, 1, 2, 3]])                  # user 0's history in the model's ids
        >>> torch.allclose(target.score(torch.tensor([0])), model.score_items(seq))
        True
    """

    def __init__(self, module: nn.Module, histories: Sequence[Sequence[int]], max_len: int | None = None) -> None:
        super().__init__()
        backbone = getattr(module, "backbone", None)
        if backbone is None or not callable(getattr(backbone, "item_embeddings", None)):
            raise TypeError(
                f"SequentialRecommender wraps a darec SequentialModule (a `backbone` with item_embeddings()); "
                f"{type(module).__name__} has none"
            )
        self.module = module
        module.eval()
        module.requires_grad_(False)
        self._fused = callable(getattr(module, "user_preferences", None))  # LANE's fusion takes the users too
        max_len = max_len if max_len is not None else getattr(backbone, "max_len", None)
        if max_len is None or int(max_len) < 1:
            raise ValueError(f"give `max_len`, the longest history the model encodes ({type(backbone).__name__} has no max_len)")
        self.max_len = int(max_len)
        self.histories = [list(map(int, np.asarray(h, dtype=np.int64).reshape(-1))) for h in histories]
        empty = [user for user, history in enumerate(self.histories) if not history]
        if empty:
            raise ValueError(f"{len(empty)} user(s) have an empty history (e.g. users {empty[:5]}): a sequential model encodes none")
        bad = [user for user, history in enumerate(self.histories) if min(history) < 0 or max(history) >= self.num_items]
        if bad:
            user = bad[0]
            raise ValueError(
                f"histories hold item ids outside 0 .. {self.num_items - 1} (the model's {self.num_items:,} items), e.g. user "
                f"{user}: {min(self.histories[user])} .. {max(self.histories[user])}; the model's ids 1 .. num_items are "
                "0 .. num_items - 1 here"
            )
        if self._fused:
            rows = len(getattr(module, "preferences", ()))
            if rows < len(self.histories):
                raise ValueError(
                    f"the fusion model has preferences for {rows:,} users but there are {len(self.histories):,} histories: "
                    "call module.set_preferences(datamodule.preference_embeddings) first"
                )

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, datamodule: Any, map_location: Any = "cpu", stage: str = "fit", **kwargs: Any
    ) -> SequentialRecommender:
        """Loads a :class:`~darec.module.SequentialModule` (or :class:`~darec.lane.PreferenceAttentionFusion`)
        checkpoint and checks it against the data.

        A checkpoint with LANE's preference attention (``preference_dim`` among its
        hyperparameters) is loaded as :class:`~darec.lane.PreferenceAttentionFusion` and gets the
        data module's preference embeddings (computed by ``datamodule.setup`` if need be). The
        histories are the users' training sequences (``stage="fit"``, RecExplainer's setting), or
        their inputs at validation (``"validate"``) or test (``"test"``).

        Args:
            path (str or os.PathLike): the checkpoint.
            datamodule (SequenceDataModule): the data the model was trained on.
            map_location: where the tensors land. (default: :obj:`"cpu"`)
            stage (str): which history of each user is encoded. (default: :obj:`"fit"`)
            **kwargs: passed to ``load_from_checkpoint``.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ValueError: the model's item count (or raw item ids, where the checkpoint keeps them)
                differs from the data's, e.g. ``"the checkpoint has 1,682 items, the data 1,447"``.
        """
        from darec.lane.preference_attention_fusion import PreferenceAttentionFusion
        from darec.module import SequentialModule

        if stage not in ("fit", "validate", "test"):
            raise ValueError(f"`stage` must be 'fit', 'validate' or 'test', got {stage!r}")
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        head = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(head, dict) or "state_dict" not in head:
            raise ValueError(f"{path} is not a Lightning checkpoint (no 'state_dict')")
        if (head.get("darec") or {}).get("train_pairs") is not None:
            raise ValueError(
                f"{path} is a DaRecModule checkpoint (users x items): load it with CFRecommender.from_checkpoint(path, "
                "RecDataModule)"
            )
        fused = "preference_dim" in (head.get("hyper_parameters") or {})
        cls_ = PreferenceAttentionFusion if fused else SequentialModule
        module = cls_.load_from_checkpoint(path, map_location=map_location, **kwargs)
        data = datamodule.sequences
        num_items = int(module.backbone.item_embeddings().size(0)) - 1
        if num_items != data.num_items:
            raise ValueError(f"{path} does not match the data: the checkpoint has {num_items:,} items, the data {data.num_items:,}")
        saved = getattr(getattr(module, "user_sequences", None), "item_ids", None)
        if saved is not None and data.item_ids is not None:
            differ = np.flatnonzero(np.asarray(saved).astype(str) != np.asarray(data.item_ids).astype(str))
            if len(differ):
                k = int(differ[0])
                raise ValueError(
                    f"{path} does not match the data: {len(differ):,} of the {num_items:,} items have other raw ids "
                    f"(item {k} is {str(saved[k])!r} in the checkpoint, {str(data.item_ids[k])!r} in the data)"
                )
        if fused:
            if datamodule.preference_embeddings is None:
                datamodule.setup(stage)
            if datamodule.preference_embeddings is None:
                raise ValueError(f"{path} holds LANE's preference attention, but the data module has no `preferences` file")
            module.set_preferences(datamodule.preference_embeddings)
        histories = [data.history(user, stage) - 1 for user in range(data.num_users)]
        return cls(module, histories)

    def train(self, mode: bool = True) -> SequentialRecommender:
        """Sets the adapter's mode; the target stays in eval mode (it is frozen)."""
        super().train(mode)
        self.module.eval()
        return self

    @property
    def _device(self) -> torch.device:
        return self.module.backbone.item_embeddings().device

    @property
    def num_users(self) -> int:
        return len(self.histories)

    @property
    def num_items(self) -> int:
        return int(self.module.backbone.item_embeddings().size(0)) - 1

    @property
    def dim(self) -> int:
        return int(self.module.backbone.item_embeddings().size(1))

    @torch.no_grad()
    def item_embeddings(self) -> Tensor:
        """``(num_items, d)`` float32 item vectors (the item table without its padding row)."""
        return self.module.backbone.item_embeddings()[1:].detach().float().clone()

    @torch.no_grad()
    def user_embeddings(self, users: Tensor, batch_size: int = 1024) -> Tensor:
        """``(n, d)`` float32 states after the histories of ``users`` ``(n,)``, ``batch_size`` users at a time.

        Raises:
            ValueError: a user id is outside ``[0, num_users)``.
        """
        from darec.data.sequence_datamodule import left_pad

        device = self._device
        users = _checked_ids(users, self.num_users, "user", device)
        out = []
        for start in range(0, len(users), batch_size):
            chunk = users[start : start + batch_size]
            seq = left_pad([np.asarray(self.histories[u], dtype=np.int64) + 1 for u in chunk.tolist()], self.max_len)
            seq = torch.from_numpy(seq).to(device)
            states = self.module(seq, chunk) if self._fused else self.module(seq)
            out.append(states.float())
        return torch.cat(out) if out else torch.zeros(0, self.dim, device=device)

    @torch.no_grad()
    def score(self, users: Tensor, items: Tensor | None = None) -> Tensor:
        """``(n, num_items)`` float32 scores of ``users`` ``(n,)``, or ``(n, m)`` at ``items`` (``(m,)`` or ``(n, m)``).

        Raises:
            ValueError: a user or item id is out of range, or ``items`` has another shape.
        """
        return _gather(self.user_embeddings(users) @ self.item_embeddings().T, items)

    def extra_repr(self) -> str:
        return f"num_users={self.num_users}, num_items={self.num_items}, dim={self.dim}, max_len={self.max_len}"
