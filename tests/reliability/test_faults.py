"""Faults and bad inputs: exact resume, interruption by signals, rejected configs, clamped settings.

Each test asserts that the message names the problem and that nothing already written was lost.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from torch_geometric.nn.models import LightGCN

from darec.callbacks import (
    ContrastiveAlignment,
    GenerativeAlignment,
    GlobalStructureAlignment,
    LocalStructureAlignment,
    ResumableCheckpoint,
)
from darec.data import write_split_dir
from darec.module import DaRecModule
from tests.module import conftest as _s

_one_thread = _s._one_thread  # autouse: one intra-op thread for these tiny tensors
NUM_NODES = _s.NUM_USERS + _s.NUM_ITEMS
DAREC = Path(sys.executable).with_name("darec")


# -- exact resume ------------------------------------------------------------------------------
def _method(name: str) -> tuple[dict, list[L.Callback]]:
    if name == "plain":
        return {}, []
    if name == "rlmrec_con":
        return {}, [ContrastiveAlignment(weight=0.5)]
    if name == "rlmrec_gen":
        return {}, [GenerativeAlignment(weight=0.5, mask_ratio=0.2)]
    # DaRec: the regularisers (with a subsampled align batch) and both structure alignments,
    # clusters refreshed every other epoch so that the resume falls between two refreshes
    return {"alpha": 0.1, "align_batch_size": 16}, [
        GlobalStructureAlignment(weight=0.5),
        LocalStructureAlignment(num_clusters=3, weight=0.5, every_n_epochs=2),
    ]


class _Record(L.Callback):
    """Every step's loss, every validation's metrics and every epoch's logged training means."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, float]] = []
        self.val: dict[int, dict[str, float]] = {}
        self.train: dict[int, dict[str, float]] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps.append((trainer.current_epoch, float(outputs["loss"])))

    def on_validation_end(self, trainer, pl_module):
        metrics = trainer.callback_metrics
        self.val[trainer.current_epoch] = {k: float(v) for k, v in metrics.items() if k.startswith("val/")}

    def _train_means(self, trainer, epoch):
        metrics = trainer.callback_metrics
        self.train[epoch] = {k: float(v) for k, v in metrics.items() if k.startswith("train/")}

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch > 0 and any(e == trainer.current_epoch - 1 for e, _ in self.steps):
            self._train_means(trainer, trainer.current_epoch - 1)

    def on_train_end(self, trainer, pl_module):
        self._train_means(trainer, trainer.current_epoch - 1)


def _fit(method: str, root: Path, max_epochs: int, ckpt_path: str | None = None):
    """A fresh module, data module and callbacks with the same seed, as a new process would build them."""
    L.seed_everything(2024, verbose=False)
    kwargs, callbacks = _method(method)
    torch.manual_seed(0)
    model = DaRecModule(LightGCN(NUM_NODES, 8, num_layers=2), lr=0.01, **kwargs)
    dm = _s.make_datamodule(root, text=method != "plain", seed=None)  # sampler seeded by the global seed
    record = _Record()
    checkpoint = ResumableCheckpoint(dirpath=root / "ckpt", monitor="val/recall@20", mode="max", save_last=True)
    trainer = _s.make_trainer(
        root, max_epochs=max_epochs, enable_checkpointing=True, callbacks=[*callbacks, checkpoint, record]
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    test = trainer.test(model, datamodule=dm, verbose=False)[0]
    return record, test


@pytest.mark.parametrize("method", ["plain", "rlmrec_con", "rlmrec_gen", "darec"])
def test_resume_from_last_reproduces_the_uninterrupted_run(tmp_path, method):
    epochs, stop = 5, 3
    full, full_test = _fit(method, tmp_path / "full", epochs)
    _fit(method, tmp_path / "cut", stop)
    last = tmp_path / "cut" / "ckpt" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == stop - 1  # the last epoch, not the best one
    resumed, resumed_test = _fit(method, tmp_path / "cut", epochs, ckpt_path=str(last))

    assert {e for e, _ in resumed.steps} == set(range(stop, epochs))  # no epoch repeated or skipped
    assert resumed.steps == [(e, loss) for e, loss in full.steps if e >= stop]  # exact, step by step
    assert all(resumed.train[e] == full.train[e] for e in range(stop, epochs))
    assert all(resumed.val[e] == full.val[e] for e in range(stop, epochs))
    assert resumed_test == full_test


def test_last_checkpoint_is_written_when_validation_does_not_improve(tmp_path):
    """Lightning 2.6 writes last.ckpt only together with a top-k checkpoint; ours every validation."""
    # a monitored value that never improves after the first validation: the step, minimised
    checkpoint = ResumableCheckpoint(dirpath=tmp_path / "ckpt", monitor="step", mode="min", save_last=True)
    torch.manual_seed(0)
    model = DaRecModule(LightGCN(NUM_NODES, 8, num_layers=2), lr=0.05)
    trainer = _s.make_trainer(tmp_path, max_epochs=4, enable_checkpointing=True, callbacks=[checkpoint])
    trainer.fit(model, datamodule=_s.make_datamodule(text=False))
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert saved["epoch"] == 3 and saved["global_step"] == trainer.global_step
    assert [p.name for p in (tmp_path / "ckpt").glob("epoch=*")] == ["epoch=0-step=5.ckpt"]  # the best


def test_exception_checkpoint_keeps_best_and_last(tmp_path):
    """An error mid-fit leaves interrupted.ckpt beside untouched best and last checkpoints; resuming
    from it continues the same epoch."""

    class Boom(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.current_epoch == 2 and batch_idx == 2:
                raise RuntimeError("boom")

    checkpoint = ResumableCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/recall@20", mode="max", save_last=True)
    torch.manual_seed(0)
    model = DaRecModule(LightGCN(NUM_NODES, 8, num_layers=2), lr=0.01)
    trainer = _s.make_trainer(tmp_path, max_epochs=5, enable_checkpointing=True, callbacks=[checkpoint, Boom()])
    dm = _s.make_datamodule(text=False)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(model, datamodule=dm)
    files = {p.name: p.read_bytes() for p in (tmp_path / "ckpt").glob("*.ckpt")}
    assert "interrupted.ckpt" in files and "last.ckpt" in files
    assert any(name.startswith("epoch=") for name in files)  # the best is still there
    assert checkpoint.resume_path == str(tmp_path / "ckpt" / "interrupted.ckpt")
    assert not list((tmp_path / "ckpt").glob("*.tmp"))
    saved = torch.load(tmp_path / "ckpt" / "interrupted.ckpt", weights_only=False)
    assert saved["epoch"] == 2 and saved["global_step"] == trainer.global_step
    last = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 1  # last.ckpt is still the end of the last full epoch

    # resume: training continues in epoch 2 and ends at max_epochs
    torch.manual_seed(0)
    resumed = _s.make_trainer(tmp_path, max_epochs=5, enable_checkpointing=True, callbacks=[
        ResumableCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/recall@20", mode="max", save_last=True)
    ])
    resumed.fit(DaRecModule(LightGCN(NUM_NODES, 8, num_layers=2), lr=0.01), datamodule=_s.make_datamodule(text=False),
                ckpt_path=str(tmp_path / "ckpt" / "interrupted.ckpt"))
    assert resumed.current_epoch == 5
    assert torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["epoch"] == 4


# -- the darec command: interruption, resume, bad configs --------------------------------------
CONFIG = """\
model:
  backbone:
    class_path: torch_geometric.nn.models.LightGCN
    init_args:
      embedding_dim: 8
      num_layers: 2
  lr: 0.01
data:
  class_path: darec.data.RecDataModule
  init_args:
    source: {source}
    text_encoder: null
    batch_size: {batch_size}
    eval_batch_size: 16
trainer:
  enable_progress_bar: false
  enable_model_summary: false
  num_sanity_val_steps: 0
  check_val_every_n_epoch: 1
  default_root_dir: {root}
test_after_fit: true
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DAREC_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    env.pop("DAREC_DEBUG", None)
    return env


def _command() -> list[str]:
    return [str(DAREC)] if DAREC.exists() else [sys.executable, "-m", "darec.cli"]


def _config(tmp_path: Path, batch_size: int = 64) -> Path:
    split = write_split_dir(_s.make_interactions(), tmp_path / "split")
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(source=split, batch_size=batch_size, root=tmp_path / "run"))
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _epochs_with(rows: list[dict[str, str]], key: str) -> list[int]:
    return [int(float(r["epoch"])) for r in rows if r.get(key) not in (None, "")]


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_exits_and_resumes_in_the_same_version(tmp_path, sig, status):
    config = _config(tmp_path)
    version = tmp_path / "run" / "lightning_logs" / "version_0"
    fit = [*_command(), "fit", "--config", str(config)]
    proc = subprocess.Popen(
        [*fit, "--trainer.max_epochs", "100000"], cwd=tmp_path, env=_env(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # the child starts with Ctrl-C's default action, as from a shell: a child inherits an ignored
        # SIGINT, and in the full suite the pytest process ends up ignoring it (seen twice in CI)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    last = version / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a few more epochs, then the signal in the middle of one
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err[-3000:]

    assert "Traceback" not in err
    # interrupted.ckpt, or last.ckpt when the signal came right after it was written (nothing to add)
    interrupted = Path(err.split("darec: the run is saved in ")[1].splitlines()[0])
    assert interrupted in (version / "checkpoints" / "interrupted.ckpt", last)
    assert interrupted.is_file()
    saved = torch.load(interrupted, weights_only=False)
    DaRecModule.load_from_checkpoint(interrupted)  # loads
    assert not list((version / "checkpoints").glob("*.tmp"))
    stopped = saved["epoch"]
    before = _rows(version / "metrics.csv")
    assert _epochs_with(before, "train/loss") == list(range(len(_epochs_with(before, "train/loss"))))

    # resume with the printed command, two epochs further
    resume = err.split("darec: resume with: ")[1].splitlines()[0]
    assert resume.endswith(f"--ckpt_path {interrupted}")
    result = subprocess.run(
        [*fit, "--ckpt_path", str(interrupted), "--trainer.max_epochs", str(stopped + 2)],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in version.parent.iterdir()) == ["version_0"]  # no new version folder
    after = _rows(version / "metrics.csv")
    trained = _epochs_with(after, "train/loss")
    # every epoch once, none lost; only an epoch interrupted during its validation (whose training
    # Lightning counts as done) has no row: the fit resumes at the next epoch
    assert trained == sorted(set(trained)) and set(range(stopped + 2)) - set(trained) <= {stopped}
    assert {stopped + 1} <= set(trained)
    assert _epochs_with(after, "test/recall@20")  # the test after fit ran
    kept = [r for r in before if r.get("epoch") and int(float(r["epoch"])) < stopped]
    assert all(any(all(a.get(k, "") == v for k, v in r.items()) for a in after) for r in kept)
    hparams = (version / "hparams.yaml").read_text()
    assert "protocol" in hparams and "lr" in hparams


def test_batch_size_zero_is_one_line_and_status_2(tmp_path):
    config = _config(tmp_path, batch_size=0)
    result = subprocess.run(
        [*_command(), "fit", "--config", str(config)], cwd=tmp_path, env=_env(tmp_path),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "darec: error: data.init_args.batch_size: `batch_size` must be positive, got 0" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 3
    assert not (tmp_path / "run").exists()  # nothing was started or written

    debug = subprocess.run(
        [*_command(), "fit", "--config", str(config)], cwd=tmp_path, env={**_env(tmp_path), "DAREC_DEBUG": "1"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_model_and_callback_errors_name_their_key(tmp_path, monkeypatch, capsys):
    from darec import cli

    config = _config(tmp_path)
    monkeypatch.delenv("DAREC_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["darec", "fit", "--config", str(config), "--model.lr", "-1"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    assert "darec: error: model.lr: `lr` must be positive, got -1.0" in capsys.readouterr().err

    callback = "--trainer.callbacks+=darec.callbacks.GlobalStructureAlignment"
    monkeypatch.setattr(sys, "argv", ["darec", "fit", "--config", str(config), callback, "--trainer.callbacks.weight=-1"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "darec: error: trainer.callbacks[0].init_args.weight: `weight` must be non-negative, got -1" in err


def test_num_clusters_above_the_entities_is_clamped_with_a_warning(tmp_path):
    callback = LocalStructureAlignment(num_clusters=50, weight=0.1)  # 40 users, 60 items
    torch.manual_seed(0)
    model = DaRecModule(LightGCN(NUM_NODES, 8, num_layers=2), lr=0.01)
    trainer = _s.make_trainer(tmp_path, max_epochs=2, callbacks=[callback])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, datamodule=_s.make_datamodule(tmp_path))
    messages = [str(w.message) for w in caught if "num_clusters" in str(w.message)]
    assert messages == [
        "LocalStructureAlignment: num_clusters=50 is more than the 40 users of the data; "
        "the users are clustered into 40 clusters instead"
    ]  # once, although the clusters were refreshed twice; the items (60) are not clamped
    assert int(callback.assignments["user"].max()) < 40
