"""Tests of darec.data.sampling: negative sampling, BPR triplets and full-ranking user batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import darec.data.sampling as sampling
from darec.data.sampling import BPRTriplets, RankingUsers, sample_negatives


def _random_pairs(num_users: int, num_items: int, density: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = rng.random((num_users, num_items)) < density
    rows = np.arange(num_users)
    mask[rows, (rows + 1) % num_items] = True  # every user has a positive
    mask[rows, (rows + 2) % num_items] = False  # and an item left to sample as a negative
    users, items = np.nonzero(mask)
    return np.stack([users, items], axis=1).astype(np.int64)


def _pairs_of(batches) -> list[tuple[int, int]]:
    return [(int(u), int(i)) for b in batches for u, i in zip(b["user"], b["pos"])]


@pytest.fixture
def world(monkeypatch):
    """Sets the (rank, world size) that sampling sees, as under torch.distributed."""

    def set_world(rank: int, size: int) -> None:
        monkeypatch.setattr(sampling, "_rank_and_world", lambda: (rank, size))

    return set_world


# -- sample_negatives --------------------------------------------------------------------------
def test_sample_negatives_avoids_positives():
    pairs = _random_pairs(30, 12, density=0.6)
    keys = torch.sort(torch.from_numpy(pairs[:, 0] * 12 + pairs[:, 1])).values
    users = torch.arange(30).repeat(200)
    gen = torch.Generator().manual_seed(0)
    neg = sample_negatives(users, keys, 12, gen)
    assert neg.shape == users.shape and neg.dtype == torch.int64
    assert ((neg >= 0) & (neg < 12)).all()
    positives = {tuple(p) for p in pairs.tolist()}
    assert not any((int(u), int(i)) in positives for u, i in zip(users, neg))
    # Negatives are spread over the allowed items, not stuck on one:
    allowed = {(u, i) for u in range(30) for i in range(12)} - positives
    assert len(set(zip(users.tolist(), neg.tolist()))) > 0.9 * len(allowed)


def test_sample_negatives_single_allowed_item():
    keys = torch.tensor([0 * 5 + i for i in (0, 1, 2, 4)] + [1 * 5 + 0])
    neg = sample_negatives(torch.tensor([0] * 50 + [1] * 50), keys, 5, torch.Generator().manual_seed(1))
    assert neg[:50].tolist() == [3] * 50
    assert 0 not in neg[50:].tolist()


def test_sample_negatives_without_positives():
    neg = sample_negatives(torch.zeros(20, dtype=torch.long), torch.zeros(0, dtype=torch.long), 4)
    assert ((neg >= 0) & (neg < 4)).all()


# -- BPRTriplets -------------------------------------------------------------------------------
def test_negatives_never_positive_over_many_epochs():
    # User 0 has every item but item 3: its negative must always be 3.
    pairs = np.array([[0, i] for i in range(6) if i != 3] + [[1, 0], [1, 5], [2, 2]])
    ds = BPRTriplets(pairs, num_items=6, batch_size=3, seed=0)
    positives = {tuple(p) for p in pairs.tolist()}
    for _ in range(50):
        for batch in ds:
            for u, n in zip(batch["user"].tolist(), batch["neg"].tolist()):
                assert (u, n) not in positives
                if u == 0:
                    assert n == 3


def test_epoch_covers_every_pair_once():
    pairs = _random_pairs(25, 15, density=0.4)
    ds = BPRTriplets(pairs, num_items=15, batch_size=16, seed=3)
    for _ in range(3):
        batches = list(ds)
        assert len(batches) == len(ds)
        assert all(set(b) == {"user", "pos", "neg"} for b in batches)
        assert all(len(b["user"]) == 16 for b in batches[:-1]) and 0 < len(batches[-1]["user"]) <= 16
        got = _pairs_of(batches)
        assert sorted(got) == sorted(map(tuple, pairs.tolist()))


def test_consecutive_epochs_differ():
    pairs = _random_pairs(20, 10, density=0.5)
    ds = BPRTriplets(pairs, num_items=10, batch_size=32, seed=0)
    first, second = list(ds), list(ds)
    assert _pairs_of(first) != _pairs_of(second)  # new shuffle
    assert torch.cat([b["neg"] for b in first]).tolist() != torch.cat([b["neg"] for b in second]).tolist()


def _epochs(ds: BPRTriplets, n: int) -> list[list[list[int]]]:
    return [[torch.stack([b["user"], b["pos"], b["neg"]]).flatten().tolist() for b in ds] for _ in range(n)]


def test_same_seed_same_sequence():
    pairs = _random_pairs(20, 10, density=0.5)
    a = BPRTriplets(pairs, num_items=10, batch_size=8, seed=7)
    b = BPRTriplets(pairs, num_items=10, batch_size=8, seed=7)
    c = BPRTriplets(pairs, num_items=10, batch_size=8, seed=8)
    epochs_a = _epochs(a, 3)
    assert epochs_a == _epochs(b, 3)
    assert epochs_a != _epochs(c, 3)


def test_user_with_every_item_is_rejected():
    pairs = np.array([[0, 0], [1, 0], [1, 1], [1, 2]])
    with pytest.raises(ValueError, match="user 1 has interacted with every item"):
        BPRTriplets(pairs, num_items=3, batch_size=2, seed=0)


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="`batch_size` must be positive"):
        BPRTriplets(np.array([[0, 0]]), num_items=2, batch_size=0, seed=0)


@pytest.mark.parametrize(
    ("num_pairs", "batch_size", "drop_last", "expected"),
    [(10, 3, False, 4), (10, 3, True, 3), (9, 3, False, 3), (9, 3, True, 3), (2, 5, False, 1)],
)
def test_len_is_number_of_batches(num_pairs, batch_size, drop_last, expected):
    pairs = np.stack([np.arange(num_pairs), np.zeros(num_pairs, dtype=np.int64)], axis=1)
    ds = BPRTriplets(pairs, num_items=2, batch_size=batch_size, seed=0, drop_last=drop_last)
    batches = list(ds)
    assert len(ds) == len(batches) == expected
    if drop_last:
        assert all(len(b["user"]) == batch_size for b in batches)


def test_state_dict_reproduces_next_epoch():
    pairs = _random_pairs(20, 10, density=0.5)
    ds = BPRTriplets(pairs, num_items=10, batch_size=8, seed=1)
    list(ds)  # one epoch consumed
    state = ds.state_dict()
    expected = _epochs(ds, 2)
    restored = BPRTriplets(pairs, num_items=10, batch_size=8, seed=999)
    restored.load_state_dict(state)
    assert _epochs(restored, 2) == expected
    # The state is a copy: advancing the dataset does not change a saved state.
    ds.load_state_dict(state)
    assert _epochs(ds, 1) == expected[:1]


@pytest.mark.parametrize(("num_pairs", "batch_size"), [(40, 5), (41, 5), (16, 4)])
def test_ddp_ranks_are_disjoint_and_cover(world, num_pairs, batch_size):
    rng = np.random.default_rng(0)
    pairs = np.stack([np.arange(num_pairs), rng.integers(0, 7, size=num_pairs)], axis=1)
    shards = []
    for rank in (0, 1):
        world(rank, 2)
        ds = BPRTriplets(pairs, num_items=8, batch_size=batch_size, seed=5)  # same seed on every rank
        batches = list(ds)
        assert len(batches) == len(ds)
        shards.append(batches)
    assert len(shards[0]) == len(shards[1])
    total = -(-num_pairs // batch_size)
    assert len(shards[0]) == -(-total // 2)
    got0, got1 = set(_pairs_of(shards[0])), set(_pairs_of(shards[1]))
    everything = set(map(tuple, pairs.tolist()))
    if total % 2 == 0:
        assert not got0 & got1
        assert got0 | got1 == everything
        assert len(_pairs_of(shards[0])) + len(_pairs_of(shards[1])) == num_pairs
    else:
        # Odd batch count: the short rank wraps around to keep the step counts equal.
        assert got0 | got1 == everything


# -- RankingUsers ------------------------------------------------------------------------------
def _rows_of(pairs: torch.Tensor, users: torch.Tensor) -> dict[int, list[int]]:
    out = {int(u): [] for u in users}
    for row, item in pairs.t().tolist():
        out[int(users[row])].append(item)
    return {u: sorted(v) for u, v in out.items()}


def _csr_rows(pairs: np.ndarray, num_users: int) -> dict[int, list[int]]:
    rows = {u: [] for u in range(num_users)}
    for u, i in np.unique(pairs, axis=0).tolist():
        rows[u].append(i)
    return rows


def test_ranking_batches_match_csr_rows():
    exclude = _random_pairs(23, 9, density=0.4, seed=1)
    target = _random_pairs(23, 9, density=0.2, seed=2)
    target = target[target[:, 0] % 4 != 3]  # some users have no target
    ds = RankingUsers(23, exclude, target, batch_size=5)
    batches = list(ds)
    assert len(batches) == len(ds)
    seen = torch.cat([b["user"] for b in batches]).tolist()
    assert seen == sorted(set(target[:, 0].tolist()))  # only users with a target, each once
    ex_rows, tg_rows = _csr_rows(exclude, 23), _csr_rows(target, 23)
    for b in batches:
        assert b["exclude"].shape[0] == 2 and b["target"].shape[0] == 2
        assert b["exclude"].dtype == b["target"].dtype == torch.int64
        assert _rows_of(b["exclude"], b["user"]) == {int(u): ex_rows[int(u)] for u in b["user"]}
        assert _rows_of(b["target"], b["user"]) == {int(u): tg_rows[int(u)] for u in b["user"]}


def test_ranking_without_target_lists_every_user():
    exclude = np.array([[0, 1], [2, 0], [2, 2]])
    ds = RankingUsers(4, exclude, None, batch_size=3)
    batches = list(ds)
    assert "target" not in batches[0]
    assert torch.cat([b["user"] for b in batches]).tolist() == [0, 1, 2, 3]
    assert batches[0]["exclude"].tolist() == [[0, 2, 2], [1, 0, 2]]
    assert batches[1]["exclude"].shape == (2, 0)


def test_ranking_explicit_users():
    ds = RankingUsers(5, np.array([[0, 0], [4, 1]]), None, batch_size=8, users=np.array([4, 1]))
    (batch,) = list(ds)
    assert batch["user"].tolist() == [4, 1]
    assert batch["exclude"].tolist() == [[0], [1]]


@pytest.mark.parametrize("num_users", [10, 11, 17])
def test_ranking_ddp_no_user_twice(world, num_users):
    exclude = _random_pairs(num_users, 6, density=0.3)
    target = _random_pairs(num_users, 6, density=0.3, seed=9)
    per_rank = []
    for rank in (0, 1):
        world(rank, 2)
        ds = RankingUsers(num_users, exclude, target, batch_size=3)
        batches = list(ds)
        assert len(batches) == len(ds)
        per_rank.append(torch.cat([b["user"] for b in batches]).tolist())
    assert not set(per_rank[0]) & set(per_rank[1])
    assert len(per_rank[0]) == len(set(per_rank[0])) and len(per_rank[1]) == len(set(per_rank[1]))
    assert sorted(per_rank[0] + per_rank[1]) == sorted(set(target[:, 0].tolist()))


def test_ranking_empty_target():
    with pytest.raises(ValueError, match="there are no users to evaluate"):
        RankingUsers(3, np.array([[0, 0]]), np.zeros((0, 2), dtype=np.int64), batch_size=2)


def test_ranking_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="`batch_size` must be positive"):
        RankingUsers(3, np.array([[0, 0]]), None, batch_size=0)


# -- data-loader workers -----------------------------------------------------------------------
def test_workers_split_an_epoch_instead_of_repeating_it():
    """With several workers every training pair is still drawn once per epoch, and every user ranked once."""
    from torch.utils.data import DataLoader

    pairs = _random_pairs(20, 15, density=0.3)
    ds = BPRTriplets(pairs, num_items=15, batch_size=7, seed=0)
    loader = DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=True)
    for _ in range(2):  # two epochs on the same persistent workers
        batches = list(loader)
        assert len(batches) == len(ds)
        assert sorted(_pairs_of(batches)) == sorted(map(tuple, pairs.tolist()))
    ranking = RankingUsers(23, _random_pairs(23, 9, density=0.4, seed=1), None, batch_size=5)
    users = torch.cat([b["user"] for b in DataLoader(ranking, batch_size=None, num_workers=3)]).tolist()
    assert sorted(users) == list(range(23))
