"""Structure alignment between the shared CF and shared LLM representations (DaRec)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from darec.functional._checks import check_batched_matrix, check_nonempty, check_positive, check_same_rows

__all__ = ["cluster_centres", "global_structure_alignment", "local_structure_alignment"]

GLOBAL_MODES = ("mse", "kl")


def check_global_mode(mode: str) -> None:
    """Raises ``ValueError`` unless ``mode`` is one of :data:`GLOBAL_MODES`."""
    if mode not in GLOBAL_MODES:
        raise ValueError(f"`mode` must be one of {GLOBAL_MODES}, got {mode!r}")


# Over 60 lines for its docstring (what it computes, its arguments, examples); the code is 16 lines.
def global_structure_alignment(
    cf_shared: Tensor,
    llm_shared: Tensor,
    mode: Literal["mse", "kl"] = "mse",
    temperature: float = 1.0,
) -> Tensor:
    r"""Matches the pairwise cosine-similarity structure of the CF and LLM shared spaces.

    With :math:`A^C_{ij} = \cos(c_i, c_j)` over the rows of ``cf_shared`` and
    :math:`A^L_{ij} = \cos(l_i, l_j)` over the rows of ``llm_shared`` (the two widths may
    differ, only the :math:`N \times N` structures are compared), mode ``"mse"`` is

    .. math::
        \mathcal{L}_{\mathrm{global}} = \frac{1}{N^2} \sum_{i=1}^{N} \sum_{j=1}^{N}
            \left( A^C_{ij} - A^L_{ij} \right)^2

    and mode ``"kl"`` compares row-wise softmax distributions at temperature :math:`T`, with
    the LLM side as the target distribution:

    .. math::
        \mathcal{L}_{\mathrm{global}} = \frac{1}{N} \sum_{i=1}^{N}
            \mathrm{KL}\!\left( \mathrm{softmax}(A^L_{i\cdot} / T) \,\middle\|\,
            \mathrm{softmax}(A^C_{i\cdot} / T) \right)

    Both include the diagonal (always 1 on both sides). Gradients reach both inputs; detach
    ``llm_shared`` to treat the LLM structure as a fixed target. Leading dimensions are a batch:
    ``(*, N, d)`` inputs give ``(*)`` values, one per set.

    The ``"mse"`` mode never forms the :math:`N \times N` matrices: with row-normalised
    :math:`\hat C` and :math:`\hat L`, :math:`\lVert \hat C \hat C^\top - \hat L \hat L^\top \rVert_F^2 =
    \lVert \hat C^\top \hat C \rVert_F^2 - 2 \lVert \hat C^\top \hat L \rVert_F^2 + \lVert \hat L^\top \hat L \rVert_F^2`,
    which costs :math:`O(N d^2)` instead of :math:`O(N^2 d)`. It is equal in exact arithmetic; in
    floating point it is a difference of large terms, so it loses relative precision when the two
    structures nearly coincide (it is clamped at 0).

    - [0] DaRec, Yang et al., ICDE 2025, arXiv:2408.08231

    Args:
        cf_shared (Tensor): ``(N, d_1)`` shared CF representations, or a batch ``(*, N, d_1)``.
        llm_shared (Tensor): ``(N, d_2)`` shared LLM representations of the same entities (same
            leading dimensions).
        mode (str, optional): ``"mse"`` (the paper's squared difference) or ``"kl"``.
            (default: ``"mse"``)
        temperature (float, optional): softmax temperature :math:`T > 0`, used by ``"kl"`` only.
            (default: ``1.0``)

    Returns:
        Tensor: the alignment loss: a scalar, or ``(*)`` for batched inputs.

    Raises:
        ValueError: if an input has fewer than 2 dimensions or no rows, the leading dimensions
            or row counts differ, ``mode`` is unknown, or ``temperature`` is not positive.

    Example:
        >>> import torch
        >>> from darec.functional import global_structure_alignment
        >>> _ = torch.manual_seed(0)
        >>> cf, llm = torch.randn(6, 4), torch.randn(6, 16)
        >>> global_structure_alignment(cf, cf).item()  # identical structures
        0.0
        >>> global_structure_alignment(cf, llm).item() > 0
        True
        >>> global_structure_alignment(cf, llm, mode="kl", temperature=0.5).shape
        torch.Size([])
        >>> global_structure_alignment(torch.stack([cf, cf]), torch.stack([cf, 2 * cf])).shape  # a batch of two
        torch.Size([2])
    """
    check_global_mode(mode)
    check_positive(temperature, "temperature")
    check_batched_matrix(cf_shared, "cf_shared")
    check_batched_matrix(llm_shared, "llm_shared")
    check_same_rows(cf_shared, llm_shared, "cf_shared", "llm_shared")
    check_nonempty(cf_shared, "cf_shared")
    n = cf_shared.shape[-2]
    c = F.normalize(cf_shared, dim=-1)
    l = F.normalize(llm_shared, dim=-1)  # noqa: E741
    if mode == "mse":
        dims = (-2, -1)
        frob = (c.mT @ c).pow(2).sum(dims) - 2 * (c.mT @ l).pow(2).sum(dims) + (l.mT @ l).pow(2).sum(dims)
        return frob.clamp_min(0.0) / (n * n)
    log_p_llm = F.log_softmax(l @ l.mT / temperature, dim=-1)
    log_p_cf = F.log_softmax(c @ c.mT / temperature, dim=-1)
    return F.kl_div(log_p_cf, log_p_llm, reduction="none", log_target=True).sum(dim=(-2, -1)) / n


def cluster_centres(x: Tensor, assignment: Tensor, num_clusters: int) -> tuple[Tensor, Tensor]:
    r"""Mean of the rows of ``x`` in each cluster, differentiable with respect to ``x``.

    .. math::
        c_k = \frac{1}{|\mathcal{C}_k|} \sum_{n \in \mathcal{C}_k} x_n,
        \qquad \mathcal{C}_k = \{ n : a_n = k \}

    Computed with one ``index_add`` (no loop over clusters, nor over the sets of a batch). The
    centre of an empty cluster is the zero vector; use the returned counts to tell empty
    clusters apart.

    Args:
        x (Tensor): ``(N, d)`` representations, or a batch ``(*, N, d)`` of sets.
        assignment (Tensor): ``(N,)`` (or ``(*, N)``) integer cluster ids in ``[0, num_clusters)``. Ids are
            not range-checked here (that would need a device synchronisation); on CPU an id
            out of range makes ``index_add`` raise.
        num_clusters (int): the number of clusters :math:`K \geq 1`.

    Returns:
        tuple[Tensor, Tensor]: the ``(*, K, d)`` centres (dtype of ``x``) and the ``(*, K)``
        int64 member counts.

    Raises:
        ValueError: if ``x`` has fewer than 2 dimensions, ``assignment`` is not an integer tensor
            with one entry per row of ``x``, or ``num_clusters`` is smaller than 1.

    Example:
        >>> import torch
        >>> from darec.functional import cluster_centres
        >>> x = torch.tensor([[0.0, 2.0], [2.0, 0.0], [4.0, 4.0]])
        >>> centres, counts = cluster_centres(x, torch.tensor([2, 2, 0]), num_clusters=3)
        >>> centres
        tensor([[4., 4.],
                [0., 0.],
                [1., 1.]])
        >>> counts
        tensor([1, 0, 2])
    """
    check_batched_matrix(x, "x")
    _check_assignment(assignment, x)
    if num_clusters < 1:
        raise ValueError(f"`num_clusters` must be >= 1, got {num_clusters!r}")
    batch_shape, (n, d) = x.shape[:-2], x.shape[-2:]
    sets = math.prod(batch_shape)
    # Set b's cluster k is row b * K + k of one flat (sets * K, d) table: one index_add for all sets.
    index = assignment.long().reshape(sets, n)
    if sets > 1:
        index = index + torch.arange(sets, device=x.device).unsqueeze(1) * num_clusters
    index = index.reshape(-1)
    sums = x.new_zeros(sets * num_clusters, d).index_add(0, index, x.reshape(-1, d))
    counts = torch.zeros(sets * num_clusters, dtype=torch.long, device=x.device).index_add_(
        0, index, torch.ones_like(index)
    )
    centres = sums / counts.clamp_min(1).to(x.dtype).unsqueeze(1)
    return centres.reshape(*batch_shape, num_clusters, d), counts.reshape(*batch_shape, num_clusters)


# Over 60 lines for its docstring (what it computes, its arguments, examples); the code is 24 lines.
def local_structure_alignment(
    cf_shared: Tensor,
    llm_shared: Tensor,
    assignment: Tensor,
    num_clusters: int,
    temperature: float = 0.2,
    llm_assignment: Tensor | None = None,
) -> Tensor:
    r"""InfoNCE between matched CF and LLM cluster centres ("adaptive preference clustering").

    One cluster assignment serves both sides. For each cluster :math:`k` with at least one
    member in the batch, the per-side centres :math:`c^C_k`, :math:`c^L_k` are the means of the
    members' shared representations (see :func:`cluster_centres`), L2-normalised to
    :math:`\hat c^C_k`, :math:`\hat c^L_k`. Over the set :math:`\mathcal{K}` of non-empty
    clusters, with the matched centre as the positive and the other centres as negatives,

    .. math::
        \ell^{C \to L} = -\frac{1}{|\mathcal{K}|} \sum_{k \in \mathcal{K}}
            \log \frac{\exp(\langle \hat c^C_k, \hat c^L_k \rangle / \tau)}
                      {\sum_{j \in \mathcal{K}} \exp(\langle \hat c^C_k, \hat c^L_j \rangle / \tau)},
        \qquad
        \mathcal{L}_{\mathrm{local}} = \tfrac{1}{2} \left( \ell^{C \to L} + \ell^{L \to C} \right)

    where :math:`\ell^{L \to C}` swaps the roles of the two sides. Every non-empty cluster
    counts once, whatever its size. Empty clusters are masked out instead of indexed out, so
    the computation needs no device synchronisation. With fewer than two non-empty clusters
    there is no negative and the loss is exactly zero, still connected to the inputs' graph.
    ``cf_shared`` and ``llm_shared`` must have the same width, since centres are compared by
    dot product. Leading dimensions are a batch: ``(*, N, d)`` inputs with ``(*, N)``
    assignments give ``(*)`` values, one per set, with no loop over the sets.

    - [0] DaRec, Yang et al., ICDE 2025, arXiv:2408.08231

    Args:
        cf_shared (Tensor): ``(N, d)`` shared CF representations, or a batch ``(*, N, d)``.
        llm_shared (Tensor): shared LLM representations of the same entities (same shape).
        assignment (Tensor): ``(N,)`` (or ``(*, N)``) integer cluster ids in ``[0, num_clusters)``.
        num_clusters (int): the number of clusters :math:`K \geq 1`.
        temperature (float, optional): the InfoNCE temperature :math:`\tau > 0`.
            (default: ``0.2``)
        llm_assignment (Tensor, optional): ``(N,)`` (or ``(*, N)``) cluster ids of the LLM side when each side
            was clustered on its own (cluster :math:`k` of one side matched to cluster :math:`k`
            of the other, e.g. by :func:`match_clusters`); ``assignment`` then holds the CF
            side's ids. A cluster takes part when it is non-empty on both sides.
            (default: :obj:`None`, one assignment for both sides)

    Returns:
        Tensor: the symmetric InfoNCE loss: a scalar, or ``(*)`` for batched inputs.

    Raises:
        ValueError: if the inputs do not have the same shape ``(*, N, d)``, ``assignment`` does
            not have one integer entry per row, ``num_clusters`` is smaller than 1, or
            ``temperature`` is not positive.

    Example:
        >>> import torch
        >>> from darec.functional import local_structure_alignment
        >>> _ = torch.manual_seed(0)
        >>> cf, llm = torch.randn(12, 8), torch.randn(12, 8)
        >>> assignment = torch.arange(12) % 4
        >>> local_structure_alignment(cf, llm, assignment, num_clusters=4).shape
        torch.Size([])
        >>> local_structure_alignment(cf, llm, torch.zeros(12, dtype=torch.long), 4).item()
        0.0
        >>> local_structure_alignment(torch.stack([cf, cf]), torch.stack([llm, cf]), torch.stack([assignment] * 2), 4).shape
        torch.Size([2])
    """
    check_positive(temperature, "temperature")
    check_batched_matrix(cf_shared, "cf_shared")
    check_batched_matrix(llm_shared, "llm_shared")
    if cf_shared.shape != llm_shared.shape:
        raise ValueError(
            "`cf_shared` and `llm_shared` must have the same shape (*, N, d), got "
            f"{tuple(cf_shared.shape)} and {tuple(llm_shared.shape)}"
        )
    centres_cf, counts = cluster_centres(cf_shared, assignment, num_clusters)
    llm_ids = assignment if llm_assignment is None else llm_assignment
    centres_llm, counts_llm = cluster_centres(llm_shared, llm_ids, num_clusters)
    present = (counts > 0) & (counts_llm > 0)
    logits = F.normalize(centres_cf, dim=-1) @ F.normalize(centres_llm, dim=-1).mT / temperature
    # A pair (k, j) takes part when both clusters are non-empty. The diagonal is always kept so
    # that the rows and columns of empty clusters stay finite until they are weighted out:
    eye = torch.eye(num_clusters, dtype=torch.bool, device=logits.device)
    pairs = (present.unsqueeze(-1) & present.unsqueeze(-2)) | eye
    logits = logits.masked_fill(~pairs, float("-inf"))
    positives = logits.diagonal(dim1=-2, dim2=-1)
    per_cluster = 0.5 * (
        (torch.logsumexp(logits, dim=-1) - positives) + (torch.logsumexp(logits, dim=-2) - positives)
    )
    weights = present.to(per_cluster.dtype)
    return (per_cluster * weights).sum(dim=-1) / weights.sum(dim=-1).clamp_min(1.0)


def _check_assignment(assignment: Tensor, x: Tensor) -> None:
    """Raises ``ValueError`` unless ``assignment`` holds one integer id per row of ``x``."""
    if assignment.shape != x.shape[:-1]:
        raise ValueError(
            f"`assignment` must have shape {tuple(x.shape[:-1])}, one cluster id per row, "
            f"got {tuple(assignment.shape)}"
        )
    if assignment.dtype.is_floating_point or assignment.dtype.is_complex or assignment.dtype == torch.bool:
        raise ValueError(f"`assignment` must hold integer cluster ids, got dtype {assignment.dtype}")
