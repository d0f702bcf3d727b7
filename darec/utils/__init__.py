"""Small helpers shared across darec's sub-packages."""

from darec.utils.generators import GeneratorPickling
from darec.utils.io import atomic_write, default_cache_dir, sha256_file

__all__ = ["GeneratorPickling", "atomic_write", "default_cache_dir", "sha256_file"]
