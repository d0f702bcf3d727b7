"""The titles of a darec data module's items, in the ids its models use."""

from __future__ import annotations

from typing import Any

__all__ = ["item_catalog"]

#: Metadata fields that hold an item's title, in order of preference (GroupLens/RecBole, then generic).
TITLE_FIELDS = ("movie_title", "title", "name")
#: Placeholder titles of RecBole's ML-100K and the like: not a title.
_PLACEHOLDERS = {"", "unknown", "unkonwn"}


def item_catalog(datamodule: Any) -> list[str]:
    """``catalog[i]``: the title of item ``i`` as :class:`~darec.recexplainer.AlignmentTaskBuilder` numbers items.

    - a :class:`~darec.data.SequenceDataModule`: ``sequences.item_titles`` (its item ``i + 1`` is
      item ``i`` of a :class:`~darec.recexplainer.SequentialRecommender`);
    - a :class:`~darec.data.RecDataModule`: the item metadata of its raw log (``movie_title``,
      ``title`` or ``name``), followed by `` (year)`` when the metadata have a ``release_year``
      or ``year`` the title does not already end with. Items without a title get
      ``"Item <raw id>"``.

    Raises:
        ValueError: the data have no item titles at all (a split folder without metadata, or a
            sequence file without an item file), naming what to give instead.

    Example:
        >>> import numpy as np
        >>> from darec.data import UserSequences
        >>> from types import SimpleNamespace
        >>> data = UserSequences([np.array([1, 2, 1])], num_items=2, item_titles=["Heat (1995)", "Big (1988)"])
        >>> item_catalog(SimpleNamespace(sequences=data))
        ['Heat (1995)', 'Big (1988)']
    """
    if hasattr(datamodule, "sequences"):
        titles = datamodule.sequences.item_titles
        if titles is None:
            raise ValueError(
                "the sequence data have no item titles, and alignment tasks name items by title: give the items "
                "metadata with titles (`item_info`)"
            )
        return [str(title) for title in titles]
    if not hasattr(datamodule, "interactions"):
        raise TypeError(f"expected a darec RecDataModule or SequenceDataModule, got {type(datamodule).__name__}")
    interactions = datamodule.interactions
    log = getattr(datamodule, "raw_log", None)
    info = getattr(log, "item_info", None) or {}
    if not info or interactions.item_ids is None:
        raise ValueError(
            "the data have no item titles (a split folder or pickles without item metadata), and alignment tasks "
            "name items by title: load the unsplit source (e.g. darec.data.MovieLens100K) or give `item_info`"
        )
    catalog = []
    for raw in interactions.item_ids.tolist():
        fields = info.get(str(raw)) or {}
        title = next((str(fields[k]).strip() for k in TITLE_FIELDS if str(fields.get(k, "")).strip().lower() not in _PLACEHOLDERS), "")
        if not title:
            catalog.append(f"Item {raw}")
            continue
        year = str(fields.get("release_year", fields.get("year", ""))).strip()
        if year.lower() not in _PLACEHOLDERS and not title.endswith(")"):
            title = f"{title} ({year})"
        catalog.append(title)
    return catalog
