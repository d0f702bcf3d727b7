"""What RecExplainer needs from a trained recommender, and how to load one from its checkpoint."""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["Recommender", "check_recommender", "load_recommender"]

_MEMBERS = ("num_users", "num_items", "dim", "score", "item_embeddings", "user_embeddings")


def _gather(scores: Tensor, items: Tensor | None) -> Tensor:
    """The ``(n, num_items)`` ``scores`` at ``items``: all, ``(m,)`` for every row, or ``(n, m)`` per row."""
    if items is None:
        return scores
    items = torch.as_tensor(items, dtype=torch.long, device=scores.device)
    if items.numel() and (items.min() < 0 or items.max() >= scores.size(1)):
        raise ValueError(f"item ids must be in [0, {scores.size(1)}), got {items.min().item()}..{items.max().item()}")
    if items.dim() == 1:
        return scores[:, items]
    if items.dim() == 2 and items.size(0) == scores.size(0):
        return scores.gather(1, items)
    raise ValueError(f"`items` must be (m,) or (n, m) with n = {scores.size(0)} users, got shape {tuple(items.shape)}")


def _checked_ids(ids: Tensor | Any, count: int, what: str, device: torch.device) -> Tensor:
    """``ids`` as a 1-D long tensor on ``device``, or a ``ValueError`` for ids outside ``[0, count)``."""
    ids = torch.as_tensor(ids, dtype=torch.long, device=device)
    if ids.dim() != 1:
        raise ValueError(f"{what} ids must be a 1-D tensor, got shape {tuple(ids.shape)}")
    if ids.numel() and (ids.min() < 0 or ids.max() >= count):
        raise ValueError(f"{what} ids must be in [0, {count}), got {ids.min().item()}..{ids.max().item()}")
    return ids


@runtime_checkable
class Recommender(Protocol):
    r"""A trained two-tower recommender, as RecExplainer sees it: scores, item vectors, user vectors.

    RecExplainer (Lei et al., KDD 2024) fine-tunes an LLM to imitate a *target* recommender
    :math:`f`: every label of its alignment tasks comes from :meth:`score`, and the intention and
    hybrid styles inject :meth:`user_embeddings` and :meth:`item_embeddings` into the LLM at the
    ``<user>`` and ``<item>`` placeholders. Users are ``0 .. num_users - 1`` and items
    ``0 .. num_items - 1`` (a sequential model's item ``i + 1`` is item ``i`` here, its id ``0``
    being padding). The score is expected to be the dot product of the two sides,

    .. math::
        f(u, i) = \langle e_u, e_i \rangle,

    as it is for every darec adapter: :class:`~darec.recexplainer.CFRecommender` (matrix
    factorisation, LightGCN, with or without DaRec alignment) and
    :class:`~darec.recexplainer.SequentialRecommender` (SASRec, LANE's fusion model, where
    :math:`e_u` is the encoding of the user's history).

    It is a :class:`~typing.Protocol`, not a base class: any object with these members is a
    target, a model of one's own included, without deriving from anything darec owns (as
    :class:`~darec.backbones.CFBackbone` for backbones). ``isinstance(obj, Recommender)`` checks
    that the members exist; :func:`check_recommender` says which are missing. A target is frozen:
    its outputs carry no gradient.

    - [0] Lei et al., "RecExplainer: Aligning Large Language Models for Explaining Recommendation
      Models", KDD 2024, arXiv:2311.10947.

    Example:
        >>> import torch
        >>> class DotProduct:                      # any object with these members is a target
        ...     num_users, num_items, dim = 2, 3, 4
        ...     def __init__(self):
        ...         self.users, self.items = torch.randn(2, 4), torch.randn(3, 4)
        ...     def user_embeddings(self, users):
        ...         return self.users[users]
        ...     def item_embeddings(self):
        ...         return self.items
        ...     def score(self, users, items=None):
        ...         scores = self.user_embeddings(users) @ self.items.T
        ...         return scores if items is None else scores[:, items]
        >>> isinstance(DotProduct(), Recommender), isinstance(torch.nn.Linear(2, 2), Recommender)
        (True, False)
    """

    @property
    def num_users(self) -> int:
        """Number of users; ids ``0 .. num_users - 1``."""
        ...

    @property
    def num_items(self) -> int:
        """Number of items; ids ``0 .. num_items - 1``."""
        ...

    @property
    def dim(self) -> int:
        """Width :math:`d` of the user and item embeddings."""
        ...

    def score(self, users: Tensor, items: Tensor | None = None) -> Tensor:
        """Scores of ``users`` ``(n,)``: ``(n, num_items)`` for all items, ``(n, m)`` for given items
        (``(m,)``, the same for every user, or ``(n, m)``, one row per user)."""
        ...

    def item_embeddings(self) -> Tensor:
        """``(num_items, d)``: the item vectors, row ``i`` for item ``i``."""
        ...

    def user_embeddings(self, users: Tensor) -> Tensor:
        """``(n, d)``: the vectors of ``users`` ``(n,)`` (a sequential model's encoding of the history)."""
        ...


def check_recommender(target: Any) -> Recommender:
    """Returns ``target`` if it has every member of :class:`Recommender`.

    Raises:
        TypeError: naming the members ``target`` lacks.

    Example:
        >>> check_recommender(object())
        Traceback (most recent call last):
        ...
        TypeError: object is not a darec.recexplainer.Recommender: it lacks num_users, num_items, dim, score, item_embeddings, user_embeddings; wrap a trained model with CFRecommender or SequentialRecommender, or load one with load_recommender(path, datamodule)
    """
    missing = [name for name in _MEMBERS if not hasattr(target, name)]
    if missing:
        raise TypeError(
            f"{type(target).__name__} is not a darec.recexplainer.Recommender: it lacks {', '.join(missing)}; wrap a "
            "trained model with CFRecommender or SequentialRecommender, or load one with load_recommender(path, datamodule)"
        )
    return target


def load_recommender(path: str | os.PathLike, datamodule: Any, map_location: Any = "cpu", **kwargs: Any) -> Recommender:
    """Loads a trained darec model from its checkpoint as a frozen :class:`Recommender`, checked against the data.

    The kind of data module says the kind of model: a
    :class:`~darec.data.RecDataModule` (users x items) needs a :class:`~darec.DaRecModule`
    checkpoint (matrix factorisation, LightGCN, with or without alignment) and gives a
    :class:`~darec.recexplainer.CFRecommender`; a :class:`~darec.data.SequenceDataModule` needs a
    :class:`~darec.module.SequentialModule` or :class:`~darec.lane.PreferenceAttentionFusion`
    checkpoint and gives a :class:`~darec.recexplainer.SequentialRecommender`. Either checks that
    the checkpoint's sizes match the data's and names what differs (see their ``from_checkpoint``).

    Args:
        path (str or os.PathLike): the checkpoint file.
        datamodule: the data the model was trained on.
        map_location: where the tensors land. (default: :obj:`"cpu"`)
        **kwargs: passed to the adapter's ``from_checkpoint``.

    Raises:
        TypeError: ``datamodule`` is neither kind of darec data module.
        FileNotFoundError: ``path`` does not exist.
        ValueError: the checkpoint does not match the data, or is not a checkpoint of the right module.
    """
    from darec.recexplainer.cf_recommender import CFRecommender
    from darec.recexplainer.sequential_recommender import SequentialRecommender

    if hasattr(datamodule, "interactions"):
        return CFRecommender.from_checkpoint(path, datamodule, map_location=map_location, **kwargs)
    if hasattr(datamodule, "sequences"):
        return SequentialRecommender.from_checkpoint(path, datamodule, map_location=map_location, **kwargs)
    raise TypeError(
        f"load_recommender needs the data the model was trained on, a darec RecDataModule (for a DaRecModule "
        f"checkpoint) or a SequenceDataModule (for a sequential one), got {type(datamodule).__name__}"
    )
