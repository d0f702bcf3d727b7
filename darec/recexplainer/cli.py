"""``darec fit`` for RecExplainer configs, and ``darec ask``: question a trained explainer.

Examples::

    darec fit --config examples/configs/ml100k_recexplainer_intention.yaml
    darec ask --config lightning_logs/version_0/config.yaml \\
        --ckpt lightning_logs/version_0/checkpoints/last.ckpt --user 13 --item 50

:func:`darec.cli.cli` hands a command to :class:`RecExplainerCLI` when its data module is a
:class:`~darec.recexplainer.RecExplainerDataModule` (:func:`is_recexplainer_config`). The rest
(CSV logs, resumable checkpoints, one-line configuration errors) is :class:`~darec.cli.DaRecCLI`'s;
the best checkpoint is the one of lowest ``val/loss``, and ``fit`` runs no test (the alignment
metrics need generation: ``benchmarks/recexplainer.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser

from darec.callbacks import ResumableCheckpoint
from darec.cli import _DEFAULT_LOGGER, DaRecCLI
from darec.data.datamodule import quiet_lightning_warnings
from darec.recexplainer.recexplainer_datamodule import RecExplainerDataModule
from darec.recexplainer.recexplainer_module import RecExplainerModule

__all__ = ["RecExplainerCLI", "ask_main", "is_recexplainer_config", "recexplainer_cli"]

#: Exit statuses of ``darec ask``: 2 for a bad argument, checkpoint or config.
EXIT_USAGE = 2


class RecExplainerCLI(DaRecCLI):
    """:class:`~darec.cli.DaRecCLI` for :class:`~darec.recexplainer.RecExplainerModule` and a
    :class:`~darec.recexplainer.RecExplainerDataModule`: checkpoints by lowest ``val/loss`` (and
    the last; they hold the trainable parts only), no test after ``fit``."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ResumableCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/loss",
                "checkpoint.mode": "min",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-step={step}-loss={val/loss:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )

    def after_fit(self) -> None:  # no test: the alignment metrics need generation
        return None


def is_recexplainer_config(args: Any = None) -> bool:
    """Whether a ``darec`` command line (or dict config) names a :class:`~darec.recexplainer.RecExplainerDataModule`.

    Example:
        >>> is_recexplainer_config({"data": {"class_path": "darec.recexplainer.RecExplainerDataModule"}})
        True
        >>> is_recexplainer_config(["fit", "--data", "darec.data.MovieLens100K"])
        False
    """
    from darec.sequential_cli import configured_data_classes

    return any(isinstance(cls, type) and issubclass(cls, RecExplainerDataModule) for cls in configured_data_classes(args))


def recexplainer_cli(args: Any = None, run: bool = True) -> RecExplainerCLI:
    """Builds (and by default runs) the RecExplainer ``darec`` command; ``args`` as in :func:`darec.cli.cli`."""
    with quiet_lightning_warnings():
        return RecExplainerCLI(
            RecExplainerModule,
            RecExplainerDataModule,
            subclass_mode_data=True,
            seed_everything_default=2024,
            trainer_defaults={"logger": {"class_path": _DEFAULT_LOGGER, "init_args": {"save_dir": "."}}},
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"default_env": False},
            args=args,
            run=run,
        )


# -- darec ask -------------------------------------------------------------------------------------
def build_ask_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="darec ask",
        description="Ask a trained RecExplainer about users and items of its target recommender; one JSON line per "
        "(user, item): the target's score and rank, the question and the answer.",
    )
    parser.add_argument("--config", required=True, help="the run's config (lightning_logs/version_N/config.yaml)")
    parser.add_argument("--ckpt", required=True, help="a checkpoint of that run")
    parser.add_argument("--user", required=True, help="raw user id")
    parser.add_argument("--item", action="append", default=None, help="raw item id (repeatable)")
    parser.add_argument("--top", type=int, default=None, help="instead of --item: the target's top N items for the user")
    parser.add_argument("--question", default=None, help="ask this instead (with <user>/<item> placeholders)")
    parser.add_argument("--max-new-tokens", type=int, default=96, help="the longest answer (default: 96)")
    parser.add_argument("--out", default=None, help="append the JSON lines to this file (default: print them)")
    return parser


def load_datamodule(config: str | os.PathLike[str]) -> RecExplainerDataModule:
    """The :class:`~darec.recexplainer.RecExplainerDataModule` of a training config's ``data`` section (e.g. the run's ``config.yaml``).

    Raises:
        FileNotFoundError: no such config.
        ValueError: the config has no ``data`` section naming a RecExplainerDataModule.
    """
    import yaml
    from jsonargparse import ArgumentParser

    path = os.path.expanduser(str(config))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--config {str(config)!r}: no such file")
    with open(path, encoding="utf-8") as handle:
        text = yaml.safe_load(handle)
    section = text.get("data") if isinstance(text, dict) else None
    if not isinstance(section, dict) or "class_path" not in section:
        raise ValueError(f"{config} has no `data` section with a class_path (the data module of the training run)")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--data", type=RecExplainerDataModule)
    try:
        parsed = parser.parse_object({"data": section})
    except Exception as err:  # jsonargparse's own error type varies between versions
        raise ValueError(f"{config}: the `data` section is not a RecExplainerDataModule: {err}") from err
    return parser.instantiate_classes(parsed).data


def _raw_ids(datamodule: RecExplainerDataModule) -> tuple[list[str], list[str]]:
    data = datamodule.data
    if hasattr(data, "sequences"):
        return [str(u) for u in data.sequences.user_ids], [str(i) for i in data.sequences.item_ids]
    inter = data.interactions
    return [str(u) for u in inter.user_ids], [str(i) for i in inter.item_ids]


def ask_main(argv: Sequence[str] | None = None) -> int:
    """Runs ``darec ask`` with ``argv`` (default: ``sys.argv[2:]``) and returns the exit status."""
    import torch
    import yaml

    from darec.recexplainer.rec_explainer import RecExplainer

    args = build_ask_parser().parse_args(sys.argv[2:] if argv is None else list(argv))
    debug = os.environ.get("DAREC_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    try:
        if (args.item is None) == (args.top is None):
            raise ValueError("give --item (one or more) or --top N")
        datamodule = load_datamodule(args.config)
        users, items = _raw_ids(datamodule)
        if args.user not in users:
            raise ValueError(f"--user {args.user!r} is not a user of the data (e.g. {users[:3]})")
        user = users.index(args.user)
        explainer = RecExplainer.from_checkpoint(args.ckpt, datamodule)
        if args.top is not None:
            with torch.no_grad():
                scores = torch.as_tensor(explainer.target.score(torch.tensor([user])))[0].float()
            scores[list(explainer.target.histories[user])] = -float("inf")
            chosen = scores.topk(min(args.top, len(items))).indices.tolist()
        else:
            unknown = [i for i in args.item if i not in items]
            if unknown:
                raise ValueError(f"--item {unknown[0]!r} is not an item of the data (e.g. {items[:3]})")
            chosen = [items.index(i) for i in args.item]
        lines = []
        for item in chosen:
            if args.question:
                record = {"user": user, "item": item, "question": args.question,
                          "answer": explainer.ask(args.question, user, item, max_new_tokens=args.max_new_tokens)}  # fmt: skip
            else:
                record = explainer.explain(user, item, max_new_tokens=args.max_new_tokens)
            record.update(user=args.user, item=items[item])
            lines.append(json.dumps(record, ensure_ascii=False))
    except (OSError, ValueError, TypeError, RuntimeError, KeyError, yaml.YAMLError) as err:
        if debug:
            raise
        print(f"darec ask: error: {' '.join(str(err).split())}", file=sys.stderr)
        return EXIT_USAGE
    if args.out:
        with open(args.out, "a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
    else:
        print("\n".join(lines))
    return 0
