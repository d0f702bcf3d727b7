"""Module form of :func:`darec.functional.bpr_loss`."""

from __future__ import annotations

from torch import Tensor, nn

from darec.functional.ranking import bpr_loss

__all__ = ["BPRLoss"]


class BPRLoss(nn.Module):
    r"""Bayesian personalised ranking loss: pushes each positive score above its negative.

    .. math::
        \mathcal{L}_{\mathrm{BPR}} = -\frac{1}{B} \sum_{b=1}^{B}
            \log \sigma\!\left(s^+_b - s^-_b\right)

    See :func:`darec.functional.bpr_loss`. :class:`~darec.DaRecModule`'s training step uses it on
    the scores of the batch's (user, positive, negative) triples. The L2 penalty on the embeddings
    is left to the optimiser's weight decay or to the caller.

    - [0] BPR, Rendle et al., UAI 2009, arXiv:1205.2618

    Example:
        >>> import torch
        >>> from darec.losses import BPRLoss
        >>> loss = BPRLoss()
        >>> round(loss(torch.tensor([2.0, 0.5]), torch.tensor([2.0, 0.5])).item(), 4)
        0.6931
    """

    def __init__(self) -> None:
        super().__init__()

    def forward(self, pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
        """Computes the loss.

        Args:
            pos_scores (Tensor): ``(B,)`` scores of the positive items.
            neg_scores (Tensor): ``(B,)`` scores of the paired negative items.

        Returns:
            Tensor: the scalar mean loss.
        """
        return bpr_loss(pos_scores, neg_scores)
