"""Importing darec installs nothing process-wide: no warning filter, no logging handler, no variable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import pytest

from darec.data import quiet_lightning_warnings

# Run in a fresh interpreter: this one imported darec long ago. The third-party modules that
# `import darec.data` loads are imported first (in the order darec loads them), since some of them
# install warning filters of their own; what importing darec.data then changes is darec's doing.
_PROBE = textwrap.dedent(
    """
    import importlib, json, logging, os, subprocess, sys, warnings

    listed = subprocess.run(
        [sys.executable, "-c", "import sys, darec.data; print('\\\\n'.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    for name in listed:
        if name.split(".")[0] != "darec" and name not in sys.modules:
            try:
                importlib.import_module(name)
            except Exception:
                pass
    filters, handlers, environ = list(warnings.filters), list(logging.root.handlers), dict(os.environ)
    import darec.data  # noqa: F401
    print(json.dumps({
        "new_filters": [repr(f) for f in warnings.filters if f not in filters],
        "filters_changed": warnings.filters != filters,
        "handlers_changed": logging.root.handlers != handlers,
        "environ_changed": sorted(set(os.environ.items()) ^ set(environ.items())),
    }))
    """
)


@pytest.fixture(scope="module")
def probe() -> dict:
    import json

    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_darec_data_leaves_warning_filters_unchanged(probe: dict) -> None:
    assert probe["new_filters"] == [] and not probe["filters_changed"]


def test_importing_darec_data_adds_no_logging_handler_and_no_variable(probe: dict) -> None:
    assert not probe["handlers_changed"]
    assert probe["environ_changed"] == []


def test_quiet_lightning_warnings_hides_them_inside_the_block_only() -> None:
    message = "Your `IterableDataset` has `__len__` defined. In combination with ..."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        with quiet_lightning_warnings():
            warnings.warn(message, UserWarning, stacklevel=1)
            warnings.warn("Couldn't infer the batch indices fetched from your dataloader: `DataLoader`", stacklevel=1)
            warnings.warn("another warning", UserWarning, stacklevel=1)
        assert warnings.filters == before
        warnings.warn(message, UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["another warning", message]
