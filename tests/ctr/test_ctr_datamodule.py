"""CTRDataModule: sources (rating or label column), batches, the explanation feature and its shuffled control."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from darec.ctr import CTRDataModule
from tests.ctr.synthetic import KeywordEncoder, random_log, write_explanations


def _write_csv(path, log, column="rating", values=None):
    values = log.ratings if values is None else values
    rows = ["user,item,timestamp," + column] + [
        f"{u},{i},{int(t)},{int(v)}" for u, i, t, v in zip(log.users, log.items, log.timestamps, values)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_batches_from_a_csv_with_ratings(tmp_path):
    log, clicks = random_log(num_pairs=200)
    dm = CTRDataModule(str(_write_csv(tmp_path / "log.csv", log)), batch_size=32, eval_batch_size=64, seed=0)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 5 and sum(len(b["user"]) for b in batches) == 160
    batch = batches[0]
    assert sorted(batch) == ["item", "label", "user"]
    assert batch["user"].dtype == batch["item"].dtype == torch.long and batch["label"].dtype == torch.float32
    assert len(list(dm.val_dataloader())) == 1 and len(next(iter(dm.test_dataloader()))["label"]) == 20
    assert dm.text_dim == 0
    assert dm.protocol["labels"] == "rating >= 4" and dm.protocol["positive_threshold"] == 4.0
    assert dm.protocol["train"] == 160 and 0 < dm.protocol["test_positive_rate"] < 1
    # the training order changes between epochs and is seeded
    first, second = [torch.cat([b["label"] for b in dm.train_dataloader()]) for _ in range(2)]
    assert set(first.tolist()) <= {0.0, 1.0} and first.sum() == second.sum()
    other = CTRDataModule(str(tmp_path / "log.csv"), batch_size=32, seed=0)
    assert torch.equal(next(iter(other.train_dataloader()))["user"], batch["user"])


def test_a_label_column_is_used_as_it_is(tmp_path):
    log, clicks = random_log(num_pairs=100)
    dm = CTRDataModule(str(_write_csv(tmp_path / "log.csv", log, "label", clicks)))
    assert dm.protocol["labels"] == "explicit 0/1 labels" and dm.protocol["positive_threshold"] is None
    assert dm.samples.label.sum() == clicks.sum()
    bad = _write_csv(tmp_path / "bad.csv", log, "label", np.where(clicks == 1, 5, 0))
    with pytest.raises(ValueError, match="`labels` must be 0 or 1"):
        _ = CTRDataModule(str(bad)).samples


def test_sources_that_cannot_serve(tmp_path):
    log, _ = random_log(num_pairs=50)
    no_time = tmp_path / "no_time.csv"
    rows = list(zip(log.users, log.items, log.ratings.astype(int), log.timestamps.astype(int)))
    no_time.write_text("user,item,rating\n" + "".join(f"{u},{i},{r}\n" for u, i, r, _ in rows))
    with pytest.raises(ValueError, match="no timestamps"):
        _ = CTRDataModule(str(no_time)).samples
    no_rating = tmp_path / "no_rating.csv"
    no_rating.write_text("user,item,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, _, t in rows))
    with pytest.raises(ValueError, match="no ratings and no labels"):
        _ = CTRDataModule(str(no_rating)).samples
    with pytest.raises(FileNotFoundError):
        _ = CTRDataModule(str(tmp_path / "nothing.csv")).samples
    with pytest.raises(ValueError, match="`shuffle_explanations`"):
        CTRDataModule(str(no_time), shuffle_explanations=True)
    with pytest.raises(ValueError, match="`missing_explanations`"):
        CTRDataModule(str(no_time), missing_explanations="skip")


def test_explanations_give_a_cached_text_feature(tmp_path):
    log, clicks = random_log(num_pairs=300)
    path = write_explanations(tmp_path / "expl.jsonl", log, clicks, accuracy=1.0)
    encoder = KeywordEncoder()
    dm = CTRDataModule.from_log(log, explanations=str(path), text_encoder=encoder, batch_size=300)
    dm.setup("fit")
    assert dm.text_dim == 4
    batch = next(iter(dm.train_dataloader()))
    assert batch["text"].shape == (240, 4) and batch["text"].dtype == torch.float32
    # with accuracy 1 the first column says "not": it is exactly 1 - label
    torch.testing.assert_close(batch["text"][:, 0], 1 - batch["label"])
    again = CTRDataModule.from_log(log, explanations=str(path), text_encoder=encoder)
    again.setup("fit")
    assert encoder.calls == 1  # the second module read the cache
    protocol = dm.protocol
    assert protocol["explanation_texts"] == 300 and protocol["explanations_missing"] == {"train": 0, "valid": 0, "test": 0}
    assert protocol["text_encoder"] == encoder.cache_key and protocol["shuffle_explanations"] is False


def test_missing_explanations(tmp_path):
    log, clicks = random_log(num_pairs=100)
    path = write_explanations(tmp_path / "expl.jsonl", log, clicks)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-3]) + '\n{"user": "u1", "item": ')  # 3 pairs missing, one line cut by a kill
    counts = r"\(train \d+ of 80, valid \d+ of 10, test \d+ of 10; e.g."
    with pytest.raises(ValueError, match=r"3 of 100 pairs have no explanation " + counts):
        CTRDataModule.from_log(log, explanations=str(path), text_encoder=KeywordEncoder()).setup("fit")
    dm = CTRDataModule.from_log(log, explanations=str(path), text_encoder=KeywordEncoder(), missing_explanations="zeros")
    with pytest.warns(UserWarning) as caught:
        dm.setup("fit")
    assert any("not complete" in str(w.message) for w in caught) and any("zero text feature" in str(w.message) for w in caught)
    table, index = dm.text_features()
    assert int((index == len(table) - 1).sum()) == 3 and torch.all(table[-1] == 0)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"user": "nobody", "item": "i1", "text": "x"}) + "\n")
    with pytest.raises(ValueError, match="none of its 1 \\(user, item\\) pairs is in the data"):
        CTRDataModule.from_log(log, explanations=str(other), text_encoder=KeywordEncoder()).setup("fit")


def test_shuffled_explanations_are_a_seeded_derangement_within_each_split(tmp_path):
    log, clicks = random_log(num_pairs=200)
    path = write_explanations(tmp_path / "expl.jsonl", log, clicks)  # one distinct text per pair
    kwargs = {"explanations": str(path), "text_encoder": KeywordEncoder()}
    _, true_index = CTRDataModule.from_log(log, **kwargs).text_features()
    _, shuffled = CTRDataModule.from_log(log, shuffle_explanations=True, seed=3, **kwargs).text_features()
    _, same_seed = CTRDataModule.from_log(log, shuffle_explanations=True, seed=3, **kwargs).text_features()
    _, other_seed = CTRDataModule.from_log(log, shuffle_explanations=True, seed=4, **kwargs).text_features()
    assert np.array_equal(shuffled, same_seed) and not np.array_equal(shuffled, other_seed)
    assert np.all(shuffled != true_index)  # every pair has another pair's explanation
    samples = CTRDataModule.from_log(log).samples
    for name in ("train", "valid", "test"):
        rows = samples.split(name)
        assert sorted(shuffled[rows].tolist()) == sorted(true_index[rows].tolist())  # the split's own texts


def test_a_user_subsample_serves_whole_users_and_needs_explanations_only_for_them(tmp_path):
    log, clicks = random_log(num_pairs=600)
    full = CTRDataModule.from_log(log, batch_size=1000, eval_batch_size=1000)
    sub = CTRDataModule.from_log(log, users=5, user_seed=1, users_from="test", batch_size=1000, eval_batch_size=1000)
    samples = sub.samples
    kept = set(samples.user[sub.kept_rows].tolist())
    assert len(kept) == 5 and (kept & set(samples.user[samples.split("test")].tolist())) == kept
    served = {name: next(iter(loader())) for name, loader in
              (("train", sub.train_dataloader), ("valid", sub.val_dataloader), ("test", sub.test_dataloader))}  # fmt: skip
    for name, batch in served.items():
        assert set(batch["user"].tolist()) <= kept
        assert len(batch["user"]) == int(np.isin(samples.user[samples.split(name)], list(kept)).sum())
    assert len(served["test"]["user"]) < len(next(iter(full.test_dataloader()))["user"])
    assert (sub.num_users, sub.num_items) == (full.num_users, full.num_items)  # the id tables of the whole data
    assert sub.protocol["users"] == 5 and sum(sub.protocol["subsample_rows"].values()) == len(sub.kept_rows)
    assert np.array_equal(sub.kept_rows, CTRDataModule.from_log(log, users=5, user_seed=1, users_from="test").kept_rows)
    # explanations of the kept pairs suffice
    users = log.users.tolist()
    keep_rows = [k for k, user in enumerate(users) if user in {samples.user_ids[u] for u in kept}]
    path = tmp_path / "expl.jsonl"
    path.write_text("".join(
        json.dumps({"user": users[k], "item": log.items[k], "text": "fine" if clicks[k] else "not fine"}) + "\n"
        for k in keep_rows
    ))  # fmt: skip
    with_text = CTRDataModule.from_log(log, users=5, user_seed=1, users_from="test", explanations=str(path),
                                       text_encoder=KeywordEncoder())  # fmt: skip
    with_text.setup("fit")
    assert with_text.protocol["explanations_missing"] == {"train": 0, "valid": 0, "test": 0}
    with pytest.raises(ValueError, match="pairs have no explanation"):
        CTRDataModule.from_log(log, explanations=str(path), text_encoder=KeywordEncoder()).setup("fit")
    with pytest.raises(ValueError, match="`users` must be a positive integer"):
        CTRDataModule(users=0)
    with pytest.raises(ValueError, match="`users_from` must be one of"):
        CTRDataModule(users=2, users_from="later")


def test_users_scope_eval_trains_on_every_pair_and_evaluates_on_the_subsample(tmp_path):
    log, clicks = random_log(num_pairs=600)
    sub = CTRDataModule.from_log(log, users=5, user_seed=1, users_from="test", batch_size=1000, eval_batch_size=1000)
    scoped = CTRDataModule.from_log(log, users=5, user_seed=1, users_from="test", users_scope="eval", batch_size=1000,
                                    eval_batch_size=1000)  # fmt: skip
    assert np.array_equal(scoped.split_rows("train"), scoped.samples.split("train"))
    assert np.array_equal(scoped.split_rows("test"), sub.split_rows("test"))
    assert len(next(iter(scoped.train_dataloader()))["user"]) == 480 > len(sub.split_rows("train"))
    kept = set(sub.samples.user[sub.kept_rows].tolist())
    users = log.users.tolist()
    path = tmp_path / "expl.jsonl"
    path.write_text("".join(
        json.dumps({"user": users[k], "item": log.items[k], "text": "fine"}) + "\n"
        for k in range(len(users)) if users[k] in {sub.samples.user_ids[u] for u in kept}
    ))  # fmt: skip
    with pytest.raises(ValueError, match=r"pairs have no explanation \(train \d+ of 480, valid 0 of"):
        CTRDataModule.from_log(log, users=5, user_seed=1, users_from="test", users_scope="eval", explanations=str(path),
                               text_encoder=KeywordEncoder()).setup("fit")  # fmt: skip
    with pytest.warns(UserWarning, match="zero text feature"):
        CTRDataModule.from_log(log, users=5, user_seed=1, users_from="test", users_scope="eval", explanations=str(path),
                               text_encoder=KeywordEncoder(), missing_explanations="zeros").setup("fit")  # fmt: skip
    with pytest.raises(ValueError, match="`users_scope` must be 'all' or 'eval'"):
        CTRDataModule(users=2, users_scope="train")
