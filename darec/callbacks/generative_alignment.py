"""Switches on the RLMRec-Gen baseline."""

from __future__ import annotations

from darec.callbacks.alignment_callback import AlignmentCallback
from darec.losses import GenerativeAlignmentLoss
from darec.module.host import Sizes

__all__ = ["GenerativeAlignment"]


class GenerativeAlignment(AlignmentCallback):
    r"""RLMRec-Gen: masked-node reconstruction of the text embeddings.

    Every step, a fraction ``mask_ratio`` of all nodes has its input embedding replaced by a
    learnable mask token before the backbone propagates (the term's ``mask_input`` hook); an MLP then decodes the masked nodes'
    output embeddings, and an InfoNCE loss (in-batch negatives) pulls each decoding towards the
    node's text embedding. The backbone must have a ``(num_users + num_items, d)`` input embedding
    table (LightGCN and matrix factorisation do). See :class:`~darec.losses.GenerativeAlignmentLoss`.

    - [0] Ren et al., "Representation Learning with Large Language Models for Recommendation",
      WWW 2024, arXiv:2310.15950.

    Args:
        weight (float): weight of the term. (default: :obj:`1e-2`)
        mask_ratio (float): fraction of nodes masked per step. (default: :obj:`0.1`)
        temperature (float): InfoNCE temperature. (default: :obj:`0.2`)
        warmup_epochs (int): linear warm-up of the weight. (default: :obj:`0`)
    """

    name = "generative"

    def __init__(self, weight: float = 1e-2, mask_ratio: float = 0.1, temperature: float = 0.2, warmup_epochs: int = 0) -> None:
        super().__init__(weight, warmup_epochs)
        GenerativeAlignmentLoss.check_arguments(temperature, mask_ratio)
        self.mask_ratio = mask_ratio
        self.temperature = temperature

    def build_term(self, sizes: Sizes) -> GenerativeAlignmentLoss:
        return GenerativeAlignmentLoss(
            llm_dim=sizes.text_dim, cf_dim=sizes.cf_dim, temperature=self.temperature, mask_ratio=self.mask_ratio
        )
