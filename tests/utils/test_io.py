"""Tests of darec.utils.io: the cache directory, checksums and atomic writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from darec.utils.io import atomic_write, default_cache_dir, sha256_file


def test_default_cache_dir_uses_darec_home(monkeypatch, tmp_path):
    monkeypatch.setenv("DAREC_HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home"
    monkeypatch.setenv("DAREC_HOME", "~/somewhere")
    assert default_cache_dir() == Path("~/somewhere").expanduser()


def test_default_cache_dir_fallback(monkeypatch, tmp_path):
    monkeypatch.delenv("DAREC_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "darec"


def test_autouse_fixture_isolates_the_cache(_isolated_darec_home):
    assert default_cache_dir() == _isolated_darec_home
    assert Path.home() / ".cache" / "darec" != default_cache_dir()


@pytest.mark.parametrize("chunk_size", [1, 7, 1 << 20])
def test_sha256_file(tmp_path, chunk_size):
    data = bytes(range(256)) * 10
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert sha256_file(path, chunk_size=chunk_size) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("mode", "content"), [("wb", b"new bytes"), ("w", "new text")])
def test_atomic_write_success(tmp_path, mode, content):
    path = tmp_path / "deep" / "dir" / "out"
    with atomic_write(path, mode) as handle:
        handle.write(content)
        assert not path.exists()  # nothing visible under the final name before the block ends
    assert (path.read_bytes() if mode == "wb" else path.read_text()) == content
    assert [p.name for p in path.parent.iterdir()] == ["out"]


def test_atomic_write_replaces_existing(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write("néw")
    assert path.read_text(encoding="utf-8") == "néw"


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_write_failure_keeps_old_file(tmp_path, error):
    path = tmp_path / "out.txt"
    path.write_text("old content")
    with pytest.raises(type(error)):
        with atomic_write(path, "w") as handle:
            handle.write("half of the new cont")
            raise error
    assert path.read_text() == "old content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left


def test_atomic_write_failure_creates_nothing(tmp_path):
    path = tmp_path / "new.bin"
    with pytest.raises(ValueError, match="stop"):
        with atomic_write(path) as handle:
            handle.write(b"partial")
            raise ValueError("stop")
    assert list(tmp_path.iterdir()) == []
