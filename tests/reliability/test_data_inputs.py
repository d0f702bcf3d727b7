"""Bad data inputs: each one fails with a message that names the problem and the file (and line).

One test per case. Where the data module could already have written something (the embedding
cache), the test also checks that what was there is untouched and nothing half-written is left.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import lightning as L
import pytest
import torch

from darec.backbones import MatrixFactorization
from darec.callbacks import ContrastiveAlignment
from darec.data import MissingColumnError, RecDataModule, read_csv, read_metadata, read_recbole, read_split_dir
from darec.module import DaRecModule

RATINGS = "user\titem\trating\n" + "".join(f"u{u}\ti{(u + j) % 7}\t5\n" for u in range(4) for j in range(6))


class ToyEncoder:
    """A text encoder that must never be needed by these tests' failing runs."""

    cache_key = {"kind": "reliability-toy"}

    def encode(self, texts: list[str]) -> torch.Tensor:
        return torch.ones(len(texts), 4)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """An embedding cache that already holds an entry from an earlier run."""
    root = tmp_path / "cache"
    (root / "embeddings").mkdir(parents=True)
    (root / "embeddings" / "earlier-entry.pt").write_bytes(b"an earlier, complete cache entry")
    return root


def _load(source: Path, cache: Path, **kwargs) -> None:
    """Reads ``source`` the way a fit does (prepare_data), expecting a failure."""
    RecDataModule(str(source), text_encoder=ToyEncoder(), cache_dir=str(cache), **kwargs).prepare_data()


# ------------------------------------------------------------------------------------------------
# split overlap
# ------------------------------------------------------------------------------------------------
def test_same_pair_in_train_and_test_is_refused(tmp_path):
    split = tmp_path / "split"
    split.mkdir()
    (split / "train.tsv").write_text("user\titem\n0\t0\n0\t1\n1\t1\n1\t2\n")
    (split / "test.tsv").write_text("user\titem\n0\t1\n1\t2\n")  # every test pair is also a training pair
    (split / "user_map.tsv").write_text("id\traw_id\n0\talice\n1\tbob\n")
    (split / "item_map.tsv").write_text("id\traw_id\n0\ta\n1\tb\n2\tc\n")
    with pytest.raises(ValueError) as info:
        RecDataModule(str(split), text_encoder=None).interactions
    message = str(info.value)
    assert str(split) in message
    assert "2 (user, item) pair(s) are in more than one split" in message
    assert "both `train` and `test`" in message
    assert "(alice, b)" in message and "(bob, c)" in message  # raw ids


# ------------------------------------------------------------------------------------------------
# binary files
# ------------------------------------------------------------------------------------------------
def test_binary_file_given_as_tsv(tmp_path, cache):
    path = tmp_path / "ratings.tsv"
    path.write_bytes(b"user\titem\n" + bytes(range(128, 256)) * 4)
    before = _snapshot(cache)
    with pytest.raises(ValueError) as info:
        _load(path, cache)
    message = str(info.value)
    assert str(path) in message and "is not utf-8 text" in message
    assert "byte 10 (line 2)" in message and "binary" in message
    assert _snapshot(cache) == before  # nothing lost, nothing half-written


def test_gzip_file_given_as_tsv(tmp_path, cache):
    path = tmp_path / "ratings.tsv"
    path.write_bytes(gzip.compress(RATINGS.encode()))
    before = _snapshot(cache)
    with pytest.raises(ValueError, match=re.escape(f"{path} is not a text file: it looks like a gzip-compressed file")):
        _load(path, cache)
    assert _snapshot(cache) == before


def test_binary_file_in_a_split_directory(tmp_path):
    split = tmp_path / "split"
    split.mkdir()
    (split / "train.tsv").write_text("user\titem\n0\t0\n")
    (split / "test.tsv").write_bytes(b"user\titem\n0\t" + bytes([0xC3, 0x28, 0xA0, 0xA1]) * 8)  # invalid UTF-8
    with pytest.raises(ValueError, match=re.escape(f"{split / 'test.tsv'} is not utf-8 text: byte 12 (line 2)")):
        read_split_dir(split)


def test_binary_recbole_item_file(tmp_path):
    (tmp_path / "toy.inter").write_text("user_id:token\titem_id:token\n1\t7\n")
    (tmp_path / "toy.item").write_bytes(b"item_id:token\tmovie_title:token_seq\n7\tHeat\x00\x00\n")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'toy.item'} is not a text file: it holds a NUL byte")):
        read_recbole(tmp_path)


def test_binary_item_metadata_file(tmp_path, cache):
    ratings = tmp_path / "ratings.tsv"
    ratings.write_text(RATINGS)
    items = tmp_path / "items.csv"
    items.write_bytes(b"PK\x03\x04" + os.urandom(32))  # a zip archive
    before = _snapshot(cache)
    with pytest.raises(ValueError, match=re.escape(f"{items} is not a text file: it looks like a zip archive")):
        _load(ratings, cache, item_info=str(items))
    assert _snapshot(cache) == before


# ------------------------------------------------------------------------------------------------
# numbers
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "NaN", "inf"])
def test_non_finite_rating_names_file_and_line(tmp_path, cache, value):
    path = tmp_path / "ratings.tsv"
    lines = RATINGS.splitlines()
    lines[3] = f"u0\ti3\t{value}"
    path.write_text("\n".join(lines) + "\n")
    before = _snapshot(cache)
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 4: rating '{value}' is not a finite number")):
        _load(path, cache)
    assert _snapshot(cache) == before


def test_empty_rating_cell_names_file_and_line(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("user,item,rating\nu1,i1,5\n\nu1,i2,\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 4: rating an empty cell is not a number")):
        read_csv(path, rating_col="rating")


# ------------------------------------------------------------------------------------------------
# metadata files
# ------------------------------------------------------------------------------------------------
def test_metadata_without_an_id_column(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("movie,title\n1,Heat\n")
    with pytest.raises(MissingColumnError) as info:
        read_metadata(path)
    assert str(path) in str(info.value)
    assert "no item id column: expected one of ['item_id', 'item', 'id'], found ['movie', 'title']" in str(info.value)


def test_metadata_with_a_repeated_id(tmp_path):
    path = tmp_path / "items.tsv"
    path.write_text("item\ttitle\n1\tHeat\n2\tFargo\n1\tHeat again\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 4: item id '1' is repeated (first on line 2)")):
        read_metadata(path)


def test_metadata_row_with_an_unquoted_separator(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,description\n1,Heat,A cop, a thief\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 2: expected 3 fields")) as info:
        read_metadata(path)
    assert "quote values that contain the separator" in str(info.value)


def test_metadata_whose_ids_match_no_interaction(tmp_path, cache):
    ratings = tmp_path / "ratings.tsv"
    ratings.write_text(RATINGS)
    items = tmp_path / "items.csv"
    items.write_text("item_id,title\n001,Heat\n002,Fargo\n")
    before = _snapshot(cache)
    with pytest.raises(ValueError) as info:
        _load(ratings, cache, item_info=str(items))
    message = str(info.value)
    assert f"none of the 2 item id(s) of {items} occurs in the interactions" in message
    assert "'001'" in message and "'i0'" in message
    assert _snapshot(cache) == before


# ------------------------------------------------------------------------------------------------
# own data without text, fitted with alignment
# ------------------------------------------------------------------------------------------------
def test_alignment_on_ratings_without_text_says_what_is_missing(tmp_path):
    ratings = tmp_path / "ratings.tsv"
    ratings.write_text(RATINGS)
    dm = RecDataModule(str(ratings), text_encoder=ToyEncoder(), min_user_positives=3, cache_dir=str(tmp_path / "c"))
    model = DaRecModule(MatrixFactorization(11, 4))
    trainer = L.Trainer(
        default_root_dir=str(tmp_path), max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, callbacks=[ContrastiveAlignment(weight=0.1)],
    )  # fmt: skip
    with pytest.raises(ValueError) as info:
        trainer.fit(model, datamodule=dm)
    message = str(info.value)
    assert f"the data source {str(ratings)!r} has no user or item text" in message
    assert "item_info=" in message and "item_text.jsonl" in message and "item_embeddings" in message
    assert "text_encoder" not in message  # one was given: do not ask for it
