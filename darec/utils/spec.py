"""Recording how a module was built, so that a checkpoint can build it again."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torch
from torch import nn

__all__ = ["build_from_spec", "init_spec"]

_PLAIN = (bool, int, float, str, type(None))


def _plain(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) for v in value):
        return list(value)
    raise TypeError


def init_spec(module: nn.Module) -> dict[str, Any] | None:
    """``{"class_path", "init_args"}`` for ``module``, read from attributes named like its arguments.

    Works for modules that keep their constructor arguments as attributes (PyG's ``LightGCN``,
    darec's own modules). Returns :obj:`None` when a required argument cannot be recovered; the
    caller must then supply the module itself when loading a checkpoint.

    Example:
        >>> init_spec(torch.nn.Linear(2, 3))["init_args"]
        {'in_features': 2, 'out_features': 3}
    """
    cls = type(module)
    init_args: dict[str, Any] = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if not hasattr(module, name):
            if param.default is inspect.Parameter.empty:
                return None
            continue
        value = getattr(module, name)
        if name == "alpha" and isinstance(value, torch.Tensor) and hasattr(module, "num_layers"):
            # PyG LightGCN stores its default (uniform) layer weights as a buffer:
            if torch.allclose(value, torch.full_like(value, 1.0 / (module.num_layers + 1))):
                continue
            flat = value.detach().flatten()
            if not torch.equal(flat, flat[:1].expand_as(flat)):
                return None  # per-layer weights: LightGCN takes them only as a tensor, not a plain value
            value = float(flat[0])  # one weight for every layer: LightGCN(alpha=<float>) rebuilds it
        try:
            value = _plain(value)
        except TypeError:
            if param.default is inspect.Parameter.empty:
                return None
            continue
        if param.default is not inspect.Parameter.empty and value == param.default:
            continue
        init_args[name] = value
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}


def build_from_spec(spec: dict[str, Any]) -> nn.Module:
    """Imports ``spec["class_path"]`` and calls it with ``spec["init_args"]``.

    Example:
        >>> build_from_spec({"class_path": "torch.nn.Linear", "init_args": {"in_features": 2, "out_features": 3}})
        Linear(in_features=2, out_features=3, bias=True)
    """
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ValueError(f"a module spec needs a 'class_path' (and optional 'init_args'), got {spec!r}")
    module_name, _, attr = spec["class_path"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ImportError(f"cannot import {spec['class_path']!r} to rebuild the module: {err}") from err
    return cls(**spec.get("init_args", {}))
