"""File helpers: the cache directory, checksums and writes that never leave half a file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["UnwritableDirectoryError", "atomic_write", "default_cache_dir", "ensure_writable_dir", "has_files", "models_dir", "sha256_file"]

#: How to point darec at another cache directory; the default advice of :func:`ensure_writable_dir`.
CACHE_DIR_HINT = (
    "choose another directory with the `cache_dir=` argument of the data module "
    "(`--data.cache_dir` on the command line) or the DAREC_HOME environment variable"
)


class UnwritableDirectoryError(PermissionError):
    """A directory darec must write into cannot be created or written."""


def default_cache_dir() -> Path:
    """Where darec keeps downloads and text embeddings: ``$DAREC_HOME`` or ``~/.cache/darec``."""
    return Path(os.environ.get("DAREC_HOME", Path.home() / ".cache" / "darec")).expanduser()


def ensure_writable_dir(
    path: str | os.PathLike[str], what: str = "the cache directory", hint: str = CACHE_DIR_HINT
) -> Path:
    """Creates ``path`` if needed and checks that a file can be written in it.

    Call it before slow work whose result goes into ``path`` (encoding texts, downloading), so that
    a directory that cannot take the result fails at once instead of after the work is done. The
    check really creates (and removes) a small temporary file, so it also catches read-only file
    systems, full quotas of inodes and paths that run through a regular file.

    Args:
        path: the directory.
        what: how the error names the directory. (default: ``"the cache directory"``)
        hint: what the error advises. (default: choose another ``cache_dir`` or ``DAREC_HOME``)

    Returns:
        The directory as a :class:`~pathlib.Path` (``~`` expanded).

    Raises:
        UnwritableDirectoryError: the directory cannot be created or written; the message names it,
            the reason and the ``hint``.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> ensure_writable_dir(root / "a" / "b") == root / "a" / "b", list((root / "a" / "b").iterdir())
        (True, [])
        >>> (root / "file").write_text("x")
        1
        >>> ensure_writable_dir(root / "file" / "sub")
        Traceback (most recent call last):
        ...
        darec.utils.io.UnwritableDirectoryError: the cache directory ... cannot be written ...
    """
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".darec-write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        if err.filename is not None and Path(err.filename) != path:
            reason += f": {err.filename}"
        raise UnwritableDirectoryError(f"{what} {path} cannot be written ({reason}); {hint}") from err
    return path


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", **kwargs) -> Iterator[IO]:
    """Opens a temporary file beside ``path`` and moves it into place only on success.

    A crash or an exception inside the block leaves ``path`` as it was (absent or the old
    content): nothing half-written is ever visible under the final name.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_write(target, "w") as f:
        ...     _ = f.write("done")
        >>> target.read_text()
        'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def models_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds fetched models: ``root`` (``~`` expanded) or ``default_cache_dir() / "models"``."""
    return Path(root).expanduser() if root is not None else default_cache_dir() / "models"


def has_files(folder: Path, names: tuple[str, ...]) -> bool:
    """Whether every one of ``names`` is a file in ``folder`` (how a cached model is known to be complete)."""
    return all((folder / name).is_file() for name in names)
