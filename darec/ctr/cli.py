"""``darec fit`` for click-through-rate configs: LightningCLI over :class:`~darec.ctr.CTRModule`.

Examples::

    darec fit --config examples/configs/ml100k_ctr_deepfm.yaml
    darec fit --config examples/configs/ml100k_ctr_fm.yaml --trainer.max_epochs 5
    darec test --config examples/configs/ml100k_ctr_dcnv2.yaml --ckpt_path path/to/best.ckpt

:func:`darec.cli.cli` hands a command to :class:`CTRCLI` when its data module is a
:class:`~darec.ctr.CTRDataModule` (:func:`is_ctr_config`); the rest (CSV logs, resumable
checkpoints, test after fit, one-line configuration errors) is :class:`~darec.cli.DaRecCLI`'s.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.cli import LightningArgumentParser

from darec.callbacks import ResumableCheckpoint
from darec.cli import _DEFAULT_LOGGER, DaRecCLI
from darec.ctr.ctr_datamodule import CTRDataModule
from darec.ctr.ctr_module import CTRModule
from darec.data.datamodule import quiet_lightning_warnings

__all__ = ["CTRCLI", "ctr_cli", "is_ctr_config"]


class CTRCLI(DaRecCLI):
    """:class:`~darec.cli.DaRecCLI` for :class:`~darec.ctr.CTRModule` and a :class:`~darec.ctr.CTRDataModule`.

    - ``data.num_users``, ``data.num_items`` and ``data.text_dim`` (``0`` without explanations)
      are linked into ``model.backbone.init_args``, never typed twice.
    - The checkpoint callback (``checkpoint.*``) keeps the best epoch by ``val/auc`` and the
      last; ``fit`` ends with a test of the best checkpoint (``--test_after_fit false`` to skip).
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ResumableCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/auc",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch={epoch}-auc={val/auc:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_argument("--test_after_fit", type=bool, default=True, help="After fit, test the best checkpoint.")
        for size in ("num_users", "num_items", "text_dim"):
            parser.link_arguments(f"data.{size}", f"model.backbone.init_args.{size}", apply_on="instantiate")


def is_ctr_config(args: Any = None) -> bool:
    """Whether a ``darec`` command line (or dict config) names a :class:`~darec.ctr.CTRDataModule`.

    Example:
        >>> is_ctr_config({"data": {"class_path": "darec.ctr.MovieLens100KCTR"}})
        True
        >>> is_ctr_config(["fit", "--data", "darec.data.MovieLens100K"])
        False
    """
    from darec.sequential_cli import configured_data_classes

    return any(issubclass(cls, CTRDataModule) for cls in configured_data_classes(args))


def ctr_cli(args: Any = None, run: bool = True) -> CTRCLI:
    """Builds (and by default runs) the CTR ``darec`` command; ``args`` as in :func:`darec.cli.cli`."""
    with quiet_lightning_warnings():
        return CTRCLI(
            CTRModule,
            CTRDataModule,
            subclass_mode_data=True,
            seed_everything_default=2024,
            trainer_defaults={"logger": {"class_path": _DEFAULT_LOGGER, "init_args": {"save_dir": "."}}},
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"default_env": False},
            args=args,
            run=run,
        )
