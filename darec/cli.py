"""The ``darec`` command: LightningCLI over :class:`~darec.DaRecModule` and darec's data modules.

Examples::

    darec fit --config examples/configs/ml100k_lightgcn.yaml
    darec fit --config examples/configs/ml100k_lightgcn.yaml --print_config
    darec test --config examples/configs/ml100k_lightgcn.yaml --ckpt_path path/to/best.ckpt
    darec predict --config examples/configs/ml100k_lightgcn.yaml --ckpt_path path/to/best.ckpt
"""

from __future__ import annotations

import os
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from darec.callbacks import PredictionWriter
from darec.data.datamodule import RecDataModule
from darec.module import DaRecModule

__all__ = ["DaRecCLI", "main"]

_DEFAULT_LOGGER = "lightning.pytorch.loggers.CSVLogger"


class DaRecCLI(LightningCLI):
    """LightningCLI with darec's links and defaults.

    - Sizes that come from the data are linked, never typed twice: ``data.num_users`` ->
      ``model.num_users``, ``data.num_items`` -> ``model.num_items`` and ``data.num_nodes`` ->
      ``model.backbone.init_args.num_nodes``.
    - A checkpoint callback (``checkpoint.*``) keeps the best epoch by ``val/recall@20`` and the last.
    - A prediction writer (``prediction.*``) writes ``predictions.tsv`` in raw ids for ``predict``.
    - ``fit`` ends with a test of the best checkpoint (``--test_after_fit false`` to skip).
    - Logs go to CSV files under ``lightning_logs/`` by default (under ``trainer.default_root_dir``
      when it is set, as with Lightning's own default logger).
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/recall@20",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch={epoch}-recall@20={val/recall@20:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_lightning_class_args(PredictionWriter, "prediction")
        parser.add_argument(
            "--test_after_fit", type=bool, default=True, help="After fit, test the best checkpoint."
        )
        parser.link_arguments("data.num_users", "model.num_users", apply_on="instantiate")
        parser.link_arguments("data.num_items", "model.num_items", apply_on="instantiate")
        parser.link_arguments("data.num_nodes", "model.backbone.init_args.num_nodes", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        # The default CSV logger's save_dir "." follows trainer.default_root_dir when one is given,
        # so that logs and checkpoints land there, as they do with Lightning's own default logger.
        config = self.config.get(self.subcommand) if self.subcommand else self.config
        trainer = config.get("trainer") if config is not None else None
        root = trainer.get("default_root_dir") if trainer is not None else None
        logger = trainer.get("logger") if trainer is not None else None
        if root and getattr(logger, "class_path", None) == _DEFAULT_LOGGER and logger.init_args.get("save_dir") == ".":
            logger.init_args.save_dir = str(root)

    def after_fit(self) -> None:
        config = self.config.get(self.subcommand, {})
        if not config.get("test_after_fit", True) or self.trainer.interrupted:
            return
        ckpt = "best" if self.trainer.checkpoint_callback and self.trainer.checkpoint_callback.best_model_path else None
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt)


def cli(args: Any = None, run: bool = True) -> DaRecCLI:
    """Builds (and by default runs) the darec CLI; ``args`` as a list or dict replaces ``sys.argv``."""
    return DaRecCLI(
        DaRecModule,
        RecDataModule,
        subclass_mode_data=True,
        seed_everything_default=2024,
        trainer_defaults={
            "logger": {"class_path": _DEFAULT_LOGGER, "init_args": {"save_dir": "."}},
        },
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"default_env": False},
        args=args,
        run=run,
    )


def main() -> None:
    """Entry point of the ``darec`` console script."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli()


if __name__ == "__main__":
    main()
