"""Weighted alignment terms that report their parts."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from darec.module.views import SideViews

__all__ = ["AlignmentObjective"]


class AlignmentObjective(nn.Module):
    """A named, weighted sum of alignment terms.

    Each term is an :class:`~torch.nn.Module` whose ``forward(views)`` takes a dict
    ``{"user": SideViews, "item": SideViews}`` and returns a scalar. Terms are held in an
    :class:`~torch.nn.ModuleDict`, so their parameters are optimised, moved and checkpointed with
    the Lightning module. Weights are plain floats that callbacks may change between steps
    (warm-up schedules).

    Example:
        >>> class Const(nn.Module):
        ...     def forward(self, views):
        ...         return torch.tensor(2.0)
        >>> objective = AlignmentObjective()
        >>> objective.add("const", Const(), weight=0.5)
        >>> objective({})
        (tensor(1.), {'const': tensor(2.)})
    """

    def __init__(self) -> None:
        super().__init__()
        self.terms = nn.ModuleDict()
        self.weights: dict[str, float] = {}

    def add(self, name: str, term: nn.Module, weight: float) -> None:
        """Registers ``term`` under ``name`` (replacing a term of the same name)."""
        if not name.isidentifier():
            raise ValueError(f"term names must be identifiers (they become log keys), got {name!r}")
        if weight < 0:
            raise ValueError(f"the weight of term {name!r} must be non-negative, got {weight}")
        self.terms[name] = term
        self.weights[name] = float(weight)

    def __contains__(self, name: str) -> bool:
        return name in self.terms

    def __len__(self) -> int:
        return len(self.terms)

    def forward(self, views: dict[str, SideViews]) -> tuple[Tensor, dict[str, Tensor]]:
        if not self.terms:
            raise RuntimeError("the objective has no terms")
        parts = {name: term(views) for name, term in self.terms.items()}
        total = torch.stack([self.weights[name] * value for name, value in parts.items()]).sum()
        return total, parts
