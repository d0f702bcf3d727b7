"""Tests of darec.data.datamodule.RecDataModule: sources, loaders, masks, embeddings and the text cache."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from darec.data import RecDataModule, write_split_dir


class CountingEncoder:
    """A toy text encoder that records every call to ``encode``."""

    def __init__(self, key: str = "counting") -> None:
        self.cache_key = {"kind": "toy", "model": key}
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        return torch.tensor([[float(len(t)), float(sum(map(ord, t)) % 97), 1.0] for t in texts])


def _rows(pairs) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for u, i in np.asarray(pairs).tolist():
        out.setdefault(u, []).append(i)
    return {u: sorted(v) for u, v in out.items()}


def _ranking_rows(loader, key: str) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for batch in loader:
        for u in batch["user"].tolist():
            out.setdefault(u, [])
        for row, item in batch[key].t().tolist():
            out[int(batch["user"][row])].append(item)
    return {u: sorted(v) for u, v in out.items() if v}


def test_from_interactions_train_batches(tiny_interactions):
    dm = RecDataModule.from_interactions(tiny_interactions, text_encoder=None, batch_size=3, seed=0)
    assert (dm.num_users, dm.num_items, dm.num_nodes) == (4, 6, 10)
    dm.setup("fit")
    assert dm.text_embeddings == {}
    train = {tuple(p) for p in tiny_interactions.train.tolist()}
    for _ in range(5):
        batches = list(dm.train_dataloader())
        assert len(batches) == 3
        assert all(set(b) == {"user", "pos", "neg"} for b in batches)
        got = [(u, i) for b in batches for u, i in zip(b["user"].tolist(), b["pos"].tolist())]
        assert sorted(got) == sorted(train)
        for b in batches:
            assert all((u, n) not in train for u, n in zip(b["user"].tolist(), b["neg"].tolist()))


def test_from_interactions_requires_interactions():
    with pytest.raises(TypeError, match="expected darec.data.Interactions"):
        RecDataModule.from_interactions(np.zeros((2, 2)), text_encoder=None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "`batch_size` must be positive"),
        ({"eval_batch_size": -1}, "`eval_batch_size` must be positive"),
        ({"split": "leave-one-out"}, "`split` must be 'random' or 'temporal'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RecDataModule(text_encoder=None, **kwargs)


def test_ranking_masks(tiny_interactions):
    data = tiny_interactions
    dm = RecDataModule.from_interactions(data, text_encoder=None, eval_batch_size=3)
    dm.setup("fit")
    val = dm.val_dataloader()
    assert _ranking_rows(val, "exclude") == _rows(data.train)
    assert _ranking_rows(val, "target") == _rows(data.valid)
    test = dm.test_dataloader()
    assert _ranking_rows(test, "exclude") == _rows(np.concatenate([data.train, data.valid]))
    assert _ranking_rows(test, "target") == _rows(data.test)
    predict = list(dm.predict_dataloader())
    assert torch.cat([b["user"] for b in predict]).tolist() == [0, 1, 2, 3]
    assert all("target" not in b for b in predict)
    assert _ranking_rows(predict, "exclude") == _rows(np.concatenate([data.train, data.valid, data.test]))
    with pytest.raises(ValueError, match="unknown stage 'fit'"):
        dm.ranking_users("fit")


@pytest.mark.parametrize(("empty", "method"), [("valid", "val_dataloader"), ("test", "test_dataloader")])
def test_empty_heldout_split(tiny_interactions, empty, method):
    data = replace(tiny_interactions, **{empty: None})
    dm = RecDataModule.from_interactions(data, text_encoder=None)
    dm.setup("fit")
    with pytest.raises(ValueError, match=f"the {empty} split is empty"):
        getattr(dm, method)()


def test_split_dir_source(tiny_interactions, tmp_path):
    directory = write_split_dir(tiny_interactions, tmp_path / "split")
    dm = RecDataModule(str(directory), text_encoder=None, batch_size=4)
    data = dm.interactions
    for name in ("train", "valid", "test"):
        assert data.split(name).tolist() == tiny_interactions.split(name).tolist()
    assert data.item_text == tiny_interactions.item_text
    assert data.user_ids.tolist() == tiny_interactions.user_ids.tolist()
    dm.setup("fit")
    assert sum(len(b["user"]) for b in dm.train_dataloader()) == len(tiny_interactions.train)


def _write_ratings(path, sep: str = "\t") -> tuple[set, set]:
    rng = np.random.default_rng(0)
    lines, liked, disliked = [f"user{sep}item{sep}rating"], set(), set()
    for u in range(8):
        for i in rng.choice(20, size=10, replace=False).tolist():
            rating = 5 if (u + i) % 3 else 2
            lines.append(f"u{u}{sep}m{i}{sep}{rating}")
            (liked if rating >= 4 else disliked).add((f"u{u}", f"m{i}"))
    path.write_text("\n".join(lines) + "\n")
    return liked, disliked


@pytest.mark.parametrize("suffix", [".tsv", ".csv"])
def test_ratings_file_source_goes_through_random_split(tmp_path, suffix):
    path = tmp_path / f"log{suffix}"
    liked, disliked = _write_ratings(path, "\t" if suffix == ".tsv" else ",")
    dm = RecDataModule(str(path), text_encoder=None, min_user_positives=3, split_seed=1)
    data = dm.interactions
    assert data.protocol["name"] == "random" and data.protocol["seed"] == 1
    pairs = np.concatenate([data.train, data.valid, data.test])
    raw = {(data.user_ids[u], data.item_ids[i]) for u, i in pairs.tolist()}
    assert raw == liked  # the rating column is read: ratings below 4 are not positives
    assert not raw & disliked
    assert len(data.valid) and len(data.test)
    assert set(data.train[:, 0].tolist()) == set(range(data.num_users))


def test_missing_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RecDataModule(str(tmp_path / "nope"), text_encoder=None).interactions


def test_unknown_layout(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing useful")
    with pytest.raises(ValueError, match="cannot tell the layout"):
        RecDataModule(str(tmp_path), text_encoder=None).interactions


def test_no_source():
    with pytest.raises(ValueError, match="RecDataModule has no data"):
        RecDataModule(text_encoder=None).interactions


def _save(array: np.ndarray, path) -> None:
    if path.suffix == ".pt":
        torch.save(torch.from_numpy(array), path)
    elif path.suffix == ".npy":
        np.save(path, array)
    else:
        np.savez(path, emb=array)


@pytest.mark.parametrize("suffix", [".pt", ".npy", ".npz"])
def test_precomputed_embeddings(tiny_interactions, tmp_path, suffix):
    users = np.random.default_rng(0).standard_normal((4, 5))
    items = np.random.default_rng(1).standard_normal((6, 3)).astype(np.float32)
    _save(users, tmp_path / f"u{suffix}")
    _save(items, tmp_path / f"i{suffix}")
    dm = RecDataModule.from_interactions(
        tiny_interactions,
        text_encoder=None,
        user_embeddings=str(tmp_path / f"u{suffix}"),
        item_embeddings=str(tmp_path / f"i{suffix}"),
    )
    dm.setup("fit")
    assert set(dm.text_embeddings) == {"user", "item"}
    assert dm.text_embeddings["user"].dtype == torch.float32
    torch.testing.assert_close(dm.text_embeddings["user"], torch.from_numpy(users).float())
    torch.testing.assert_close(dm.text_embeddings["item"], torch.from_numpy(items))


@pytest.mark.parametrize("suffix", [".pt", ".npy"])
@pytest.mark.parametrize(
    ("side", "rows", "nan_row", "message"),
    [
        ("item", 6, 2, r"item embeddings from .* contain NaN or infinite values in 1 row\(s\), e.g. rows \[2\]"),
        ("item", 5, None, "item embeddings from .* has 5 rows but there are 6 entities"),
        ("user", 6, None, "user embeddings from .* has 6 rows but there are 4 entities"),
    ],
)
def test_bad_precomputed_embeddings(tiny_interactions, tmp_path, suffix, side, rows, nan_row, message):
    array = np.ones((rows, 3), dtype=np.float32)
    if nan_row is not None:
        array[nan_row, 1] = np.nan
    path = tmp_path / f"emb{suffix}"
    _save(array, path)
    dm = RecDataModule.from_interactions(tiny_interactions, text_encoder=None, **{f"{side}_embeddings": str(path)})
    with pytest.raises(ValueError, match=message):
        dm.setup("fit")


def test_text_embeddings_are_cached(tiny_interactions):
    first = CountingEncoder()
    dm = RecDataModule.from_interactions(tiny_interactions, text_encoder=first)
    dm.prepare_data()
    dm.setup("fit")
    assert sorted(map(len, first.calls)) == [4, 6]  # user and item text, once each
    assert dm.text_embeddings["user"].shape == (4, 3) and dm.text_embeddings["item"].shape == (6, 3)

    second = CountingEncoder()
    again = RecDataModule.from_interactions(tiny_interactions, text_encoder=second)
    again.setup("fit")
    assert second.calls == []  # served from the on-disk cache
    for side in ("user", "item"):
        torch.testing.assert_close(again.text_embeddings[side], dm.text_embeddings[side])

    changed = replace(tiny_interactions, item_text=[*tiny_interactions.item_text[:-1], "a new title"])
    third = CountingEncoder()
    dm3 = RecDataModule.from_interactions(changed, text_encoder=third)
    dm3.setup("fit")
    assert third.calls == [changed.item_text]  # only the side whose text changed is encoded again
    assert dm3.text_embeddings["item"][-1, 0] == len("a new title")

    other_model = CountingEncoder("another-model")
    RecDataModule.from_interactions(tiny_interactions, text_encoder=other_model).setup("fit")
    assert len(other_model.calls) == 2


def test_precomputed_side_is_not_encoded(tiny_interactions, tmp_path):
    np.save(tmp_path / "items.npy", np.zeros((6, 2), dtype=np.float32))
    encoder = CountingEncoder()
    dm = RecDataModule.from_interactions(
        tiny_interactions, text_encoder=encoder, item_embeddings=str(tmp_path / "items.npy")
    )
    dm.setup("fit")
    assert encoder.calls == [tiny_interactions.user_text]
    assert dm.text_embeddings["item"].shape == (6, 2)
    assert dm.protocol["text_encoder"] == encoder.cache_key


def test_sampler_state_round_trip(tiny_interactions):
    dm = RecDataModule.from_interactions(tiny_interactions, text_encoder=None, batch_size=2, seed=3)
    dm.setup("fit")
    list(dm.train_dataloader())
    state = dm.state_dict()
    expected = [torch.stack([b["user"], b["pos"], b["neg"]]).tolist() for b in dm.train_dataloader()]
    resumed = RecDataModule.from_interactions(tiny_interactions, text_encoder=None, batch_size=2, seed=42)
    resumed.load_state_dict(state)
    resumed.setup("fit")
    assert [torch.stack([b["user"], b["pos"], b["neg"]]).tolist() for b in resumed.train_dataloader()] == expected


def test_resuming_with_workers_warns_that_it_is_not_exact(tiny_interactions):
    dm = RecDataModule.from_interactions(tiny_interactions, text_encoder=None, num_workers=1)
    state = RecDataModule.from_interactions(tiny_interactions, text_encoder=None)
    state.setup("fit")
    with pytest.warns(UserWarning, match="num_workers=1.*not|num_workers=1.*other batches"):
        dm.load_state_dict(state.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state.load_state_dict(state.state_dict())  # without workers: exact, no warning
