"""Vectorised k-means in torch (CPU or GPU) and cluster matching."""

from __future__ import annotations

import torch
from torch import Tensor

from darec.functional._checks import check_matrix
from darec.functional.alignment import cluster_centres

__all__ = ["kmeans", "match_clusters"]


# Over 60 lines for its docstring (what it computes, its arguments, examples); the code is 27 lines.
def kmeans(
    x: Tensor,
    num_clusters: int,
    num_iters: int = 25,
    generator: torch.Generator | None = None,
    tol: float = 1e-6,
    init: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Lloyd's k-means with k-means++ seeding, vectorised in torch (runs where ``x`` lives).

    Minimises :math:`\sum_n \lVert x_n - c_{a_n} \rVert^2`. Each iteration is one distance matrix
    and one scatter; no Python loop runs over points or clusters except the :math:`K` seeding
    draws. A cluster that loses all its points is re-seeded at the point farthest from its centre.

    Args:
        x (Tensor): ``(N, d)`` points.
        num_clusters (int): :math:`K`, at most ``N``.
        num_iters (int): maximum Lloyd iterations. (default: :obj:`25`)
        generator (torch.Generator, optional): a CPU generator for the seeding draws.
        tol (float): stop when the centres move less than this (squared, summed). (default: :obj:`1e-6`)
        init (Tensor, optional): ``(K, d)`` starting centres (e.g. the previous run's, for a
            warm start that needs fewer iterations and keeps cluster ids stable); k-means++
            seeding when omitted. (default: :obj:`None`)

    Returns:
        ``(centres, assignment)``: ``(K, d)`` float32 (``x`` is clustered in single precision) and
        ``(N,)`` long.

    Example:
        >>> x = torch.cat([torch.zeros(5, 2), torch.ones(5, 2) * 10])
        >>> centres, assignment = kmeans(x, 2, generator=torch.Generator().manual_seed(0))
        >>> sorted(assignment.bincount().tolist()), sorted(centres[:, 0].tolist())
        ([5, 5], [0.0, 10.0])
    """
    check_matrix(x, "x")
    n = x.size(0)
    if not 1 <= num_clusters <= n:
        raise ValueError(f"`num_clusters` must be in [1, {n}] for {n} points, got {num_clusters}")
    if num_iters < 1:
        raise ValueError(f"`num_iters` must be positive, got {num_iters}")
    x = x.detach().float()
    if init is not None:
        if init.shape != (num_clusters, x.size(1)):
            raise ValueError(f"`init` must have shape ({num_clusters}, {x.size(1)}), got {tuple(init.shape)}")
        centres = init.detach().to(x)
    else:
        centres = _kmeans_plus_plus(x, num_clusters, generator)
    distances = _Distances(x)
    assignment = distances(centres).argmin(1)
    for _ in range(num_iters):
        means, counts = cluster_centres(x, assignment, num_clusters)
        new = torch.where(counts.unsqueeze(1) > 0, means, centres)
        empty = (counts == 0).nonzero().flatten()
        if len(empty):
            far = (x - new[assignment]).pow(2).sum(1).topk(len(empty)).indices
            new[empty] = x[far]
        shift = (new - centres).pow(2).sum()
        centres = new
        assignment = distances(centres).argmin(1)
        if shift <= tol:
            break
    return centres, assignment


def _kmeans_plus_plus(x: Tensor, num_clusters: int, generator: torch.Generator | None) -> Tensor:
    """k-means++ seeding: each next centre drawn with probability proportional to the squared
    distance to the closest centre so far."""
    n = x.size(0)
    distances = _Distances(x)
    first = torch.randint(n, (1,), generator=generator)
    centres = x[first.to(x.device)]
    closest = distances(centres).squeeze(1).pow(2)
    for _ in range(1, num_clusters):
        weights = closest.double().cpu()
        weights = weights if weights.sum() > 0 else torch.ones_like(weights)
        pick = torch.multinomial(weights, 1, generator=generator)
        centres = torch.cat([centres, x[pick.to(x.device)]])
        closest = torch.minimum(closest, distances(centres[-1:]).squeeze(1).pow(2))
    return centres


class _Distances:
    """``torch.cdist(x, centres)`` for a fixed ``(N, d)`` ``x``, bit for bit, with ``x``'s part prepared once.

    For more than 25 rows on either side, :func:`torch.cdist` computes the Euclidean distances as
    one product of ``[-2x, |x|^2, 1]`` with ``[c, 1, |c|^2]``, clamped at 0 and square-rooted, and
    builds the ``(N, d + 2)`` left factor anew on every call; k-means calls it with the same
    ``x`` every iteration, so the left factor is built here once and the same product follows (same
    operands, same result). Smaller inputs go to :func:`torch.cdist` itself (its direct path)."""

    def __init__(self, x: Tensor) -> None:
        self.x = x
        norms = x.pow(2).sum(-1, keepdim=True)
        self.left = torch.cat([x.mul(-2), norms, torch.ones_like(norms)], -1) if x.size(0) > 25 else None

    def __call__(self, centres: Tensor) -> Tensor:
        if self.left is None:
            return torch.cdist(self.x, centres)
        norms = centres.pow(2).sum(-1, keepdim=True)
        right = torch.cat([centres, torch.ones_like(norms), norms], -1)
        return self.left.matmul(right.mT).clamp_min_(0).sqrt_()


def match_clusters(reference: Tensor, other: Tensor) -> Tensor:
    """Hungarian matching of ``other``'s clusters to ``reference``'s, by cosine similarity of centres.

    Args:
        reference (Tensor): ``(K, d)`` centres.
        other (Tensor): ``(K, d)`` centres of the other side.

    Returns:
        Tensor: ``(K,)`` long ``perm`` such that ``other``'s cluster ``perm[k]`` matches ``reference``'s
        cluster ``k``; relabel the other side's assignment ``a`` with ``inverse[a]`` where
        ``inverse[perm] = arange(K)``.

    Example:
        >>> ref = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> match_clusters(ref, ref.flip(0))
        tensor([1, 0])
    """
    from scipy.optimize import linear_sum_assignment

    if reference.shape != other.shape:
        raise ValueError(f"centre matrices must have the same shape, got {tuple(reference.shape)} and {tuple(other.shape)}")
    sim = torch.nn.functional.normalize(reference.float(), dim=1) @ torch.nn.functional.normalize(other.float(), dim=1).T
    rows, cols = linear_sum_assignment(sim.detach().cpu().numpy(), maximize=True)
    perm = torch.empty(len(rows), dtype=torch.long)
    perm[torch.as_tensor(rows)] = torch.as_tensor(cols)
    return perm
