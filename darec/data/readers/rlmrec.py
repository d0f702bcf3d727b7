"""RLMRec data folders: pickled sparse split matrices and LLM profile embeddings."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from darec.data.interactions import Interactions
from darec.data.readers._common import PathLike, existing_dir

__all__ = ["read_rlmrec"]

_RLMREC_MATRICES = {"train": "trn_mat.pkl", "valid": "val_mat.pkl", "test": "tst_mat.pkl"}
_RLMREC_EMBEDDINGS = {"user": "usr_emb_np.pkl", "item": "itm_emb_np.pkl"}


def read_rlmrec(directory: PathLike, *, trust_pickle: bool = False) -> tuple[Interactions, dict[str, np.ndarray]]:
    """Reads a dataset in the layout of RLMRec (``data/<name>/``).

    ``trn_mat.pkl`` (required), ``val_mat.pkl`` and ``tst_mat.pkl`` are pickled SciPy sparse
    user x item matrices of the same shape; their non-zeros become the train/valid/test pairs.
    ``usr_emb_np.pkl`` and ``itm_emb_np.pkl`` are pickled ``(num_users, d)``/``(num_items, d)``
    NumPy arrays of LLM profile embeddings. Ids are the matrix rows and columns (raw ids
    ``"0" .. "n-1"``).

    Unpickling can run arbitrary code, so this reader refuses unless ``trust_pickle=True`` says
    the files come from a trusted source.

    Args:
        directory: the dataset folder.
        trust_pickle: confirm that the pickles are trusted and may be loaded.

    Returns:
        ``(interactions, embeddings)``: the :class:`~darec.data.interactions.Interactions` and a
        dict with the keys ``"user"``/``"item"`` for the embedding files that exist (float32
        arrays).

    Raises:
        ValueError: without ``trust_pickle=True``; for a matrix that is not 2-D sparse/dense, of a
            different shape than ``trn_mat.pkl``, or an embedding with the wrong number of rows.
        FileNotFoundError: if the folder or ``trn_mat.pkl`` is missing.

    Example:
        >>> read_rlmrec(".")
        Traceback (most recent call last):
        ...
        ValueError: read_rlmrec loads pickle files, and unpickling can execute arbitrary code; pass trust_pickle=True only if you trust the files in .
    """
    if not trust_pickle:
        raise ValueError(
            "read_rlmrec loads pickle files, and unpickling can execute arbitrary code; "
            f"pass trust_pickle=True only if you trust the files in {directory}"
        )
    directory = existing_dir(directory)
    if not (directory / _RLMREC_MATRICES["train"]).is_file():
        raise FileNotFoundError(f"{directory / _RLMREC_MATRICES['train']} does not exist: not an RLMRec data folder")

    splits, (num_users, num_items) = _read_matrices(directory)
    embeddings = _read_embeddings(directory, {"user": num_users, "item": num_items})
    try:
        interactions = Interactions(
            num_users=num_users,
            num_items=num_items,
            train=splits["train"],
            valid=splits.get("valid"),
            test=splits.get("test"),
            protocol={"name": "rlmrec", "source": f"rlmrec:{directory.name}"},
        )
    except ValueError as err:
        raise ValueError(f"the split in {directory} is invalid: {err}") from None
    return interactions, embeddings


def _read_matrices(directory: Path) -> tuple[dict[str, np.ndarray], tuple[int, int]]:
    """The pairs of every split matrix present, and their common ``(num_users, num_items)`` shape."""
    splits: dict[str, np.ndarray] = {}
    shape: tuple[int, int] | None = None
    for name, file in _RLMREC_MATRICES.items():
        path = directory / file
        if not path.is_file():
            continue
        pairs, matrix_shape = _sparse_pairs(_load_pickle(path), path)
        if shape is None:
            shape = matrix_shape
        elif matrix_shape != shape:
            raise ValueError(f"{path} has shape {matrix_shape}, but {_RLMREC_MATRICES['train']} has shape {shape}")
        splits[name] = pairs
    assert shape is not None
    return splits, shape


def _read_embeddings(directory: Path, rows: dict[str, int]) -> dict[str, np.ndarray]:
    """The embedding files present, as float32 arrays with ``rows[kind]`` rows."""
    embeddings: dict[str, np.ndarray] = {}
    for kind, file in _RLMREC_EMBEDDINGS.items():
        path = directory / file
        if not path.is_file():
            continue
        emb = np.asarray(_load_pickle(path), dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != rows[kind]:
            raise ValueError(f"{path} must have shape ({rows[kind]}, d) to match the {kind}s, got {emb.shape}")
        embeddings[kind] = emb
    return embeddings


def _load_pickle(path: Path) -> Any:
    with open(path, "rb") as handle:
        return pickle.load(handle)  # noqa: S301 - the caller passed trust_pickle=True


def _sparse_pairs(matrix: Any, path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    if hasattr(matrix, "tocoo"):
        coo = matrix.tocoo()
        shape = tuple(int(s) for s in coo.shape)
        keep = np.asarray(coo.data) != 0
        rows, cols = np.asarray(coo.row)[keep], np.asarray(coo.col)[keep]
    else:
        dense = np.asarray(matrix)
        if dense.ndim != 2 or not np.issubdtype(dense.dtype, np.number):
            raise ValueError(f"{path} must hold a 2-D user x item matrix, got {type(matrix).__name__}")
        shape = dense.shape
        rows, cols = np.nonzero(dense)
    if len(shape) != 2:
        raise ValueError(f"{path} must hold a 2-D user x item matrix, got shape {shape}")
    pairs = np.stack([rows, cols], axis=1).astype(np.int64)
    return np.unique(pairs, axis=0) if len(pairs) else pairs, (shape[0], shape[1])
