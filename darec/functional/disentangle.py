"""Regularizers that shape the disentangled shared and specific subspaces."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from darec.functional._checks import check_batched_matrix, check_nonempty, check_positive, check_same_shape

__all__ = ["orthogonality", "uniformity"]

# Up to this t, uniformity sums the exponentials directly (see there); above, it uses logsumexp.
_DIRECT_SUM_MAX_T = 10.0


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
    Leading dimensions are a batch: ``(*, N, d)`` inputs give ``(*)`` values, one per set.

    - [0] DaRec, Yang et al., ICDE 2025, arXiv:2408.08231

    Args:
        shared (Tensor): ``(N, d)`` shared representations, or a batch ``(*, N, d)`` of sets.
        specific (Tensor): specific representations of the same entities, row for row (same shape).

    Returns:
        Tensor: the mean squared cosine: a scalar, or ``(*)`` for batched inputs.

    Raises:
        ValueError: if an input has fewer than 2 dimensions or no rows, or if the shapes differ.

    Example:
        >>> import torch
        >>> from darec.functional import orthogonality
        >>> shared = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        >>> orthogonality(shared, torch.tensor([[0.0, 3.0], [1.0, 0.0]])).item()
        0.0
        >>> orthogonality(shared, 5 * shared).item()
        1.0
        >>> orthogonality(torch.stack([shared, shared]), torch.stack([shared, -shared]))  # a batch of two sets
        tensor([1., 1.])
    """
    check_batched_matrix(shared, "shared")
    check_batched_matrix(specific, "specific")
    check_same_shape(shared, specific, "shared", "specific")
    check_nonempty(shared, "shared")
    cosine = (F.normalize(shared, dim=-1) * F.normalize(specific, dim=-1)).sum(dim=-1)
    return cosine.pow(2).mean(dim=-1)


# Over 60 lines for its docstring (what it computes, its arguments, examples); the code is 17 lines.
def uniformity(x: Tensor, t: float = 2.0) -> Tensor:
    r"""Uniformity of the rows of ``x`` on the unit hypersphere (lower is more uniform).

    With :math:`n(x) = x / \lVert x \rVert` and the mean taken over all ordered pairs of
    distinct rows (a row is never paired with itself),

    .. math::
        \mathcal{L}_{\mathrm{uni}}(X) = \log \frac{1}{N (N - 1)} \sum_{i \neq j}
            \exp\!\left( -t \, \lVert n(x_i) - n(x_j) \rVert_2^2 \right)

    The value is at most 0 (reached when all rows point the same way) and decreases as the rows
    spread out. It is computed from the Gram matrix of the normalised rows
    (:math:`\lVert n(x_i) - n(x_j) \rVert^2 = 2 - 2 \langle n(x_i), n(x_j) \rangle`), so every
    exponent lies in :math:`[-4t, 0]`. For ``t`` up to 10 in single or double precision the
    exponentials are summed directly (in place, three passes over the :math:`N \times N` matrix);
    otherwise, and for half precision, ``logsumexp`` keeps the value finite. Either way the
    gradient stays finite for duplicated rows. Memory is :math:`O(N^2)`. Leading dimensions are
    a batch: ``(*, N, d)`` gives ``(*)`` values, one per set, in one batched product.

    - [0] Understanding Contrastive Representation Learning through Alignment and Uniformity on
      the Hypersphere, Wang & Isola, ICML 2020, arXiv:2005.10242
    - [1] DaRec, Yang et al., ICDE 2025, arXiv:2408.08231 (applied to the specific parts)

    Args:
        x (Tensor): ``(N, d)`` representations, :math:`N \geq 2`, or a batch ``(*, N, d)`` of sets.
        t (float, optional): the temperature of the Gaussian potential, :math:`t > 0`.
            (default: ``2.0``)

    Returns:
        Tensor: the uniformity loss: a scalar, or ``(*)`` for batched input.

    Raises:
        ValueError: if ``x`` has fewer than 2 dimensions or fewer than two rows, or ``t`` is not
            positive.

    Example:
        >>> import torch
        >>> from darec.functional import uniformity
        >>> round(uniformity(torch.eye(4)).item(), 4)  # pairwise squared distances all equal 2
        -4.0
        >>> abs(uniformity(torch.ones(3, 2)).item()) < 1e-6  # all rows identical: the maximum, 0
        True
        >>> uniformity(torch.stack([torch.eye(4), torch.ones(4, 4)])).round(decimals=4).tolist()  # a batch
        [-4.0, 0.0]
    """
    check_batched_matrix(x, "x")
    check_positive(t, "t")
    n = x.shape[-2]
    if n < 2:
        raise ValueError(f"`x` must have at least 2 rows to form pairs, got shape {tuple(x.shape)}")
    log_pairs = math.log(n * (n - 1))
    # exp(-t ||z_i - z_j||^2) = exp(2t <z_i, z_j>) exp(-2t): the scale 2t goes into the rows
    # (N x d numbers) instead of the N x N product, and exp(-2t) comes out of the log.
    z = F.normalize(x, dim=-1) * math.sqrt(2.0 * t)
    logits = z @ z.mT
    # In place on the fresh product (its backward only needs z): self-pairs get -inf, so they add
    # nothing to the sum or to its gradient.
    logits.diagonal(dim1=-2, dim2=-1).fill_(float("-inf"))
    if t <= _DIRECT_SUM_MAX_T and logits.dtype in (torch.float32, torch.float64):
        # exp(2t <z_i, z_j>) lies in [exp(-2t), exp(2t)]: no overflow or underflow for t <= 10.
        return logits.exp_().sum(dim=(-2, -1)).log() - 2.0 * t - log_pairs
    return torch.logsumexp(logits.flatten(-2), dim=-1) - 2.0 * t - log_pairs

