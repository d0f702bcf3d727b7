"""Tests of darec.data.readers on small files written by the tests."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from darec.data.interactions import Interactions
from darec.data.readers import (
    MissingColumnError,
    from_arrays,
    from_dataframe,
    read_csv,
    read_grouplens_100k,
    read_recbole,
    read_rlmrec,
    read_split_dir,
    write_split_dir,
)
from darec.data.text import item_profiles


# ------------------------------------------------------------------------------------------------
# in-memory sources
# ------------------------------------------------------------------------------------------------
def test_from_arrays() -> None:
    log = from_arrays(np.array([1, 2]), [10.0, 20.0], ratings=[4, 5], timestamps=[1, 2], source="mem")
    assert log.users.tolist() == ["1", "2"]
    assert log.items.tolist() == ["10", "20"]  # integral float ids lose their ".0"
    assert log.ratings.dtype == np.float64 and log.source == "mem"


def test_from_arrays_errors() -> None:
    with pytest.raises(ValueError, match="same length"):
        from_arrays([1, 2], [1])
    with pytest.raises(ValueError, match="empty"):
        from_arrays([], [])
    with pytest.raises(ValueError, match="NaN"):
        from_arrays([1.0, float("nan")], [1, 2])
    with pytest.raises(ValueError, match="ratings"):
        from_arrays([1], [1], ratings=["good"])


def test_from_dataframe_with_pandas() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"uid": [1, 1, 2], "iid": ["a", "b", "a"], "r": [5, 3, 4], "t": [3, 2, 1]})
    log = from_dataframe(df, user_col="uid", item_col="iid", rating_col="r", timestamp_col="t")
    assert log.users.tolist() == ["1", "1", "2"] and log.items.tolist() == ["a", "b", "a"]
    assert log.ratings.tolist() == [5, 3, 4] and log.timestamps.tolist() == [3, 2, 1]
    assert log.source == "dataframe"


def test_from_dataframe_missing_column_names_it() -> None:
    frame = {"user": [1], "item": [2]}
    with pytest.raises(KeyError, match="'rating'"):
        from_dataframe(frame, rating_col="rating")
    with pytest.raises(ValueError, match="available columns: \\['user', 'item'\\]"):
        from_dataframe(frame, user_col="uid")
    assert issubclass(MissingColumnError, KeyError) and issubclass(MissingColumnError, ValueError)


# ------------------------------------------------------------------------------------------------
# read_csv
# ------------------------------------------------------------------------------------------------
def test_read_csv_tsv_with_header(tmp_path: Path) -> None:
    path = tmp_path / "log.tsv"
    path.write_text("uid\tiid\tstars\tts\nu1\ti1\t5\t100\n\nu2\ti2\t3.5\t200\n")
    log = read_csv(path, user_col="uid", item_col="iid", rating_col="stars", timestamp_col="ts")
    assert log.users.tolist() == ["u1", "u2"] and log.items.tolist() == ["i1", "i2"]
    assert log.ratings.tolist() == [5.0, 3.5] and log.timestamps.tolist() == [100, 200]
    assert log.source == "csv:log.tsv"


def test_read_csv_comma_and_positions(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text('user,item,rating\n1,"Heat, 1995",4\n2,Fargo,5\n')
    log = read_csv(path, rating_col=2)
    assert log.items.tolist() == ["Heat, 1995", "Fargo"]
    assert log.ratings.tolist() == [4, 5]


def test_read_csv_sniffs_other_extensions(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("user;item\n1;2\n3;4\n")
    assert read_csv(path).items.tolist() == ["2", "4"]


def test_read_csv_without_header_is_positional(tmp_path: Path) -> None:
    path = tmp_path / "u.data"
    path.write_text("1\t10\t5\t881250949\n2\t20\t3\t881250950\n")
    log = read_csv(path, sep="\t", header=False, rating_col="rating", timestamp_col="timestamp")
    assert log.users.tolist() == ["1", "2"] and log.ratings.tolist() == [5, 3]
    assert log.timestamps.tolist() == [881250949, 881250950]
    swapped = read_csv(path, sep="\t", header=False, user_col=1, item_col=0)
    assert swapped.users.tolist() == ["10", "20"] and swapped.ratings is None
    with pytest.raises(MissingColumnError, match="positional"):
        read_csv(path, sep="\t", header=False, user_col="uid")


def test_read_csv_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("user\titem\trating\n1\t2\t5\n1\t3\tgreat\n")
    with pytest.raises(ValueError, match="line 3: rating 'great' is not a number"):
        read_csv(bad, rating_col="rating")
    with pytest.raises(MissingColumnError, match="'timestamp'"):
        read_csv(bad, timestamp_col="timestamp")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_csv(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("user,item\n")
    with pytest.raises(ValueError, match="no interaction rows"):
        read_csv(header_only)
    short = tmp_path / "short.csv"
    short.write_text("user,item,rating\n1,2,3\n4,5\n")
    with pytest.raises(ValueError, match="line 3: expected at least 3 fields"):
        read_csv(short, rating_col="rating")
    with pytest.raises(FileNotFoundError):
        read_csv(tmp_path / "nope.csv")


# ------------------------------------------------------------------------------------------------
# RecBole atomic files
# ------------------------------------------------------------------------------------------------
def _write_recbole(directory: Path, name: str = "toy") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t1\t5\t10\n1\t2\t4\t20\n2\t1\t3\t30\n"
    )
    (directory / f"{name}.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\tprice:float\n"
        '1\tToy Story\t1995\tAnimation Children\'s Comedy\t9.5\n2\t"Quoted" Film\t1990\tDrama\t\n',
        encoding="utf-8",
    )
    (directory / f"{name}.user").write_text(
        "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n1\t24\tM\ttechnician\t85711\n"
    )


def test_read_recbole(tmp_path: Path) -> None:
    _write_recbole(tmp_path)
    log = read_recbole(tmp_path)
    assert log.source == "recbole:toy" and len(log) == 3
    assert log.ratings.tolist() == [5, 4, 3] and log.timestamps.tolist() == [10, 20, 30]
    assert log.item_info["1"] == {
        "movie_title": "Toy Story",
        "release_year": "1995",
        "class": "Animation Children's Comedy",
        "price": 9.5,
    }
    assert log.item_info["2"]["movie_title"] == '"Quoted" Film' and log.item_info["2"]["price"] is None
    assert log.user_info["1"] == {"age": "24", "gender": "M", "occupation": "technician", "zip_code": "85711"}


def test_read_recbole_optional_files_and_fields(tmp_path: Path) -> None:
    (tmp_path / "mini.inter").write_text("user_id:token\titem_id:token\nu\ti\n")
    log = read_recbole(tmp_path, "mini")
    assert log.ratings is None and log.timestamps is None and log.item_info == {} and log.user_info == {}


def test_read_recbole_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no RecBole .inter"):
        read_recbole(tmp_path)
    _write_recbole(tmp_path, "a")
    _write_recbole(tmp_path, "b")
    with pytest.raises(ValueError, match="several .inter files"):
        read_recbole(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_recbole(tmp_path, "c")
    (tmp_path / "c.inter").write_text("uid:token\titem_id:token\n1\t2\n")
    with pytest.raises(MissingColumnError, match="'user_id'"):
        read_recbole(tmp_path, "c")
    (tmp_path / "d.inter").write_text("user_id\titem_id:token\n1\t2\n")
    with pytest.raises(ValueError, match="malformed header"):
        read_recbole(tmp_path, "d")
    (tmp_path / "e.inter").write_text("user_id:token\titem_id:token\trating:float\n1\t2\tx\n")
    with pytest.raises(ValueError, match="line 2: rating 'x' is not a number"):
        read_recbole(tmp_path, "e")
    (tmp_path / "f.inter").write_text("user_id:token\titem_id:token\n1\t2\t3\n")
    with pytest.raises(ValueError, match="line 2: expected 2"):
        read_recbole(tmp_path, "f")


# ------------------------------------------------------------------------------------------------
# GroupLens MovieLens-100K
# ------------------------------------------------------------------------------------------------
GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip


def _flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in GENRES)


def _write_grouplens(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "u.data").write_text("1\t1\t5\t874965758\n1\t2\t3\t876893171\n2\t267\t4\t878542960\n")
    (directory / "u.genre").write_text("".join(f"{g}|{k}\n" for k, g in enumerate(GENRES)) + "\n")
    lines = [
        "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|"
        + _flags("Animation", "Children's", "Comedy"),
        f"2|Misérables, Les (1995)|01-Jan-1995||http://x|{_flags('Drama', 'Musical')}",
        f"3|Nameless Film|12-Mar-1971||http://x|{_flags('Sci-Fi', 'Film-Noir')}",
        f"267|unknown||||{_flags('unknown')}",
    ]
    (directory / "u.item").write_bytes(("\n".join(lines) + "\n").encode("iso-8859-1"))
    (directory / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")


def test_read_grouplens_100k(tmp_path: Path) -> None:
    _write_grouplens(tmp_path)
    log = read_grouplens_100k(tmp_path)
    assert log.source == "grouplens:ml-100k" and len(log) == 3
    assert log.ratings.tolist() == [5, 3, 4] and log.timestamps[0] == 874965758
    assert log.item_info["1"] == {"movie_title": "Toy Story", "release_year": "1995", "class": "Animation Children's Comedy"}
    assert log.item_info["2"]["movie_title"] == "Misérables, Les"
    assert log.item_info["3"] == {"movie_title": "Nameless Film", "release_year": "1971", "class": "Film-Noir Sci-Fi"}
    assert log.user_info["2"] == {"age": "53", "gender": "F", "occupation": "other", "zip_code": "94043"}


def test_grouplens_and_recbole_give_the_same_item_text(tmp_path: Path) -> None:
    _write_grouplens(tmp_path / "gl")
    (tmp_path / "rb").mkdir()
    (tmp_path / "rb" / "ml.inter").write_text("user_id:token\titem_id:token\n1\t1\n")
    (tmp_path / "rb" / "ml.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\n2\tMisérables, Les\t1995\tDrama Musical\n"
        "267\tunkonwn\tunkonwn\tunknown\n",
        encoding="utf-8",
    )
    ids = ["1", "2", "267"]
    from_grouplens = item_profiles(ids, read_grouplens_100k(tmp_path / "gl").item_info)
    from_recbole = item_profiles(ids, read_recbole(tmp_path / "rb").item_info)
    assert from_grouplens == from_recbole == [
        "Toy Story (1995). Genres: Animation, Children's, Comedy.",
        "Misérables, Les (1995). Genres: Drama, Musical.",
        "Unknown title. Genres: unknown.",
    ]


def test_read_grouplens_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="u.data"):
        read_grouplens_100k(tmp_path)
    _write_grouplens(tmp_path)
    (tmp_path / "u.genre").unlink()
    with pytest.raises(FileNotFoundError, match="u.genre"):
        read_grouplens_100k(tmp_path)
    (tmp_path / "u.genre").write_text("unknown|0\nAction|1\n")
    with pytest.raises(ValueError, match="u.item, line 1: expected 7"):
        read_grouplens_100k(tmp_path)


# ------------------------------------------------------------------------------------------------
# split directories
# ------------------------------------------------------------------------------------------------
def _toy_interactions(**kwargs: object) -> Interactions:
    return Interactions(
        num_users=3,
        num_items=4,
        train=[[0, 0], [0, 1], [1, 2], [2, 3]],
        valid=[[0, 2]],
        test=[[1, 0], [2, 1]],
        user_ids=["u10", "u2", "u3"],
        item_ids=["i1", "i2", "i3", "i4"],
        user_text=["A user.", "Another user.", "Une utilisatrice."],
        item_text=["One.", "Two.", "Three.", "Quatre — four."],
        protocol={"name": "toy", "seed": 1, "ratios": (3, 1, 1)},
        **kwargs,
    )


def test_split_dir_round_trip(tmp_path: Path) -> None:
    data = _toy_interactions()
    out = write_split_dir(data, tmp_path / "nested" / "split")
    assert out == tmp_path / "nested" / "split"
    back = read_split_dir(out)
    for name in ("train", "valid", "test"):
        assert np.array_equal(back.split(name), data.split(name))
    assert back.user_ids.tolist() == data.user_ids.tolist() and back.item_ids.tolist() == data.item_ids.tolist()
    assert back.user_text == data.user_text and back.item_text == data.item_text
    assert back.protocol["name"] == "toy" and back.protocol["ratios"] == [3, 1, 1]
    assert back.protocol["counts"]["train"] == 4
    assert (out / "train.tsv").read_text().startswith("user\titem\n0\t0\n")
    assert [p.name for p in (tmp_path / "nested").iterdir()] == ["split"]  # no temporary left behind


def test_write_split_dir_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "split"
    write_split_dir(_toy_interactions(), target)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_split_dir(_toy_interactions(), target)
    smaller = Interactions(1, 1, train=[[0, 0]])
    write_split_dir(smaller, target, overwrite=True)
    back = read_split_dir(target)
    assert (back.num_users, back.num_items) == (1, 1) and back.user_text is None
    assert not (target / "user_text.jsonl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split"]


def test_read_split_dir_minimal_without_maps(tmp_path: Path) -> None:
    (tmp_path / "train.tsv").write_text("user\titem\n0\t0\n1\t4\n")
    (tmp_path / "valid.tsv").write_text("user\titem\n")
    data = read_split_dir(tmp_path)
    assert (data.num_users, data.num_items) == (2, 5)
    assert len(data.valid) == 0 and len(data.test) == 0
    assert data.user_ids.tolist() == ["0", "1"]


def test_read_split_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train.tsv is missing"):
        read_split_dir(tmp_path)
    out = write_split_dir(_toy_interactions(), tmp_path / "s")

    text = out / "item_text.jsonl"
    lines = text.read_text(encoding="utf-8").splitlines()
    text.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="stats.json"):  # digest check first
        read_split_dir(out)
    with pytest.raises(ValueError, match=r"cover 0 \.\. 3 exactly once; missing \[3\]"):
        read_split_dir(out, verify=False)

    record = json.loads(lines[0])
    record["raw_id"] = "other"
    text.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="raw_id 'other' but the id map says 'i1'"):
        read_split_dir(out, verify=False)

    (out / "item_text.jsonl").unlink()
    (out / "item_map.tsv").write_text("id\traw_id\n0\ti1\n2\ti3\n")
    with pytest.raises(ValueError, match="item_map.tsv: ids must cover"):
        read_split_dir(out, verify=False)

    (out / "item_map.tsv").unlink()
    (out / "train.tsv").write_text("user\titem\n0\tx\n")
    with pytest.raises(ValueError, match="train.tsv, line 2: ids must be integers"):
        read_split_dir(out, verify=False)
    (out / "train.tsv").write_text("u\ti\n0\t1\n")
    with pytest.raises(ValueError, match="header"):
        read_split_dir(out, verify=False)


# ------------------------------------------------------------------------------------------------
# RLMRec pickles
# ------------------------------------------------------------------------------------------------
def _dump(obj: object, path: Path) -> None:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle)


def _write_rlmrec(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    _dump(sp.coo_matrix((np.ones(4), ([0, 0, 1, 2], [0, 1, 2, 3])), shape=(3, 5)), directory / "trn_mat.pkl")
    _dump(sp.csr_matrix((np.ones(1), ([1], [0])), shape=(3, 5)), directory / "val_mat.pkl")
    _dump(sp.coo_matrix((np.ones(2), ([0, 2], [4, 0])), shape=(3, 5)), directory / "tst_mat.pkl")
    _dump(np.arange(6, dtype=np.float64).reshape(3, 2), directory / "usr_emb_np.pkl")


def test_read_rlmrec(tmp_path: Path) -> None:
    _write_rlmrec(tmp_path)
    data, embeddings = read_rlmrec(tmp_path, trust_pickle=True)
    assert (data.num_users, data.num_items) == (3, 5)
    assert data.train.tolist() == [[0, 0], [0, 1], [1, 2], [2, 3]]
    assert data.valid.tolist() == [[1, 0]] and data.test.tolist() == [[0, 4], [2, 0]]
    assert set(embeddings) == {"user"} and embeddings["user"].shape == (3, 2)
    assert embeddings["user"].dtype == np.float32
    assert data.protocol["name"] == "rlmrec"


def test_read_rlmrec_refuses_pickles_by_default(tmp_path: Path) -> None:
    _write_rlmrec(tmp_path)
    with pytest.raises(ValueError, match="trust_pickle=True") as err:
        read_rlmrec(tmp_path)
    assert "execute arbitrary code" in str(err.value)


def test_read_rlmrec_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="trn_mat.pkl"):
        read_rlmrec(tmp_path, trust_pickle=True)
    _write_rlmrec(tmp_path)
    _dump(np.zeros((4, 2)), tmp_path / "itm_emb_np.pkl")
    with pytest.raises(ValueError, match=r"itm_emb_np.pkl must have shape \(5, d\)"):
        read_rlmrec(tmp_path, trust_pickle=True)
    os.remove(tmp_path / "itm_emb_np.pkl")
    _dump(sp.csr_matrix((3, 6)), tmp_path / "val_mat.pkl")
    with pytest.raises(ValueError, match=r"val_mat.pkl has shape \(3, 6\)"):
        read_rlmrec(tmp_path, trust_pickle=True)


def test_read_csv_detect_optional_reads_rating_and_timestamp_when_present(tmp_path):
    from darec.data import read_csv

    with_both = tmp_path / "both.tsv"
    with_both.write_text("user\titem\trating\ttimestamp\nu1\ti1\t5\t10\nu2\ti2\t2\t20\n")
    log = read_csv(with_both, detect_optional=True)
    assert log.ratings.tolist() == [5.0, 2.0] and log.timestamps.tolist() == [10.0, 20.0]
    assert read_csv(with_both).ratings is None  # off by default: None still means "not read"
    plain = tmp_path / "plain.csv"
    plain.write_text("user,item\nu1,i1\n")
    log = read_csv(plain, detect_optional=True)
    assert log.ratings is None and log.timestamps is None
