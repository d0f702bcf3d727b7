"""Alignment terms: adapters from a step's :class:`SideViews` to the losses of :mod:`darec.losses`.

A term sums its loss over the sides present (users and items are aligned separately). Terms keep
their constructor arguments as attributes, so that a checkpoint can rebuild them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from darec.losses import (
    ContrastiveAlignmentLoss,
    GenerativeAlignmentLoss,
    GlobalStructureAlignmentLoss,
    LocalStructureAlignmentLoss,
)
from darec.module.views import SideViews, sum_over_sides

__all__ = ["ContrastiveTerm", "GenerativeTerm", "GlobalStructureTerm", "LocalStructureTerm"]

Views = dict[str, SideViews]


def _shared(view: SideViews, term: str) -> tuple[Tensor, Tensor]:
    if view.cf_shared is None or view.llm_shared is None:
        raise RuntimeError(f"the {term} term needs the shared projections; the module has no disentangler")
    return view.cf_shared, view.llm_shared


class GlobalStructureTerm(nn.Module):
    """DaRec's global structure alignment on the shared parts (see :class:`~darec.losses.GlobalStructureAlignmentLoss`).

    Args:
        mode (str): ``"mse"`` or ``"kl"``. (default: :obj:`"mse"`)
        temperature (float): softmax temperature of the ``"kl"`` mode. (default: :obj:`1.0`)
    """

    needs_shared = True

    def __init__(self, mode: str = "mse", temperature: float = 1.0) -> None:
        super().__init__()
        self.mode = mode
        self.temperature = temperature
        self.loss = GlobalStructureAlignmentLoss(mode=mode, temperature=temperature)

    def forward(self, views: Views) -> Tensor:
        shared = [_shared(v, "global") for v in views.values()]
        return sum_over_sides(self.loss, [cf for cf, _ in shared], [llm for _, llm in shared])


class LocalStructureTerm(nn.Module):
    """DaRec's local structure alignment: InfoNCE between per-side cluster centres.

    The cluster assignment of every user and item lives in the buffers ``assignment_user`` and
    ``assignment_item`` (empty until the first refresh; the term is then zero). They are written by
    :class:`~darec.callbacks.LocalStructureAlignment`, which also saves them in checkpoints.

    Args:
        num_clusters (int): number of clusters :math:`K`.
        temperature (float): InfoNCE temperature :math:`\\tau`. (default: :obj:`0.2`)
    """

    needs_shared = True

    def __init__(self, num_clusters: int, temperature: float = 0.2) -> None:
        super().__init__()
        self.num_clusters = num_clusters
        self.temperature = temperature
        self.loss = LocalStructureAlignmentLoss(num_clusters=num_clusters, temperature=temperature)
        self.register_buffer("assignment_user", torch.empty(0, dtype=torch.long), persistent=False)
        self.register_buffer("assignment_item", torch.empty(0, dtype=torch.long), persistent=False)

    def set_assignment(self, side: str, assignment: Tensor) -> None:
        """Stores the cluster ids of ``side`` (``"user"`` or ``"item"``): ``(num_entities,)``, or
        ``(num_entities, 2)`` (CF id, matched LLM id) when the sides are clustered separately."""
        buffer = getattr(self, f"assignment_{side}")
        setattr(self, f"assignment_{side}", assignment.to(device=buffer.device, dtype=torch.long))

    def forward(self, views: Views) -> Tensor:
        cf, llm, rows, unassigned = [], [], [], []
        for side, view in views.items():
            cf_shared, llm_shared = _shared(view, "local")
            assignment = getattr(self, f"assignment_{side}")
            if assignment.numel() == 0:
                unassigned.append(cf_shared.sum() * 0.0)
                continue
            cf.append(cf_shared)
            llm.append(llm_shared)
            rows.append(assignment[view.index])
        if not cf:
            return torch.stack(unassigned).sum()
        if rows[0].dim() == 2:  # per-side clustering: (CF id, matched LLM id)
            loss = sum_over_sides(self.loss, cf, llm, [r[:, 0] for r in rows], [r[:, 1] for r in rows])
        else:
            loss = sum_over_sides(self.loss, cf, llm, rows)
        return loss + sum(unassigned)


class ContrastiveTerm(nn.Module):
    """RLMRec-Con: InfoNCE between CF embeddings and an MLP projection of the text embeddings.

    One projector serves users and items. See :class:`~darec.losses.ContrastiveAlignmentLoss`.

    Args:
        llm_dim (int): width of the text embeddings.
        cf_dim (int): width of the backbone embeddings.
        temperature (float): InfoNCE temperature. (default: :obj:`0.2`)
    """

    needs_shared = False

    def __init__(self, llm_dim: int, cf_dim: int, temperature: float = 0.2) -> None:
        super().__init__()
        self.llm_dim = llm_dim
        self.cf_dim = cf_dim
        self.temperature = temperature
        self.loss = ContrastiveAlignmentLoss(llm_dim=llm_dim, cf_dim=cf_dim, temperature=temperature)

    def forward(self, views: Views) -> Tensor:
        return torch.stack([self.loss(v.cf, v.llm) for v in views.values()]).sum()


class GenerativeTerm(nn.Module):
    """RLMRec-Gen: reconstruct the text embeddings of masked nodes from their CF embeddings.

    Before propagation, a fraction ``mask_ratio`` of the nodes (users and items) has its input
    embedding replaced by a learnable mask token (:attr:`mask_token`); the term is an InfoNCE
    between an MLP decoding of the masked nodes' output embeddings and their text embeddings.
    See :class:`~darec.losses.GenerativeAlignmentLoss`.

    Args:
        llm_dim (int): width of the text embeddings.
        cf_dim (int): width of the backbone's input and output embeddings.
        mask_ratio (float): fraction of nodes masked per step, in ``(0, 1)``. (default: :obj:`0.1`)
        temperature (float): InfoNCE temperature. (default: :obj:`0.2`)
    """

    needs_shared = False

    def __init__(self, llm_dim: int, cf_dim: int, mask_ratio: float = 0.1, temperature: float = 0.2) -> None:
        super().__init__()
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"`mask_ratio` must be in (0, 1), got {mask_ratio}")
        self.llm_dim = llm_dim
        self.cf_dim = cf_dim
        self.mask_ratio = mask_ratio
        self.temperature = temperature
        self.mask_token = nn.Parameter(torch.zeros(1, cf_dim))
        self.loss = GenerativeAlignmentLoss(llm_dim=llm_dim, cf_dim=cf_dim, temperature=temperature)

    def forward(self, views: Views) -> Tensor:
        losses = []
        for view in views.values():
            if view.masked is None or int(view.masked.sum()) < 2:
                losses.append(view.cf.sum() * 0.0)
                continue
            losses.append(self.loss(view.cf[view.masked], view.llm[view.masked]))
        return torch.stack(losses).sum()
