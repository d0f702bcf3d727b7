"""Interactions, readers, split protocols and Lightning data modules."""

from darec.data.datamodule import RecDataModule
from darec.data.download import ChecksumError, download_url
from darec.data.interactions import InteractionLog, Interactions
from darec.data.movielens import MovieLens100K, fetch_movielens_100k
from darec.data.readers import (
    MissingColumnError,
    attach_metadata,
    from_arrays,
    from_dataframe,
    read_csv,
    read_grouplens_100k,
    read_metadata,
    read_recbole,
    read_rlmrec,
    read_split_dir,
    write_split_dir,
)
from darec.data.sampling import BPRTriplets, RankingUsers, sample_negatives
from darec.data.split import random_split, temporal_split, to_implicit

__all__ = [
    "BPRTriplets",
    "ChecksumError",
    "InteractionLog",
    "Interactions",
    "MissingColumnError",
    "MovieLens100K",
    "RankingUsers",
    "RecDataModule",
    "attach_metadata",
    "download_url",
    "fetch_movielens_100k",
    "from_arrays",
    "from_dataframe",
    "random_split",
    "read_csv",
    "read_grouplens_100k",
    "read_metadata",
    "read_recbole",
    "read_rlmrec",
    "read_split_dir",
    "sample_negatives",
    "temporal_split",
    "to_implicit",
    "write_split_dir",
]
