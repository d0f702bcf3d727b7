"""Regularizers that shape the disentangled shared and specific subspaces."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from darec.functional._checks import check_matrix, check_nonempty, check_positive, check_same_shape

__all__ = ["orthogonality", "uniformity"]


def orthogonality(shared: Tensor, specific: Tensor) -> Tensor:
    r"""Squared cosine between each entity's shared and specific vectors, averaged over entities.

    Drives the shared part :math:`s_n` and the specific part :math:`p_n` of every entity towards
    orthogonal directions, so that the two parts carry different information:

    .. math::
        \mathcal{L}_{\perp}(S, P) = \frac{1}{N} \sum_{n=1}^{N}
            \left( \frac{\langle s_n, p_n \rangle}{\lVert s_n \rVert \, \lVert p_n \rVert} \right)^2

    The value lies in :math:`[0, 1]`: 0 when every pair is orthogonal, 1 when every pair is
    collinear. This is one side; DaRec adds the CF side and the LLM side together, which is left
    to the caller. A zero row counts as orthogonal to everything (its cosine is taken as 0).

    - [0] DaRec, Yang et al., ICDE 2025, arXiv:2408.08231

    Args:
        shared (Tensor): ``(N, d)`` shared representations.
        specific (Tensor): ``(N, d)`` specific representations of the same entities, row for row.

    Returns:
        Tensor: the scalar mean squared cosine.

    Raises:
        ValueError: if an input is not 2-D or has no rows, or if the shapes differ.

    Example:
        >>> import torch
        >>> from darec.functional import orthogonality
        >>> shared = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        >>> orthogonality(shared, torch.tensor([[0.0, 3.0], [1.0, 0.0]])).item()
        0.0
        >>> orthogonality(shared, 5 * shared).item()
        1.0
    """
    check_matrix(shared, "shared")
    check_matrix(specific, "specific")
    check_same_shape(shared, specific, "shared", "specific")
    check_nonempty(shared, "shared")
    cosine = (F.normalize(shared, dim=1) * F.normalize(specific, dim=1)).sum(dim=1)
    return cosine.pow(2).mean()


def uniformity(x: Tensor, t: float = 2.0) -> Tensor:
    r"""Uniformity of the rows of ``x`` on the unit hypersphere (lower is more uniform).

    With :math:`n(x) = x / \lVert x \rVert` and the mean taken over all ordered pairs of
    distinct rows (a row is never paired with itself),

    .. math::
        \mathcal{L}_{\mathrm{uni}}(X) = \log \frac{1}{N (N - 1)} \sum_{i \neq j}
            \exp\!\left( -t \, \lVert n(x_i) - n(x_j) \rVert_2^2 \right)

    The value is at most 0 (reached when all rows point the same way) and decreases as the rows
    spread out. It is computed with ``logsumexp`` over the Gram matrix of the normalised rows
    (:math:`\lVert n(x_i) - n(x_j) \rVert^2 = 2 - 2 \langle n(x_i), n(x_j) \rangle`), which
    keeps it finite for large ``t`` and keeps its gradient finite for duplicated rows. Memory
    is :math:`O(N^2)`.

    - [0] Understanding Contrastive Representation Learning through Alignment and Uniformity on
      the Hypersphere, Wang & Isola, ICML 2020, arXiv:2005.10242
    - [1] DaRec, Yang et al., ICDE 2025, arXiv:2408.08231 (applied to the specific parts)

    Args:
        x (Tensor): ``(N, d)`` representations, :math:`N \geq 2`.
        t (float, optional): the temperature of the Gaussian potential, :math:`t > 0`.
            (default: ``2.0``)

    Returns:
        Tensor: the scalar uniformity loss.

    Raises:
        ValueError: if ``x`` is not 2-D, has fewer than two rows, or ``t`` is not positive.

    Example:
        >>> import torch
        >>> from darec.functional import uniformity
        >>> round(uniformity(torch.eye(4)).item(), 4)  # pairwise squared distances all equal 2
        -4.0
        >>> abs(uniformity(torch.ones(3, 2)).item()) < 1e-6  # all rows identical: the maximum, 0
        True
    """
    check_matrix(x, "x")
    check_positive(t, "t")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"`x` must have at least 2 rows to form pairs, got shape {tuple(x.shape)}")
    z = F.normalize(x, dim=1)
    sq_dist = (2.0 - 2.0 * (z @ z.T)).clamp_min(0.0)
    self_pairs = torch.eye(n, dtype=torch.bool, device=x.device)
    logits = (-t * sq_dist).masked_fill(self_pairs, float("-inf"))
    return torch.logsumexp(logits.flatten(), dim=0) - math.log(n * (n - 1))
