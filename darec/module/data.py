"""The module's data: the training graph, the held-out pairs, the raw ids and the frozen text embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from darec.backbones.graph import normalized_adjacency, renormalizing_convs

__all__ = ["DataBinding"]


class DataBinding:
    """Mixin of :class:`~darec.DaRecModule`: takes graph, sizes, raw ids and text from a data module
    (in ``setup``) or from the caller (:meth:`set_graph`,
    :meth:`set_text_embeddings`), and keeps the normalised graph on the module's device."""

    num_users: int | None
    num_items: int | None
    backbone: torch.nn.Module

    def _init_data(self, num_users: int | None, num_items: int | None) -> None:
        self.num_users = num_users
        self.num_items = num_items
        self._train_pairs: Tensor | None = None
        self._heldout_pairs: Tensor | None = None  # (E, 2) valid + test pairs: masked, never in the graph
        #: Raw ids of the users and items (``user_ids[u]``, ``item_ids[i]``) of the data the module was
        #: fitted on, from the data module or the checkpoint; :obj:`None` after :meth:`set_graph`.
        self.user_ids: np.ndarray | None = None
        self.item_ids: np.ndarray | None = None
        self._user_index: dict[str, int] | None = None
        self._graph: Tensor | None = None
        self._bound_to: Any = None
        self.register_buffer("text_user", torch.empty(0), persistent=False)
        self.register_buffer("text_item", torch.empty(0), persistent=False)

    def set_graph(
        self,
        train_pairs: Tensor,
        num_users: int | None = None,
        num_items: int | None = None,
        *,
        heldout_pairs: Tensor | None = None,
        user_ids: Sequence[Any] | None = None,
        item_ids: Sequence[Any] | None = None,
    ) -> None:
        """Gives the module its training interactions, without a data module.

        Only ``train_pairs`` build the graph. Whatever a data module or checkpoint gave before is
        replaced, held-out pairs and raw ids included (forgotten unless given again).

        Args:
            train_pairs (Tensor): ``(E, 2)`` (user, item) training pairs.
            num_users (int, optional): defaults to the constructor's value.
            num_items (int, optional): defaults to the constructor's value.
            heldout_pairs (Tensor, optional): ``(E', 2)`` other known (user, item) pairs (validation
                and test): never in the graph, masked by ``recommend(..., exclude="known")``.
            user_ids (sequence, optional): the ``num_users`` raw user ids, for :meth:`recommend_raw`.
            item_ids (sequence, optional): the ``num_items`` raw item ids.
        """
        self.num_users = int(num_users if num_users is not None else self.num_users or 0)
        self.num_items = int(num_items if num_items is not None else self.num_items or 0)
        if self.num_users <= 0 or self.num_items <= 0:
            raise ValueError("set_graph needs num_users and num_items (here or in the constructor)")
        pairs = self._checked_pairs(train_pairs, "train_pairs")
        if pairs.numel() == 0:
            raise ValueError("`train_pairs` is empty: there is no training graph")
        self.hparams["num_users"], self.hparams["num_items"] = self.num_users, self.num_items
        self._train_pairs = torch.unique(pairs, dim=0)
        self._set_known(heldout_pairs, user_ids, item_ids)
        self._graph = self._normalized_graph()  # symmetric and normalised: see graph_embedding
        again = renormalizing_convs(self.backbone)
        if again:
            raise ValueError(
                f"the backbone's LGConv layers {again} would normalise the graph a second time: darec passes "
                "them the normalised adjacency. Build them with LGConv(normalize=False), or call "
                "darec.backbones.use_symmetric_spmm(backbone) once (PyG's own LightGCN needs neither)"
            )

    def _checked_pairs(self, pairs: Tensor, name: str) -> Tensor:
        """``pairs`` as an ``(E, 2)`` long tensor on the CPU, or a ``ValueError`` naming ``name`` for
        another shape or ids outside the module's users x items."""
        pairs = torch.as_tensor(pairs, dtype=torch.long).cpu()
        if pairs.dim() != 2 or pairs.size(1) != 2:
            raise ValueError(f"`{name}` must have shape (E, 2), got {tuple(pairs.shape)}")
        if pairs.numel() and (pairs[:, 0].max() >= self.num_users or pairs[:, 1].max() >= self.num_items or pairs.min() < 0):
            raise ValueError(f"`{name}` has ids outside {self.num_users} users x {self.num_items} items")
        return pairs

    def _set_known(self, heldout_pairs: Tensor | None, user_ids: Sequence[Any] | None, item_ids: Sequence[Any] | None) -> None:
        """Stores the ``(E, 2)`` held-out (valid + test) pairs, which ``exclude="known"`` masks and
        which never enter the graph, and the raw id maps of the data (kept as strings, as
        :class:`~darec.data.Interactions` has them)."""
        pairs = None
        if heldout_pairs is not None and len(heldout_pairs):
            pairs = torch.unique(self._checked_pairs(heldout_pairs, "heldout_pairs"), dim=0)
        self._heldout_pairs = pairs
        maps = {}
        for name, ids, count in (("user_ids", user_ids, self.num_users), ("item_ids", item_ids, self.num_items)):
            maps[name] = None if ids is None else np.asarray(list(ids)).astype(str)
            if maps[name] is not None and maps[name].shape != (count,):
                raise ValueError(f"`{name}` must list one raw id per entity ({count}), got {maps[name].shape[0]}")
        self.user_ids, self.item_ids = maps["user_ids"], maps["item_ids"]
        self._user_index = None

    def set_text_embeddings(self, user: Tensor | None = None, item: Tensor | None = None) -> None:
        """Stores frozen text embeddings as non-trainable buffers (not saved in checkpoints)."""
        from darec.text.cache import check_embeddings

        if user is not None:
            self.text_user = check_embeddings(user, self.num_users, "user text embeddings").to(self.device)
        if item is not None:
            self.text_item = check_embeddings(item, self.num_items, "item text embeddings").to(self.device)
        dims = {t.size(1) for t in (self.text_user, self.text_item) if t.numel()}
        if len(dims) > 1:
            raise ValueError(f"user and item text embeddings must have the same width, got {sorted(dims)}")

    @property
    def text_sides(self) -> list[str]:
        """The sides (``"user"``, ``"item"``) that have text embeddings."""
        return [side for side in ("user", "item") if getattr(self, f"text_{side}").numel()]

    def _bind_datamodule(self) -> None:
        """Takes graph, sizes and text from the trainer's data module (once per data module)."""
        trainer = self._trainer
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        if datamodule is None or self._bound_to is datamodule:
            return
        data = datamodule.interactions
        for name, value in (("num_users", data.num_users), ("num_items", data.num_items)):
            given = getattr(self, name)
            if given is not None and given != value:
                raise ValueError(f"the model was built for {name}={given} but the data have {value}")
        held_out = torch.from_numpy(np.concatenate([data.split(name) for name in ("valid", "test")]))
        self.set_graph(
            torch.from_numpy(data.train),
            data.num_users,
            data.num_items,
            heldout_pairs=held_out,
            user_ids=data.user_ids,
            item_ids=data.item_ids,
        )
        text = getattr(datamodule, "text_embeddings", None) or {}
        self.set_text_embeddings(text.get("user"), text.get("item"))
        self._bound_to = datamodule

    def _missing_text_error(self) -> ValueError:
        """The error for alignment without text embeddings, saying what is actually missing."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        data = getattr(datamodule, "interactions", None)
        has_text = data is not None and bool(data.user_text or data.item_text)
        encoder = getattr(datamodule, "text_encoder", None)
        if datamodule is None:
            missing = (
                "there is no data module to take them from: fit with trainer.fit(model, datamodule=...) "
                "or call model.set_text_embeddings(user, item) first"
            )
        elif has_text:
            missing = (
                "the data have user/item text but the data module has no text encoder (text_encoder=None): "
                "give it a text_encoder (e.g. 'all-MiniLM-L6-v2'), or precomputed user_embeddings/item_embeddings"
            )
        else:
            source = getattr(datamodule, "source", None)
            where = f"the data source {str(source)!r} has" if source is not None else "the interactions have"
            missing = (
                f"{where} no user or item text to encode (a TSV/CSV ratings file carries none): pass "
                "item_info='items.csv' (titles, descriptions, ...) and/or user_info='users.csv' to "
                "RecDataModule, use a split directory with item_text.jsonl/user_text.jsonl, or give "
                "precomputed user_embeddings/item_embeddings"
                + ("" if encoder is not None else " (text from files also needs a text_encoder; it is None now)")
            )
        return ValueError(f"alignment needs text embeddings, but {missing}")

    def _normalized_graph(self) -> Tensor:
        """The normalised user-item adjacency of the training pairs (items offset by the user count)."""
        edge_index = torch.stack([self._train_pairs[:, 0], self._train_pairs[:, 1] + self.num_users])
        return normalized_adjacency(edge_index, self.num_users + self.num_items)

    def _graph_on_device(self) -> Tensor:
        if self._graph is None and self._train_pairs is not None:  # e.g. after a copy or unpickling
            self._graph = self._normalized_graph()
        if self._graph is None:
            raise RuntimeError("no training graph: call set_graph(...) or fit with a data module")
        if self._graph.device != self.device:
            self._graph = self._graph.to(self.device)
        return self._graph

