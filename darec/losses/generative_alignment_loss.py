"""RLMRec-Gen: reconstruction of masked nodes' LLM embeddings from their CF embeddings."""

from __future__ import annotations

from torch import Tensor, nn

from darec.functional.contrastive import generative_alignment
from darec.losses._checks import positive_float
from darec.losses.projection_head import ProjectionHead

__all__ = ["GenerativeAlignmentLoss"]


class GenerativeAlignmentLoss(nn.Module):
    r"""RLMRec-Gen: InfoNCE between MLP reconstructions of masked nodes and their LLM embeddings.

    The masking is the caller's job: before propagation, the CF input embeddings of a random
    fraction of the nodes (RLMRec uses 5-15%) are replaced by a learnable mask token; the
    backbone then propagates as usual, and this loss receives the propagated CF embeddings of
    the masked nodes :math:`\mathcal{M}` together with their LLM embeddings. An MLP
    :math:`\sigma` (a :class:`ProjectionHead`, held by this module) maps each CF embedding
    :math:`e_i` to the LLM width, and the reconstruction must pick out its own node's LLM
    embedding :math:`s_i` among the masked nodes':

    .. math::
        \mathcal{L}_{\mathrm{gen}} = -\frac{1}{|\mathcal{M}|} \sum_{i \in \mathcal{M}}
            \log \frac{\exp(\cos(\sigma(e_i), s_i) / \tau)}
                      {\sum_{j \in \mathcal{M}} \exp(\cos(\sigma(e_i), s_j) / \tau)}

    See :func:`darec.functional.generative_alignment`.

    - [0] RLMRec, Ren et al., WWW 2024, arXiv:2310.15950

    Args:
        llm_dim (int): width of the LLM embeddings.
        cf_dim (int): width of the CF embeddings.
        hidden_dim (int, optional): hidden width of the decoder; ``None`` uses
            ``(llm_dim + cf_dim) // 2``. (default: ``None``)
        temperature (float, optional): the temperature :math:`\tau > 0`. (default: ``0.2``)

    Attributes:
        decoder (ProjectionHead): the MLP from ``cf_dim`` to ``llm_dim``.

    Raises:
        ValueError: if a width is smaller than 1 or ``temperature`` is not a finite positive
            number.

    Example:
        >>> import torch
        >>> from darec.losses import GenerativeAlignmentLoss
        >>> _ = torch.manual_seed(0)
        >>> loss = GenerativeAlignmentLoss(llm_dim=384, cf_dim=32)
        >>> masked = torch.randperm(100)[:10]  # 10% of 100 nodes were masked by the caller
        >>> cf, llm = torch.randn(100, 32), torch.randn(100, 384)
        >>> loss(cf[masked], llm[masked]).shape
        torch.Size([])
    """

    def __init__(self, llm_dim: int, cf_dim: int, hidden_dim: int | None = None, temperature: float = 0.2) -> None:
        super().__init__()
        self.temperature = positive_float(temperature, "temperature")
        self.decoder = ProjectionHead(cf_dim, llm_dim, hidden_dim)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"

    def forward(self, cf_emb: Tensor, llm_emb: Tensor) -> Tensor:
        """Computes the loss.

        Args:
            cf_emb (Tensor): ``(M, cf_dim)`` propagated CF embeddings of the masked nodes.
            llm_emb (Tensor): ``(M, llm_dim)`` LLM embeddings of the same nodes, row for row.

        Returns:
            Tensor: the scalar loss.
        """
        return generative_alignment(self.decoder(cf_emb), llm_emb, temperature=self.temperature)
