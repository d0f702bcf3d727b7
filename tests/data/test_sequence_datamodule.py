"""Tests of darec.data.SequenceDataModule: padding, max_len, negatives, ranking batches, sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darec.data import InteractionLog, SequenceDataModule, UserSequences
from darec.data.sequence_datamodule import left_pad


def _sequences() -> UserSequences:
    return UserSequences(
        [np.arange(1, 9), np.array([4, 2, 7]), np.array([9, 8, 7, 6, 5])],
        num_items=12,
        item_titles=[f"t{k}" for k in range(1, 13)],
    )


def test_left_pad_keeps_the_last_items():
    out = left_pad([np.array([1, 2, 3, 4]), np.array([5]), np.array([], dtype=np.int64)], 3)
    assert out.tolist() == [[2, 3, 4], [0, 0, 5], [0, 0, 0]]


def test_training_windows_are_shifted_padded_and_cut_to_max_len():
    dm = SequenceDataModule.from_sequences(_sequences(), max_len=4, batch_size=10, seed=0)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    rows = {int(u): k for k, u in enumerate(batch["user"])}
    assert set(rows) == {0, 2}  # user 1 has a single training item: no next-item pair
    # user 0: train = 1..6; the last max_len + 1 = 5 items 2..6 -> inputs 2..5, next items 3..6
    assert batch["seq"][rows[0]].tolist() == [2, 3, 4, 5]
    assert batch["pos"][rows[0]].tolist() == [3, 4, 5, 6]
    # user 2: train = 9, 8, 7 -> inputs [0, 0, 9, 8], next items [0, 0, 8, 7]
    assert batch["seq"][rows[2]].tolist() == [0, 0, 9, 8]
    assert batch["pos"][rows[2]].tolist() == [0, 0, 8, 7]
    assert batch["seq"].shape == batch["pos"].shape == batch["neg"].shape == (2, 4)


def test_validation_and_test_items_never_enter_training():
    data = _sequences()
    dm = SequenceDataModule.from_sequences(data, max_len=10, batch_size=2, seed=0)
    dm.setup("fit")
    for batch in dm.train_dataloader():
        for user, seq, pos in zip(batch["user"].tolist(), batch["seq"], batch["pos"]):
            seen = set(seq.tolist()) | set(pos.tolist())
            assert data.valid_target[user] not in seen and data.test_target[user] not in seen


def test_negatives_avoid_training_items_are_padded_and_seeded():
    data = UserSequences([np.array([1, 2, 3, 4, 5, 6])] * 30, num_items=8)
    def epochs(seed):
        dm = SequenceDataModule.from_sequences(data, max_len=5, batch_size=7, seed=seed)
        dm.setup("fit")
        return [torch.cat([b["neg"] for b in dm.train_dataloader()]) for _ in range(2)]

    first, second = epochs(1)
    assert (first[:, :2] == 0).all()  # padded positions
    drawn = first[:, 2:].flatten()
    assert not torch.isin(drawn, torch.tensor([1, 2, 3, 4])).any()  # training items 1..4
    assert set(drawn.tolist()) == {5, 6, 7, 8}  # valid/test items are not training items: allowed
    assert not torch.equal(first, second)  # redrawn every epoch
    assert all(torch.equal(a, b) for a, b in zip(epochs(1), epochs(1)))  # same seed, same epochs


def test_ranking_batches_mask_the_history_but_never_the_target():
    dm = SequenceDataModule.from_sequences(_sequences(), max_len=3, eval_batch_size=8)
    val = next(iter(dm.val_dataloader()))
    test = next(iter(dm.test_dataloader()))
    assert val["target"].tolist() == [7, 2, 6] and test["target"].tolist() == [8, 7, 5]
    assert val["seq"].tolist() == [[4, 5, 6], [0, 0, 4], [9, 8, 7]]
    assert test["seq"].tolist() == [[5, 6, 7], [0, 4, 2], [8, 7, 6]]
    excluded = {(r, i) for r, i in val["exclude"].T.tolist()}  # items 1..3 of user 0 are beyond max_len
    assert excluded == {(0, i) for i in range(1, 7)} | {(1, 4)} | {(2, 9), (2, 8), (2, 7)}


def test_predict_batches_input_the_whole_sequence_and_mask_all_of_it():
    dm = SequenceDataModule.from_sequences(_sequences(), max_len=3, eval_batch_size=2)
    batches = list(dm.predict_dataloader())
    assert [b["user"].tolist() for b in batches] == [[0, 1], [2]]  # every user once, in order
    assert all(set(b) == {"user", "seq", "exclude"} for b in batches)  # no target to leave unmasked
    # the latest max_len items of the whole sequence: training, validation and test items
    assert torch.cat([b["seq"] for b in batches]).tolist() == [[6, 7, 8], [4, 2, 7], [7, 6, 5]]
    first = {(r, i) for r, i in batches[0]["exclude"].T.tolist()}
    assert first == {(0, i) for i in range(1, 9)} | {(1, 4), (1, 2), (1, 7)}  # beyond max_len too
    assert {(r, i) for r, i in batches[1]["exclude"].T.tolist()} == {(0, i) for i in (5, 6, 7, 8, 9)}
    with pytest.raises(ValueError, match="'validate', 'test' or 'predict'"):
        dm.ranking_batches("fit")


def test_sampled_evaluator_is_the_same_for_every_call():
    dm = SequenceDataModule.from_sequences(_sequences(), eval_negatives=3, eval_seed=7)
    a, b = dm.sampled_evaluator(ks=(1, 3)), dm.sampled_evaluator(prefix="test/", ks=(1, 3))
    assert torch.equal(a.negatives, b.negatives)
    assert not torch.isin(a.negatives, torch.tensor([0])).any()
    for user, row in enumerate(a.negatives.tolist()):
        assert not set(row) & set(_sequences().sequences[user].tolist())


def test_title_embeddings_are_computed_and_cached(tmp_path):
    class Toy:
        cache_key = {"kind": "toy-titles"}
        calls = 0

        def encode(self, texts):
            Toy.calls += 1
            return torch.stack([torch.tensor([float(len(t)), 1.0]) for t in texts])

    dm = SequenceDataModule.from_sequences(_sequences(), title_encoder=Toy(), cache_dir=str(tmp_path))
    dm.setup("fit")
    assert dm.title_embeddings.shape == (13, 2) and dm.title_embeddings[0].abs().sum() == 0
    SequenceDataModule.from_sequences(_sequences(), title_encoder=Toy(), cache_dir=str(tmp_path)).setup("fit")
    assert Toy.calls == 1


def test_sources_without_timestamps_are_refused(tmp_path):
    split = tmp_path / "split"
    split.mkdir()
    (split / "train.tsv").write_text("user\titem\n")
    with pytest.raises(ValueError, match="no timestamps"):
        SequenceDataModule(str(split)).sequences
    plain = tmp_path / "plain.tsv"
    plain.write_text("user\titem\nu\ta\nu\tb\nu\tc\n")
    with pytest.raises(ValueError, match="no timestamps"):
        SequenceDataModule(str(plain)).sequences


def test_a_tsv_with_timestamps_is_read(tmp_path):
    path = tmp_path / "log.tsv"
    path.write_text("user\titem\ttimestamp\nu\tb\t2\nu\ta\t1\nu\tc\t3\nv\ta\t1\n")
    dm = SequenceDataModule(str(path))
    assert dm.num_users == 1 and dm.num_items == 3
    assert dm.sequences.sequences[0].tolist() == [1, 2, 3]  # by time (a, b, c), not file order (b, a, c)


def test_from_log_and_state_dict():
    log = InteractionLog(["a"] * 5, list("vwxyz"), timestamps=range(5))
    dm = SequenceDataModule.from_log(log, max_len=3, seed=0)
    dm.setup("fit")
    list(dm.train_dataloader())
    assert dm.state_dict() == {"epoch": 1}
    other = SequenceDataModule.from_log(log, max_len=3, seed=0)
    other.load_state_dict({"epoch": 1})
    other.setup("fit")
    assert torch.equal(next(iter(other.train_dataloader()))["neg"], next(iter(dm.train_dataloader()))["neg"])


def test_title_encoder_without_titles_is_a_clear_error():
    data = UserSequences([np.array([1, 2, 3])], num_items=3)
    with pytest.raises(ValueError, match="the data have none"):
        SequenceDataModule.from_sequences(data, title_encoder="all-MiniLM-L6-v2").setup("fit")
