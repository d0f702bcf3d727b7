"""Bad checkpoints: each one fails with a message that names the problem and the file.

One test per case: a damaged file (flipped bytes, truncated), an empty file, a text file, a PyTorch
file that is not a Lightning checkpoint, a Lightning checkpoint of another module, a checkpoint of
another model than the configured one, and an unknown raw user id. Each test also checks that
nothing already written is lost or half-written: the checkpoint itself is never modified, and an
existing predictions file survives a refused prediction.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch

from darec.backbones import MatrixFactorization
from darec.callbacks import GlobalStructureAlignment, PredictionWriter
from darec.module import DaRecModule
from darec.module.checkpoint import CheckpointError, read_checkpoint
from tests.module import conftest as _s

_one_thread = _s._one_thread  # autouse: one intra-op thread for these tiny tensors
NUM_NODES = _s.NUM_USERS + _s.NUM_ITEMS


@pytest.fixture(scope="module")
def darec_checkpoint(tmp_path_factory) -> Path:
    """A DaRec checkpoint (alpha > 0, heads of width 8, the global alignment term), written once."""
    root = tmp_path_factory.mktemp("darec-ckpt")
    torch.manual_seed(0)
    model = DaRecModule(MatrixFactorization(NUM_NODES, 8), alpha=0.01, head_hidden_dim=8)
    trainer = _s.make_trainer(root, max_epochs=1, callbacks=[GlobalStructureAlignment(weight=0.1)])
    trainer.fit(model, datamodule=_s.make_datamodule(root))
    path = root / "darec.ckpt"
    trainer.save_checkpoint(path)
    return path


def _copy(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes())
    return target


def _load_fails(path: Path, match: str) -> CheckpointError:
    """Loads ``path`` both ways and checks the error names the file and the problem; the file is untouched."""
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=re.escape(str(path)) + " " + match) as info:
        DaRecModule.load_from_checkpoint(path)
    with pytest.raises(CheckpointError, match=re.escape(str(path)) + " " + match):
        read_checkpoint(path)
    assert path.read_bytes() == before
    assert info.value.path == str(path)
    return info.value


def test_flipped_bytes_are_reported_as_corruption(darec_checkpoint, tmp_path):
    path = _copy(darec_checkpoint, tmp_path / "flipped.ckpt")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))
    error = _load_fails(path, r"is corrupted \(")
    assert "restore it from a copy" in str(error)
    assert error.__cause__ is not None  # the original error is chained


def test_flipped_bytes_in_the_weights_are_not_loaded_silently(darec_checkpoint, tmp_path):
    """torch.load does not check the zip checksums: without read_checkpoint these load as other weights."""
    path = _copy(darec_checkpoint, tmp_path / "weights.ckpt")
    data = bytearray(path.read_bytes())
    # the backbone's embedding table is the largest tensor: find its bytes and flip some of them
    table = torch.load(darec_checkpoint, weights_only=True)["state_dict"]["backbone.embedding.weight"]
    start = bytes(data).find(table.numpy().tobytes()[:64])
    assert start > 0
    data[start + 8 : start + 12] = bytes(b ^ 0xFF for b in data[start + 8 : start + 12])
    path.write_bytes(bytes(data))
    assert not torch.equal(torch.load(path, weights_only=True)["state_dict"]["backbone.embedding.weight"], table)
    _load_fails(path, r"is corrupted \(.*data/")


def test_truncated_file_is_reported_as_corruption(darec_checkpoint, tmp_path):
    path = tmp_path / "truncated.ckpt"
    path.write_bytes(darec_checkpoint.read_bytes()[: 3 * darec_checkpoint.stat().st_size // 4])
    _load_fails(path, r"is corrupted \(its zip archive is damaged or truncated")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.ckpt"
    path.touch()
    _load_fails(path, r"is not a darec checkpoint \(the file is empty\)")


def test_text_file(tmp_path):
    path = tmp_path / "notes.ckpt"
    path.write_text("best epoch: 12\nrecall@20: 0.31\n")
    _load_fails(path, r"is not a darec checkpoint \(not a PyTorch file: it looks like a text file")


def test_torch_file_that_is_not_a_lightning_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(MatrixFactorization(NUM_NODES, 8).state_dict(), path)
    _load_fails(path, r"is not a darec checkpoint \(a PyTorch file without 'state_dict'.*embedding\.weight")


def test_lightning_checkpoint_of_another_module(tmp_path):
    class Other(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 2)

    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(Other())
    path = tmp_path / "other.ckpt"
    trainer.save_checkpoint(path)
    _load_fails(path, r"is not a darec checkpoint \(a Lightning checkpoint without darec's 'darec' entry")


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.ckpt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        DaRecModule.load_from_checkpoint(path)
    assert not path.exists()


def test_checkpoint_of_another_model_than_the_config_is_refused(darec_checkpoint, tmp_path):
    """The README pitfall: predicting with the plain config and a DaRec checkpoint."""
    output = tmp_path / "predictions.tsv"
    output.write_text("user\titem\trank\tscore\nu0\ti1\t1\t0.5\n")  # an earlier run's predictions
    before = darec_checkpoint.read_bytes()
    plain = DaRecModule(MatrixFactorization(NUM_NODES, 8))  # the plain model's config
    trainer = _s.make_trainer(tmp_path, callbacks=[PredictionWriter(output=str(output))])
    with pytest.raises(ValueError) as info:
        trainer.predict(plain, datamodule=_s.make_datamodule(tmp_path), ckpt_path=darec_checkpoint)
    message = str(info.value)
    assert f"checkpoint {darec_checkpoint} holds a different model than the configured one" in message
    assert "alpha: checkpoint 0.01, config 0.0" in message
    assert "head_hidden_dim: checkpoint 8, config None" in message
    assert "DaRecModule.load_from_checkpoint(path)" in message
    assert output.read_text() == "user\titem\trank\tscore\nu0\ti1\t1\t0.5\n"  # untouched, nothing half-written
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["predictions.tsv"]
    assert darec_checkpoint.read_bytes() == before


def test_checkpoint_with_other_harmless_settings_loads_with_a_warning(darec_checkpoint, tmp_path):
    """Settings that do not define the model warn; so do alignment terms that no callback of the trainer registers
    (what `darec predict` does with another config: LightningCLI builds the model from the checkpoint's
    hyperparameters, but the callbacks come from the config)."""
    model = DaRecModule(MatrixFactorization(NUM_NODES, 8), alpha=0.01, head_hidden_dim=8, predict_k=3, lr=0.5)
    trainer = _s.make_trainer(tmp_path)  # no alignment callback
    with pytest.warns(UserWarning, match=r"do not define the model, so it loads: lr: checkpoint 0\.001, config 0\.5; predict_k") as record:
        batches = trainer.predict(model, datamodule=_s.make_datamodule(tmp_path), ckpt_path=darec_checkpoint)
    message = next(str(w.message) for w in record if "so it loads" in str(w.message))
    assert f"checkpoint {darec_checkpoint} was saved with other settings" in message
    assert "alignment terms: checkpoint ['global'], config none (they do not change scores)" in message
    assert batches[0]["item"].shape[1] == 3


def test_same_config_resumes_and_loads_without_complaint(darec_checkpoint, tmp_path):
    # resuming the fit with the config the checkpoint was trained with (terms registered, heads built in setup)
    model = DaRecModule(MatrixFactorization(NUM_NODES, 8), alpha=0.01, head_hidden_dim=8)
    trainer = _s.make_trainer(tmp_path, max_epochs=2, callbacks=[GlobalStructureAlignment(weight=0.1)])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*other settings than the configured module.*")
        trainer.fit(model, datamodule=_s.make_datamodule(tmp_path), ckpt_path=darec_checkpoint)
        # load_from_checkpoint builds the module from the checkpoint itself; overrides are the caller's choice
        loaded = DaRecModule.load_from_checkpoint(darec_checkpoint, predict_k=5)
    assert trainer.current_epoch == 2
    assert loaded.hparams.predict_k == 5 and len(loaded.objective) == 0  # terms are for training: registered by callbacks
    assert set(torch.load(darec_checkpoint, weights_only=True)["darec"]["terms"]) == {"global"}


def test_unknown_raw_user_id(darec_checkpoint):
    model = DaRecModule.load_from_checkpoint(darec_checkpoint)
    with pytest.raises(KeyError, match=r"unknown user id\(s\) 'u999', 'bob': not among the 40 users"):
        model.recommend_raw(["u1", "u999", "bob"], k=3)
    items, _ = model.recommend_raw(["u1"], k=3)  # the module is still usable
    assert items.shape == (1, 3) and all(str(item).startswith("i") for item in items[0])
