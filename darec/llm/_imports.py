"""Imports of the optional LLM dependencies, done when a backend needs them and never at import time."""

from __future__ import annotations

import importlib
from types import ModuleType

#: The install command every missing-dependency error gives.
INSTALL_HINT = 'pip install "darec[llm]"'


def require(module: str, what: str) -> ModuleType:
    """Imports ``module``, or raises an :class:`ImportError` that names it, ``what`` needs it, and the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        package = module.split(".")[0]
        raise ImportError(f"{what} needs the `{package}` package, which is not installed: {INSTALL_HINT}") from err
