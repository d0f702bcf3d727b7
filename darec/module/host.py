"""The interface between the alignment callbacks and the module that hosts their terms."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import Tensor, nn

__all__ = ["AlignmentHost", "Sizes", "TermFactory"]


@dataclass(frozen=True)
class Sizes:
    """The sizes a term may need to build itself, known once the module has its data (in ``setup``).

    Attributes:
        num_users (int): number of users.
        num_items (int): number of items.
        cf_dim (int): width of the backbone's embeddings :math:`E^C`.
        text_dim (int, optional): width of the frozen text embeddings :math:`E^L` (:obj:`None`
            without text).
        align_dim (int): width :math:`d_a` of the shared and specific parts (``align_dim`` of the
            module, the backbone's width by default).
    """

    num_users: int
    num_items: int
    cf_dim: int
    text_dim: int | None
    align_dim: int


#: What a callback registers: a function from the :class:`Sizes` to the term (a loss module
#: whose ``forward(views)`` returns a scalar, see :mod:`darec.losses`).
TermFactory = Callable[[Sizes], nn.Module]


@runtime_checkable
class AlignmentHost(Protocol):
    """What an alignment callback may use of the module: :class:`~darec.DaRecModule` implements it.

    Lightning runs the callbacks' ``setup`` before the module's, when the sizes of the data and
    of the embeddings may not be known yet. A callback therefore registers a *factory*
    (:meth:`add_term`); the module calls it in its own ``setup`` with the :class:`Sizes` and
    adds ``weight * term(views)`` to every training step from then on (logged as
    ``train/<name>``). See :doc:`/tutorials/custom_alignment`.

    A term may define the optional hook ``mask_input(table, generator) -> (masked_table,
    masked)``: the module then calls it before every training step's propagation with the
    backbone's ``(num_nodes, d)`` input embedding table and its training generator, propagates
    the returned table instead, and gives the ``(num_nodes,)`` bool ``masked`` rows to the views
    (:attr:`SideViews.masked <darec.module.SideViews.masked>`); RLMRec-Gen's
    :class:`~darec.losses.GenerativeAlignmentLoss` masks nodes this way.
    """

    def add_term(self, name: str, build: TermFactory, weight: float) -> None:
        """Registers the term ``name`` (an identifier, its log key), built by ``build(sizes)`` in the
        module's ``setup``, with a non-negative ``weight``. A term of that name that the module
        already holds (trained in an earlier fit) is kept."""

    def term(self, name: str) -> nn.Module:
        """The built term ``name`` (from the module's ``setup`` on); ``KeyError`` if there is none."""

    def set_term_weight(self, name: str, weight: float) -> None:
        """Sets the weight of term ``name`` for the following steps (e.g. a warm-up schedule)."""

    def shared_spaces(self) -> dict[str, tuple[Tensor, Tensor]]:
        """``{side: (cf_shared, llm_shared)}`` of every user and item, without gradients (e.g. for clustering)."""
