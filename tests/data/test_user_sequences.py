"""Tests of darec.data.UserSequences: time order, filtering, ids and the leave-one-out split."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from darec.data import InteractionLog, UserSequences


def _log(**kwargs):
    # user a: 4 items in shuffled time order; b: 3 items; c: 2 items (dropped)
    return InteractionLog(
        users=["a", "a", "a", "a", "b", "b", "b", "c", "c"],
        items=["i3", "i1", "i4", "i2", "i2", "i1", "i5", "i1", "i2"],
        timestamps=[30, 10, 40, 20, 5, 6, 7, 1, 2],
        **kwargs,
    )


def test_sequences_are_time_ordered_and_reindexed():
    data = UserSequences.from_log(_log())
    assert data.user_ids.tolist() == ["a", "b"]
    assert data.item_ids.tolist() == ["i1", "i2", "i3", "i4", "i5"]  # 1 .. 5, in raw-id order; 0 is padding
    raw = [[data.item_ids[i - 1] for i in s] for s in data.sequences]
    assert raw == [["i1", "i2", "i3", "i4"], ["i2", "i1", "i5"]]


def test_equal_timestamps_keep_the_log_order():
    log = InteractionLog(["u"] * 4, ["z", "a", "m", "b"], timestamps=[1, 1, 0, 1])
    data = UserSequences.from_log(log)
    assert [data.item_ids[i - 1] for i in data.sequences[0]] == ["m", "z", "a", "b"]


def test_short_users_are_dropped_and_counted(caplog):
    with caplog.at_level(logging.INFO, logger="darec.data.user_sequences"):
        data = UserSequences.from_log(_log())
    assert data.num_users == 2 and data.protocol["dropped_users"] == 1
    assert "dropped 1 of 3 users with fewer than 3 interactions" in caplog.text


def test_leave_one_out_has_no_leakage():
    data = UserSequences.from_log(_log())
    for user, seq in enumerate(data.sequences):
        train = data.train_sequence(user)
        assert data.test_target[user] == seq[-1] and data.valid_target[user] == seq[-2]
        assert data.test_target[user] not in train and data.valid_target[user] not in train
        assert data.history(user, "validate").tolist() == train.tolist()
        assert data.history(user, "test").tolist() == [*train.tolist(), data.valid_target[user]]
        assert data.test_target[user] not in data.history(user, "test")


def test_a_log_without_timestamps_is_refused():
    log = InteractionLog(["a"] * 3, ["x", "y", "z"])
    with pytest.raises(ValueError, match="no timestamps"):
        UserSequences.from_log(log)


def test_min_length_below_three_is_refused():
    with pytest.raises(ValueError, match="at least 3"):
        UserSequences.from_log(_log(), min_length=2)


def test_positive_threshold_filters_ratings():
    log = InteractionLog(["a"] * 4, ["w", "x", "y", "z"], ratings=[5, 1, 4, 4], timestamps=[0, 1, 2, 3])
    data = UserSequences.from_log(log, positive_threshold=4)
    assert [data.item_ids[i - 1] for i in data.sequences[0]] == ["w", "y", "z"]


def test_titles_from_metadata_and_a_warning_for_missing_ones():
    info = {"i1": {"movie_title": "Heat", "release_year": "1995"}, "i2": {"movie_title": "Up"}}
    with pytest.warns(UserWarning, match="3 of 5 item"):
        data = UserSequences.from_log(_log(item_info=info))
    assert data.item_titles[:3] == ["Heat (1995)", "Up", "Item i3"]


def test_constructor_checks_ids_and_lengths():
    with pytest.raises(ValueError, match="fewer than 3"):
        UserSequences([np.array([1, 2])], num_items=2)
    with pytest.raises(ValueError, match="0 is padding"):
        UserSequences([np.array([0, 1, 2])], num_items=2)
