"""Importing darec changes nothing process-wide: warning filters, torch settings, random state, logging, environment."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

DAREC = Path(__file__).resolve().parents[1] / "darec"

# Runs in a fresh interpreter: imports darec's third-party dependencies first (their own import-time
# settings are not darec's), records the process-wide state, imports every darec module, records again.
_PROBE = r"""
import importlib, json, logging, os, pkgutil, random, signal, sys, warnings
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception:
        pass
import numpy as np
import torch

def state():
    return {
        "warnings.filters": [repr(f) for f in warnings.filters],
        "torch.default_dtype": str(torch.get_default_dtype()),
        "torch.num_threads": torch.get_num_threads(),
        "torch.deterministic": torch.are_deterministic_algorithms_enabled(),
        "torch.matmul_precision": torch.get_float32_matmul_precision(),
        "torch.grad_enabled": torch.is_grad_enabled(),
        "torch.anomaly": torch.is_anomaly_enabled(),
        "torch.cudnn": [torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic],
        "torch.tf32": [torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32],
        "torch.rng": torch.get_rng_state().sum().item(),
        "torch.seed": torch.initial_seed(),
        "numpy.rng": repr(np.random.get_state()[1][:4]),
        "random.rng": repr(random.getstate()[1][:4]),
        "logging.root": [logging.root.level, [repr(h) for h in logging.root.handlers]],
        "logging.disable": logging.root.manager.disable,
        "environ": sorted(os.environ.items()),
        "excepthook": repr(sys.excepthook),
        "signals": [repr(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM)],
    }

before = state()
import darec
for module in pkgutil.walk_packages(darec.__path__, "darec."):
    importlib.import_module(module.name)
after = state()
print(json.dumps({key: [before[key], after[key]] for key in before if before[key] != after[key]}))
"""


def _third_party_imports() -> list[str]:
    """Every module darec's source imports (at any depth) that is not darec's own."""
    names = set()
    for path in DAREC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return sorted(name for name in names if name.split(".")[0] != "darec")


def test_importing_darec_changes_no_process_wide_state():
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(_third_party_imports())],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=DAREC.parent,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    changed = json.loads(result.stdout.strip().splitlines()[-1])
    assert changed == {}, changed
