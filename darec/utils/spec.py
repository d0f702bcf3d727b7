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


class _MissingAttribute(ImportError):
    """The module imports, but does not define the named class (any more)."""


def _import_object(class_path: str) -> Any:
    """Imports ``"package.module.Name"`` (or a nested ``"package.module.Outer.Inner"``).

    Raises:
        ModuleNotFoundError: no module of the path can be imported (``name`` says which).
        _MissingAttribute: the module imports but lacks the object.
        ImportError: importing the module failed otherwise (reported as it is).
    """
    parts = class_path.split(".")
    missing: ModuleNotFoundError | None = None
    for split in range(len(parts) - 1, 0, -1):  # the longest importable module prefix first
        module_name = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise  # a missing parent package, or a missing import inside the module: report that
            missing = err
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            raise _MissingAttribute(
                f"module {module_name!r} has no attribute {'.'.join(parts[split:])!r}", name=module_name
            ) from None
        return obj
    if missing is not None:
        raise missing
    raise ModuleNotFoundError(f"{class_path!r} is not a dotted import path", name=class_path)


def _why_and_fix(class_path: str, err: ImportError) -> tuple[str, str]:
    """Why ``class_path`` cannot be imported, and what to do about it other than passing an instance."""
    name = class_path.rpartition(".")[2]
    if class_path.startswith("__main__."):
        return (
            "the class was defined in the script that was run (the `__main__` module), which cannot be imported later",
            f"define {name} in a module that can be imported wherever the checkpoint is loaded (a .py file "
            "on the Python path that the training script imports, not the script itself) and train again",
        )
    if ".<locals>." in class_path:
        return (
            "the class was defined inside a function, which cannot be imported",
            f"define {name} at the top level of an importable module and train again",
        )
    if isinstance(err, _MissingAttribute):
        return str(err), f"make sure module {err.name!r} defines {name} (it may have been renamed or moved)"
    if isinstance(err, ModuleNotFoundError) and err.name:
        return (
            str(err),
            f"make the module {err.name!r} importable here (install it, or put the folder that holds it on "
            "PYTHONPATH)",
        )
    return str(err), "fix the import error above"


def build_from_spec(spec: dict[str, Any], what: str = "the module") -> nn.Module:
    """Imports ``spec["class_path"]`` and calls it with ``spec["init_args"]``.

    Args:
        spec: ``{"class_path": "package.module.Class", "init_args": {...}}``, as made by
            :func:`init_spec`.
        what: how errors name the module being rebuilt. (default: ``"the module"``)

    Raises:
        ValueError: ``spec`` has no ``class_path``.
        ImportError: the class cannot be imported (e.g. it was defined in a ``__main__`` script);
            the message says how to fix it.

    Example:
        >>> build_from_spec({"class_path": "torch.nn.Linear", "init_args": {"in_features": 2, "out_features": 3}})
        Linear(in_features=2, out_features=3, bias=True)
    """
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ValueError(f"a module spec needs a 'class_path' (and optional 'init_args'), got {spec!r}")
    class_path = str(spec["class_path"])
    try:
        cls = _import_object(class_path)
    except ImportError as err:
        why, fix = _why_and_fix(class_path, err)
        name = class_path.rpartition(".")[2]
        raise ImportError(
            f"cannot import {class_path!r} to rebuild {what}: {why}. To fix it, either {fix}, or pass an "
            f"instance of the same architecture yourself, e.g. for a backbone "
            f"`DaRecModule.load_from_checkpoint(path, backbone={name}(...))`, which loads the saved weights into it."
        ) from err
    return cls(**spec.get("init_args", {}))
