"""Which reader an unsplit data source needs: the one place that tells the layouts apart."""

from __future__ import annotations

import os
from pathlib import Path

from darec.data.interactions import InteractionLog

__all__ = ["is_split_dir", "read_raw_log"]


def is_split_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder of split data (darec's ``train.tsv`` export or RLMRec's ``trn_mat.pkl``)."""
    path = Path(path)
    return path.is_dir() and ((path / "train.tsv").is_file() or (path / "trn_mat.pkl").is_file())


def read_raw_log(path: str | os.PathLike[str], *, needs: str = "this needs", lacks: str = "timestamps") -> InteractionLog:
    """Reads an unsplit interaction log from a RecBole folder (``*.inter``), a GroupLens folder (``u.data``) or a TSV/CSV file.

    Args:
        path: the source.
        needs (str): who needs the raw log, for the message about split folders (e.g. ``"sequences need"``).
        lacks (str): what a split folder lacks for them. (default: ``"timestamps"``)

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is split already, or its layout is none of the above.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
        >>> _ = path.write_text("user,item,timestamp\\nu1,i1,5\\nu2,i1,7\\n")
        >>> len(read_raw_log(path))
        2
    """
    from darec.data import readers

    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"data source {path} does not exist")
    if is_split_dir(path):
        raise ValueError(
            f"{path} is split already and has no {lacks}: {needs} the raw log (a RecBole folder, a GroupLens folder "
            f"or a TSV/CSV file with a timestamp column)"
        )
    if path.is_dir() and any(path.glob("*.inter")):
        return readers.read_recbole(path)
    if path.is_dir() and (path / "u.data").is_file():
        return readers.read_grouplens_100k(path)
    if path.is_file():
        return readers.read_csv(path, detect_optional=True)
    raise ValueError(f"cannot tell the layout of {path}: expected *.inter (RecBole), u.data (GroupLens) or a .tsv/.csv file")
