"""MovieLens-100K as click-through-rate data: ratings >= 4 are clicks, split globally by time."""

from __future__ import annotations

from darec.ctr.ctr_datamodule import CTRDataModule
from darec.data.movielens import MovieLens100KSource
from darec.text.encoders import DEFAULT_ENCODER, TextEncoder

__all__ = ["MovieLens100KCTR"]


class MovieLens100KCTR(MovieLens100KSource, CTRDataModule):
    """MovieLens-100K for CTR prediction: every rating is a pair, a rating of 4 or 5 a click.

    The files are found or fetched as for :class:`~darec.data.MovieLens100K` (the GroupLens
    archive, else the copy in the ``recbole==1.2.1`` wheel, both checksummed); nothing else
    differs from :class:`~darec.ctr.CTRDataModule`. Ratings with equal timestamps keep the order
    of the file. Item titles are ``"Title (year)"``.

    **STATS** (defaults): 943 users, 1,682 items, 100,000 pairs; 80,000 / 10,000 / 10,000 by time,
    positive rates 0.5509 / 0.5674 / 0.5629. ML-100K's users arrive over time, so 8,466 validation
    and 8,582 test pairs belong to users without a training pair (53 and 149 to items without
    one): under this split the held-out users are mostly cold, and their pairs have empty histories.

    Args:
        root (str, optional): cache directory of the raw files.
            (default: ``$DAREC_HOME/datasets/ml-100k``)
        path (str, optional): a directory that already holds the raw files; nothing is downloaded.
        download (bool): allow downloading. (default: :obj:`True`)
        **kwargs: everything :class:`~darec.ctr.CTRDataModule` takes but ``source`` and ``item_info``.

    Example:
        >>> data = MovieLens100KCTR()                   # doctest: +SKIP
        >>> data.num_users, data.num_items               # doctest: +SKIP
        (943, 1682)
    """

    def __init__(
        self,
        root: str | None = None,
        path: str | None = None,
        download: bool = True,
        *,
        batch_size: int = 1024,
        eval_batch_size: int = 8192,
        positive_threshold: float = 4.0,
        history_len: int = 10,
        explanations: str | None = None,
        text_encoder: str | TextEncoder | None = DEFAULT_ENCODER,
        shuffle_explanations: bool = False,
        missing_explanations: str = "error",
        users: int | None = None,
        user_seed: int = 0,
        users_from: str | None = None,
        users_scope: str = "all",
        cache_dir: str | None = None,
        seed: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            None, batch_size=batch_size, eval_batch_size=eval_batch_size, positive_threshold=positive_threshold,
            history_len=history_len, explanations=explanations, text_encoder=text_encoder,
            shuffle_explanations=shuffle_explanations, missing_explanations=missing_explanations,
            users=users, user_seed=user_seed, users_from=users_from, users_scope=users_scope, cache_dir=cache_dir, seed=seed, num_workers=num_workers,
        )  # fmt: skip
        self.root = root
        self.path = path
        self.download = download

    def __repr__(self) -> str:
        loaded = repr(self._samples) if self._samples is not None else "not loaded"
        return f"{type(self).__name__}(root={self.root!r}, {loaded})"
