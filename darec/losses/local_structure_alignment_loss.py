"""DaRec's local structure alignment, a term of the module's objective."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from darec.functional._checks import positive_float, positive_int
from darec.functional.alignment import local_structure_alignment
from darec.losses.views import StepViews, shared, sum_over_sides

__all__ = ["LocalStructureAlignmentLoss"]


class LocalStructureAlignmentLoss(nn.Module):
    r"""InfoNCE between matched CF and LLM cluster centres (DaRec, local structure alignment).

    Given a cluster assignment for the batch's entities (computed elsewhere, e.g. K-means on
    the detached fused shared space, refreshed every few epochs), the per-side centres
    :math:`c^C_k, c^L_k` are the means of each cluster's members. Over the non-empty clusters,
    after L2 normalisation,

    .. math::
        \mathcal{L}_{\mathrm{local}} = \frac{1}{2} \left(
            \mathrm{CE}\big(\hat C \hat L^\top / \tau, I\big)
            + \mathrm{CE}\big(\hat L \hat C^\top / \tau, I\big) \right)

    i.e. each centre's positive is the other side's centre of the same cluster and its
    negatives are the other side's remaining centres. Empty clusters are skipped; with fewer
    than two non-empty clusters the loss is zero. See
    :func:`darec.functional.local_structure_alignment`.

    As a term of :class:`~darec.DaRecModule`'s objective, the cluster assignment of every user
    and item lives in the buffers ``assignment_user`` and ``assignment_item`` (empty until the
    first refresh; the term is then zero). They are written by
    :class:`~darec.callbacks.LocalStructureAlignment` (:meth:`set_assignment`), which also saves
    them in checkpoints. The loss is summed over the sides of the step.

    - [0] DaRec, Yang et al., ICDE 2025, arXiv:2408.08231

    Args:
        num_clusters (int): the number of clusters :math:`K \geq 2`.
        temperature (float, optional): the InfoNCE temperature :math:`\tau > 0`.
            (default: ``0.2``)

    Raises:
        ValueError: if ``num_clusters`` is smaller than 2 or ``temperature`` is not a finite
            positive number.

    Example:
        >>> import torch
        >>> from darec.losses import LocalStructureAlignmentLoss
        >>> from darec.losses.views import SideViews, StepViews
        >>> _ = torch.manual_seed(0)
        >>> loss = LocalStructureAlignmentLoss(num_clusters=5)
        >>> cf, llm = torch.randn(20, 8), torch.randn(20, 8)
        >>> loss.set_assignment("user", torch.randint(0, 5, (20,)))
        >>> views = StepViews({"user": SideViews(index=torch.arange(20), cf=cf, llm=llm, cf_shared=cf, llm_shared=llm)})
        >>> loss(views).shape
        torch.Size([])
    """

    #: The term reads the shared parts: the module builds its disentangling heads.
    needs_shared = True

    def __init__(self, num_clusters: int, temperature: float = 0.2) -> None:
        super().__init__()
        self.check_arguments(num_clusters, temperature)
        self.num_clusters = num_clusters
        self.temperature = float(temperature)
        self.register_buffer("assignment_user", torch.empty(0, dtype=torch.long), persistent=False)
        self.register_buffer("assignment_item", torch.empty(0, dtype=torch.long), persistent=False)

    @staticmethod
    def check_arguments(num_clusters: int = 10, temperature: float = 0.2) -> None:
        """Raises ``ValueError`` for arguments the constructor refuses (callbacks check theirs early)."""
        positive_int(num_clusters, "num_clusters", minimum=2)
        positive_float(temperature, "temperature")

    def set_assignment(self, side: str, assignment: Tensor) -> None:
        """Stores the cluster ids of ``side`` (``"user"`` or ``"item"``): ``(num_entities,)``, or
        ``(num_entities, 2)`` (CF id, matched LLM id) when the sides are clustered separately."""
        buffer = getattr(self, f"assignment_{side}")
        setattr(self, f"assignment_{side}", assignment.to(device=buffer.device, dtype=torch.long))

    def extra_repr(self) -> str:
        return f"num_clusters={self.num_clusters}, temperature={self.temperature}"

    def forward(self, views: StepViews) -> Tensor:
        """Computes the loss, summed over the sides of ``views`` that have an assignment.

        Args:
            views (StepViews): the step's views; each side's ``cf_shared`` and ``llm_shared``
                rows, grouped by the assignment of their ``index``.

        Returns:
            Tensor: the scalar loss; zero (with gradients) while no side has an assignment.
        """
        cf, llm, rows, unassigned = [], [], [], []
        for side, view in views.items():
            cf_shared, llm_shared = shared(view, "local")
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
            loss = sum_over_sides(self.compute, cf, llm, [r[:, 0] for r in rows], [r[:, 1] for r in rows])
        else:
            loss = sum_over_sides(self.compute, cf, llm, rows)
        return loss + sum(unassigned)

    def compute(
        self, cf_shared: Tensor, llm_shared: Tensor, assignment: Tensor, llm_assignment: Tensor | None = None
    ) -> Tensor:
        """The loss of one set of rows.

        Args:
            cf_shared (Tensor): ``(N, d)`` shared CF representations, or a batch ``(*, N, d)``.
            llm_shared (Tensor): shared LLM representations of the same entities (same shape as ``cf_shared``).
            assignment (Tensor): ``(N,)`` (or ``(*, N)``) integer cluster ids in ``[0, num_clusters)``.
            llm_assignment (Tensor, optional): ``(N,)`` (or ``(*, N)``) cluster ids of the LLM side when the sides
                were clustered separately and matched; ``assignment`` is then the CF side's.

        Returns:
            Tensor: the symmetric InfoNCE loss: a scalar, or ``(*)`` for batched inputs.
        """
        return local_structure_alignment(
            cf_shared, llm_shared, assignment, num_clusters=self.num_clusters, temperature=self.temperature,
            llm_assignment=llm_assignment,
        )  # fmt: skip
