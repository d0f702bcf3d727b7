"""Tests of darec.data.download: verified downloads that never leave partial files."""

from __future__ import annotations

import hashlib
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import darec.utils.download as download
from darec.data.download import ChecksumError, download_url, pip_download, verify_sha256

PAYLOAD = b"MovieLens? no, just some bytes\n" * 5000  # several read chunks


class FakeResponse:
    """What ``urllib.request.urlopen`` returns: a context manager with ``headers`` and ``read``."""

    def __init__(self, data: bytes, content_length: bool = True) -> None:
        self._data = data
        self._pos = 0
        self.headers = {"Content-Length": str(len(data))} if content_length else {}

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def serve(monkeypatch, data: bytes, content_length: bool = True) -> list[str]:
    urls: list[str] = []

    def fake_urlopen(url, timeout=None):
        urls.append(url)
        return FakeResponse(data, content_length)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return urls


@pytest.mark.parametrize("content_length", [True, False])
def test_download_good_bytes(monkeypatch, tmp_path, content_length):
    urls = serve(monkeypatch, PAYLOAD, content_length)
    dest = tmp_path / "sub" / "file.bin"
    out = download_url("https://example.org/file.bin", dest, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert out == dest
    assert dest.read_bytes() == PAYLOAD
    assert urls == ["https://example.org/file.bin"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]


def test_download_without_checksum(monkeypatch, tmp_path):
    serve(monkeypatch, b"abc")
    assert download_url("https://example.org/x", tmp_path / "x").read_bytes() == b"abc"


def test_download_wrong_checksum_keeps_nothing(monkeypatch, tmp_path):
    serve(monkeypatch, PAYLOAD)
    dest = tmp_path / "file.bin"
    with pytest.raises(ChecksumError, match="SHA-256 is .*expected 0000; nothing was kept"):
        download_url("https://example.org/file.bin", dest, sha256="0000")
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary *.part file either


def test_download_wrong_checksum_keeps_old_file(monkeypatch, tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"old")
    serve(monkeypatch, PAYLOAD)
    with pytest.raises(ChecksumError):
        download_url("https://example.org/file.bin", dest, sha256="0000")
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


def test_download_network_error_keeps_nothing(monkeypatch, tmp_path):
    def offline(url, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(OSError, match="no network"):
        download_url("https://example.org/file.bin", tmp_path / "file.bin")
    assert list(tmp_path.iterdir()) == []


def test_download_interrupted_keeps_nothing(monkeypatch, tmp_path):
    class Broken(FakeResponse):
        def read(self, size=-1):
            if self._pos:
                raise ConnectionResetError("connection reset")
            return super().read(size)

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: Broken(PAYLOAD))
    with pytest.raises(ConnectionResetError):
        download_url("https://example.org/file.bin", tmp_path / "file.bin")
    assert list(tmp_path.iterdir()) == []


def test_checksum_error_is_an_oserror():
    assert issubclass(ChecksumError, OSError)


def test_verify_sha256(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    verify_sha256(path, hashlib.sha256(b"hello").hexdigest())
    verify_sha256(path, None)
    with pytest.raises(ChecksumError, match="the file is corrupt"):
        verify_sha256(path, hashlib.sha256(b"other").hexdigest())


def _fake_pip(monkeypatch, returncode: int, wheel: bytes | None, name: str = "toy_pkg-1.0-py3-none-any.whl"):
    calls = []

    def fake_run(cmd, capture_output=True, text=True):
        calls.append(cmd)
        if wheel is not None:
            dest = cmd[cmd.index("-d") + 1]
            (Path(dest) / name).write_bytes(wheel)
        return subprocess.CompletedProcess(cmd, returncode, stdout="", stderr="pip said no")

    monkeypatch.setattr(download.subprocess, "run", fake_run)
    return calls


def test_pip_download(monkeypatch, tmp_path):
    calls = _fake_pip(monkeypatch, 0, b"wheel bytes")
    out = pip_download("toy-pkg==1.0", tmp_path, sha256=hashlib.sha256(b"wheel bytes").hexdigest())
    assert out == tmp_path / "toy_pkg-1.0-py3-none-any.whl"
    assert "--no-deps" in calls[0] and "download" in calls[0] and "install" not in calls[0]
    with pytest.raises(ChecksumError):
        pip_download("toy-pkg==1.0", tmp_path, sha256="0" * 64)


@pytest.mark.parametrize(
    ("returncode", "wheel", "message"), [(1, None, "failed: pip said no"), (0, None, "produced no wheel")]
)
def test_pip_download_failures(monkeypatch, tmp_path, returncode, wheel, message):
    _fake_pip(monkeypatch, returncode, wheel)
    with pytest.raises(OSError, match=message):
        pip_download("toy-pkg==1.0", tmp_path)
