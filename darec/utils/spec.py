"""Recording how a module was built, so that a checkpoint can build it again, and rebuilding it safely.

A checkpoint stores ``{"class_path", "init_args"}`` for its backbone (and alignment terms), written
by :func:`describe` from what the module says about itself (a ``darec_spec()`` method) or from a
describer registered for a known third-party class; nothing is read back from attribute names.
:func:`build_from_spec` imports only darec's own classes, the registered known classes and the
classes the user names as trusted (:func:`trusted_classes`, or the ``DAREC_TRUSTED_CLASSES``
environment variable), so loading a checkpoint never imports whatever module it names.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import inspect
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

__all__ = [
    "TRUSTED_CLASSES_ENV",
    "build_from_spec",
    "class_path_of",
    "describe",
    "is_trusted",
    "register_known_class",
    "trusted_classes",
]

#: Environment variable with more trusted class paths, comma-separated (``pkg.Model`` or ``pkg.*``).
TRUSTED_CLASSES_ENV = "DAREC_TRUSTED_CLASSES"

_PLAIN = (bool, int, float, str, type(None))
Describer = Callable[[nn.Module], "dict[str, Any] | None"]
_KNOWN: dict[str, Describer] = {}
_TRUSTED: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("darec_trusted_classes", default=())


def _plain(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) for v in value):
        return list(value)
    raise TypeError


def class_path_of(cls: type) -> str:
    """``"package.module.Class"``, the path a spec records for ``cls``."""
    return f"{cls.__module__}.{cls.__qualname__}"


# -- describing ----------------------------------------------------------------------------------
def register_known_class(class_paths: str | Iterable[str], describer: Describer) -> None:
    """Lets :func:`describe` record, and :func:`build_from_spec` rebuild, a class that cannot describe itself.

    Args:
        class_paths: the import path(s) of the class (its defining module's, and any public alias).
        describer: returns the constructor keyword arguments (plain values) of an instance, or
            :obj:`None` when they cannot be recorded.
    """
    for path in [class_paths] if isinstance(class_paths, str) else class_paths:
        _KNOWN[path] = describer


def describe(module: nn.Module) -> dict[str, Any] | None:
    """``{"class_path", "init_args"}`` that rebuild ``module``, or :obj:`None` if it cannot say.

    The constructor arguments come, in this order, from the module's own ``darec_spec()`` method
    (which :class:`darec.backbones.Backbone` declares), from a describer registered with
    :func:`register_known_class` (PyG's ``LightGCN``), and otherwise nowhere: then :obj:`None`,
    and loading a checkpoint needs the module passed in. Arguments equal to their defaults are
    left out.

    Raises:
        TypeError: ``darec_spec()`` returned something that is not a mapping of plain values.

    Example:
        >>> class Scaled(nn.Module):
        ...     def __init__(self, size: int, scale: float = 1.0) -> None:
        ...         super().__init__()
        ...         self.scale = scale
        ...         self.weight = nn.Parameter(torch.ones(size))
        ...     def darec_spec(self):
        ...         return {"size": self.weight.numel(), "scale": self.scale}
        >>> describe(Scaled(3))["init_args"]
        {'size': 3}
        >>> describe(nn.Linear(2, 3)) is None  # says nothing about itself, and is not registered
        True
    """
    cls = type(module)
    method = getattr(module, "darec_spec", None)
    if callable(method):
        init_args = method()
    else:
        describer = _KNOWN.get(class_path_of(cls))
        init_args = describer(module) if describer is not None else None
    if init_args is None:
        return None
    return {"class_path": class_path_of(cls), "init_args": _recorded_args(cls, init_args)}


def _recorded_args(cls: type, init_args: Any) -> dict[str, Any]:
    """The plain, non-default constructor arguments of ``init_args``."""
    if not isinstance(init_args, dict):
        raise TypeError(f"{cls.__name__}.darec_spec() must return a dict of constructor arguments, got {init_args!r}")
    params = inspect.signature(cls.__init__).parameters
    recorded = {}
    for name, value in init_args.items():
        try:
            value = _plain(value)
        except TypeError:
            raise TypeError(
                f"{cls.__name__}.darec_spec(): argument {name!r} is {type(value).__name__}, not a plain value "
                "(bool, int, float, str, None or a list of them)"
            ) from None
        default = params[name].default if name in params else inspect.Parameter.empty
        if default is not inspect.Parameter.empty and value == (list(default) if isinstance(default, tuple) else default):
            continue
        recorded[name] = value
    return recorded


def _describe_lightgcn(model: nn.Module) -> dict[str, Any] | None:
    """PyG's ``LightGCN(num_nodes, embedding_dim, num_layers, alpha)``; per-layer weights cannot be recorded."""
    init_args: dict[str, Any] = {"num_nodes": model.num_nodes, "embedding_dim": model.embedding_dim, "num_layers": model.num_layers}
    alpha = model.alpha.detach().flatten()
    if torch.allclose(alpha, torch.full_like(alpha, 1.0 / (model.num_layers + 1))):
        return init_args  # the default, uniform weights
    if not torch.equal(alpha, alpha[:1].expand_as(alpha)):
        return None  # per-layer weights: LightGCN takes them only as a tensor, not a plain value
    return {**init_args, "alpha": float(alpha[0])}  # one weight for every layer


register_known_class(
    ("torch_geometric.nn.models.lightgcn.LightGCN", "torch_geometric.nn.models.LightGCN"), _describe_lightgcn
)


# -- trusting --------------------------------------------------------------------------------------
def _as_path(entry: str | type) -> str:
    return entry if isinstance(entry, str) else class_path_of(entry)


@contextlib.contextmanager
def trusted_classes(classes: Iterable[str | type]) -> Iterator[None]:
    """Lets :func:`build_from_spec` import ``classes`` (class objects or paths; ``"pkg.*"`` for a package) within the block.

    Example:
        >>> spec = {"class_path": "torch.nn.Linear", "init_args": {"in_features": 2, "out_features": 3}}
        >>> with trusted_classes(["torch.nn.Linear"]):
        ...     build_from_spec(spec)
        Linear(in_features=2, out_features=3, bias=True)
    """
    entries = [classes] if isinstance(classes, (str, type)) else list(classes)
    token = _TRUSTED.set(_TRUSTED.get() + tuple(_as_path(entry) for entry in entries))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def is_trusted(class_path: str, trusted: Iterable[str | type] = ()) -> bool:
    """Whether :func:`build_from_spec` may import ``class_path``.

    darec's own classes, the registered known classes, ``trusted``, the classes of enclosing
    :func:`trusted_classes` blocks and those of ``DAREC_TRUSTED_CLASSES`` are.

    Example:
        >>> is_trusted("darec.backbones.MatrixFactorization"), is_trusted("os.system")
        (True, False)
        >>> is_trusted("mypkg.models.MyModel", trusted=["mypkg.*"])
        True
    """
    if class_path.startswith("darec.") or class_path in _KNOWN:
        return True
    env = [entry.strip() for entry in os.environ.get(TRUSTED_CLASSES_ENV, "").split(",") if entry.strip()]
    for entry in (*(_as_path(t) for t in trusted), *_TRUSTED.get(), *env):
        if class_path == entry or (entry.endswith(".*") and class_path.startswith(entry[:-1])):
            return True
    return False


# -- building --------------------------------------------------------------------------------------
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


def _untrusted(class_path: str) -> tuple[str, str]:
    return (
        "darec imports only its own classes, known ones (PyG's LightGCN) and classes you name as trusted",
        f"name it as trusted if you trust the checkpoint: `DaRecModule.load_from_checkpoint(path, "
        f"trusted_classes=[{class_path!r}])` (or the environment variable {TRUSTED_CLASSES_ENV}={class_path})",
    )


def build_from_spec(spec: dict[str, Any], what: str = "the module", trusted: Iterable[str | type] = ()) -> nn.Module:
    """Imports ``spec["class_path"]``, if it is trusted (:func:`is_trusted`), and calls it with ``spec["init_args"]``.

    Args:
        spec: ``{"class_path": "package.module.Class", "init_args": {...}}``, as made by
            :func:`describe`.
        what: how errors name the module being rebuilt. (default: ``"the module"``)
        trusted: more classes (or paths) that may be imported, besides those :func:`is_trusted`
            accepts.

    Raises:
        ValueError: ``spec`` has no ``class_path``.
        ImportError: the class is not trusted, or cannot be imported (e.g. it was defined in a
            ``__main__`` script); the message says how to fix it.
        TypeError: the path names something other than a :class:`torch.nn.Module` class.

    Example:
        >>> build_from_spec({"class_path": "darec.backbones.MatrixFactorization", "init_args": {"num_nodes": 3}})
        MatrixFactorization(3, 64)
        >>> build_from_spec({"class_path": "torch.nn.Linear", "init_args": {"in_features": 2, "out_features": 3}})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ImportError: cannot import 'torch.nn.Linear' to rebuild the module: darec imports only its own classes, ...
    """
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ValueError(f"a module spec needs a 'class_path' (and optional 'init_args'), got {spec!r}")
    class_path = str(spec["class_path"])
    name = class_path.rpartition(".")[2]
    try:
        if class_path.startswith("__main__.") or ".<locals>." in class_path:
            raise ImportError(f"{class_path!r} cannot be imported", name=class_path)
        if not is_trusted(class_path, trusted):
            raise _Untrusted(class_path)
        cls = _import_object(class_path)
    except ImportError as err:
        why, fix = _untrusted(class_path) if isinstance(err, _Untrusted) else _why_and_fix(class_path, err)
        raise ImportError(
            f"cannot import {class_path!r} to rebuild {what}: {why}. To fix it, either {fix}, or pass an "
            f"instance of the same architecture yourself, e.g. for a backbone "
            f"`DaRecModule.load_from_checkpoint(path, backbone={name}(...))`, which loads the saved weights into it."
        ) from err
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"{class_path!r} names {cls!r}, not a torch.nn.Module class, so it cannot rebuild {what}")
    return cls(**spec.get("init_args", {}))


class _Untrusted(ImportError):
    """The class path is not one :func:`build_from_spec` may import."""
