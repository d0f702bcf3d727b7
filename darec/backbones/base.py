"""The public base class of darec's backbones."""

from __future__ import annotations

import abc
from typing import Any

from torch import Tensor, nn

__all__ = ["Backbone"]


class Backbone(nn.Module, metaclass=abc.ABCMeta):
    """Base class for a collaborative-filtering backbone: one embedding per node of the user-item graph.

    Subclasses implement :meth:`get_embedding` and, so that a checkpoint can rebuild them without
    being handed an instance, :meth:`darec_spec`. Deriving from it is optional: any module with
    ``get_embedding`` works (:class:`~darec.backbones.CFBackbone`), PyG's ``LightGCN`` included.

    Example:
        >>> import torch
        >>> class Table(Backbone):
        ...     def __init__(self, num_nodes: int, dim: int = 8) -> None:
        ...         super().__init__()
        ...         self.weight = nn.Parameter(torch.randn(num_nodes, dim))
        ...     def get_embedding(self, edge_index, edge_weight=None):
        ...         return self.weight
        ...     def darec_spec(self):
        ...         return {"num_nodes": self.weight.size(0), "dim": self.weight.size(1)}
        >>> from darec.utils.spec import describe
        >>> describe(Table(5))["init_args"]
        {'num_nodes': 5}
    """

    @abc.abstractmethod
    def get_embedding(self, edge_index: Any, edge_weight: Any = None) -> Tensor:
        """The ``(num_users + num_items, d)`` embeddings, users first, on darec's normalised adjacency."""

    def darec_spec(self) -> dict[str, Any] | None:
        """The constructor's keyword arguments (plain values) that rebuild this backbone, or :obj:`None`.

        A checkpoint records them with the class path (:func:`darec.utils.spec.describe`). The
        default, :obj:`None`, records nothing: loading then needs ``backbone=`` an instance.
        """
        return None
