"""darec's own split folders: ``train.tsv``/``valid.tsv``/``test.tsv``, id maps, texts and ``stats.json``."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from darec.data.interactions import Interactions
from darec.data.readers._common import PathLike, existing_dir, read_text
from darec.utils.io import sha256_file

__all__ = ["read_split_dir", "write_split_dir"]

_SPLIT_FILES = ("train", "valid", "test")
_KINDS = ("user", "item")


# Over 60 lines only for its docstring (the folder layout); the body reads the files with the
# helpers below.
def read_split_dir(directory: PathLike, *, verify: bool = True) -> Interactions:
    """Reads a split exported by :func:`write_split_dir` (e.g. ``shared/data/ml100k-implicit-v1``).

    Layout (all UTF-8):

    * ``train.tsv`` (required), ``valid.tsv``, ``test.tsv``: header ``user<TAB>item``, then one
      pair of new (0-based) ids per line;
    * ``user_map.tsv``, ``item_map.tsv`` (optional): header ``id<TAB>raw_id``, one line per id;
    * ``user_text.jsonl``, ``item_text.jsonl`` (optional): one ``{"id", "raw_id", "text"}``
      object per line, covering every id once;
    * ``stats.json`` (optional): its ``protocol`` (a dict, or a name) and ``settings`` become
      :attr:`Interactions.protocol`, with ``source`` and ``counts`` when present; its
      ``files_sha256`` are checked when ``verify`` is true.

    ``num_users``/``num_items`` come from the maps, else from the largest id in the splits (and
    texts) plus one.

    Args:
        directory: the split folder.
        verify: check the SHA-256 digests listed in ``stats.json["files_sha256"]``.

    Returns:
        The :class:`~darec.data.interactions.Interactions`, with texts when the files exist.

    Raises:
        FileNotFoundError: if the folder or ``train.tsv`` is missing.
        ValueError: for a malformed file, ids that do not cover ``0 .. n-1``, a text whose
            ``raw_id`` disagrees with the map, or a digest mismatch.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "train.tsv").write_text("user\\titem\\n0\\t0\\n1\\t1\\n")
        >>> _ = (d / "test.tsv").write_text("user\\titem\\n0\\t1\\n")
        >>> read_split_dir(d)
        Interactions(users=2, items=2, train=2, valid=0, test=1)
    """
    directory = existing_dir(directory)
    if not (directory / "train.tsv").is_file():
        raise FileNotFoundError(f"{directory} is not a split folder: train.tsv is missing")
    stats = _read_stats(directory, verify)
    splits = {
        name: _read_pairs(directory / f"{name}.tsv") if (directory / f"{name}.tsv").is_file() else None
        for name in _SPLIT_FILES
    }
    ids = {kind: _read_id_map(directory / f"{kind}_map.tsv") for kind in _KINDS}
    texts = {kind: _read_texts(directory / f"{kind}_text.jsonl") for kind in _KINDS}
    sizes = {
        kind: _count(ids[kind], [p[:, column] for p in splits.values() if p is not None], texts[kind])
        for column, kind in enumerate(_KINDS)
    }
    protocol = _protocol(stats, directory)
    ordered = {
        kind: _ordered_texts(texts[kind], sizes[kind], ids[kind], directory / f"{kind}_text.jsonl") for kind in _KINDS
    }
    try:
        return Interactions(
            num_users=sizes["user"],
            num_items=sizes["item"],
            train=splits["train"],
            valid=splits["valid"],
            test=splits["test"],
            user_ids=ids["user"],
            item_ids=ids["item"],
            user_text=ordered["user"],
            item_text=ordered["item"],
            protocol=protocol,
        )
    except ValueError as err:  # name the folder: the container does not know where the data came from
        raise ValueError(f"the split in {directory} is invalid: {err}") from None


def _read_stats(directory: Path, verify: bool) -> dict[str, Any]:
    """``stats.json`` (``{}`` when absent), its ``files_sha256`` checked when ``verify`` is true."""
    stats_path = directory / "stats.json"
    if not stats_path.is_file():
        return {}
    try:
        stats = json.loads(read_text(stats_path))
    except json.JSONDecodeError as err:
        raise ValueError(f"{stats_path} is not valid JSON: {err}") from err
    if not isinstance(stats, dict):
        raise ValueError(f"{stats_path} must hold a JSON object, got {type(stats).__name__}")
    if verify:
        _verify_digests(directory, stats.get("files_sha256") or {})
    return stats


def _count(
    ids: np.ndarray | None, columns: list[np.ndarray], text: tuple[list[int], list[Any], list[str]] | None
) -> int:
    """Number of users (items): the length of the id map, else the largest id in the splits and texts plus one."""
    if ids is not None:
        return len(ids)
    largest = [int(column.max()) for column in columns if len(column)]
    if text is not None:
        largest.append(max(text[0]))
    return max(largest) + 1


def _protocol(stats: Mapping[str, Any], directory: Path) -> dict[str, Any]:
    """:attr:`Interactions.protocol` from ``stats.json``: its ``protocol``, ``settings``, ``source`` and ``counts``."""
    protocol: dict[str, Any] = {}
    declared = stats.get("protocol")
    if isinstance(declared, Mapping):
        protocol.update(declared)
    elif declared is not None:
        protocol["name"] = str(declared)
    for key, value in (stats.get("settings") or {}).items():
        protocol.setdefault(key, value)
    protocol.setdefault("source", stats.get("source", f"split_dir:{directory.name}"))
    if "counts" in stats:
        protocol.setdefault("counts", stats["counts"])
    return protocol


def _read_pairs(path: Path) -> np.ndarray:
    lines = read_text(path).splitlines()
    if not lines or lines[0].strip().split("\t") != ["user", "item"]:
        raise ValueError(f"{path}: the first line must be the header 'user<TAB>item'")
    body = [line.split("\t") for line in lines[1:] if line.strip()]
    if not body:
        return np.zeros((0, 2), dtype=np.int64)
    bad = next((n for n, row in enumerate(body, start=2) if len(row) != 2), None)
    if bad is not None:
        raise ValueError(f"{path}, line {bad}: expected 2 tab-separated ids")
    try:
        pairs = np.asarray(body, dtype=np.int64)
    except ValueError:
        line = next(n for n, row in enumerate(body, start=2) if not all(f.strip().lstrip("-").isdigit() for f in row))
        raise ValueError(f"{path}, line {line}: ids must be integers") from None
    if (pairs < 0).any():
        raise ValueError(f"{path}: ids must be non-negative")
    return pairs


def _read_id_map(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    lines = read_text(path).splitlines()
    if not lines or lines[0].strip().split("\t") != ["id", "raw_id"]:
        raise ValueError(f"{path}: the first line must be the header 'id<TAB>raw_id'")
    ids, raws = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip().isdigit():
            raise ValueError(f"{path}, line {number}: expected '<id><TAB><raw_id>'")
        ids.append(int(parts[0]))
        raws.append(parts[1])
    order = np.argsort(ids, kind="stable")
    if not np.array_equal(np.asarray(ids, dtype=np.int64)[order], np.arange(len(ids))):
        raise ValueError(f"{path}: ids must cover 0 .. {len(ids) - 1} exactly once")
    return np.asarray(raws, dtype=str)[order]


def _read_texts(path: Path) -> tuple[list[int], list[Any], list[str]] | None:
    if not path.is_file():
        return None
    ids, raws, texts = [], [], []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            ids.append(int(record["id"]))
            texts.append(record["text"])
            raws.append(record.get("raw_id"))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}, line {number}: expected a JSON object with 'id' and 'text' ({err})") from None
        if not isinstance(texts[-1], str):
            raise ValueError(f"{path}, line {number}: 'text' must be a string")
    if not ids:
        raise ValueError(f"{path} holds no text")
    return ids, raws, texts


def _ordered_texts(
    records: tuple[list[int], list[Any], list[str]] | None, n: int, raw_ids: np.ndarray | None, path: Path
) -> list[str] | None:
    if records is None:
        return None
    ids, raws, texts = records
    if sorted(ids) != list(range(n)):
        missing = sorted(set(range(n)) - set(ids))
        extra = sorted(set(ids) - set(range(n)))
        repeated = len(ids) - len(set(ids))
        raise ValueError(
            f"{path}: text ids must cover 0 .. {n - 1} exactly once; missing {missing[:5]}, "
            f"out of range {extra[:5]}, {repeated} repeated"
        )
    out = [""] * n
    for k, raw, text in zip(ids, raws, texts):
        if raw_ids is not None and raw is not None and str(raw) != raw_ids[k]:
            raise ValueError(f"{path}: id {k} has raw_id {raw!r} but the id map says {str(raw_ids[k])!r}")
        out[k] = text
    return out


def _verify_digests(directory: Path, digests: Mapping[str, str]) -> None:
    for name, expected in digests.items():
        path = directory / name
        if not path.is_file():
            continue
        actual = sha256_file(path)
        if actual != expected:
            raise ValueError(
                f"{path} does not match the SHA-256 recorded in stats.json ({actual} != {expected}); "
                "the file was modified — pass verify=False to read it anyway"
            )


def write_split_dir(interactions: Interactions, directory: PathLike, *, overwrite: bool = False) -> Path:
    """Writes ``interactions`` in the split-folder layout read by :func:`read_split_dir`.

    Writes ``train.tsv``, ``valid.tsv``, ``test.tsv`` (pairs sorted by user then item),
    ``user_map.tsv``, ``item_map.tsv``, ``user_text.jsonl``/``item_text.jsonl`` when the texts are
    set, and ``stats.json`` (``protocol``, ``counts`` and the ``files_sha256`` of the other files).
    The folder is built beside ``directory`` under a temporary name and moved into place with
    :func:`os.replace`, so readers never see a half-written split.

    Args:
        interactions: the split to export.
        directory: the folder to create.
        overwrite: replace ``directory`` if it exists (otherwise that is an error).

    Returns:
        The path of the written folder.

    Raises:
        FileExistsError: if ``directory`` exists and ``overwrite`` is false.

    Example:
        >>> import tempfile, pathlib
        >>> data = Interactions(2, 2, train=[[0, 0], [1, 1]], test=[[0, 1]], item_text=["A.", "B."])
        >>> out = write_split_dir(data, pathlib.Path(tempfile.mkdtemp()) / "toy")
        >>> sorted(p.name for p in out.iterdir())  # doctest: +NORMALIZE_WHITESPACE
        ['item_map.tsv', 'item_text.jsonl', 'stats.json', 'test.tsv', 'train.tsv',
         'user_map.tsv', 'valid.tsv']
        >>> read_split_dir(out).item_text
        ['A.', 'B.']
    """
    target = Path(directory)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        _write_split_files(interactions, tmp)
        digests = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
        stats = {
            "protocol": _jsonable(interactions.protocol),
            "counts": _jsonable(interactions.stats()),
            "files_sha256": digests,
        }
        _write_text(tmp / "stats.json", json.dumps(stats, indent=1, ensure_ascii=False) + "\n")
        os.chmod(tmp, 0o755)
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _write_split_files(interactions: Interactions, folder: Path) -> None:
    """The pairs, id maps and texts of ``interactions`` as the files of a split folder (all but ``stats.json``)."""
    for name in _SPLIT_FILES:
        pairs = interactions.split(name)
        pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if len(pairs) else pairs
        _write_text(folder / f"{name}.tsv", "user\titem\n" + "".join(f"{u}\t{i}\n" for u, i in pairs.tolist()))
    for kind in _KINDS:
        raw = getattr(interactions, f"{kind}_ids")
        _write_text(folder / f"{kind}_map.tsv", "id\traw_id\n" + "".join(f"{k}\t{r}\n" for k, r in enumerate(raw)))
        text = getattr(interactions, f"{kind}_text")
        if text is not None:
            lines = (
                json.dumps({"id": k, "raw_id": str(r), "text": t}, ensure_ascii=False) + "\n"
                for k, (r, t) in enumerate(zip(raw, text))
            )
            _write_text(folder / f"{kind}_text.jsonl", "".join(lines))


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def _replace_dir(tmp: Path, target: Path) -> None:
    """Moves folder ``tmp`` to ``target``, swapping out an existing ``target`` with a rename."""
    if not target.exists():
        os.replace(tmp, target)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    backup.rmdir()
    os.replace(target, backup)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(backup, target)
        raise
    if backup.is_dir() and not backup.is_symlink():
        shutil.rmtree(backup, ignore_errors=True)
    else:
        backup.unlink()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
