"""The learning-rate schedule: the factor against a naive reference, and the rates a fit really uses."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from darec import DaRecModule
from darec.backbones import MatrixFactorization
from darec.module.schedule import EpochSchedule
from tests.module import conftest


def naive_factor(epoch: int, schedule: str, warmup: int, total: int, floor: float) -> float:
    if epoch < warmup:
        return (epoch + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (epoch - warmup) / max(1, total - 1 - warmup)
    progress = min(progress, 1.0)
    return floor + (1 - floor) * (math.cos(math.pi * progress) + 1) / 2


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
@pytest.mark.parametrize("warmup", [0, 1, 5])
def test_factor_matches_reference(schedule: str, warmup: int) -> None:
    f = EpochSchedule(schedule, warmup, 20, 0.05)
    for epoch in range(25):
        assert f(epoch) == pytest.approx(naive_factor(epoch, schedule, warmup, 20, 0.05))


def test_cosine_reaches_floor_at_last_epoch_and_peaks_after_warmup() -> None:
    f = EpochSchedule("cosine", 3, 10, 0.1)
    assert f(2) == pytest.approx(1.0) and f(3) == pytest.approx(1.0)
    assert f(9) == pytest.approx(0.1)
    assert all(f(e) >= f(e + 1) for e in range(3, 12))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(lr_schedule="linear"), "lr_schedule"),
        (dict(lr_warmup_epochs=-1), "lr_warmup_epochs"),
        (dict(lr_min_ratio=1.5), "lr_min_ratio"),
    ],
)
def test_bad_settings_fail_at_construction(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DaRecModule(MatrixFactorization(num_nodes=7, embedding_dim=4), num_users=3, num_items=4, **kwargs)


class RecordLR(L.Callback):
    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


def _fit(tmp_path, max_epochs: int, **kwargs) -> list[float]:
    dm = conftest.make_datamodule(tmp_path, text=False)
    backbone = MatrixFactorization(num_nodes=conftest.NUM_USERS + conftest.NUM_ITEMS, embedding_dim=8)
    model = DaRecModule(backbone, lr=0.01, **kwargs)
    record = RecordLR()
    trainer = conftest.make_trainer(tmp_path, max_epochs=max_epochs, callbacks=[record], limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    return record.rates


def test_fit_follows_warmup_then_cosine(tmp_path) -> None:
    rates = _fit(tmp_path, 6, lr_schedule="cosine", lr_warmup_epochs=2, lr_min_ratio=0.0)
    expected = [0.01 * naive_factor(e, "cosine", 2, 6, 0.0) for e in range(6)]
    assert rates == pytest.approx(expected)


def test_default_keeps_a_constant_rate(tmp_path) -> None:
    assert _fit(tmp_path, 3) == pytest.approx([0.01] * 3)


def test_cosine_needs_a_finite_horizon(tmp_path) -> None:
    dm = conftest.make_datamodule(tmp_path, text=False)
    model = DaRecModule(MatrixFactorization(num_nodes=100, embedding_dim=8), lr_schedule="cosine")
    trainer = conftest.make_trainer(tmp_path, max_epochs=-1, max_steps=3, limit_val_batches=0)
    with pytest.raises(ValueError, match="max_epochs"):
        trainer.fit(model, datamodule=dm)


# -- the warning when a fit ends while validation still rises ---------------------------------
from darec.module.convergence import still_improving  # noqa: E402


def test_still_improving_flags_a_rising_tail_only() -> None:
    rising = [(e, 0.1 + 0.002 * e) for e in range(9, 200, 10)]
    plateau = [(e, min(0.3, 0.1 + 0.002 * e)) for e in range(9, 200, 10)]
    dip_then_recover = [(e, 0.3 - (0.05 if 100 < e < 150 else 0.0)) for e in range(9, 200, 10)]
    assert "rose by" in still_improving(rising)
    assert still_improving(plateau) is None
    assert still_improving(dip_then_recover) is None  # recovering to the old best is no gain
    assert still_improving(rising[:4]) is None  # too few validations to judge


def test_still_improving_threshold_is_relative() -> None:
    curve = [(e, 0.30) for e in range(9, 90, 10)] + [(99, 0.30 * 1.02)]
    assert still_improving(curve, min_gain=0.01) is not None
    assert still_improving(curve, min_gain=0.03) is None


def test_fit_cut_short_warns(tmp_path) -> None:
    dm = conftest.make_datamodule(tmp_path, text=False)
    model = DaRecModule(MatrixFactorization(num_nodes=100, embedding_dim=8), lr=1e-3)
    trainer = conftest.make_trainer(tmp_path, max_epochs=6, check_val_every_n_epoch=1)
    with pytest.warns(UserWarning, match="before the model converged"):
        trainer.fit(model, datamodule=dm)
    assert [e for e, _ in model._val_history] == list(range(6))


def test_converged_fit_is_silent(tmp_path, recwarn) -> None:
    dm = conftest.make_datamodule(tmp_path, text=False)
    model = DaRecModule(MatrixFactorization(num_nodes=100, embedding_dim=8), lr=0.05)
    trainer = conftest.make_trainer(tmp_path, max_epochs=40, check_val_every_n_epoch=1)
    trainer.fit(model, datamodule=dm)
    assert not [w for w in recwarn if "before the model converged" in str(w.message)]
    assert still_improving(model._val_history) is None
