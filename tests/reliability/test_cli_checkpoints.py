"""``darec test/predict --ckpt_path``: a damaged file stops the command with one line naming it, and
a checkpoint trained with other model settings than the config's is reported, not used silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from darec.cli import EXIT_CONFIG, cli
from darec.data import write_split_dir
from tests.module import conftest as _s

_one_thread = _s._one_thread  # autouse: one intra-op thread for these tiny tensors

TRAINER = [
    "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false", "--trainer.num_sanity_val_steps", "0",
]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A split directory, precomputed text embeddings, and a DaRec model fitted on them by ``darec fit``."""
    root = tmp_path_factory.mktemp("cli-ckpt")
    split = write_split_dir(_s.make_interactions(), root / "split")
    user, item = _s.write_text_embeddings(root)
    (root / "data.yaml").write_text(
        "data:\n  class_path: darec.data.RecDataModule\n  init_args:\n"
        f"    source: {split}\n    text_encoder: null\n    user_embeddings: {user}\n"
        f"    item_embeddings: {item}\n    batch_size: 64\n"
    )
    plain = "model:\n  backbone:\n    class_path: darec.backbones.MatrixFactorization\n    init_args:\n      embedding_dim: 8\n"
    (root / "plain.yaml").write_text(plain)
    (root / "darec.yaml").write_text(
        plain + "  alpha: 0.01\n  head_hidden_dim: 8\ntrainer:\n  callbacks:\n"
        "    - class_path: darec.callbacks.GlobalStructureAlignment\n      init_args:\n        weight: 0.1\n"
    )
    cli(args=["fit", "--config", str(root / "darec.yaml"), "--config", str(root / "data.yaml"), *TRAINER,
              "--trainer.default_root_dir", str(root), "--test_after_fit", "false"])  # fmt: skip
    return root


def _last(run_dir: Path) -> Path:
    return next(run_dir.glob("lightning_logs/version_0/checkpoints/last.ckpt"))


def test_config_with_another_model_than_the_checkpoint_is_reported(run_dir, tmp_path, capsys):
    out = tmp_path / "predictions.tsv"
    cli(args=["predict", "--config", str(run_dir / "plain.yaml"), "--config", str(run_dir / "data.yaml"), *TRAINER,
              "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", str(_last(run_dir)),
              "--prediction.output", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert "darec: warning: the checkpoint" in err and str(_last(run_dir)) in err
    assert "alpha: checkpoint 0.01, config 0.0" in err and "head_hidden_dim: checkpoint 8, config None" in err
    assert out.is_file()  # the checkpoint's own model predicted


def test_matching_config_gives_no_warning(run_dir, tmp_path, capsys):
    cli(args=["test", "--config", str(run_dir / "darec.yaml"), "--config", str(run_dir / "data.yaml"), *TRAINER,
              "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", str(_last(run_dir))])  # fmt: skip
    assert "darec: warning: the checkpoint" not in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"just some notes\n", b"PK\x03\x04 broken"], ids=["empty", "text", "zip"])
def test_bad_ckpt_path_is_one_line_naming_the_file(run_dir, tmp_path, capsys, content):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    with pytest.raises(SystemExit) as info:
        cli(args=["test", "--config", str(run_dir / "darec.yaml"), "--config", str(run_dir / "data.yaml"), *TRAINER,
                  "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", str(bad)])  # fmt: skip
    assert info.value.code == EXIT_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"darec: error: --ckpt_path: {bad} is ")
    assert bad.read_bytes() == content
    assert not (tmp_path / "lightning_logs").exists()  # nothing ran, nothing was written
