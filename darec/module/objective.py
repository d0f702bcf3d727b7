"""The weighted terms of the training objective: regularisers and alignment losses."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from darec.module.host import Sizes, TermFactory

__all__ = ["Objective"]


class Objective(nn.Module):
    """A named, weighted sum of terms: the regularisers and the alignment losses of a step.

    Each term is an :class:`~torch.nn.Module` whose ``forward(views)`` takes the step's
    :class:`~darec.module.StepViews` and returns a scalar (the losses of
    :mod:`darec.losses`). Terms are held in an :class:`~torch.nn.ModuleDict`, so their parameters
    are optimised, moved and checkpointed with the Lightning module. Weights are plain floats
    that callbacks may change between steps (warm-up schedules).

    Terms may be requested before they can be built (:meth:`request`, what callbacks do through
    :meth:`DaRecModule.add_term <darec.DaRecModule.add_term>`) and are built by :meth:`build`
    once the :class:`~darec.module.host.Sizes` are known.

    Example:
        >>> class Const(nn.Module):
        ...     def forward(self, views):
        ...         return torch.tensor(2.0)
        >>> objective = Objective()
        >>> objective.add("const", Const(), weight=0.5)
        >>> objective({})
        (tensor(1.), {'const': tensor(2.)})
    """

    def __init__(self) -> None:
        super().__init__()
        self.terms = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        #: Names of the regulariser terms (added before the alignment terms, see :meth:`forward`).
        self.regularizers: list[str] = []
        self._pending: dict[str, tuple[TermFactory, float]] = {}

    @staticmethod
    def _check(name: str, weight: float) -> None:
        if not name.isidentifier():
            raise ValueError(f"term names must be identifiers (they become log keys), got {name!r}")
        if weight < 0:
            raise ValueError(f"the weight of term {name!r} must be non-negative, got {weight}")

    def add(self, name: str, term: nn.Module, weight: float, *, regularizer: bool = False) -> None:
        """Registers ``term`` under ``name`` (replacing a term of the same name)."""
        self._check(name, weight)
        self.terms[name] = term
        self.weights[name] = float(weight)
        if regularizer and name not in self.regularizers:
            self.regularizers.append(name)

    def request(self, name: str, build: TermFactory, weight: float) -> None:
        """Registers ``build(sizes)`` to be built as the term ``name`` by :meth:`build`; a term of
        that name that is already built is kept (a module fitted before keeps its trained term)."""
        self._check(name, weight)
        if name not in self.terms:
            self._pending[name] = (build, weight)

    def set_weight(self, name: str, weight: float) -> None:
        """Sets the weight of the (built or requested) term ``name``."""
        self._check(name, weight)
        if name in self._pending:
            self._pending[name] = (self._pending[name][0], float(weight))
        elif name in self.terms:
            self.weights[name] = float(weight)
        else:
            raise KeyError(f"no term {name!r}; the terms are {sorted(self.terms) + self.pending}")

    @property
    def pending(self) -> list[str]:
        """Names of the requested terms that are not built yet."""
        return list(self._pending)

    def build(self, sizes: Sizes) -> list[str]:
        """Builds the requested terms, in the order of the requests; returns their names."""
        built = []
        for name, (build, weight) in list(self._pending.items()):
            term = build(sizes)
            if not isinstance(term, nn.Module):
                raise TypeError(f"the factory of term {name!r} must return a torch.nn.Module, got {type(term).__name__}")
            self.add(name, term, weight)
            built.append(name)
        self._pending.clear()
        return built

    @property
    def alignment_terms(self) -> list[str]:
        """Names of the terms that are not regularisers, in registration order."""
        return [name for name in self.terms if name not in self.regularizers]

    def __contains__(self, name: str) -> bool:
        return name in self.terms or name in self._pending

    def __len__(self) -> int:
        return len(self.terms)

    def forward(self, views: dict, loss: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Adds the weighted terms to ``loss`` (or sums them); returns it with every term's value.

        The regularisers are added one by one, then the alignment terms as one stacked sum: the
        floating-point additions of darec's first release, in its order, so that training stays
        bit-identical to it.
        """
        if not self.terms:
            raise RuntimeError("the objective has no terms")
        parts: dict[str, Tensor] = {}
        for group in (self.regularizers, self.alignment_terms):
            if not group:
                continue
            values = {name: self.terms[name](views) for name in group}
            parts.update(values)
            weighted = (self.weights[name] * value for name, value in values.items())
            total = sum(weighted) if group is self.regularizers else torch.stack(list(weighted)).sum()
            loss = total if loss is None else loss + total
        return loss, parts
