"""examples/custom_alignment.py: an alignment method written entirely in user code, trained from Python and from YAML."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch

from darec.backbones import MatrixFactorization
from darec.data import write_split_dir
from darec.module import DaRecModule
from tests.module import conftest as _s

_one_thread = _s._one_thread  # autouse: one intra-op thread for these tiny tensors
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def custom_alignment(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "custom_alignment", raising=False)
    return importlib.import_module("custom_alignment")


def test_the_method_is_a_loss_and_a_thin_callback_in_about_40_lines(custom_alignment):
    source = (EXAMPLES / "custom_alignment.py").read_text()
    method = source[source.index("class CosineAlignmentLoss") : source.index("def main")]
    assert len([line for line in method.splitlines() if line.strip()]) <= 40
    assert "darec.module.darec_module" not in source and "._" not in method.replace("super().__init__", "")  # public names only


def test_trained_from_python(custom_alignment, tmp_path):
    torch.manual_seed(0)
    callback = custom_alignment.CosineAlignment(weight=0.5)
    model = DaRecModule(MatrixFactorization(_s.NUM_USERS + _s.NUM_ITEMS, 8), lr=0.01)
    trainer = _s.make_trainer(tmp_path, max_epochs=2, callbacks=[callback])
    trainer.fit(model, datamodule=_s.make_datamodule(tmp_path))
    term = model.term("cosine")
    assert isinstance(term, custom_alignment.CosineAlignmentLoss) and model.heads is None
    assert term.projector.in_features == _s.TEXT_DIM and model.objective.weights["cosine"] == 0.5
    assert 0 < float(trainer.callback_metrics["train/cosine"]) < 4
    optimised = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert {id(p) for p in term.parameters()} <= optimised


def test_the_example_script_runs(custom_alignment, capsys):
    metrics = custom_alignment.main(["--max-epochs", "1"])
    assert 0.0 <= metrics["test/recall@20"] <= 1.0
    assert "train/cosine:" in capsys.readouterr().out


def test_trained_from_yaml(custom_alignment, tmp_path, monkeypatch):
    from darec.cli import cli

    split = write_split_dir(_s.make_interactions(), tmp_path / "split")
    user, item = _s.write_text_embeddings(tmp_path / "text")
    monkeypatch.chdir(tmp_path)
    cli(
        args=[
            "fit", "--config", str(EXAMPLES / "custom_alignment.yaml"),
            "--data", "darec.data.RecDataModule", "--data.source", str(split), "--data.text_encoder", "null",
            "--data.user_embeddings", user, "--data.item_embeddings", item, "--data.batch_size", "64",
            "--model.backbone.init_args.embedding_dim", "8", "--model.backbone.init_args.num_layers", "1",
            "--trainer.max_epochs", "2", "--trainer.check_val_every_n_epoch", "1", "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path / "run"),
        ],  # fmt: skip
        run=True,
    )
    checkpoints = sorted((tmp_path / "run").rglob("*.ckpt"))
    assert checkpoints
    saved = torch.load(checkpoints[-1], weights_only=True)
    assert set(saved["darec"]["terms"]) == {"cosine"}
    assert any(key.startswith("objective.terms.cosine.projector.") for key in saved["state_dict"])
    model = DaRecModule.load_from_checkpoint(checkpoints[-1])  # for inference: no callback, no user class needed
    assert model.recommend([0], k=3)[0].shape == (1, 3)

