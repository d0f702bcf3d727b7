"""Tests of darec.data.interactions: validation of Interactions and InteractionLog, csr, edge_index."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from darec.data.interactions import InteractionLog, Interactions

TRAIN = [[0, 0], [0, 1], [1, 2]]


@pytest.mark.parametrize("split", ["train", "valid", "test"])
@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ([2, 0], r"user ids outside \[0, 2\).*\[2\]"),
        ([-1, 0], r"user ids outside \[0, 2\).*\[-1\]"),
        ([0, 3], r"item ids outside \[0, 3\).*\[3\]"),
        ([0, -2], r"item ids outside \[0, 3\).*\[-2\]"),
    ],
)
def test_ids_out_of_range(split, pair, message):
    kwargs = {"train": TRAIN}
    kwargs[split] = [*kwargs.get(split, []), pair]
    with pytest.raises(ValueError, match=f"`{split}` has {message}"):
        Interactions(2, 3, **kwargs)


@pytest.mark.parametrize("train", [[], np.zeros((0, 2), dtype=np.int64), None])
def test_empty_train(train):
    with pytest.raises(ValueError, match="training split is empty"):
        Interactions(2, 3, train=train, test=[[0, 1]])


def test_cold_user_rejected_unless_allowed():
    with pytest.raises(ValueError, match=r"1 user\(s\) have no training interaction \(first ids: \[2\]\)"):
        Interactions(3, 3, train=TRAIN, test=[[2, 1]])
    data = Interactions(3, 3, train=TRAIN, test=[[2, 1]], allow_cold_users=True)
    assert data.num_users == 3
    assert data.test.tolist() == [[2, 1]]


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_duplicates_dropped_with_warning(split):
    kwargs = {"train": TRAIN, "valid": [[0, 2]], "test": [[1, 0]]}
    kwargs[split] = [*kwargs[split], kwargs[split][0], kwargs[split][0]]
    with pytest.warns(UserWarning, match=f"`{split}` has 2 duplicated"):
        data = Interactions(2, 3, **kwargs)
    pairs = data.split(split)
    assert len(pairs) == len(np.unique(np.asarray(kwargs[split]), axis=0))
    assert len({tuple(p) for p in pairs.tolist()}) == len(pairs)


def test_no_warning_without_duplicates():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Interactions(2, 3, train=TRAIN, valid=[[0, 2]])


@pytest.mark.parametrize(
    ("side", "n_given", "message"),
    [
        ("item_text", 2, "`item_text` has 2 entries but there are 3 items"),
        ("item_text", 4, "`item_text` has 4 entries but there are 3 items"),
        ("user_text", 1, "`user_text` has 1 entries but there are 2 users"),
    ],
)
def test_text_count_mismatch(side, n_given, message):
    with pytest.raises(ValueError, match=message):
        Interactions(2, 3, train=TRAIN, **{side: ["t"] * n_given})


def test_text_must_be_strings():
    with pytest.raises(ValueError, match="`item_text` entries must be strings; entry 1 is int"):
        Interactions(2, 3, train=TRAIN, item_text=["a", 5, "c"])


@pytest.mark.parametrize(
    "pairs",
    [
        [[0, 1, 2]],  # three columns
        [0, 1],  # 1-D
        np.zeros((2, 2, 2), dtype=np.int64),  # 3-D
    ],
)
def test_wrong_shape(pairs):
    with pytest.raises(ValueError, match=r"`train` must have shape \(num_interactions, 2\)"):
        Interactions(2, 3, train=pairs)


@pytest.mark.parametrize(
    "pairs",
    [
        [[0, 0.5], [1, 2]],
        [["a", "b"], ["c", "d"]],
        [[0, np.nan], [1, 2]],
        np.array([[True, False]]),
    ],
)
def test_non_integer_ids(pairs):
    with pytest.raises(ValueError, match="`train` must hold integer user and item ids"):
        Interactions(2, 3, train=pairs)


def test_integral_floats_and_tensors_accepted():
    data = Interactions(2, 3, train=np.array([[0.0, 0.0], [1.0, 2.0]]), test=torch.tensor([[0, 1]]))
    assert data.train.dtype == np.int64 and data.train.tolist() == [[0, 0], [1, 2]]
    assert data.test.dtype == np.int64 and data.test.tolist() == [[0, 1]]


@pytest.mark.parametrize(("num_users", "num_items"), [(0, 3), (2, 0), (-1, 3)])
def test_counts_must_be_positive(num_users, num_items):
    with pytest.raises(ValueError, match="num_users and num_items must be positive"):
        Interactions(num_users, num_items, train=[[0, 0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user_ids": ["a"]}, r"`user_ids` must list one raw id per entity \(2\)"),
        ({"item_ids": ["a", "a", "b"]}, "`item_ids` contains repeated raw ids"),
    ],
)
def test_bad_raw_ids(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Interactions(2, 3, train=TRAIN, **kwargs)


def test_defaults_and_views():
    data = Interactions(2, 3, train=TRAIN, test=[[1, 0]])
    assert data.user_ids.tolist() == ["0", "1"] and data.item_ids.tolist() == ["0", "1", "2"]
    assert data.valid.shape == (0, 2) and data.valid.dtype == np.int64
    assert data.num_nodes == 5
    assert data.stats() == {
        "users": 2,
        "items": 3,
        "train": 3,
        "valid": 0,
        "test": 1,
        "train_density": 0.5,
        "items_without_train_interaction": 0,
    }
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        data.split("dev")


def test_edge_index_tiny():
    data = Interactions(3, 4, train=[[2, 3], [0, 0], [1, 1]], test=[[0, 2]])
    assert data.edge_index().tolist() == [[0, 1, 2], [3, 4, 6]]
    assert data.edge_index("test").tolist() == [[0], [5]]
    assert data.edge_index().dtype == torch.int64


def test_csr_tiny(tiny_interactions):
    indptr, indices = tiny_interactions.csr()
    assert indptr.tolist() == [0, 2, 4, 5, 7]
    assert indices.tolist() == [0, 1, 1, 2, 3, 0, 4]
    assert indptr.dtype == indices.dtype == torch.int64

    indptr, indices = tiny_interactions.csr("train", "valid")
    rows = [indices[indptr[u] : indptr[u + 1]].tolist() for u in range(4)]
    assert rows == [[0, 1, 2], [1, 2, 3], [3, 4], [0, 4, 5]]

    indptr, indices = tiny_interactions.csr("train", "valid", "test")
    rows = [indices[indptr[u] : indptr[u + 1]].tolist() for u in range(4)]
    assert rows == [[0, 1, 2, 5], [0, 1, 2, 3], [0, 3, 4], [0, 1, 4, 5]]


def test_csr_counts_a_user_without_pairs():
    data = Interactions(3, 3, train=[[0, 1], [2, 0], [2, 2]], allow_cold_users=True)
    indptr, indices = data.csr()
    assert indptr.tolist() == [0, 1, 1, 3]
    assert indices.tolist() == [1, 0, 2]


def test_interaction_log_validation():
    log = InteractionLog(users=[1, 1, 2], items=["a", "b", "a"], ratings=[5, 4, 3])
    assert log.users.tolist() == ["1", "1", "2"] and log.has_ratings and len(log) == 3
    with pytest.raises(ValueError, match="users and items must be 1-D and of equal length"):
        InteractionLog(users=["u"], items=["a", "b"])
    with pytest.raises(ValueError, match=r"`ratings` must have shape \(2,\)"):
        InteractionLog(users=["u", "v"], items=["a", "b"], ratings=[1])
    with pytest.raises(ValueError, match="`timestamps` contains NaN or infinite values"):
        InteractionLog(users=["u", "v"], items=["a", "b"], timestamps=[1, np.inf])
    with pytest.raises(ValueError, match="is empty"):
        InteractionLog(users=[], items=[])


@pytest.mark.parametrize(
    "kwargs, pairs",
    [
        ({"valid": [[0, 0]]}, "1 in both `train` and `valid`, e.g. (u0, a)"),
        ({"valid": [[0, 2]], "test": [[0, 2]]}, "1 in both `valid` and `test`, e.g. (u0, c)"),
        ({"test": [[1, 2], [0, 0], [0, 2]]}, "2 in both `train` and `test`, e.g. (u0, a), (u1, c)"),
    ],
)
def test_pair_in_two_splits_is_refused(kwargs, pairs):
    with pytest.raises(ValueError, match="more than one split") as info:
        Interactions(2, 3, train=TRAIN, user_ids=["u0", "u1"], item_ids=["a", "b", "c"], **kwargs)
    assert pairs in str(info.value)
