"""Reading a darec checkpoint, with an error that names the file when it is not one or is damaged;
comparing its model with a configured one; saving and restoring the module's own state."""

from __future__ import annotations

import contextvars
import os
import pickle
import sys
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import torch
from torch import Tensor

from darec.utils.spec import trusted_classes as trusting

__all__ = ["CheckpointError", "Checkpointing", "hparams_differences", "read_checkpoint"]

# Set by DaRecModule.load_from_checkpoint, which builds the module from the checkpoint's own
# hyperparameters (plus the caller's explicit overrides): nothing to compare them with.
_LOADING_FROM_CHECKPOINT: contextvars.ContextVar[bool] = contextvars.ContextVar("darec_loading", default=False)

#: Hyperparameters that define the model a checkpoint holds: a module configured differently refuses
#: it. ``None`` in either of the ``_DERIVED`` ones means "taken from the data or the backbone".
STRUCTURAL_HPARAMS = (
    "backbone", "num_users", "num_items", "alpha", "orthogonality_weight", "uniformity_weight", "disentangle",
    "align_dim", "text_dim", "head_hidden_dim", "score_with", "uniformity_on_shared",
)  # fmt: skip
_DERIVED = ("num_users", "num_items", "align_dim", "text_dim")

_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default (zip) format
_PICKLE_MAGIC = b"\x80"  # torch.save's legacy format starts with a pickle protocol opcode


class CheckpointError(ValueError):
    """A file that is not a darec checkpoint, or one that is damaged.

    The message names the file: ``"<path> is not a darec checkpoint (<why>)"`` or
    ``"<path> is corrupted (<why>)"``; the error that revealed it is chained as ``__cause__``.

    Attributes:
        path (str): the file.
    """

    def __init__(self, path: str | os.PathLike, message: str) -> None:
        super().__init__(message)
        self.path = os.fspath(path)


def _not_darec(path: Path, why: str) -> CheckpointError:
    return CheckpointError(path, f"{path} is not a darec checkpoint ({why})")


def _corrupted(path: Path, why: str) -> CheckpointError:
    return CheckpointError(path, f"{path} is corrupted ({why}); restore it from a copy or train again")


def _describe_start(head: bytes) -> str:
    """What the first bytes of a file that is not a PyTorch file look like."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:  # a character cut at the end of the head is still text
        text = head[: err.start].decode("utf-8") if err.start >= len(head) - 3 else ""
    if text and all(char.isprintable() or char.isspace() for char in text):
        return f"it looks like a text file, starting with {text[:20]!r}"
    return f"it starts with the bytes {head[:8]!r}"


def _check_zip(path: Path) -> None:
    """Reads every member of a zip-format ``torch.save`` file and checks its CRC-32.

    ``torch.load`` does not verify the checksums that ``torch.save`` writes, so bytes flipped in
    a tensor's data would otherwise load as silently different weights. Members stored with a
    CRC of 0 (``torch.serialization.set_crc32_options(False)``) are not checked."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.CRC == 0 or info.is_dir():
                    continue
                with archive.open(info) as member:
                    while member.read(1 << 22):
                        pass
    except zipfile.BadZipFile as err:
        raise _corrupted(path, f"its zip archive is damaged or truncated: {err}") from err
    except (OSError, EOFError, ValueError, RuntimeError) as err:  # e.g. zlib errors, truncated members
        raise _corrupted(path, f"its zip archive cannot be read: {type(err).__name__}: {err}") from err


def read_checkpoint(
    path: str | os.PathLike, map_location: Any = "cpu", weights_only: bool | None = None
) -> dict[str, Any]:
    """Loads a darec checkpoint file, or says in one sentence, naming the file, why it cannot.

    The file must be a ``torch.save`` file whose checksums hold (every member of the zip format is
    read and its CRC-32 checked, which ``torch.load`` skips), that loads, and that holds a
    Lightning checkpoint written by :class:`~darec.DaRecModule` (a dict with ``"state_dict"`` and
    darec's ``"darec"`` entry). Used by :meth:`DaRecModule.load_from_checkpoint
    <darec.DaRecModule.load_from_checkpoint>`; call it to check a ``ckpt_path`` before handing it
    to a trainer.

    Args:
        path (str or os.PathLike): the checkpoint file.
        map_location: as in :func:`torch.load`; tensors land on the CPU by default, so that a
            checkpoint written on a GPU can be checked anywhere. (default: :obj:`"cpu"`)
        weights_only (bool, optional): as in :func:`torch.load` (:obj:`None`: torch's default,
            :obj:`True` since torch 2.6); darec's checkpoints load with :obj:`True`.

    Returns:
        dict: the checkpoint.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: ``path`` is a directory, empty, not a PyTorch file, not a darec
            checkpoint, or damaged (a failed checksum, a truncated archive, an unreadable pickle).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     notes = Path(tmp) / "notes.ckpt"
        ...     _ = notes.write_text("epoch 3 was the best")
        ...     try:
        ...         read_checkpoint(notes)
        ...     except CheckpointError as err:
        ...         print(str(err).replace(tmp, "<tmp>"))
        <tmp>/notes.ckpt is not a darec checkpoint (not a PyTorch file: it looks like a text file, starting with 'epoch 3 was the best')
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise _not_darec(path, "it is a directory, not a checkpoint file")
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head:
        raise _not_darec(path, "the file is empty")
    is_zip = head.startswith(_ZIP_MAGIC)
    if not is_zip and not head.startswith(_PICKLE_MAGIC):
        raise _not_darec(path, f"not a PyTorch file: {_describe_start(head)}")
    if is_zip:
        _check_zip(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=weights_only)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower():
            raise _not_darec(
                path, f"it holds Python objects that torch.load(weights_only=True) refuses: {str(err).splitlines()[0]}"
            ) from err
        raise _corrupted(path, f"torch.load failed: {type(err).__name__}: {err}") from err
    except Exception as err:  # torch.load reports damage as RuntimeError, EOFError, UnicodeDecodeError, ...
        raise _corrupted(path, f"torch.load failed: {type(err).__name__}: {err}") from err
    if not isinstance(checkpoint, dict):
        raise _not_darec(path, f"it holds a {type(checkpoint).__name__}, not a Lightning checkpoint")
    if "state_dict" not in checkpoint:
        keys = sorted(map(str, checkpoint))[:5]
        raise _not_darec(path, f"a PyTorch file without 'state_dict', not a Lightning checkpoint; its keys include {keys}")
    if not isinstance(checkpoint.get("darec"), dict):
        raise _not_darec(path, "a Lightning checkpoint without darec's 'darec' entry, written by another module")
    return checkpoint


def _comparable(value: Any) -> Any:
    """Tuples as lists and mappings as dicts, recursively: a value read from YAML compares equal to the saved one."""
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    if isinstance(value, Mapping):
        return {key: _comparable(v) for key, v in value.items()}
    return value


def _class(class_path: Any) -> Any:
    """The class a ``class_path`` names (``darec.backbones.MatrixFactorization`` and its defining module's
    path are the same class), or the path itself when its module is not imported: nothing named by a
    checkpoint is imported here (the configured backbone's module, and darec's, are imported already)."""
    module, _, name = str(class_path).rpartition(".")
    loaded = sys.modules.get(module)
    return getattr(loaded, name, class_path) if loaded is not None else class_path


def _backbone_differences(saved: Any, current: Any) -> list[str]:
    """Differences of two backbone specs: the class, then the constructor arguments both record
    (``num_nodes`` comes from the data; an argument at its default may be left out of either)."""
    if not isinstance(saved, Mapping) or not isinstance(current, Mapping):
        return [] if saved == current else [f"backbone: checkpoint {saved!r}, config {current!r}"]
    if _class(saved.get("class_path")) is not _class(current.get("class_path")):
        return [f"backbone: checkpoint {saved.get('class_path')}, config {current.get('class_path')}"]
    was, now = dict(saved.get("init_args") or {}), dict(current.get("init_args") or {})
    return [
        f"backbone.{key}: checkpoint {_comparable(was[key])!r}, config {_comparable(now[key])!r}"
        for key in sorted(set(was) & set(now))
        if key != "num_nodes" and _comparable(was[key]) != _comparable(now[key])
    ]


def hparams_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """How a checkpoint's hyperparameters differ from a module's (or a config's ``model`` section).

    Only keys both have are compared (a key one side lacks comes from another darec version).
    Sizes and widths that are :obj:`None` on one side were left to the data or the backbone and
    match anything; the backbone compares by class and by the constructor arguments both record.

    Args:
        saved: the checkpoint's ``hyper_parameters``.
        current: the module's ``hparams``, or the config's ``model`` section as a mapping.

    Returns:
        ``(structural, other)``: lines ``"<key>: checkpoint <value>, config <value>"`` for the
        settings that define the model (:data:`STRUCTURAL_HPARAMS`) and for the others
        (``lr``, ``ks``, ``predict_k``, ...).

    Example:
        >>> hparams_differences({"alpha": 0.01, "lr": 1e-3, "ks": (5, 10)}, {"alpha": 0.0, "lr": 1e-3, "ks": [5, 10]})
        (['alpha: checkpoint 0.01, config 0.0'], [])
    """
    structural: list[str] = []
    other: list[str] = []
    for key in sorted(set(saved) & set(current)):
        if key.startswith("_"):
            continue
        if key == "backbone":
            structural += _backbone_differences(saved[key], current[key])
            continue
        was, now = _comparable(saved[key]), _comparable(current[key])
        if was == now or (key in _DERIVED and (was is None or now is None)):
            continue
        (structural if key in STRUCTURAL_HPARAMS else other).append(f"{key}: checkpoint {was!r}, config {now!r}")
    return structural, other


class Checkpointing:
    """Mixin of :class:`~darec.DaRecModule`: what its checkpoints hold besides the weights, and how
    it rebuilds itself from one.

    The ``"darec"`` entry of a checkpoint holds the sizes, the training and held-out pairs, the raw
    ids, the sizes of the disentangling heads (``heads``: their constructor arguments, so that
    they are rebuilt explicitly), the alignment terms' names, weights and settings, the training
    generator and the running loss sums of an interrupted epoch. The terms' weights are in the
    ``state_dict`` (``objective.terms.<name>.*``): a fit resumed with the same callbacks builds the
    terms in ``setup`` and Lightning restores them; a module loaded without those callbacks (for
    inference: terms do not change scores) keeps their weights aside and gives them to a term of
    the same name when a later fit registers it.
    """

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        objective = self.objective
        checkpoint["darec"] = {
            "num_users": self.num_users,
            "num_items": self.num_items,
            "train_pairs": self._train_pairs,
            # masked by recommend(exclude="known") after loading; never part of the graph
            "heldout_pairs": self._heldout_pairs,
            # the data's raw ids, for recommend_raw() from the checkpoint alone
            "user_ids": None if self.user_ids is None else self.user_ids.tolist(),
            "item_ids": None if self.item_ids is None else self.item_ids.tolist(),
            "heads": self._head_sizes,
            "terms": {
                name: {"weight": objective.weights[name], "settings": objective.terms[name].extra_repr()}
                for name in objective.alignment_terms
            },
        }
        generator = self.__dict__.get("_generator")
        if generator is not None:  # the training draws continue where they were on resume
            checkpoint["darec"]["generator"] = {"device": generator.device.type, "state": generator.get_state()}
        if self.epoch_losses.count and self._trainer is not None:  # the running sums of the epoch's logged losses
            checkpoint["darec"]["epoch_sums"] = self.epoch_losses.state(self.current_epoch)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._check_checkpoint_model(checkpoint)
        state = checkpoint.get("darec")
        if state is None:
            return
        if state.get("generator") is not None:  # used by _training_generator on the first draw
            self.__dict__.pop("_generator", None)
            self.__dict__["_generator_state"] = state["generator"]
        if state.get("epoch_sums") is not None:  # used if the fit resumes within that epoch
            self.epoch_losses.resume_from(state["epoch_sums"])
        if state.get("train_pairs") is not None:
            self.set_graph(
                state["train_pairs"],
                state["num_users"],
                state["num_items"],
                heldout_pairs=state.get("heldout_pairs"),
                user_ids=state.get("user_ids"),
                item_ids=state.get("item_ids"),
            )
        weights = checkpoint.get("state_dict", {})
        if self.heads is None and state.get("heads") is not None:
            self._build_heads(**state["heads"])
        elif self.heads is None and any(key.startswith("heads.") for key in weights):
            raise ValueError(
                "the checkpoint holds disentangling heads without their sizes: it was written by a development "
                "version of darec before 0.1.0; train the model again"
            )
        self._set_aside_unregistered_terms(weights)

    def _set_aside_unregistered_terms(self, weights: dict[str, Tensor]) -> None:
        """Moves the weights of terms that no callback registered out of ``weights`` (they would be
        unexpected keys) into ``_set_aside``, for a term of the same name built by a later fit."""
        prefix = "objective.terms."
        for key in [key for key in weights if key.startswith(prefix)]:
            name, _, rest = key[len(prefix) :].partition(".")
            if name not in self.objective.terms:
                self._set_aside.setdefault(name, {})[rest] = weights.pop(key)

    def _check_checkpoint_model(self, checkpoint: dict[str, Any]) -> None:
        """Refuses a checkpoint of another model than this (configured) module; warns about other settings.

        Lightning loads a ``ckpt_path`` into the module built from the config, and
        :meth:`on_load_checkpoint` would then rebuild the checkpoint's heads and terms: a DaRec
        checkpoint would run under a plain LightGCN config without a word. The hyperparameters
        that define the model (:data:`STRUCTURAL_HPARAMS`: backbone, sizes, regulariser weights, heads,
        scoring) and the alignment terms must therefore agree; the others (``lr``, ``ks``,
        ``predict_k``, ...) only warn. :meth:`load_from_checkpoint` builds the module from the
        checkpoint itself and skips this.
        """
        if _LOADING_FROM_CHECKPOINT.get():
            return
        saved = checkpoint.get("hyper_parameters")
        if not isinstance(saved, dict):
            return
        current = dict(self.hparams)
        if "backbone" not in current or "backbone" not in saved:  # a custom backbone without a spec: compare classes
            cls = type(self.backbone)
            current["backbone"] = {"class_path": f"{cls.__module__}.{cls.__qualname__}"}
            if isinstance(saved.get("backbone"), dict):
                saved = {**saved, "backbone": {"class_path": saved["backbone"].get("class_path")}}
        structural, other = hparams_differences(saved, current)
        structural_terms, other_terms = self._terms_differences((checkpoint.get("darec") or {}).get("terms") or {})
        structural += structural_terms
        other += other_terms
        trainer = self._trainer
        path = getattr(trainer, "ckpt_path", None) if trainer is not None else None
        where = f"checkpoint {os.fspath(path)}" if path is not None else "the checkpoint"
        if structural:
            raise ValueError(
                f"{where} holds a different model than the configured one: {'; '.join(structural)}. "
                "Use the config the checkpoint was trained with (its settings are the checkpoint's "
                "'hyper_parameters', and `darec fit` saved config.yaml in the run's log directory), or "
                "load it with DaRecModule.load_from_checkpoint(path), which needs no config."
            )
        if other:
            warnings.warn(
                f"{where} was saved with other settings than the configured module's; they do not define "
                f"the model, so it loads: {'; '.join(other)}",
                UserWarning,
                stacklevel=2,
            )

    def _terms_differences(self, saved: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """How the checkpoint's alignment terms (``{name: {"weight", "settings"}}``) differ from the
        configured ones (registered by the trainer's callbacks): ``(structural, other)`` lines."""
        objective = self.objective
        configured = set(objective.alignment_terms) | set(objective.pending) | self._configured_alignment_terms()
        if configured and configured != set(saved):
            return [f"alignment terms: checkpoint {sorted(saved)}, config {sorted(configured)}"], []
        if not configured and saved:
            return [], [f"alignment terms: checkpoint {sorted(saved)}, config none (they do not change scores)"]
        structural = []
        for name in sorted(set(objective.alignment_terms) & set(saved)):
            was, now = saved[name].get("settings"), objective.terms[name].extra_repr()
            if was is not None and was != now:
                structural.append(f"term {name!r}: checkpoint {was!r}, config {now!r}")
        return structural, []

    def _configured_alignment_terms(self) -> set[str]:
        """Names of the terms that the trainer's alignment callbacks register (in ``fit``)."""
        from darec.callbacks.alignment_callback import AlignmentCallback

        trainer = self._trainer
        callbacks = trainer.callbacks if trainer is not None else []
        return {callback.name for callback in callbacks if isinstance(callback, AlignmentCallback)}

    def __getstate__(self) -> dict[str, Any]:
        # Sparse tensors cannot be deep-copied or pickled; the graph is rebuilt from the pairs on use.
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        state["_graph"] = None
        state["_eval_embedding"] = None
        if state.get("_generator") is not None:  # travels as its state (ddp_spawn's pickler drops generators)
            generator = state.pop("_generator")
            state["_generator_state"] = {"device": generator.device.type, "state": bytes(generator.get_state().tolist())}
        return state

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | os.PathLike | IO,
        map_location: Any = None,
        hparams_file: str | os.PathLike | None = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        *,
        trusted_classes: Iterable[str | type] = (),
        **kwargs: Any,
    ) -> DaRecModule:
        """Builds the module from a checkpoint alone: backbone, heads, terms, graph, held-out pairs, raw ids.

        Lightning's :meth:`~lightning.pytorch.core.LightningModule.load_from_checkpoint`, which
        first checks the file with :func:`~darec.module.checkpoint.read_checkpoint`: a file that
        is empty, not a PyTorch file, not a darec checkpoint or damaged (a failed checksum, a
        truncated archive) raises :class:`~darec.module.checkpoint.CheckpointError` naming it,
        instead of whatever ``torch.load`` or Lightning would stumble on. Arguments as
        Lightning's; keyword arguments override the saved hyperparameters (e.g. ``backbone=`` for
        a custom backbone whose constructor arguments could not be recorded).

        The backbone is rebuilt only from a class darec trusts: its own classes, PyG's
        ``LightGCN``, and those named in ``trusted_classes`` (class objects or import paths;
        ``"mypkg.*"`` for a package) or in the ``DAREC_TRUSTED_CLASSES`` environment variable; a
        checkpoint cannot make darec import anything else (see
        :func:`~darec.utils.spec.build_from_spec`).

        Raises:
            FileNotFoundError: ``checkpoint_path`` does not exist.
            CheckpointError: ``checkpoint_path`` is not a (readable) darec checkpoint.

        Example:
            >>> import tempfile
            >>> from darec import DaRecModule
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     empty = Path(tmp) / "best.ckpt"
            ...     empty.touch()
            ...     try:
            ...         DaRecModule.load_from_checkpoint(empty)
            ...     except ValueError as err:
            ...         print(str(err).replace(tmp, "<tmp>"))
            <tmp>/best.ckpt is not a darec checkpoint (the file is empty)
        """
        if isinstance(checkpoint_path, (str, os.PathLike)) and "://" not in os.fspath(checkpoint_path):
            read_checkpoint(checkpoint_path, weights_only=weights_only)  # local files; URLs and buffers as Lightning reads them
        token = _LOADING_FROM_CHECKPOINT.set(True)
        try:
            with trusting(trusted_classes):
                return super().load_from_checkpoint(
                    checkpoint_path,
                    map_location=map_location,
                    hparams_file=hparams_file,
                    strict=strict,
                    weights_only=weights_only,
                    **kwargs,
                )
        finally:
            _LOADING_FROM_CHECKPOINT.reset(token)
