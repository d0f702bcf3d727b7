"""MovieLens-100K as time-ordered user sequences, split leave-one-out."""

from __future__ import annotations

from darec.data.movielens import MovieLens100KSource
from darec.data.sequence_datamodule import SequenceDataModule

__all__ = ["MovieLens100KSequences"]


class MovieLens100KSequences(MovieLens100KSource, SequenceDataModule):
    """MovieLens-100K for next-item recommendation: every rating is an interaction, in time order.

    The files are found or fetched as for :class:`~darec.data.MovieLens100K` (the GroupLens
    archive, else the copy in the ``recbole==1.2.1`` wheel, both checksummed); nothing else
    differs from :class:`~darec.data.SequenceDataModule`. Ratings with equal timestamps keep the
    order of the file. Titles are ``"Title (year)"``.

    **STATS** (defaults): 943 users, 1,682 items, 100,000 interactions (every user has at least
    20); validation and test hold one item per user.

    Args:
        root (str, optional): cache directory of the raw files.
            (default: ``$DAREC_HOME/datasets/ml-100k``)
        path (str, optional): a directory that already holds the raw files; nothing is downloaded.
        download (bool): allow downloading. (default: :obj:`True`)
        **kwargs: everything :class:`~darec.data.SequenceDataModule` takes but ``source``.

    Example:
        >>> data = MovieLens100KSequences(max_len=50)    # doctest: +SKIP
        >>> data.num_users, data.num_items                # doctest: +SKIP
        (943, 1682)
    """

    def __init__(
        self,
        root: str | None = None,
        path: str | None = None,
        download: bool = True,
        *,
        max_len: int = 50,
        batch_size: int = 128,
        eval_batch_size: int = 256,
        positive_threshold: float | None = None,
        min_length: int = 3,
        title_encoder: str | None = None,
        eval_negatives: int = 100,
        eval_seed: int = 2024,
        max_eval_users: int | None = None,
        cache_dir: str | None = None,
        seed: int | None = None,
        preferences: str | None = None,
        preference_encoder: str | None = "all-MiniLM-L6-v2",
        num_preferences: int = 5,
        missing_preferences: str = "error",
    ) -> None:
        super().__init__(
            None, max_len=max_len, batch_size=batch_size, eval_batch_size=eval_batch_size,
            positive_threshold=positive_threshold, min_length=min_length, title_encoder=title_encoder,
            eval_negatives=eval_negatives, eval_seed=eval_seed, max_eval_users=max_eval_users,
            cache_dir=cache_dir, seed=seed, preferences=preferences, preference_encoder=preference_encoder,
            num_preferences=num_preferences, missing_preferences=missing_preferences,
        )  # fmt: skip
        self.root = root
        self.path = path
        self.download = download
