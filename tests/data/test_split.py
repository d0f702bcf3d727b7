"""Tests of darec.data.split, including the exact reproduction of ml100k-implicit-v1."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from darec.data.interactions import InteractionLog, Interactions
from darec.data.readers import read_recbole, read_split_dir, write_split_dir
from darec.data.split import random_split, temporal_split, to_implicit
from darec.data.text import with_text


# ------------------------------------------------------------------------------------------------
# reference reproduction
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ml100k_log(ml100k_dir: Path) -> InteractionLog:
    return read_recbole(ml100k_dir)


@pytest.fixture(scope="module")
def ml100k_split(ml100k_log: InteractionLog) -> Interactions:
    return with_text(random_split(ml100k_log), ml100k_log)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]


def test_source_files_are_the_reference_ones(ml100k_dir: Path, reference_dir: Path) -> None:
    stats = json.loads((reference_dir / "stats.json").read_text())
    for name, digest in stats["source"]["files_sha256"].items():
        assert _sha256(ml100k_dir / name) == digest, f"{name} differs from the file the reference was built from"


def test_random_split_reproduces_reference_pairs(ml100k_split: Interactions, reference_dir: Path) -> None:
    for name in ("train", "valid", "test"):
        expected = np.asarray(_read_tsv(reference_dir / f"{name}.tsv"), dtype=np.int64)
        got = ml100k_split.split(name)
        assert got.shape == expected.shape, name
        assert {tuple(p) for p in got.tolist()} == {tuple(p) for p in expected.tolist()}, name


def test_random_split_reproduces_reference_ids(ml100k_split: Interactions, reference_dir: Path) -> None:
    for kind in ("user", "item"):
        rows = _read_tsv(reference_dir / f"{kind}_map.tsv")
        assert [int(k) for k, _ in rows] == list(range(len(rows)))
        assert getattr(ml100k_split, f"{kind}_ids").tolist() == [raw for _, raw in rows], kind


def test_texts_reproduce_reference(ml100k_split: Interactions, reference_dir: Path) -> None:
    for kind in ("user", "item"):
        records = [json.loads(line) for line in (reference_dir / f"{kind}_text.jsonl").read_text("utf-8").splitlines()]
        expected = [r["text"] for r in sorted(records, key=lambda r: r["id"])]
        got = getattr(ml100k_split, f"{kind}_text")
        mismatches = [(k, a, b) for k, (a, b) in enumerate(zip(got, expected)) if a != b]
        assert len(got) == len(expected) and not mismatches, f"{kind}: {mismatches[:3]}"
    assert ml100k_split.item_text[264] == "Unknown title. Genres: unknown."


def test_export_is_byte_identical_to_reference(ml100k_split: Interactions, reference_dir: Path, tmp_path: Path) -> None:
    out = write_split_dir(ml100k_split, tmp_path / "split")
    stats = json.loads((reference_dir / "stats.json").read_text())
    for name, digest in stats["files_sha256"].items():
        assert _sha256(out / name) == digest, name
    again = read_split_dir(out)
    assert again.user_text == ml100k_split.user_text and again.protocol["seed"] == 2024


def test_reference_counts_and_protocol(ml100k_split: Interactions, reference_dir: Path) -> None:
    counts = json.loads((reference_dir / "stats.json").read_text())["counts"]
    stats = ml100k_split.stats()
    for key in ("users", "items", "train", "valid", "test", "items_without_train_interaction"):
        assert stats[key] == counts[key], key
    protocol = ml100k_split.protocol
    assert protocol["name"] == "random"
    assert protocol["seed"] == 2024 and protocol["ratios"] == [3, 1, 1]
    assert protocol["positive_threshold"] == 4.0 and protocol["min_user_positives"] == 5
    assert protocol["rng"] == "numpy.random.RandomState"
    assert protocol["source"] == "recbole:ml-100k"
    assert protocol["raw_interactions"] == counts["raw_ratings"]
    assert protocol["raw_positives"] == counts["raw_positives"]
    json.dumps(protocol)  # serialisable for loggers


def test_reference_dir_reads_back(reference_dir: Path) -> None:
    data = read_split_dir(reference_dir)
    assert (data.num_users, data.num_items) == (938, 1447)
    assert data.protocol["name"] == "ml100k-implicit-v1"
    assert data.protocol["seed"] == 2024


def test_temporal_split_on_ml100k(ml100k_log: InteractionLog) -> None:
    data = temporal_split(ml100k_log)
    assert len(data.valid) == len(data.test) == data.num_users == 938
    # every held-out item is no earlier than any of the user's training items
    times = {(u, i): t for u, i, t in zip(ml100k_log.users, ml100k_log.items, ml100k_log.timestamps)}
    user = 0
    train_t = [times[(data.user_ids[user], data.item_ids[i])] for i in data.train[data.train[:, 0] == user, 1]]
    test_t = [times[(data.user_ids[user], data.item_ids[i])] for i in data.test[data.test[:, 0] == user, 1]]
    assert max(train_t) <= min(test_t)


# ------------------------------------------------------------------------------------------------
# to_implicit
# ------------------------------------------------------------------------------------------------
def test_to_implicit_filters_in_order() -> None:
    log = InteractionLog(
        users=["a", "a", "a", "b", "b", "c"],
        items=["x", "y", "z", "x", "w", "w"],
        ratings=[5, 4, 1, 5, 2, 5],
    )
    kept = to_implicit(log, positive_threshold=4, min_user_positives=2)
    assert kept.users.tolist() == ["a", "a"] and kept.items.tolist() == ["x", "y"]
    # item "w" only had positives from a dropped user, so it is gone too
    assert "w" not in kept.items


def test_to_implicit_without_ratings_keeps_everything() -> None:
    log = InteractionLog(users=["a", "a", "b"], items=["x", "y", "x"])
    assert len(to_implicit(log, min_user_positives=1)) == 3
    assert to_implicit(log, min_user_positives=2).users.tolist() == ["a", "a"]


def test_to_implicit_drops_duplicates_keeping_highest_rating() -> None:
    log = InteractionLog(
        users=["a", "a", "a", "a"],
        items=["x", "x", "y", "y"],
        ratings=[2, 5, 4, 4],
        timestamps=[1, 2, 3, 4],
    )
    with pytest.warns(UserWarning, match="2 duplicated"):
        kept = to_implicit(log, min_user_positives=1)
    assert kept.items.tolist() == ["x", "y"]
    assert kept.ratings.tolist() == [5, 4]
    assert kept.timestamps.tolist() == [2, 3]  # highest rating kept; first of equal ratings


def test_to_implicit_errors() -> None:
    log = InteractionLog(users=["a"], items=["x"], ratings=[1])
    with pytest.raises(ValueError, match="no user .* at least 1"):
        to_implicit(log, min_user_positives=1)
    with pytest.raises(ValueError, match="min_user_positives"):
        to_implicit(log, min_user_positives=0)


# ------------------------------------------------------------------------------------------------
# random_split
# ------------------------------------------------------------------------------------------------
def _toy_log(num_users: int = 6, per_user: int = 7, seed: int = 0) -> InteractionLog:
    rng = np.random.default_rng(seed)
    users, items, ratings, times = [], [], [], []
    for u in range(num_users):
        for i in rng.choice(30, size=per_user, replace=False):
            users.append(str(u + 1))
            items.append(str(i + 1))
            ratings.append(5.0)
            times.append(float(rng.integers(0, 1000)))
    return InteractionLog(users=users, items=items, ratings=ratings, timestamps=times, source="toy")


def test_ids_numeric_order_when_integers() -> None:
    log = InteractionLog(users=["10", "9", "10", "9"], items=["100", "20", "3", "100"])
    data = random_split(log, min_user_positives=2, ratios=(1, 0, 1))
    assert data.user_ids.tolist() == ["9", "10"]
    assert data.item_ids.tolist() == ["3", "20", "100"]
    assert data.protocol["id_order"] == {"users": "numeric", "items": "numeric"}


def test_ids_lexicographic_order_otherwise() -> None:
    log = InteractionLog(users=["b", "a", "b", "a"], items=["10", "x", "9", "10"])
    data = random_split(log, min_user_positives=2, ratios=(1, 0, 1))
    assert data.user_ids.tolist() == ["a", "b"]
    assert data.item_ids.tolist() == ["10", "9", "x"]
    assert data.protocol["id_order"]["items"] == "lexicographic"


def test_random_split_sizes_and_determinism() -> None:
    log = _toy_log()
    first, second = random_split(log, seed=7), random_split(log, seed=7)
    for name in ("train", "valid", "test"):
        assert np.array_equal(first.split(name), second.split(name))
    # 7 positives: n_val = n_test = floor(0.2 * 7 + 0.5) = 1, n_train = 5
    assert np.bincount(first.valid[:, 0]).tolist() == [1] * 6
    assert np.bincount(first.train[:, 0]).tolist() == [5] * 6
    other = random_split(log, seed=8)
    assert not np.array_equal(first.test, other.test)
    # the three splits partition each user's positives
    all_pairs = np.concatenate([first.train, first.valid, first.test])
    assert len(np.unique(all_pairs, axis=0)) == len(log)


def test_random_split_protocol_records_everything() -> None:
    data = random_split(_toy_log(), seed=3, ratios=(8, 1, 1), positive_threshold=3.5, min_user_positives=4)
    p = data.protocol
    assert p["name"] == "random" and p["seed"] == 3 and p["ratios"] == [8, 1, 1]
    assert p["positive_threshold"] == 3.5 and p["min_user_positives"] == 4
    assert p["rng"] == "numpy.random.RandomState" and p["source"] == "toy"
    assert p["train"] == len(data.train) and p["users"] == data.num_users
    assert data.user_text is None and data.item_text is None


def test_random_split_names_user_without_training_item() -> None:
    log = InteractionLog(users=["u1"] * 5 + ["u2"] * 2, items=list("abcde") + ["a", "b"])
    with pytest.raises(ValueError, match=r"user 'u2' has only 2 positive"):
        random_split(log, min_user_positives=2)


def test_random_split_bad_ratios() -> None:
    with pytest.raises(ValueError, match="ratios"):
        random_split(_toy_log(), ratios=(0, 1, 1))
    with pytest.raises(ValueError, match="ratios"):
        random_split(_toy_log(), ratios=(3, 1))


# ------------------------------------------------------------------------------------------------
# temporal_split
# ------------------------------------------------------------------------------------------------
def test_temporal_split_leaves_latest_out() -> None:
    log = InteractionLog(
        users=["u"] * 5 + ["v"] * 3,
        items=["a", "b", "c", "d", "e", "a", "b", "c"],
        timestamps=[5, 1, 4, 2, 3, 1, 1, 1],
    )
    data = temporal_split(log, min_user_positives=3)
    names = lambda pairs, user: sorted(data.item_ids[pairs[pairs[:, 0] == user, 1]].tolist())  # noqa: E731
    u, v = data.user_ids.tolist().index("u"), data.user_ids.tolist().index("v")
    assert names(data.test, u) == ["a"] and names(data.valid, u) == ["c"]
    assert names(data.train, u) == ["b", "d", "e"]
    # equal timestamps: the larger item id counts as later
    assert names(data.test, v) == ["c"] and names(data.valid, v) == ["b"] and names(data.train, v) == ["a"]
    assert data.protocol["name"] == "temporal" and data.protocol["leave_out"] == 1


def test_temporal_split_leave_out_two() -> None:
    data = temporal_split(_toy_log(per_user=7), leave_out=2)
    assert np.bincount(data.test[:, 0]).tolist() == [2] * 6
    assert np.bincount(data.train[:, 0]).tolist() == [3] * 6


def test_temporal_split_errors() -> None:
    with pytest.raises(ValueError, match="timestamps"):
        temporal_split(InteractionLog(users=["u"] * 5, items=list("abcde")))
    log = InteractionLog(users=["u"] * 2, items=["a", "b"], timestamps=[1, 2])
    with pytest.raises(ValueError, match="user 'u' has only 2"):
        temporal_split(log, min_user_positives=1)
    with pytest.raises(ValueError, match="leave_out"):
        temporal_split(log, leave_out=0)


def test_splits_do_not_warn_on_clean_logs() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        random_split(_toy_log())
        temporal_split(_toy_log())
