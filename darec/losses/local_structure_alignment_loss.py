"""Module form of :func:`darec.functional.local_structure_alignment`."""

from __future__ import annotations

from torch import Tensor, nn

from darec.functional.alignment import local_structure_alignment
from darec.losses._checks import positive_float, positive_int

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
        >>> _ = torch.manual_seed(0)
        >>> loss = LocalStructureAlignmentLoss(num_clusters=5)
        >>> cf, llm = torch.randn(20, 8), torch.randn(20, 8)
        >>> assignment = torch.randint(0, 5, (20,))
        >>> loss(cf, llm, assignment).shape
        torch.Size([])
    """

    def __init__(self, num_clusters: int, temperature: float = 0.2) -> None:
        super().__init__()
        self.num_clusters = positive_int(num_clusters, "num_clusters", minimum=2)
        self.temperature = positive_float(temperature, "temperature")

    def extra_repr(self) -> str:
        return f"num_clusters={self.num_clusters}, temperature={self.temperature}"

    def forward(
        self, cf_shared: Tensor, llm_shared: Tensor, assignment: Tensor, llm_assignment: Tensor | None = None
    ) -> Tensor:
        """Computes the loss.

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
        )
