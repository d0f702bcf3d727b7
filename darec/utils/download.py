"""Downloads that verify their checksum and never leave half a file behind.

Used by :mod:`darec.data` (datasets) and :mod:`darec.text` (model files); it lives here, on the lowest
floor, so that both can import it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from darec.utils.io import ensure_writable_dir, sha256_file

__all__ = ["ChecksumError", "download_url", "pip_download"]


class ChecksumError(OSError):
    """A file's SHA-256 digest is not the expected one."""


def verify_sha256(path: str | os.PathLike[str], expected: str | None) -> None:
    """Raises :class:`ChecksumError` if ``path`` does not hash to ``expected`` (skipped when None)."""
    if expected is None:
        return
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumError(f"{path}: SHA-256 is {actual}, expected {expected}; the file is corrupt or not the expected release")


def download_url(url: str, dest: str | os.PathLike[str], sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Downloads ``url`` to ``dest`` with a progress bar, verifying the SHA-256 digest.

    The data go to a temporary file beside ``dest`` that is moved into place only once complete
    and verified, so an interrupted or corrupt download leaves nothing under ``dest``.

    Raises:
        UnwritableDirectoryError: ``dest``'s directory cannot be written (checked before downloading).
        ChecksumError: the downloaded bytes do not match ``sha256`` (nothing is kept).
        OSError: the download failed (e.g. no network).
    """
    dest = Path(dest)
    ensure_writable_dir(dest.parent, what=f"the directory for {dest.name}")  # before any byte is fetched
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {dest.name}") as bar:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if sha256 is not None and digest.hexdigest() != sha256:
            raise ChecksumError(f"{url}: SHA-256 is {digest.hexdigest()}, expected {sha256}; nothing was kept")
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dest


def pip_download(requirement: str, dest_dir: str | os.PathLike[str], sha256: str | None = None) -> Path:
    """Fetches one wheel with ``pip download --no-deps`` (nothing is installed) and verifies it.

    Raises:
        UnwritableDirectoryError: ``dest_dir`` cannot be written (checked before pip runs).
        OSError: pip failed or produced no wheel.
        ChecksumError: the wheel does not match ``sha256``.
    """
    dest_dir = ensure_writable_dir(dest_dir, what=f"the directory for the {requirement} wheel")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest_dir), requirement]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise OSError(f"`{' '.join(cmd)}` failed: {result.stderr.strip()[-500:]}")
    name = requirement.split("==")[0].replace("-", "_").lower()
    wheels = sorted(p for p in dest_dir.glob("*.whl") if p.name.lower().startswith(name))
    if not wheels:
        raise OSError(f"pip download produced no wheel for {requirement} in {dest_dir}")
    verify_sha256(wheels[-1], sha256)
    return wheels[-1]
