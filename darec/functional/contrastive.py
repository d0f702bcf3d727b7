"""In-batch contrastive objectives, and the RLMRec alignment terms built on them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from darec.functional._checks import check_matrix, check_nonempty, check_positive, check_same_shape

__all__ = ["contrastive_alignment", "generative_alignment", "info_nce"]


def info_nce(a: Tensor, b: Tensor, temperature: float = 0.2, symmetric: bool = False) -> Tensor:
    r"""InfoNCE with in-batch negatives: row :math:`i` of ``a`` should pick row :math:`i` of ``b``.

    Rows are L2-normalised to :math:`\hat a_i`, :math:`\hat b_i`; every other row of ``b``
    serves as a negative for :math:`\hat a_i`:

    .. math::
        \mathcal{L}_{a \to b} = -\frac{1}{N} \sum_{i=1}^{N}
            \log \frac{\exp(\langle \hat a_i, \hat b_i \rangle / \tau)}
                      {\sum_{j=1}^{N} \exp(\langle \hat a_i, \hat b_j \rangle / \tau)}

    With ``symmetric=True`` the result is
    :math:`\tfrac{1}{2} (\mathcal{L}_{a \to b} + \mathcal{L}_{b \to a})`.

    - [0] Representation Learning with Contrastive Predictive Coding, van den Oord et al., 2018,
      arXiv:1807.03748

    Args:
        a (Tensor): ``(N, d)`` anchors.
        b (Tensor): ``(N, d)`` their positives, row for row.
        temperature (float, optional): the temperature :math:`\tau > 0`. (default: ``0.2``)
        symmetric (bool, optional): average the :math:`a \to b` and :math:`b \to a` directions.
            (default: ``False``)

    Returns:
        Tensor: the scalar mean loss.

    Raises:
        ValueError: if ``a`` or ``b`` is not 2-D or has no rows, their shapes differ, or
            ``temperature`` is not positive.

    Example:
        >>> import torch
        >>> from darec.functional import info_nce
        >>> _ = torch.manual_seed(0)
        >>> a = torch.randn(8, 16)
        >>> info_nce(a, a) < info_nce(a, torch.randn(8, 16))
        tensor(True)
        >>> round(info_nce(torch.eye(4), torch.eye(4), temperature=1.0).item(), 4)
        0.7437
    """
    check_positive(temperature, "temperature")
    check_matrix(a, "a")
    check_matrix(b, "b")
    check_same_shape(a, b, "a", "b")
    check_nonempty(a, "a")
    logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / temperature
    targets = torch.arange(a.shape[0], device=a.device)
    loss = F.cross_entropy(logits, targets)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.T, targets))
    return loss


def contrastive_alignment(cf_emb: Tensor, projected_llm_emb: Tensor, temperature: float = 0.2) -> Tensor:
    r"""RLMRec-Con: each CF embedding should pick out its own entity's projected LLM embedding.

    The LLM embeddings :math:`s_i` are first mapped into the CF space by an MLP :math:`\sigma`
    (done by the caller, e.g. :class:`~darec.losses.ContrastiveAlignmentLoss`); the loss is
    :func:`info_nce` from the CF side, with the other entities of the batch as negatives:

    .. math::
        \mathcal{L}_{\mathrm{con}} = \mathrm{InfoNCE}_{\tau}\big(e_i, \sigma(s_i)\big)

    - [0] RLMRec, Ren et al., WWW 2024, arXiv:2310.15950

    Args:
        cf_emb (Tensor): ``(N, d)`` CF embeddings.
        projected_llm_emb (Tensor): ``(N, d)`` LLM embeddings of the same entities, already
            projected to the CF width.
        temperature (float, optional): the temperature :math:`\tau > 0`. (default: ``0.2``)

    Returns:
        Tensor: the scalar loss.

    Raises:
        ValueError: as :func:`info_nce`.

    Example:
        >>> import torch
        >>> from darec.functional import contrastive_alignment
        >>> _ = torch.manual_seed(0)
        >>> contrastive_alignment(torch.randn(8, 4), torch.randn(8, 4)).shape
        torch.Size([])
    """
    return info_nce(cf_emb, projected_llm_emb, temperature=temperature)


def generative_alignment(reconstructed: Tensor, llm_emb: Tensor, temperature: float = 0.2) -> Tensor:
    r"""RLMRec-Gen: the reconstructions of masked nodes should pick out their own LLM embeddings.

    The caller replaces the CF input embeddings of a random fraction of the nodes with a
    learnable mask token before propagation, then maps the propagated embeddings of those
    masked nodes to the LLM width with an MLP :math:`\sigma` (see
    :class:`~darec.losses.GenerativeAlignmentLoss`). The loss is :func:`info_nce` from the
    reconstructions, with the other masked nodes as negatives:

    .. math::
        \mathcal{L}_{\mathrm{gen}} = \mathrm{InfoNCE}_{\tau}\big(\sigma(e_i), s_i\big),
        \qquad i \in \mathcal{M}

    - [0] RLMRec, Ren et al., WWW 2024, arXiv:2310.15950

    Args:
        reconstructed (Tensor): ``(M, d)`` reconstructions of the masked nodes' LLM embeddings.
        llm_emb (Tensor): ``(M, d)`` LLM embeddings of the masked nodes.
        temperature (float, optional): the temperature :math:`\tau > 0`. (default: ``0.2``)

    Returns:
        Tensor: the scalar loss.

    Raises:
        ValueError: as :func:`info_nce`.

    Example:
        >>> import torch
        >>> from darec.functional import generative_alignment
        >>> _ = torch.manual_seed(0)
        >>> generative_alignment(torch.randn(5, 32), torch.randn(5, 32)).shape
        torch.Size([])
    """
    return info_nce(reconstructed, llm_emb, temperature=temperature)
