"""The one method darec needs from a collaborative-filtering model."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

__all__ = ["CFBackbone", "check_backbone"]


@runtime_checkable
class CFBackbone(Protocol):
    """Anything that maps the user-item graph to one embedding per node.

    ``get_embedding(edge_index, edge_weight=None)`` returns a ``(num_users + num_items, d)`` tensor
    whose first ``num_users`` rows are users and whose remaining rows are items. ``edge_index`` is
    the symmetrically normalised training adjacency as a sparse ``(N, N)`` tensor (PyG accepts it
    wherever it accepts an ``edge_index``); models that ignore the graph, such as matrix
    factorisation, may ignore it. PyG's :class:`~torch_geometric.nn.models.LightGCN` satisfies the
    protocol unchanged. Deriving from :class:`~darec.backbones.Backbone` is optional; it adds
    ``darec_spec()``, with which a checkpoint can rebuild the model by itself.

    The parameters are left unannotated on purpose: jsonargparse matches ``class_path`` values
    against a protocol by signature, and PyG's LightGCN annotates ``edge_index`` with a union.
    """

    def get_embedding(self, edge_index: Any, edge_weight: Any = None) -> Tensor: ...


def check_backbone(backbone: Any) -> nn.Module:
    """Returns ``backbone`` if it is an :class:`~torch.nn.Module` with ``get_embedding``.

    Raises:
        TypeError: naming what is missing.
    """
    if not isinstance(backbone, nn.Module):
        raise TypeError(f"the backbone must be a torch.nn.Module, got {type(backbone).__name__}")
    if not callable(getattr(backbone, "get_embedding", None)):
        raise TypeError(
            f"{type(backbone).__name__} has no `get_embedding(edge_index, edge_weight=None)` method; "
            "wrap your model so that it returns the stacked (num_users + num_items, d) embedding matrix"
        )
    return backbone
