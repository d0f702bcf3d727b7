"""RLMRec-Gen: reconstruction of masked nodes' LLM embeddings from their CF embeddings."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from darec.functional._checks import positive_float
from darec.functional.contrastive import generative_alignment
from darec.losses.views import StepViews
from darec.nn.heads import ProjectionHead

__all__ = ["GenerativeAlignmentLoss"]


class GenerativeAlignmentLoss(nn.Module):
    r"""RLMRec-Gen: InfoNCE between MLP reconstructions of masked nodes and their LLM embeddings.

    Before propagation, the CF input embeddings of a random fraction ``mask_ratio`` of the nodes
    (RLMRec uses 5-15%) are replaced by a learnable mask token (:attr:`mask_token`, see
    :meth:`mask_input`, which :class:`~darec.DaRecModule` calls before every training step's
    propagation); the backbone then propagates as usual, and the loss takes the propagated CF
    embeddings of the masked nodes :math:`\mathcal{M}` together with their LLM embeddings. An MLP
    :math:`\sigma` (a :class:`~darec.nn.ProjectionHead`, held by this module) maps each CF embedding
    :math:`e_i` to the LLM width, and the reconstruction must pick out its own node's LLM
    embedding :math:`s_i` among the masked nodes':

    .. math::
        \mathcal{L}_{\mathrm{gen}} = -\frac{1}{|\mathcal{M}|} \sum_{i \in \mathcal{M}}
            \log \frac{\exp(\cos(\sigma(e_i), s_i) / \tau)}
                      {\sum_{j \in \mathcal{M}} \exp(\cos(\sigma(e_i), s_j) / \tau)}

    See :func:`darec.functional.generative_alignment`. As a term of the module's objective
    (registered by :class:`~darec.callbacks.GenerativeAlignment`), it is summed over the sides of
    the step; a side with fewer than two masked rows adds zero.

    - [0] RLMRec, Ren et al., WWW 2024, arXiv:2310.15950

    Args:
        llm_dim (int): width of the LLM embeddings.
        cf_dim (int): width of the CF embeddings.
        hidden_dim (int, optional): hidden width of the decoder; ``None`` uses
            ``(llm_dim + cf_dim) // 2``. (default: ``None``)
        temperature (float, optional): the temperature :math:`\tau > 0`. (default: ``0.2``)
        mask_ratio (float, optional): the fraction of nodes masked per step, in ``(0, 1)``.
            (default: ``0.1``)

    Attributes:
        decoder (~darec.nn.ProjectionHead): the MLP from ``cf_dim`` to ``llm_dim``.
        mask_token (torch.nn.Parameter): the ``(1, cf_dim)`` learnable input of masked nodes.

    Raises:
        ValueError: if a width is smaller than 1, ``temperature`` is not a finite positive
            number or ``mask_ratio`` is not in ``(0, 1)``.

    Example:
        >>> import torch
        >>> from darec.losses import GenerativeAlignmentLoss
        >>> _ = torch.manual_seed(0)
        >>> loss = GenerativeAlignmentLoss(llm_dim=384, cf_dim=32)
        >>> masked = torch.randperm(100)[:10]  # 10% of 100 nodes were masked by the caller
        >>> cf, llm = torch.randn(100, 32), torch.randn(100, 384)
        >>> loss.compute(cf[masked], llm[masked]).shape  # one side; loss(views) sums the sides of a step
        torch.Size([])
    """

    #: The term reads the backbone's embeddings themselves: no disentangling heads needed.
    needs_shared = False

    def __init__(
        self, llm_dim: int, cf_dim: int, hidden_dim: int | None = None, temperature: float = 0.2, mask_ratio: float = 0.1
    ) -> None:
        super().__init__()
        self.check_arguments(temperature, mask_ratio)
        self.temperature = float(temperature)
        self.mask_ratio = float(mask_ratio)
        self.mask_token = nn.Parameter(torch.zeros(1, cf_dim))
        self.decoder = ProjectionHead(cf_dim, llm_dim, hidden_dim)

    @staticmethod
    def check_arguments(temperature: float = 0.2, mask_ratio: float = 0.1) -> None:
        """Raises ``ValueError`` for arguments the constructor refuses (callbacks check theirs early;
        the widths are checked by the decoder)."""
        positive_float(temperature, "temperature")
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"`mask_ratio` must be in (0, 1), got {mask_ratio}")

    def mask_input(self, table: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Masks a random ``mask_ratio`` of the nodes (at least two) in the backbone's input table.

        The module calls this hook of any term that defines it before the step's propagation.

        Args:
            table (Tensor): the backbone's ``(num_nodes, cf_dim)`` input embedding table (not changed).
            generator (torch.Generator): the module's training generator, on the table's device.

        Returns:
            ``(masked_table, masked)``: a copy of ``table`` with the masked rows replaced by
            :attr:`mask_token` (gradients reach both), and the ``(num_nodes,)`` bool mask.
        """
        num_nodes = table.size(0)
        draw = torch.randperm(num_nodes, device=table.device, generator=generator)
        nodes = draw[: max(2, int(self.mask_ratio * num_nodes))]
        masked = torch.zeros(num_nodes, dtype=torch.bool, device=table.device)
        masked[nodes] = True
        return table.index_put((nodes,), self.mask_token.expand(len(nodes), -1)), masked

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, mask_ratio={self.mask_ratio}"

    def forward(self, views: StepViews) -> Tensor:
        """Computes the loss on the masked rows of each side of ``views``, summed over the sides.

        Returns:
            Tensor: the scalar loss; a side without ``masked`` rows (or with fewer than two) adds zero.
        """
        losses = []
        for view in views.values():
            if view.masked is None or int(view.masked.sum()) < 2:
                losses.append(view.cf.sum() * 0.0)
                continue
            losses.append(self.compute(view.cf[view.masked], view.llm[view.masked]))
        return torch.stack(losses).sum()

    def compute(self, cf_emb: Tensor, llm_emb: Tensor) -> Tensor:
        """The loss of one set of rows.

        Args:
            cf_emb (Tensor): ``(M, cf_dim)`` propagated CF embeddings of the masked nodes.
            llm_emb (Tensor): ``(M, llm_dim)`` LLM embeddings of the same nodes, row for row.

        Returns:
            Tensor: the scalar loss.
        """
        return generative_alignment(self.decoder(cf_emb), llm_emb, temperature=self.temperature)
