"""The ``darec`` command: LightningCLI over :class:`~darec.DaRecModule` and darec's data modules.

Examples::

    darec fit --config examples/configs/ml100k_lightgcn.yaml
    darec fit --config examples/configs/ml100k_lightgcn.yaml --print_config
    darec test --config examples/configs/ml100k_lightgcn.yaml --ckpt_path path/to/best.ckpt
    darec predict --config examples/configs/ml100k_lightgcn.yaml --ckpt_path path/to/best.ckpt
    darec fit --config examples/configs/ml100k_sasrec.yaml        # next-item (sequential) recommendation
    darec fit --config examples/configs/ml100k_ctr_deepfm.yaml    # click-through-rate prediction
    darec profiles --data ml100k --entity user --backend hf --model smollm2 --out users.jsonl
    darec preferences --data ml100k --backend hf --model smollm2 --out lane/ml100k_preferences.jsonl
    darec explain --config run/config.yaml --ckpt best.ckpt --user 13 --top-k 5 --backend hf --out out.jsonl
    darec explanations --data ml100k --split train --backend hf --users 50 --seed 0 --out ctr/expl.jsonl

``darec profiles`` (:mod:`darec.profiles.command`), ``darec preferences``
(:mod:`darec.lane.preferences_command`), ``darec explain`` (:mod:`darec.lane.command`) and
``darec explanations`` (:mod:`darec.ctr.explanations_command`) are plain commands of their own,
not LightningCLI subcommands: they write user or item profiles, extract LANE's user preferences,
explain a LANE checkpoint's recommendations, and write ExpCTR's explanation of every (user, item)
pair with a language model.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from darec.callbacks import PredictionWriter, ResumableCheckpoint
from darec.data.datamodule import RecDataModule, quiet_lightning_warnings
from darec.module import CheckpointError, DaRecModule, read_checkpoint
from darec.module.checkpoint import hparams_differences

__all__ = ["DaRecCLI", "main"]

_DEFAULT_LOGGER = "darec.loggers.CSVLogger"
# Lightning's CSV logger deletes metrics.csv in an existing version folder: a resumed fit uses darec's.
_LIGHTNING_CSV_LOGGERS = ("lightning.pytorch.loggers.CSVLogger", "lightning.pytorch.loggers.csv_logs.CSVLogger")
#: Exit statuses of an interrupted command (128 + the signal number, as shells report them).
EXIT_SIGINT, EXIT_SIGTERM = 130, 143
#: Exit status of a configuration that a constructor rejected (argparse's status for usage errors).
EXIT_CONFIG = 2
#: ``--ckpt_path`` values that Lightning resolves itself (not files).
_SPECIAL_CKPT = ("last", "best", "hpc", "registry")


def _debug() -> bool:
    return os.environ.get("DAREC_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def _root_cause(error: BaseException) -> BaseException:
    """The first exception of a chain (jsonargparse wraps a constructor's error in its own)."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        if cause is None:
            break
        error = cause
    return error


def _resolve(class_path: Any) -> Any:
    if not isinstance(class_path, str) or "." not in class_path:
        return None
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name, None)
    except Exception:
        return None


def _configured_classes(config: Any, model_class: type) -> list[tuple[str, type]]:
    """``(config key, class)`` of every object the config builds: the model, data, backbone, logger, callbacks."""
    entries: list[tuple[str, Any]] = []
    for key in ("data", "model.backbone", "trainer.logger"):
        try:
            entries.append((key, config.get(key)))
        except Exception:
            continue
    callbacks = (config.get("trainer") or {}).get("callbacks") or []
    entries += [(f"trainer.callbacks[{i}]", c) for i, c in enumerate(callbacks if isinstance(callbacks, list) else [])]
    found = [("model", model_class)]
    for key, value in entries:
        cls = _resolve(getattr(value, "class_path", None))
        if isinstance(cls, type):
            found.append((f"{key}.init_args", cls))
    return found


def _failed_constructor(error: BaseException, classes: list[tuple[str, type]]) -> str | None:
    """The config key of the configured class whose constructor raised ``error``, else that constructor's class name.

    jsonargparse builds one configured object at a time, so the outermost constructor on the
    traceback that is a configured class's ``__init__`` is the one that failed; the frames are
    matched by code object, nothing is read from them.
    """
    codes: dict[Any, str] = {}
    for key, cls in reversed(classes):  # the first key wins for classes configured twice
        init = getattr(cls, "__init__", None)
        if hasattr(init, "__code__"):
            codes[init.__code__] = key
    innermost = None
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code in codes:
            return codes[code]
        if code.co_name == "__init__":
            innermost = getattr(code, "co_qualname", "").rpartition(".")[0] or innermost
        tb = tb.tb_next
    return innermost


def _config_error_line(config: Any, error: BaseException, model_class: type) -> str:
    cause = _root_cause(error)
    message = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    classes = _configured_classes(config, model_class)
    where = _failed_constructor(cause, classes)
    named = re.search(r"`(\w+)`", message)
    if named and where in {key for key, _ in classes}:
        where = f"{where}.{named.group(1)}"
    return f"darec: error: {where}: {message}" if where else f"darec: error: {message}"


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
    - ``last.ckpt`` is the latest validated epoch, and Ctrl-C, SIGTERM or an error during ``fit``
      saves ``interrupted.ckpt`` next to it (:class:`~darec.callbacks.ResumableCheckpoint`) and
      prints the command that resumes. Ctrl-C exits with status 130, SIGTERM with 143.
    - ``fit --ckpt_path <save_dir>/lightning_logs/version_N/checkpoints/<file>.ckpt`` continues
      logging in ``version_N`` (unless ``trainer.logger.init_args.version`` is set).
    - A constructor of the configured classes that rejects its arguments (a ``ValueError``, a missing
      file) ends the command with one line ``darec: error: <config key>: <message>`` and status 2;
      ``DAREC_DEBUG=1`` shows the traceback instead.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # LightningCLI parses, builds and runs the subcommand in its constructor: interruptions end here.
        try:
            super().__init__(*args, **kwargs)
        except SIGTERMException:
            self._report_interruption("SIGTERM")
            raise SystemExit(EXIT_SIGTERM) from None
        except SystemExit as exit_:
            # Lightning answers Ctrl-C with sys.exit(1), raised while handling the KeyboardInterrupt
            if isinstance(exit_.__context__, KeyboardInterrupt):
                self._report_interruption("Ctrl-C")
                raise SystemExit(EXIT_SIGINT) from None
            raise
        except KeyboardInterrupt:  # outside a trainer call
            self._report_interruption("Ctrl-C")
            raise SystemExit(EXIT_SIGINT) from None

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ResumableCheckpoint, "checkpoint")
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
        if getattr(logger, "class_path", None) in _LIGHTNING_CSV_LOGGERS:
            logger.class_path = _DEFAULT_LOGGER  # a subclass, with the same arguments
        if root and getattr(logger, "class_path", None) == _DEFAULT_LOGGER and logger.init_args.get("save_dir") == ".":
            logger.init_args.save_dir = str(root)
        if self.subcommand == "fit" and getattr(logger, "class_path", None) == _DEFAULT_LOGGER:
            self._continue_version(logger.init_args, config.get("ckpt_path"))

    @staticmethod
    def _continue_version(logger_args: Any, ckpt_path: str | None) -> None:
        """A fit resumed from ``<save_dir>/<name>/version_N/checkpoints/x.ckpt`` logs in ``version_N``."""
        if not ckpt_path or logger_args.get("version") is not None or ckpt_path in _SPECIAL_CKPT:
            return
        ckpt = Path(ckpt_path).expanduser().resolve()
        run_dir = ckpt.parent.parent
        if ckpt.parent.name != "checkpoints" or not run_dir.is_dir():
            return
        save_dir = Path(str(logger_args.get("save_dir") or ".")).expanduser().resolve()
        name = logger_args.get("name")
        root = save_dir / name if name else save_dir
        if run_dir.parent != root:
            return
        match = re.fullmatch(r"version_(\d+)", run_dir.name)
        logger_args.version = int(match.group(1)) if match else run_dir.name

    def _check_ckpt_path(self) -> None:
        """Checks ``--ckpt_path`` before Lightning reads it, and says when the checkpoint's model differs from the config's.

        LightningCLI builds the model of ``test``/``predict``/``validate``/``fit --ckpt_path`` from the
        hyper-parameters saved in the checkpoint, which replace the config's ``model`` section: a
        warning lists every setting on which the two disagree, so that a mismatched config is seen.
        """
        subcommand = self.config.get("subcommand")
        ckpt = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt and str(ckpt) not in _SPECIAL_CKPT and "://" not in str(ckpt):
            try:
                checkpoint = read_checkpoint(ckpt)
            except (CheckpointError, FileNotFoundError) as error:
                if _debug():
                    raise
                print(f"darec: error: --ckpt_path: {error}", file=sys.stderr)
                raise SystemExit(EXIT_CONFIG) from None
            model = self.config[subcommand].get("model")
            structural, other = hparams_differences(checkpoint.get("hyper_parameters") or {}, model.as_dict() if model else {})
            differences = structural + other
            if differences:
                print(
                    f"darec: warning: the checkpoint {ckpt} was trained with other model settings than the "
                    f"config's; the checkpoint's are used: {'; '.join(differences)}",
                    file=sys.stderr,
                )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        self._argv = list(args) if isinstance(args, (list, tuple)) else sys.argv[1:] if args is None else None
        super().parse_arguments(parser, args)
        self._check_ckpt_path()  # before LightningCLI reads the checkpoint's hyper-parameters

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, FileNotFoundError, NotADirectoryError) as error:
            if _debug():
                raise
            config = self.config.get(self.subcommand) if self.subcommand else self.config
            print(_config_error_line(config, error, self.model_class), file=sys.stderr)
            print("darec: (run with DAREC_DEBUG=1 for the traceback)", file=sys.stderr)
            raise SystemExit(EXIT_CONFIG) from None

    def _resume_command(self, ckpt: str) -> str | None:
        argv = getattr(self, "_argv", None)
        if argv is None:
            return None
        args, skip = [], False
        for arg in argv:
            if skip:
                skip = False
                continue
            if arg == "--ckpt_path":
                skip = True
                continue
            if arg.startswith("--ckpt_path="):
                continue
            args.append(arg)
        return shlex.join(["darec", *args, "--ckpt_path", ckpt])

    def _report_interruption(self, how: str) -> None:
        trainer = getattr(self, "trainer", None)
        if trainer is not None and not trainer.is_global_zero:
            return
        subcommand = getattr(self, "subcommand", None)
        checkpoint = next((c for c in getattr(trainer, "callbacks", []) if isinstance(c, ResumableCheckpoint)), None)
        where = f" at epoch {trainer.current_epoch}, step {trainer.global_step}" if trainer is not None else ""
        lines = [f"darec: interrupted by {how}{where}."]
        path = checkpoint.resume_path if checkpoint is not None else None
        if path:
            path = os.path.abspath(path)
            lines.append(f"darec: the run is saved in {path}")
            command = self._resume_command(path)
            if command and subcommand == "fit":
                lines.append(f"darec: resume with: {command}")
        elif subcommand == "fit":
            lines.append("darec: nothing was saved (no training step had run since the last checkpoint).")
        print("\n".join(lines), file=sys.stderr, flush=True)

    def after_fit(self) -> None:
        config = self.config.get(self.subcommand, {})
        if not config.get("test_after_fit", True) or self.trainer.interrupted:
            return
        ckpt = "best" if self.trainer.checkpoint_callback and self.trainer.checkpoint_callback.best_model_path else None
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt)


def cli(args: Any = None, run: bool = True) -> DaRecCLI:
    """Builds (and by default runs) the darec CLI; ``args`` as a list or dict replaces ``sys.argv``.

    A command whose data module is a :class:`~darec.data.SequenceDataModule` goes to
    :class:`darec.sequential_cli.SequentialCLI` (next-item recommendation with
    :class:`~darec.module.SequentialModule`); one whose data module is a
    :class:`~darec.ctr.CTRDataModule` goes to :class:`darec.ctr.cli.CTRCLI` (click-through-rate
    prediction with :class:`~darec.ctr.CTRModule`).
    """
    from darec.sequential_cli import configured_data_classes, is_sequential_config, sequential_cli  # lazy: it imports this module

    classes = configured_data_classes(args)
    if any(base.__name__ == "RecExplainerDataModule" for cls in classes for base in cls.__mro__):
        from darec.recexplainer.cli import recexplainer_cli  # lazy: it needs transformers and peft

        return recexplainer_cli(args, run)
    if any(base.__name__ == "CTRDataModule" for cls in classes for base in cls.__mro__):
        from darec.ctr.cli import ctr_cli

        return ctr_cli(args, run)
    if is_sequential_config(args):
        return sequential_cli(args, run)
    with quiet_lightning_warnings():  # warnings of Lightning that do not apply to darec's loaders
        return _build_cli(args, run)


def _build_cli(args: Any, run: bool) -> DaRecCLI:
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
    """Entry point of the ``darec`` console script.

    ``darec profiles ...`` (:mod:`darec.profiles.command`) writes profiles with a language model;
    ``darec preferences ...`` (:mod:`darec.lane.preferences_command`) extracts LANE's user preferences;
    ``darec explanations ...`` (:mod:`darec.ctr.explanations_command`) writes ExpCTR's pair explanations;
    ``darec expctr ...`` (:mod:`darec.expctr.command`) runs ExpCTR's three-stage loop and explains pairs with it;
    ``darec explain ...`` (:mod:`darec.lane.command`) explains a LANE checkpoint's recommendations;
    ``darec ask ...`` (:mod:`darec.recexplainer.cli`) questions a trained RecExplainer;
    every other subcommand goes to LightningCLI.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if sys.argv[1:2] == ["profiles"]:
        from darec.profiles.command import main as profiles_main

        raise SystemExit(profiles_main(sys.argv[2:]))
    if sys.argv[1:2] == ["preferences"]:
        from darec.lane.preferences_command import main as preferences_main

        raise SystemExit(preferences_main(sys.argv[2:]))
    if sys.argv[1:2] == ["expctr"]:
        from darec.expctr.command import main as expctr_main

        raise SystemExit(expctr_main(sys.argv[2:]))
    if sys.argv[1:2] == ["explanations"]:
        from darec.ctr.explanations_command import main as explanations_main

        raise SystemExit(explanations_main(sys.argv[2:]))
    if sys.argv[1:2] == ["explain"]:
        from darec.lane.command import main as explain_main

        raise SystemExit(explain_main(sys.argv[2:]))
    if sys.argv[1:2] == ["ask"]:
        from darec.recexplainer.cli import ask_main

        raise SystemExit(ask_main(sys.argv[2:]))
    cli()


if __name__ == "__main__":
    main()
