"""Pairwise ranking objectives for implicit feedback."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from darec.functional._checks import check_same_shape

__all__ = ["bpr_loss"]


def bpr_loss(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    r"""Bayesian personalised ranking loss: pushes each positive score above its negative.

    For a batch of :math:`B` (user, positive item, negative item) triples with scores
    :math:`s^+_b = \langle e_u, e_{i^+} \rangle` and :math:`s^-_b = \langle e_u, e_{i^-} \rangle`,

    .. math::
        \mathcal{L}_{\mathrm{BPR}} = -\frac{1}{B} \sum_{b=1}^{B}
            \log \sigma\!\left(s^+_b - s^-_b\right)

    computed with ``logsigmoid`` so that large score gaps neither overflow nor underflow.
    The L2 penalty on the embeddings that often accompanies BPR is *not* part of this term.

    - [0] BPR, Rendle et al., UAI 2009, arXiv:1205.2618

    Args:
        pos_scores (Tensor): ``(B,)`` scores of the positive items.
        neg_scores (Tensor): ``(B,)`` scores of the paired negative items. Any shape works as
            long as it equals the shape of ``pos_scores`` (e.g. ``(B, M)`` for ``M`` negatives
            per positive, each paired with a copy of its positive score).

    Returns:
        Tensor: the scalar mean loss.

    Raises:
        ValueError: if the two score tensors differ in shape.

    Example:
        >>> import torch
        >>> from darec.functional import bpr_loss
        >>> round(bpr_loss(torch.zeros(4), torch.zeros(4)).item(), 4)  # log(2) when tied
        0.6931
        >>> round(bpr_loss(torch.tensor([3.0, 1.0]), torch.tensor([0.0, 1.0])).item(), 4)
        0.3709
    """
    check_same_shape(pos_scores, neg_scores, "pos_scores", "neg_scores")
    return -F.logsigmoid(pos_scores - neg_scores).mean()
