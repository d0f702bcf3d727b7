"""Verified downloads, re-exported from :mod:`darec.utils.download` where they now live.

The helpers moved down to :mod:`darec.utils` so that :mod:`darec.text` (which must not import
:mod:`darec.data`) can fetch model files with them too; this module keeps the old import path.
"""

from darec.utils.download import ChecksumError, download_url, pip_download, verify_sha256

__all__ = ["ChecksumError", "download_url", "pip_download", "verify_sha256"]
