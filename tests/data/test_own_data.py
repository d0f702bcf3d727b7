"""Own data with text: a ratings file plus item/user metadata files, through to an aligned fit."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch

from darec.backbones import MatrixFactorization
from darec.callbacks import ContrastiveAlignment
from darec.cli import cli
from darec.data import RecDataModule, attach_metadata, from_arrays, read_csv, read_metadata, write_split_dir
from darec.module import DaRecModule
from tests.module import conftest as _module_fixtures

NUM_USERS, NUM_ITEMS, TEXT_DIM = 8, 10, 6
# i99 is never rated and i9 has no metadata row: both are expected and counted in warnings.
pytestmark = pytest.mark.filterwarnings(r"ignore:.*(have no interaction|have no metadata).*:UserWarning")

ITEMS_CSV = """\
item_id,title,year,genres,description
i0,Heat,1995,Action|Crime,"A detective hunts a crew of thieves, in Los Angeles."
i1,Fargo,1996,Crime|Drama,A kidnapping goes wrong in the snow
i2,Alien,1979,Horror|Sci-Fi,
i3,Babe,1995,Children's|Comedy,A pig wants to herd sheep.
i4,Brazil,1985,Sci-Fi,A clerk dreams of escape.
i5,Ran,1985,Drama|War,A warlord divides his kingdom.
i6,Clue,1985,Comedy|Mystery,Six guests and a murder.
i7,Tron,1982,Sci-Fi,A programmer inside a computer.
i8,Jaws,1975,Thriller,A shark terrorises a beach town.
i99,Never Rated,2000,Drama,Nobody rated this one.
"""

USERS_TSV = "user\tage\tgender\toccupation\tcountry\n" + "".join(
    f"u{k}\t{20 + k}\t{'F' if k % 2 else 'M'}\twriter\tNorway\n" for k in range(NUM_USERS)
)


class HashEncoder:
    """A tiny deterministic "text encoder": each text maps to a vector derived from its SHA-256."""

    cache_key = {"kind": "hash-toy", "dim": TEXT_DIM}

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str]) -> torch.Tensor:
        self.seen += texts
        rows = [list(hashlib.sha256(t.encode()).digest()[:TEXT_DIM]) for t in texts]
        return torch.tensor(rows, dtype=torch.float32) / 255.0


def _write_own_data(root: Path) -> tuple[Path, Path, Path]:
    """8 users x 10 items, 6 liked items per user (ratings 5 and 4) and 2 disliked (rating 1)."""
    rows = ["user,item,rating,timestamp"]
    for user in range(NUM_USERS):
        for j in range(8):
            item = (user + j) % NUM_ITEMS
            rows.append(f"u{user},i{item},{5 if j < 3 else 4 if j < 6 else 1},{1000 + 10 * user + j}")
    ratings = root / "ratings.csv"
    ratings.write_text("\n".join(rows) + "\n")
    items = root / "items.csv"
    items.write_text(ITEMS_CSV)
    users = root / "users.tsv"
    users.write_text(USERS_TSV)
    return ratings, items, users


_one_thread = _module_fixtures._one_thread  # autouse: one intra-op thread for these tiny tensors


# ------------------------------------------------------------------------------------------------
# metadata files
# ------------------------------------------------------------------------------------------------
def test_read_metadata_csv_keeps_every_column_and_quoted_separators(tmp_path):
    _, items, _ = _write_own_data(tmp_path)
    info = read_metadata(items)
    assert info["i0"] == {
        "title": "Heat",
        "year": "1995",
        "genres": "Action|Crime",
        "description": "A detective hunts a crew of thieves, in Los Angeles.",
    }
    assert "description" not in info["i2"]  # an empty cell is left out


@pytest.mark.parametrize("id_name", ["item_id", "item", "id"])
def test_read_metadata_accepts_the_documented_id_columns(tmp_path, id_name):
    path = tmp_path / "items.tsv"
    path.write_text(f"{id_name}\tname\n7\tWidget\n")
    assert read_metadata(path) == {"7": {"name": "Widget"}}


def test_read_metadata_user_file_and_explicit_id_column(tmp_path):
    _, _, users = _write_own_data(tmp_path)
    expected = {"age": "23", "gender": "F", "occupation": "writer", "country": "Norway"}
    assert read_metadata(users, "user")["u3"] == expected
    path = tmp_path / "people.txt"
    path.write_text("who;age\nann;40\nbob;31\n")
    assert read_metadata(path, "user", id_col="who") == {"ann": {"age": "40"}, "bob": {"age": "31"}}


def test_read_metadata_jsonl_keeps_json_types(tmp_path):
    path = tmp_path / "items.jsonl"
    lines = [{"item_id": 1, "title": "Heat", "genres": ["Action", "Crime"], "note": None}, {"item_id": 2, "title": ""}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + "\n")
    assert read_metadata(path) == {"1": {"title": "Heat", "genres": ["Action", "Crime"]}, "2": {}}


def test_attach_metadata_ignores_unknown_ids_with_a_count(tmp_path):
    log = from_arrays(["u", "u"], ["a", "b"])
    with pytest.warns(UserWarning, match=r"2 of 3 item\(s\) in the item metadata have no interaction .*'x'"):
        out = attach_metadata(log, item_info={"a": {"title": "A"}, "x": {}, "y": {}})
    assert out.item_info == {"a": {"title": "A"}} and log.item_info == {}


def test_read_csv_with_metadata_files(tmp_path):
    ratings, items, users = _write_own_data(tmp_path)
    with pytest.warns(UserWarning, match="1 of 10 item"):  # i99 is never rated
        log = read_csv(ratings, rating_col="rating", item_info=items, user_info=users)
    assert sorted(log.item_info) == [f"i{k}" for k in range(9)]
    assert log.user_info["u0"]["occupation"] == "writer"


# ------------------------------------------------------------------------------------------------
# the data module
# ------------------------------------------------------------------------------------------------
def _datamodule(root: Path, **kwargs) -> RecDataModule:
    ratings, items, users = _write_own_data(root)
    kwargs = {"item_info": str(items), "user_info": str(users), "text_encoder": HashEncoder(), "batch_size": 8,
              "eval_batch_size": 4, "seed": 0, "cache_dir": str(root / "cache"), **kwargs}  # fmt: skip
    return RecDataModule(str(ratings), **kwargs)


def test_datamodule_builds_item_and_user_text_from_metadata_files(tmp_path):
    dm = _datamodule(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = dm.interactions
    messages = [str(w.message) for w in caught]
    assert any("1 of 10 item(s)" in m and "ignored" in m for m in messages)  # i99
    assert any("1 of 10 item(s) have no metadata" in m for m in messages)  # i9
    text = dict(zip(data.item_ids.tolist(), data.item_text))
    assert text["i0"] == (
        "Heat (1995). Genres: Action, Crime. Description: A detective hunts a crew of thieves, in Los Angeles."
    )
    assert text["i1"] == "Fargo (1996). Genres: Crime, Drama. Description: A kidnapping goes wrong in the snow."
    assert text["i2"] == "Alien (1979). Genres: Horror, Sci-Fi."
    assert text["i9"] == "Item i9."
    users = dict(zip(data.user_ids.tolist(), data.user_text))
    assert users["u1"].startswith("A 21-year-old female user whose occupation is writer. Country: Norway. Genres")
    assert "Items they liked include:" in users["u1"]
    assert data.protocol["metadata_files"] == {"item_info": dm.item_info_path, "user_info": dm.user_info_path}


def test_user_text_uses_training_pairs_only(tmp_path):
    data = _datamodule(tmp_path).interactions
    titles = {raw: text.split(".")[0] for raw, text in zip(data.item_ids.tolist(), data.item_text)}
    for user, text in enumerate(data.user_text):
        held_out = [p[1] for name in ("valid", "test") for p in data.split(name).tolist() if p[0] == user]
        liked = text.split("Items they liked include: ")[1]
        for item in held_out:
            assert titles[data.item_ids[item]] not in liked.split("; ")


def test_metadata_files_with_a_split_directory_are_refused(tmp_path, tiny_interactions):
    split = write_split_dir(tiny_interactions, tmp_path / "split")
    (tmp_path / "items.csv").write_text("item_id,title\ni0,Heat\n")
    dm = RecDataModule(str(split), item_info=str(tmp_path / "items.csv"), text_encoder=None)
    with pytest.raises(ValueError, match=r"item_info= only apply to unsplit sources .* already split"):
        dm.interactions


def test_metadata_with_interactions_in_memory_is_refused(tiny_interactions):
    with pytest.raises(ValueError, match="item_info/user_info are read with a `source`"):
        RecDataModule.from_interactions(tiny_interactions, item_info="items.csv", text_encoder=None)


def test_fit_with_contrastive_alignment_on_own_data(tmp_path):
    encoder = HashEncoder()
    dm = _datamodule(tmp_path, text_encoder=encoder)
    torch.manual_seed(0)
    model = DaRecModule(MatrixFactorization(NUM_USERS + NUM_ITEMS, 8), lr=0.01)
    trainer = L.Trainer(
        default_root_dir=str(tmp_path), max_epochs=2, accelerator="cpu", devices=1, logger=False,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        num_sanity_val_steps=0, callbacks=[ContrastiveAlignment(weight=0.5)],
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    data = dm.interactions
    assert set(data.item_text) <= set(encoder.seen) and set(data.user_text) <= set(encoder.seen)
    assert any("Description: A pig wants to herd sheep." in t for t in encoder.seen)
    torch.testing.assert_close(model.text_item.cpu(), encoder.encode(data.item_text))
    torch.testing.assert_close(model.text_user.cpu(), encoder.encode(data.user_text))
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert "val/recall@20" in trainer.callback_metrics


def test_cli_reads_metadata_files(tmp_path):
    ratings, items, users = _write_own_data(tmp_path)
    args = [
        "--model.backbone", "darec.backbones.MatrixFactorization",
        "--model.backbone.embedding_dim", "4",
        "--data", "darec.data.RecDataModule",
        "--data.source", str(ratings),
        "--data.item_info", str(items),
        "--data.user_info", str(users),
        "--data.text_encoder", "null",
        "--trainer.logger", "false",
    ]  # fmt: skip
    instance = cli(args=args, run=False)
    data = instance.datamodule.interactions
    assert instance.datamodule.item_info_path == str(items)
    assert any(t.startswith("Heat (1995). Genres: Action, Crime. Description:") for t in data.item_text)


def test_item_info_replaces_the_metadata_of_a_recbole_folder(tmp_path):
    folder = tmp_path / "toy"
    folder.mkdir()
    rows = "".join(f"{u}\t{(u + j) % 6}\t5\n" for u in range(3) for j in range(5))
    (folder / "toy.inter").write_text("user_id:token\titem_id:token\trating:float\n" + rows)
    old_titles = "".join(f"{i}\tOld {i}\n" for i in range(6))
    (folder / "toy.item").write_text("item_id:token\tmovie_title:token_seq\n" + old_titles)
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"id": i, "title": f"New {i}", "plot": "Short."}) + "\n" for i in range(6)))
    dm = RecDataModule(str(folder), item_info=str(items), text_encoder=None)
    assert dm.interactions.item_text[:2] == ["New 0. Plot: Short.", "New 1. Plot: Short."]
