"""Reading a darec checkpoint, with an error that names the file when it is not one or is damaged."""

from __future__ import annotations

import importlib
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "hparams_differences", "read_checkpoint"]

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
    path are the same class), or the path itself when it cannot be imported."""
    module, _, name = str(class_path).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return class_path


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
