"""Switches on the RLMRec-Con baseline."""

from __future__ import annotations

from darec.callbacks.alignment_callback import AlignmentCallback
from darec.losses import ContrastiveAlignmentLoss
from darec.module.host import Sizes

__all__ = ["ContrastiveAlignment"]


class ContrastiveAlignment(AlignmentCallback):
    r"""RLMRec-Con: contrastive alignment of CF embeddings with projected text embeddings.

    For the users of a batch (and separately for its items), an MLP maps the text embeddings into
    the CF space and an InfoNCE loss with in-batch negatives pulls each entity's CF embedding
    towards its own projected text embedding. See :class:`~darec.losses.ContrastiveAlignmentLoss`.

    - [0] Ren et al., "Representation Learning with Large Language Models for Recommendation",
      WWW 2024, arXiv:2310.15950.

    Args:
        weight (float): weight of the term. (default: :obj:`1e-2`)
        temperature (float): InfoNCE temperature. (default: :obj:`0.2`)
        warmup_epochs (int): linear warm-up of the weight. (default: :obj:`0`)
    """

    name = "contrastive"

    def __init__(self, weight: float = 1e-2, temperature: float = 0.2, warmup_epochs: int = 0) -> None:
        super().__init__(weight, warmup_epochs)
        ContrastiveAlignmentLoss.check_arguments(temperature)
        self.temperature = temperature

    def build_term(self, sizes: Sizes) -> ContrastiveAlignmentLoss:
        return ContrastiveAlignmentLoss(llm_dim=sizes.text_dim, cf_dim=sizes.cf_dim, temperature=self.temperature)
