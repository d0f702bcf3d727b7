import pytest
import torch

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
