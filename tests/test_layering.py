"""Lower floors never import higher ones: a static check of every import in darec's lower packages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAREC = Path(__file__).resolve().parents[1] / "darec"
LOWER = ("text", "losses", "functional", "metrics", "backbones", "utils", "nn", "llm")
HIGHER = ("darec.data", "darec.module", "darec.callbacks", "darec.cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(DAREC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in the file, function-local ones included, relative ones resolved."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from darec import data` imports the sub-package darec.data:
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            found.append((node.lineno, base))
    return found


def _violations(package: str) -> list[str]:
    return [
        f"{path.relative_to(DAREC.parent)}:{line} imports {name}"
        for path in sorted((DAREC / package).rglob("*.py"))
        for line, name in imported_modules(path)
        if any(name == higher or name.startswith(higher + ".") for higher in HIGHER)
    ]


@pytest.mark.parametrize("package", LOWER)
def test_lower_packages_import_nothing_from_higher_ones(package):
    assert _violations(package) == []


# darec.llm sits beside darec.text, below the data and the explanation code that both use it:
# it may import only darec.utils (and itself).
SELF_CONTAINED = {"llm": ("darec.llm", "darec.utils")}


def _foreign_imports(package: str) -> list[str]:
    allowed = SELF_CONTAINED[package]
    return [
        f"{path.relative_to(DAREC.parent)}:{line} imports {name}"
        for path in sorted((DAREC / package).rglob("*.py"))
        for line, name in imported_modules(path)
        if (name == "darec" or name.startswith("darec."))
        and not any(name == ok or name.startswith(ok + ".") for ok in allowed)
    ]


@pytest.mark.parametrize("package", sorted(SELF_CONTAINED))
def test_self_contained_packages_import_only_what_they_may(package):
    assert _foreign_imports(package) == []


def test_the_self_contained_check_sees_a_sibling_import(monkeypatch):
    source = "from darec.utils.io import atomic_write\nfrom .options import GenerationOptions\nfrom darec import text\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source)
    assert any(v.endswith("imports darec.text") for v in _foreign_imports("llm"))
    imported = {v.split(" imports ")[1] for v in _foreign_imports("llm")}
    assert imported == {"darec", "darec.text"}  # the package's own modules and darec.utils are allowed


def test_the_check_sees_local_and_relative_imports(tmp_path, monkeypatch):
    source = "def f():\n    from ..data import readers\n    import darec.module.checkpoint\nfrom darec import cli\n"
    path = DAREC / "text" / "profiles.py"  # resolved as a module of darec.text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source)
    names = {name for _, name in imported_modules(path)}
    assert {"darec.data.readers", "darec.module.checkpoint", "darec.cli"} <= names
