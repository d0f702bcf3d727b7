"""File helpers: the cache directory, checksums and writes that never leave half a file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "default_cache_dir", "sha256_file"]


def default_cache_dir() -> Path:
    """Where darec keeps downloads and text embeddings: ``$DAREC_HOME`` or ``~/.cache/darec``."""
    return Path(os.environ.get("DAREC_HOME", Path.home() / ".cache" / "darec")).expanduser()


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
