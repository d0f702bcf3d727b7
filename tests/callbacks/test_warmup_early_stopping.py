import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping

from darec.callbacks import WarmupEarlyStopping


class _Trainer:
    """The few attributes EarlyStopping's check reads."""

    def __init__(self) -> None:
        self.callback_metrics = {}
        self.current_epoch = 0
        self.should_stop = False
        self.fast_dev_run = False
        self.sanity_checking = False
        self.global_rank = 0
        self.strategy = type("S", (), {"reduce_boolean_decision": staticmethod(lambda x, all=True: x)})()
        self.loggers = []


def _run(stop, values, every=10):
    trainer = _Trainer()
    stopped_at = None
    for step, value in enumerate(values):
        trainer.current_epoch = step * every + every - 1
        trainer.callback_metrics = {"val/recall@20": torch.tensor(value)}
        stop._run_early_stopping_check(trainer)
        if trainer.should_stop:
            stopped_at = trainer.current_epoch
            break
    return stopped_at, stop


def test_no_stop_before_start_epoch_even_if_patience_runs_out():
    # A popularity peak first, then a long dip, then real improvement (the BPR shape).
    values = [0.18, 0.17, 0.16, 0.15, 0.15, 0.16, 0.19, 0.25, 0.30, 0.31]
    plain, _ = _run(WarmupEarlyStopping(monitor="val/recall@20", mode="max", patience=2), values)
    assert plain is not None and plain < 60  # Lightning's behaviour: stops in the dip
    delayed, stop = _run(WarmupEarlyStopping(monitor="val/recall@20", mode="max", patience=2, start_epoch=60), values)
    assert delayed is None
    assert stop.best_score.item() == pytest.approx(0.31)


def test_patience_counts_after_start_epoch():
    values = [0.1, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3]
    stopped, _ = _run(WarmupEarlyStopping(monitor="val/recall@20", mode="max", patience=2, start_epoch=20), values)
    assert stopped == 49  # best at epoch 29, two validations without improvement after it


def test_non_finite_metric_stops_at_once():
    stopped, _ = _run(WarmupEarlyStopping(monitor="val/recall@20", mode="max", patience=5, start_epoch=100), [0.1, float("nan")])
    assert stopped == 19


def test_rejects_negative_start_epoch():
    with pytest.raises(ValueError, match="start_epoch"):
        WarmupEarlyStopping(monitor="val/recall@20", start_epoch=-1)


# -- the same decisions as the former EarlyStopping subclass ---------------------------------------
class _Reference(EarlyStopping):
    """darec's former implementation (overriding Lightning's private methods), kept as the reference."""

    def __init__(self, *args, start_epoch=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.start_epoch, self._epoch = start_epoch, 0

    def _run_early_stopping_check(self, trainer):
        self._epoch = trainer.current_epoch
        super()._run_early_stopping_check(trainer)

    def _evaluate_stopping_criteria(self, current):
        should_stop, reason = super()._evaluate_stopping_criteria(current)
        if should_stop and self._epoch < self.start_epoch and torch.isfinite(current):
            self.wait_count = 0
            return False, None
        return should_stop, reason


def _curve(seed, length=40):
    gen = torch.Generator().manual_seed(seed)
    steps = torch.randn(length, generator=gen, dtype=torch.float64) * 0.02
    values = (0.1 + steps.cumsum(0)).tolist()
    if seed % 7 == 0:
        values[int(torch.randint(length, (1,), generator=gen))] = float("nan")
    return values


@pytest.mark.parametrize("seed", range(40))
def test_stops_where_the_former_implementation_stopped(seed):
    gen = torch.Generator().manual_seed(1000 + seed)
    pick = lambda options: options[int(torch.randint(len(options), (1,), generator=gen))]  # noqa: E731
    kwargs = {
        "monitor": "val/recall@20",
        "mode": pick(["min", "max"]),
        "patience": pick([1, 2, 3, 5]),
        "min_delta": pick([0.0, 0.005]),
        "start_epoch": pick([0, 30, 120, 1000]),
        "stopping_threshold": pick([None, None, 0.15]),
        "divergence_threshold": pick([None, None, 0.3]),
    }
    if kwargs["mode"] == "min" and kwargs["stopping_threshold"] is not None:
        kwargs["stopping_threshold"], kwargs["divergence_threshold"] = 0.02, None
    values = _curve(seed)
    ours, new = _run(WarmupEarlyStopping(**kwargs), values)
    theirs, old = _run(_Reference(**kwargs), values)
    assert ours == theirs, kwargs
    assert new.state_dict().keys() == old.state_dict().keys()
    for key, value in old.state_dict().items():
        assert torch.equal(torch.as_tensor(new.state_dict()[key]), torch.as_tensor(value)) if key == "best_score" else new.state_dict()[key] == value


class _Curve(L.LightningModule):
    def __init__(self, values):
        super().__init__()
        self.values, self.layer = values, torch.nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/recall@20", torch.tensor(self.values[min(self.current_epoch, len(self.values) - 1)]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.parametrize("every", [1, 3])
def test_stops_at_the_same_epoch_in_a_real_fit(tmp_path, every):
    values = [0.18, 0.17, 0.16, 0.15, 0.15, 0.16, 0.19, 0.25, 0.30, 0.31, 0.31, 0.30, 0.29, 0.3, 0.28, 0.27] * 2
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 1)), batch_size=2)
    stopped = []
    for cls in (WarmupEarlyStopping, _Reference):
        stop = cls(monitor="val/recall@20", mode="max", patience=2, start_epoch=6)
        trainer = L.Trainer(
            max_epochs=len(values), check_val_every_n_epoch=every, callbacks=[stop], logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu", default_root_dir=tmp_path,
        )
        trainer.fit(_Curve(values), data, data)
        stopped.append((trainer.current_epoch, stop.stopped_epoch, float(stop.best_score), stop.wait_count))
    assert stopped[0] == stopped[1]
    assert stopped[0][1] > 6
