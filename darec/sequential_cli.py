"""The ``darec`` command for next-item recommendation: LightningCLI over :class:`~darec.module.SequentialModule`.

Examples::

    darec fit --config examples/configs/ml100k_sasrec.yaml
    darec fit --config examples/configs/ml100k_sasrec_titles.yaml
    darec test --config examples/configs/ml100k_sasrec.yaml --ckpt_path path/to/best.ckpt
    darec predict --config examples/configs/ml100k_sasrec.yaml --ckpt_path path/to/best.ckpt

:func:`darec.cli.cli` hands a command to :class:`SequentialCLI` when its data module is a
:class:`~darec.data.SequenceDataModule` (:func:`is_sequential_config`); the rest of the
behaviour (CSV logs, resumable checkpoints, test after fit, one-line configuration errors) is
:class:`~darec.cli.DaRecCLI`'s.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.cli import LightningArgumentParser

from darec.callbacks import PredictionWriter, ResumableCheckpoint
from darec.cli import _DEFAULT_LOGGER, DaRecCLI
from darec.data.datamodule import quiet_lightning_warnings
from darec.data.sequence_datamodule import SequenceDataModule
from darec.module.sequential_module import SequentialModule

__all__ = ["SequentialCLI", "configured_data_classes", "is_sequential_config", "sequential_cli"]


class SequentialCLI(DaRecCLI):
    """:class:`~darec.cli.DaRecCLI` for :class:`~darec.module.SequentialModule` and a :class:`~darec.data.SequenceDataModule`.

    - ``data.num_items`` -> ``model.backbone.init_args.num_items`` and ``data.max_len`` ->
      ``model.backbone.init_args.max_len`` are linked, never typed twice.
    - The checkpoint callback (``checkpoint.*``) keeps the best epoch by ``val/full/ndcg@10``
      and the last; ``fit`` ends with a test of the best checkpoint.
    - A prediction writer (``prediction.*``) writes ``predictions.tsv`` in raw ids for ``predict``:
      the top ``model.predict_k`` next items after each user's whole sequence.
    - A config whose ``model`` has a ``class_path`` (a subclass of
      :class:`~darec.module.SequentialModule`, e.g. :class:`~darec.lane.PreferenceAttentionFusion`)
      builds that class (:func:`sequential_cli` switches LightningCLI's subclass mode on for it);
      the links then go to ``model.init_args.backbone.init_args``.
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ResumableCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/full/ndcg@10",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch={epoch}-ndcg@10={val/full/ndcg@10:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_lightning_class_args(PredictionWriter, "prediction")
        parser.add_argument("--test_after_fit", type=bool, default=True, help="After fit, test the best checkpoint.")
        model = "model.init_args." if self.subclass_mode_model else "model."
        parser.link_arguments("data.num_items", f"{model}backbone.init_args.num_items", apply_on="instantiate")
        parser.link_arguments("data.max_len", f"{model}backbone.init_args.max_len", apply_on="instantiate")


def _data_class_path(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        path = value.get("class_path")
        return path if isinstance(path, str) else None
    return None


def _resolve_class(class_path: str | None) -> type | None:
    if not class_path:
        return None
    module, _, name = class_path.rpartition(".")
    if not module:
        module, name = "darec.data", class_path
    try:
        cls = getattr(importlib.import_module(module), name, None)
    except Exception:
        return None
    return cls if isinstance(cls, type) else None


def configured_data_classes(args: Any = None) -> list[type]:
    """The data module classes a ``darec`` command line (or dict config) names.

    Looked for in the files of ``--config`` and in ``--data`` (``args`` as a list; :obj:`None`
    reads ``sys.argv``). Files that cannot be read and names that do not resolve are left to
    LightningCLI to report.
    """
    if isinstance(args, Mapping):
        config = args.get(args["subcommand"], args) if "subcommand" in args else args
        found = [_data_class_path(config.get("data"))]
    else:
        argv = list(sys.argv[1:] if args is None else args)
        found = []
        for k, arg in enumerate(argv):
            key, eq, value = arg.partition("=")
            if key not in ("--config", "--data", "-c"):
                continue
            value = value if eq else (argv[k + 1] if k + 1 < len(argv) else "")
            if key == "--data":
                found.append(value)
                continue
            try:
                config = yaml.safe_load(Path(value).expanduser().read_text())
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(config, Mapping):
                found.append(_data_class_path(config.get("data")))
    return [cls for cls in map(_resolve_class, found) if cls is not None]


def is_sequential_config(args: Any = None) -> bool:
    """Whether a ``darec`` command line (or dict config) names a :class:`~darec.data.SequenceDataModule`.

    Looked for in the files of ``--config`` and in ``--data`` (``args`` as a list; :obj:`None`
    reads ``sys.argv``). Files that cannot be read are left to LightningCLI to report.

    Example:
        >>> is_sequential_config(["fit", "--data", "darec.data.MovieLens100KSequences"])
        True
        >>> is_sequential_config({"data": {"class_path": "darec.data.MovieLens100K"}})
        False
    """
    return any(issubclass(cls, SequenceDataModule) for cls in configured_data_classes(args))


def _names_model_class(args: Any = None) -> bool:
    """Whether the config (files of ``--config`` or a dict) gives the model a ``class_path``."""
    if isinstance(args, Mapping):
        config = args.get(args["subcommand"], args) if "subcommand" in args else args
        model = config.get("model")
        return isinstance(model, Mapping) and "class_path" in model
    argv = list(sys.argv[1:] if args is None else args)
    for k, arg in enumerate(argv):
        key, eq, value = arg.partition("=")
        if key in ("--model", "--model.class_path"):
            return True
        if key not in ("--config", "-c"):
            continue
        value = value if eq else (argv[k + 1] if k + 1 < len(argv) else "")
        try:
            config = yaml.safe_load(Path(value).expanduser().read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(config, Mapping) and isinstance(config.get("model"), Mapping) and "class_path" in config["model"]:
            return True
    return False


def sequential_cli(args: Any = None, run: bool = True) -> SequentialCLI:
    """Builds (and by default runs) the sequential ``darec`` command; ``args`` as in :func:`darec.cli.cli`.

    A config that names the model's ``class_path`` (a :class:`~darec.module.SequentialModule`
    subclass) builds that class; otherwise the model is a :class:`~darec.module.SequentialModule`.
    """
    with quiet_lightning_warnings():
        return SequentialCLI(
            SequentialModule,
            SequenceDataModule,
            subclass_mode_model=_names_model_class(args),
            subclass_mode_data=True,
            seed_everything_default=2024,
            trainer_defaults={"logger": {"class_path": _DEFAULT_LOGGER, "init_args": {"save_dir": "."}}},
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"default_env": False},
            args=args,
            run=run,
        )
