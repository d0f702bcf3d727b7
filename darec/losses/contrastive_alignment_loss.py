"""RLMRec-Con: contrastive alignment of CF embeddings with projected LLM embeddings."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from darec.functional._checks import positive_float
from darec.functional.contrastive import contrastive_alignment
from darec.losses.views import StepViews
from darec.nn.heads import ProjectionHead

__all__ = ["ContrastiveAlignmentLoss"]


class ContrastiveAlignmentLoss(nn.Module):
    r"""RLMRec-Con: InfoNCE between CF embeddings and MLP-projected LLM embeddings.

    An MLP :math:`\sigma` (a :class:`~darec.nn.ProjectionHead`, held by this module and trained with it)
    maps each LLM embedding :math:`s_i` into the CF space; each CF embedding :math:`e_i` must
    then pick out its own entity among the batch's projected LLM embeddings:

    .. math::
        \mathcal{L}_{\mathrm{con}} = -\frac{1}{N} \sum_{i=1}^{N}
            \log \frac{\exp(\cos(e_i, \sigma(s_i)) / \tau)}
                      {\sum_{j=1}^{N} \exp(\cos(e_i, \sigma(s_j)) / \tau)}

    See :func:`darec.functional.contrastive_alignment`. RLMRec weights this term by ``1e-2``;
    the weight belongs to the caller. As a term of :class:`~darec.DaRecModule`'s objective
    (registered by :class:`~darec.callbacks.ContrastiveAlignment`), it is summed over the sides
    of the step, with one projector for users and items.

    - [0] RLMRec, Ren et al., WWW 2024, arXiv:2310.15950

    Args:
        llm_dim (int): width of the LLM embeddings.
        cf_dim (int): width of the CF embeddings.
        hidden_dim (int, optional): hidden width of the projector; ``None`` uses
            ``(llm_dim + cf_dim) // 2``. (default: ``None``)
        temperature (float, optional): the temperature :math:`\tau > 0`. (default: ``0.2``)

    Attributes:
        projector (~darec.nn.ProjectionHead): the MLP from ``llm_dim`` to ``cf_dim``.

    Raises:
        ValueError: if a width is smaller than 1 or ``temperature`` is not a finite positive
            number.

    Example:
        >>> import torch
        >>> from darec.losses import ContrastiveAlignmentLoss
        >>> _ = torch.manual_seed(0)
        >>> loss = ContrastiveAlignmentLoss(llm_dim=384, cf_dim=32)
        >>> cf, llm = torch.randn(64, 32, requires_grad=True), torch.randn(64, 384)
        >>> value = loss.compute(cf, llm)  # one side; loss(views) sums the sides of a step
        >>> value.backward()
        >>> value.shape, loss.projector.layers[0].weight.grad.shape
        (torch.Size([]), torch.Size([208, 384]))
    """

    def __init__(self, llm_dim: int, cf_dim: int, hidden_dim: int | None = None, temperature: float = 0.2) -> None:
        super().__init__()
        self.check_arguments(temperature)
        self.temperature = float(temperature)
        self.projector = ProjectionHead(llm_dim, cf_dim, hidden_dim)

    #: The term reads the backbone's embeddings themselves: no disentangling heads needed.
    needs_shared = False

    @staticmethod
    def check_arguments(temperature: float = 0.2) -> None:
        """Raises ``ValueError`` for arguments the constructor refuses (callbacks check theirs early;
        the widths are checked by the projector)."""
        positive_float(temperature, "temperature")

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"

    def forward(self, views: StepViews) -> Tensor:
        """Computes the loss, summed over the sides of ``views`` (their ``cf`` and ``llm`` rows).

        Returns:
            Tensor: the scalar loss.
        """
        return torch.stack([self.compute(view.cf, view.llm) for view in views.values()]).sum()

    def compute(self, cf_emb: Tensor, llm_emb: Tensor) -> Tensor:
        """The loss of one set of rows.

        Args:
            cf_emb (Tensor): ``(N, cf_dim)`` CF embeddings.
            llm_emb (Tensor): ``(N, llm_dim)`` LLM embeddings of the same entities, row for row.

        Returns:
            Tensor: the scalar loss.
        """
        return contrastive_alignment(cf_emb, self.projector(llm_emb), temperature=self.temperature)
