"""Interactions, readers, split protocols, dataset texts and Lightning data modules."""

from darec.data.datamodule import RecDataModule, quiet_lightning_warnings
from darec.data.download import ChecksumError, download_url
from darec.data.interactions import InteractionLog, Interactions
from darec.data.movielens import MovieLens100K, fetch_movielens_100k, read_movielens_100k
from darec.data.movielens_sequences import MovieLens100KSequences
from darec.data.readers import (
    MissingColumnError,
    attach_metadata,
    from_arrays,
    from_dataframe,
    read_csv,
    read_grouplens_100k,
    read_metadata,
    read_preferences,
    read_profiles,
    read_recbole,
    read_rlmrec,
    read_split_dir,
    write_split_dir,
)
from darec.data.readers.grouplens import MOVIELENS_TEMPLATE
from darec.data.readers.metadata import METADATA_TEMPLATE
from darec.data.sampling import BPRTriplets, RankingUsers, sample_negatives
from darec.data.sequence_datamodule import SequenceDataModule
from darec.data.split import random_split, temporal_split, to_implicit
from darec.data.text import item_profiles, profile_template, user_profiles, with_text
from darec.data.user_sequences import UserSequences

__all__ = [
    "BPRTriplets",
    "ChecksumError",
    "InteractionLog",
    "Interactions",
    "METADATA_TEMPLATE",
    "MOVIELENS_TEMPLATE",
    "MissingColumnError",
    "MovieLens100K",
    "MovieLens100KSequences",
    "RankingUsers",
    "RecDataModule",
    "SequenceDataModule",
    "UserSequences",
    "attach_metadata",
    "download_url",
    "fetch_movielens_100k",
    "read_movielens_100k",
    "from_arrays",
    "from_dataframe",
    "item_profiles",
    "random_split",
    "profile_template",
    "quiet_lightning_warnings",
    "read_csv",
    "read_grouplens_100k",
    "read_metadata",
    "read_preferences",
    "read_profiles",
    "read_recbole",
    "read_rlmrec",
    "read_split_dir",
    "sample_negatives",
    "temporal_split",
    "to_implicit",
    "user_profiles",
    "with_text",
    "write_split_dir",
]
