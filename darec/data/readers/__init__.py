"""Readers that turn interaction data on disk (or in memory) into darec's containers.

One module per format; every reader is importable from here (and from :mod:`darec.data`):

* **Raw-log readers** return an :class:`~darec.data.interactions.InteractionLog` (raw string ids,
  optional ratings and timestamps, item/user metadata). Feed it to a split protocol from
  :mod:`darec.data.split` to get :class:`~darec.data.interactions.Interactions`:
  :func:`from_arrays`, :func:`from_dataframe` (:mod:`~darec.data.readers.arrays`),
  :func:`read_csv` (:mod:`~darec.data.readers.delimited`), :func:`read_recbole`
  (:mod:`~darec.data.readers.recbole`) and :func:`read_grouplens_100k`
  (:mod:`~darec.data.readers.grouplens`). :func:`read_metadata` reads an item or user metadata
  file (the text source of one's own data) and :func:`attach_metadata` joins it to a log
  (:mod:`~darec.data.readers.metadata`). :func:`read_raw_log` picks the reader of an unsplit
  source by its layout (:mod:`~darec.data.readers.raw_log`).
* **Split readers** return ready-made :class:`~darec.data.interactions.Interactions`:
  :func:`read_split_dir` (darec's own export format, written by :func:`write_split_dir`;
  :mod:`~darec.data.readers.split_dir`) and :func:`read_rlmrec` (the pickled matrices of RLMRec;
  :mod:`~darec.data.readers.rlmrec`).
* **Profile files**: :func:`read_profiles` reads the user or item profiles a language model wrote
  (:mod:`darec.profiles`; :mod:`~darec.data.readers.profiles`), which a data module can use as
  the text of those entities. :func:`read_preferences` reads the per-user preference lists of
  LANE (:class:`darec.lane.PreferenceExtractor`; :mod:`~darec.data.readers.preferences`).

Both MovieLens-100K readers (:func:`read_recbole` on RecBole's atomic files and
:func:`read_grouplens_100k` on the GroupLens originals) produce metadata with the same keys, so the
text builders of :mod:`darec.data.text` give the same text for either:

* ``item_info[raw_id]``: ``movie_title`` (title without the trailing ``" (year)"``),
  ``release_year`` and ``class`` (genre names joined by single spaces, e.g.
  ``"Animation Children's Comedy"``);
* ``user_info[raw_id]``: ``age``, ``gender``, ``occupation``, ``zip_code``.

All text files are read through one helper, so a file that is not text (compressed, pickled,
another encoding) fails with its name and the offending byte offset and line.
"""

from darec.data.readers._common import MissingColumnError
from darec.data.readers.arrays import from_arrays, from_dataframe
from darec.data.readers.delimited import read_csv
from darec.data.readers.grouplens import read_grouplens_100k
from darec.data.readers.metadata import attach_metadata, read_metadata
from darec.data.readers.preferences import read_preferences
from darec.data.readers.profiles import read_profiles
from darec.data.readers.raw_log import is_split_dir, read_raw_log
from darec.data.readers.recbole import read_recbole
from darec.data.readers.rlmrec import read_rlmrec
from darec.data.readers.split_dir import read_split_dir, write_split_dir

__all__ = [
    "MissingColumnError",
    "attach_metadata",
    "from_arrays",
    "from_dataframe",
    "is_split_dir",
    "read_csv",
    "read_metadata",
    "read_preferences",
    "read_profiles",
    "read_raw_log",
    "read_recbole",
    "read_grouplens_100k",
    "read_split_dir",
    "read_rlmrec",
    "write_split_dir",
]
