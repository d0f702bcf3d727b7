"""CTRSamples: labels and their errors, the global time split, leak-free histories."""

from __future__ import annotations

import numpy as np
import pytest

from darec.ctr import PAD, CTRSamples
from darec.data import InteractionLog
from tests.ctr.synthetic import random_log


def _log(**kwargs):
    base = {"users": ["a", "a", "b", "b"], "items": ["x", "y", "x", "z"], "ratings": [5, 2, 4, 3], "timestamps": [1, 2, 3, 4]}
    return InteractionLog(**{**base, **kwargs})


def test_labels_by_threshold():
    samples = CTRSamples.from_log(_log(), fractions=(0.5, 0.25, 0.25))
    assert samples.label.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert samples.label.dtype == np.float32 and samples.user.dtype == np.int64 and samples.item.dtype == np.int64
    samples = CTRSamples.from_log(_log(), positive_threshold=3, fractions=(0.5, 0.25, 0.25))
    assert samples.label.tolist() == [1.0, 0.0, 1.0, 1.0]
    assert samples.protocol["labels"] == "rating >= 3"


def test_explicit_labels_replace_the_threshold():
    samples = CTRSamples.from_log(_log(ratings=None), labels=[0, 1, 1, 0], fractions=(0.5, 0.25, 0.25))
    assert samples.label.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert samples.protocol["labels"] == "explicit 0/1 labels"


def test_no_ratings_and_no_labels():
    with pytest.raises(ValueError, match="no ratings and no labels"):
        CTRSamples.from_log(_log(ratings=None))


def test_a_threshold_that_empties_a_class_names_the_counts():
    with pytest.raises(ValueError, match=r"positive_threshold=6 leaves one class empty: 0 positive and 4 negative.*from 2 to 5"):
        CTRSamples.from_log(_log(), positive_threshold=6)
    with pytest.raises(ValueError, match="4 positive and 0 negative"):
        CTRSamples.from_log(_log(), positive_threshold=1)
    with pytest.raises(ValueError, match="the labels hold one class only: 0 positive and 4 negative"):
        CTRSamples.from_log(_log(ratings=None), labels=[0, 0, 0, 0])


def test_bad_labels():
    with pytest.raises(ValueError, match="must be 0 or 1; 1 are not, e.g. \\[5.0\\]"):
        CTRSamples.from_log(_log(), labels=[0, 1, 5, 0])
    with pytest.raises(ValueError, match="shape \\(4,\\)"):
        CTRSamples.from_log(_log(), labels=[0, 1])


def test_no_timestamps():
    with pytest.raises(ValueError, match="has no timestamps"):
        CTRSamples.from_log(_log(timestamps=None))


def test_too_few_rows_and_bad_arguments():
    with pytest.raises(ValueError, match="too few for the"):
        CTRSamples.from_log(_log())  # 4 rows: 80/10/10 leaves validation empty
    with pytest.raises(ValueError, match="`fractions`"):
        CTRSamples.from_log(_log(), fractions=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="`history_len`"):
        CTRSamples.from_log(_log(), history_len=0)


def test_global_time_split():
    log, _ = random_log(num_pairs=1000)
    samples = CTRSamples.from_log(log)
    sizes = {name: len(samples.split(name)) for name in ("train", "valid", "test")}
    assert sizes == {"train": 800, "valid": 100, "test": 100}
    t = samples.timestamp
    assert np.all(np.diff(t) >= 0)
    assert t[samples.split("train")].max() <= t[samples.split("valid")].min()
    assert t[samples.split("valid")].max() <= t[samples.split("test")].min()
    assert np.concatenate([samples.split(n) for n in ("train", "valid", "test")]).tolist() == list(range(1000))
    # every row is one row of the log, with its raw ids and label
    rows = {(u, i, s) for u, i, s in zip(log.users.tolist(), log.items.tolist(), log.timestamps.tolist())}
    got = {(samples.user_ids[u], samples.item_ids[i], s) for u, i, s in zip(samples.user, samples.item, samples.timestamp)}
    assert got == rows
    assert samples.protocol["train_positive_rate"] == pytest.approx(samples.label[:800].mean(), abs=1e-4)


def test_ties_keep_the_order_of_the_log():
    log = InteractionLog(list("abcdefghij"), list("klmnopqrst"), ratings=[5, 1] * 5, timestamps=[7] * 10)
    samples = CTRSamples.from_log(log)
    assert samples.item_ids[samples.item].tolist() == list("klmnopqrst")
    assert samples.split("test").tolist() == [9]


def _reference_history(samples: CTRSamples, row: int, liked: bool) -> list[int]:
    """The naive history: training rows of the same user, strictly earlier, with the label; latest first."""
    train = set(samples.split("train").tolist())
    past = [
        q for q in range(len(samples))
        if q in train and samples.user[q] == samples.user[row] and samples.timestamp[q] < samples.timestamp[row]
        and samples.label[q] == float(liked)
    ]  # fmt: skip
    return [int(samples.item[q]) for q in sorted(past, reverse=True)][: samples.history_len]


def test_histories_hold_only_earlier_training_interactions():
    log, _ = random_log(num_users=5, num_items=60, num_pairs=200)  # about 40 rows a user, many equal times
    samples = CTRSamples.from_log(log, history_len=4)
    assert samples.liked.shape == samples.disliked.shape == (200, 4)
    train = samples.split("train")
    for row in range(len(samples)):
        liked, disliked = samples.history(row)
        assert liked == _reference_history(samples, row, True)
        assert disliked == _reference_history(samples, row, False)
        for item, label in [(i, 1.0) for i in liked] + [(i, 0.0) for i in disliked]:
            source = train[(samples.user[train] == samples.user[row]) & (samples.item[train] == item)]
            assert len(source) == 1 and samples.label[source[0]] == label
            assert samples.timestamp[source[0]] < samples.timestamp[row]  # no later (or simultaneous) interaction
    # padding only at the end of a row
    for table in (samples.liked, samples.disliked):
        padded = table == PAD
        assert np.all(padded[:, :-1] <= padded[:, 1:])


def test_held_out_pairs_never_see_held_out_interactions():
    # user a: train rows at t=1..8, then valid and test rows; a test pair must not see the validation ones
    log = InteractionLog(["a"] * 10, [f"i{k}" for k in range(10)], ratings=[5] * 9 + [1], timestamps=range(1, 11))
    samples = CTRSamples.from_log(log, history_len=10)
    valid, test = samples.split("valid")[0], samples.split("test")[0]
    assert samples.history(valid)[0] == [7, 6, 5, 4, 3, 2, 1, 0]
    assert samples.history(test)[0] == [7, 6, 5, 4, 3, 2, 1, 0]  # not i8 (validation)
    assert samples.history(0) == ([], [])


def test_titles_and_repr():
    log, _ = random_log(num_users=3, num_items=10, num_pairs=20)
    samples = CTRSamples.from_log(log)
    assert samples.item_titles == [f"Film {raw[1:]}" for raw in samples.item_ids]
    assert repr(samples) == f"CTRSamples(users=3, items={samples.num_items}, train=16, valid=2, test=2)"
    assert CTRSamples.from_log(_log(items=["x"] * 4), fractions=(0.5, 0.25, 0.25)).item_titles is None
