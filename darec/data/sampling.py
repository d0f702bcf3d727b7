"""Vectorised BPR triplet sampling and full-ranking evaluation batches."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import IterableDataset, get_worker_info

from darec.utils.generators import GeneratorPickling

__all__ = ["BPRTriplets", "RankingUsers", "sample_negatives"]


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _this_worker(batches: Sequence[int]) -> Sequence[int]:
    """This data-loader worker's share of a process's batch indices (all of them without workers).

    Workers hold identical copies of a dataset, so each would otherwise yield every batch."""
    info = get_worker_info()
    return batches if info is None else batches[info.id :: info.num_workers]


def sample_negatives(
    users: Tensor, positive_keys: Tensor, num_items: int, generator: torch.Generator | None = None
) -> Tensor:
    r"""Draws one uniform negative item per user, never one of the user's positives.

    All draws happen at once; only the (few) draws that hit a positive are redrawn, again all at
    once, until none is left.

    Args:
        users (torch.Tensor): ``(E,)`` user ids.
        positive_keys (torch.Tensor): sorted ``(P,)`` keys ``user * num_items + item`` of the positives.
        num_items (int): number of items.
        generator (torch.Generator, optional): source of randomness.

    Returns:
        torch.Tensor: ``(E,)`` item ids.

    Example:
        >>> keys = torch.tensor([0 * 3 + 0, 0 * 3 + 1])   # user 0 likes items 0 and 1
        >>> sample_negatives(torch.zeros(5, dtype=torch.long), keys, num_items=3)
        tensor([2, 2, 2, 2, 2])
    """
    neg = torch.randint(num_items, users.shape, generator=generator)
    todo = torch.arange(len(users))
    while todo.numel():
        keys = users[todo] * num_items + neg[todo]
        pos = torch.searchsorted(positive_keys, keys).clamp(max=max(len(positive_keys) - 1, 0))
        clash = positive_keys[pos] == keys if len(positive_keys) else torch.zeros_like(keys, dtype=torch.bool)
        todo = todo[clash]
        neg[todo] = torch.randint(num_items, (len(todo),), generator=generator)
    return neg


class BPRTriplets(GeneratorPickling, IterableDataset):
    """``(user, positive item, negative item)`` batches over the training pairs, drawn anew each epoch.

    Every epoch the training pairs are shuffled and each gets one uniform negative that is not
    among the user's training positives. Sampling is vectorised over the whole epoch. The
    generator lives as long as the dataset, so epochs differ and a fixed seed reproduces them all.
    Under ``torch.distributed`` each process takes every ``world_size``-th batch, and data-loader
    workers split a process's batches between them (each worker draws the same epoch from its copy
    of the generator and yields its share). With workers, the main process's generator, which
    :meth:`state_dict` saves, does not advance: a run resumed from a checkpoint draws its epochs
    anew from that state, so it is not the exact continuation it is without workers.

    Args:
        train (numpy.ndarray): ``(E, 2)`` unique training pairs.
        num_items (int): number of items.
        batch_size (int): triplets per batch.
        seed (int): seed of the sampling generator.
        drop_last (bool): drop the last incomplete batch. (default: :obj:`False`)

    Example:
        >>> ds = BPRTriplets(np.array([[0, 0], [0, 1], [1, 2]]), num_items=4, batch_size=2, seed=0)
        >>> [b["user"].tolist() for b in ds] == [b["user"].tolist() for b in ds]   # new draw each epoch
        False
    """

    def __init__(self, train: np.ndarray, num_items: int, batch_size: int, seed: int, drop_last: bool = False) -> None:
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"`batch_size` must be positive, got {batch_size}")
        pairs = torch.from_numpy(np.ascontiguousarray(train, dtype=np.int64))
        self.users, self.items = pairs[:, 0].contiguous(), pairs[:, 1].contiguous()
        self.num_items = num_items
        self.keys = torch.sort(self.users * num_items + self.items).values
        counts = torch.bincount(self.users)
        if (counts >= num_items).any():
            user = int((counts >= num_items).nonzero()[0])
            raise ValueError(f"user {user} has interacted with every item: no negative can be sampled")
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(int(seed))

    def _num_batches(self) -> int:
        n = len(self.users)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __len__(self) -> int:
        _, world = _rank_and_world()
        return math.ceil(self._num_batches() / world)

    def __iter__(self):
        rank, world = _rank_and_world()
        perm = torch.randperm(len(self.users), generator=self.generator)
        users, pos = self.users[perm], self.items[perm]
        neg = sample_negatives(users, self.keys, self.num_items, self.generator)
        total = self._num_batches()
        per_rank = math.ceil(total / world)
        # wrap so every rank runs the same number of steps
        for b in _this_worker([(step * world + rank) % total for step in range(per_rank)]):
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield {"user": users[sl], "pos": pos[sl], "neg": neg[sl]}

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


def _csr(pairs: np.ndarray, num_users: int) -> tuple[Tensor, Tensor]:
    """CSR rows (``indptr``, item ``indices``) of the unique ``(user, item)`` pairs, items sorted within a row."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    # one int64 key per pair: sorting them orders (user, item) like np.unique(axis=0), many times faster
    width = int(pairs[:, 1].max()) + 1 if len(pairs) else 1
    keys = np.sort(pairs[:, 0] * width + pairs[:, 1])
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys
    users, items = keys // width, keys % width
    indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=num_users))])
    return torch.from_numpy(indptr.astype(np.int64)), torch.from_numpy(items.astype(np.int64))


def _rows(indptr: Tensor, indices: Tensor, users: Tensor) -> tuple[Tensor, Tensor]:
    """``(row-in-batch, item)`` pairs of the given users' CSR rows, vectorised."""
    start, end = indptr[users], indptr[users + 1]
    counts = end - start
    rows = torch.repeat_interleave(torch.arange(len(users)), counts)
    offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    return rows, indices[torch.repeat_interleave(start, counts) + offsets]


class RankingUsers(IterableDataset):
    """Batches of users for full ranking, each with the items to mask and the items to find.

    A batch is a dict with ``user`` ``(B,)``, ``exclude`` ``(2, nnz)`` (row in batch, item) pairs of
    already-seen items that must not be ranked, and, unless ``target`` is None, ``target``
    ``(2, nnz)`` pairs of the held-out items. With targets, only users that have at least one target
    item are listed (the others do not count in any metric). Under ``torch.distributed`` each process
    takes every ``world_size``-th batch, so no user is evaluated twice.

    Args:
        num_users (int): number of users.
        exclude (numpy.ndarray): ``(E, 2)`` pairs to mask.
        target (numpy.ndarray, optional): ``(E, 2)`` held-out pairs.
        batch_size (int): users per batch.
        users (numpy.ndarray, optional): restrict to these users (default: all eligible).
    """

    def __init__(
        self,
        num_users: int,
        exclude: np.ndarray,
        target: np.ndarray | None,
        batch_size: int,
        users: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"`batch_size` must be positive, got {batch_size}")
        self.exclude = _csr(exclude, num_users)
        self.target = _csr(target, num_users) if target is not None else None
        if users is None:
            if self.target is not None:
                users = np.flatnonzero(np.diff(self.target[0].numpy()) > 0)
            else:
                users = np.arange(num_users)
        self.user_ids = torch.as_tensor(np.asarray(users, dtype=np.int64))
        if len(self.user_ids) == 0:
            raise ValueError("there are no users to evaluate: the held-out split is empty")
        self.batch_size = batch_size

    def __len__(self) -> int:
        rank, world = _rank_and_world()
        total = math.ceil(len(self.user_ids) / self.batch_size)
        return len(range(rank, total, world))

    def __iter__(self):
        rank, world = _rank_and_world()
        total = math.ceil(len(self.user_ids) / self.batch_size)
        for b in _this_worker(range(rank, total, world)):
            users = self.user_ids[b * self.batch_size : (b + 1) * self.batch_size]
            batch = {"user": users, "exclude": torch.stack(_rows(*self.exclude, users))}
            if self.target is not None:
                batch["target"] = torch.stack(_rows(*self.target, users))
            yield batch
