"""Small helpers shared across darec's sub-packages."""

from darec.utils.generators import GeneratorPickling
from darec.utils.io import UnwritableDirectoryError, atomic_write, default_cache_dir, ensure_writable_dir, sha256_file
from darec.utils.spec import (
    TRUSTED_CLASSES_ENV,
    build_from_spec,
    describe,
    is_trusted,
    register_known_class,
    trusted_classes,
)

__all__ = [
    "GeneratorPickling",
    "TRUSTED_CLASSES_ENV",
    "UnwritableDirectoryError",
    "atomic_write",
    "build_from_spec",
    "default_cache_dir",
    "describe",
    "ensure_writable_dir",
    "is_trusted",
    "register_known_class",
    "sha256_file",
    "trusted_classes",
]
