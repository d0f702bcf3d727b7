"""Fixtures locating MovieLens-100K (RecBole atomic files) and the reference split.

The source files are found, in this order, in ``$DAREC_ML100K_DIR``, in
``~/.cache/darec/datasets/ml-100k``, or in the PyPI wheel ``recbole==1.2.1`` downloaded with pip
(once per test session; the wheel is only unzipped, recbole is never installed or imported).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ML100K_FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")
RECBOLE_WHEEL = "recbole==1.2.1"
WHEEL_MEMBER = "recbole/dataset_example/ml-100k/{}"
# tests/data/conftest.py -> repository root -> its sibling shared/ (a checkout has shared/ beside it).
REFERENCE_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ml100k-implicit-v1"


def _has_ml100k(directory: Path) -> bool:
    return all((directory / name).is_file() for name in ML100K_FILES)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The reference split ``shared/data/ml100k-implicit-v1``; fails (never skips) if absent."""
    if not (REFERENCE_DIR / "train.tsv").is_file():
        pytest.fail(
            f"the reference split is missing: expected {REFERENCE_DIR.resolve()} (shared/ must sit beside the "
            "repository checkout)",
            pytrace=False,
        )
    return REFERENCE_DIR.resolve()


@pytest.fixture(scope="session")
def ml100k_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with RecBole's ``ml-100k.{inter,item,user}``."""
    env = os.environ.get("DAREC_ML100K_DIR")
    if env:
        directory = Path(env).expanduser()
        if not _has_ml100k(directory):
            pytest.fail(f"DAREC_ML100K_DIR={env} does not hold {', '.join(ML100K_FILES)}", pytrace=False)
        return directory
    cache = Path.home() / ".cache" / "darec" / "datasets" / "ml-100k"
    if _has_ml100k(cache):
        return cache

    download = tmp_path_factory.mktemp("recbole-wheel")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", RECBOLE_WHEEL, "-d", str(download)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.fail(f"could not run {' '.join(command)}: {err}", pytrace=False)
    wheels = sorted(download.glob("recbole-*.whl"))
    if proc.returncode != 0 or not wheels:
        pytest.fail(
            f"MovieLens-100K not found: set DAREC_ML100K_DIR or fill {cache}; downloading the wheel failed:\n"
            f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}",
            pytrace=False,
        )
    target = download / "ml-100k"
    target.mkdir()
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in ML100K_FILES:
            (target / name).write_bytes(wheel.read(WHEEL_MEMBER.format(name)))
    return target
