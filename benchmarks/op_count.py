"""Counts the tensor operations one training step dispatches, per config: a machine-independent
view of the per-step overhead that dominates on small data.

    python benchmarks/op_count.py --data-dir ../shared/data/ml100k-implicit-v1

For every config: one fit epoch (so that callbacks have registered their terms and clusters), then
the operations dispatched by one ``training_step`` + ``backward`` + optimizer step on the first
training batch, counted with a ``TorchDispatchMode`` (views and in-place operations included). Prints
the totals and, for every config after the first, the operations it adds to the first config most.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

from torch.utils._python_dispatch import TorchDispatchMode

from run import cli_args
from speed import DEFAULT_CONFIGS


class OpCounter(TorchDispatchMode):
    """Counts every ATen operation dispatched while active, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def count_step(config: str, data_dir: str) -> collections.Counter[str]:
    from darec.cli import cli

    with tempfile.TemporaryDirectory() as workdir:
        app = cli(
            cli_args(config, data_dir, workdir)
            + ["--trainer.max_epochs", "1", "--trainer.limit_val_batches", "0", "--trainer.logger", "false"],
            run=False,
        )
        app.trainer.fit(app.model, datamodule=app.datamodule)
    model = app.model.train()
    optimizer = model.configure_optimizers()
    batch = next(iter(app.datamodule.train_dataloader()))
    with OpCounter() as counter:
        optimizer.zero_grad()
        model.training_step(batch, 0).backward()
        optimizer.step()
    return counter.counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", default=None)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", default=None, help="optional JSON file for the totals")
    args = parser.parse_args()
    configs = args.config or DEFAULT_CONFIGS
    counts = {Path(config).stem: count_step(config, args.data_dir) for config in configs}
    first = next(iter(counts.values()))
    for name, ops in counts.items():
        print(f"{name}: {sum(ops.values())} operations per step")
        if ops is not first:
            extra = ops - first
            print("  most added:", ", ".join(f"{op} {n}" for op, n in extra.most_common(12)))
    if args.out:
        Path(args.out).write_text(json.dumps({name: sum(ops.values()) for name, ops in counts.items()}, indent=1))


if __name__ == "__main__":
    main()
