"""Small helpers shared across darec's sub-packages."""

from darec.utils.generators import GeneratorPickling
from darec.utils.io import UnwritableDirectoryError, atomic_write, default_cache_dir, ensure_writable_dir, sha256_file

__all__ = [
    "GeneratorPickling",
    "UnwritableDirectoryError",
    "atomic_write",
    "default_cache_dir",
    "ensure_writable_dir",
    "sha256_file",
]
