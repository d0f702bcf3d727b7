"""Graph preparation shared by graph backbones."""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any

import torch
from torch import Tensor

__all__ = ["graph_embedding", "normalized_adjacency", "renormalizing_convs", "symmetric_spmm", "use_symmetric_spmm"]


def normalized_adjacency(edge_index: Tensor, num_nodes: int) -> Tensor:
    r"""Symmetrically normalised adjacency of the undirected user-item graph, as sparse CSR.

    .. math::
        \tilde A = D^{-1/2} A D^{-1/2}, \qquad A = \begin{pmatrix} 0 & R \\ R^\top & 0 \end{pmatrix}

    where :math:`R` is the binary user x item training matrix. No self-loops are added (LightGCN's
    propagation). Computed once per fit: graph backbones then receive it in place of a raw
    ``edge_index`` and skip their own per-step normalisation.

    Args:
        edge_index (torch.Tensor): ``(2, E)`` user -> item edges in node ids (items offset by the
            number of users), each pair once.
        num_nodes (int): number of users plus items.

    Returns:
        torch.Tensor: sparse CSR ``(num_nodes, num_nodes)`` float tensor with ``2 E`` entries; its
        indices are int32 when they fit (the index type of the CPU's sparse kernel, which would
        otherwise convert them on every product), else int64.

    Example:
        >>> adj = normalized_adjacency(torch.tensor([[0, 1], [2, 2]]), num_nodes=3)
        >>> adj.to_dense()
        tensor([[0.0000, 0.0000, 0.7071],
                [0.0000, 0.0000, 0.7071],
                [0.7071, 0.7071, 0.0000]])
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"`edge_index` must have shape (2, E), got {tuple(edge_index.shape)}")
    if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
        raise ValueError(f"`edge_index` has node ids outside [0, {num_nodes})")
    row = torch.cat([edge_index[0], edge_index[1]])
    col = torch.cat([edge_index[1], edge_index[0]])
    deg = torch.bincount(row, minlength=num_nodes).to(torch.float32)
    inv_sqrt = deg.pow(-0.5)
    inv_sqrt[deg == 0] = 0.0
    value = inv_sqrt[row] * inv_sqrt[col]
    order = torch.argsort(row * num_nodes + col)
    row, col, value = row[order], col[order], value[order]
    crow = torch.zeros(num_nodes + 1, dtype=torch.long, device=row.device)  # with col and value: one device
    crow[1:] = torch.cumsum(torch.bincount(row, minlength=num_nodes), 0)
    if max(num_nodes, col.numel()) < 2**31:  # int32 indices: what MKL's product takes (int64 ones are converted on every call)
        crow, col = crow.to(torch.int32), col.to(torch.int32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        return torch.sparse_csr_tensor(
            crow, col, value, size=(num_nodes, num_nodes), check_invariants=False
        )


def _product(adj: Tensor, x: Tensor) -> Tensor:
    """``torch.sparse.mm(adj, x)``, bit for bit, without its zero-filled ``(N, d)`` start on the CPU.

    For a sparse ``adj``, ``torch.sparse.mm`` fills a new ``(N, d)`` tensor with zeros and calls
    ``addmm(zeros, adj, x, beta=0, alpha=1)``, which copies it into the result before the kernel
    overwrites it; a broadcast zero scalar in its place is the same call without the first pass.
    """
    if adj.layout == torch.sparse_csr and adj.device.type == "cpu" and x.dim() == 2:
        return torch.addmm(x.new_zeros(()).expand(adj.size(0), x.size(1)), adj, x, beta=0, alpha=1)
    return torch.sparse.mm(adj, x)


class _SymmetricSpMM(torch.autograd.Function):
    """``adj @ x`` for a symmetric sparse ``adj``; the backward reuses ``adj`` as its own transpose."""

    @staticmethod
    def forward(ctx, adj: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj = adj
        return _product(adj, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor]:  # type: ignore[override]
        return None, _product(ctx.adj, grad)


def symmetric_spmm(adj: Tensor, x: Tensor) -> Tensor:
    r"""Sparse-dense product :math:`\tilde A x` for a **symmetric** sparse :math:`\tilde A`.

    The gradient with respect to ``x`` is :math:`\tilde A^\top g = \tilde A g`, so the backward pass
    multiplies by ``adj`` itself instead of transposing it. For a CSR matrix, PyTorch's generic
    backward converts the transpose back to CSR (a sort of all non-zeros) on every call, which
    took about half of a LightGCN training step on MovieLens-100K.

    Example:
        >>> adj = normalized_adjacency(torch.tensor([[0, 1], [2, 2]]), num_nodes=3)
        >>> x = torch.randn(3, 2, requires_grad=True)
        >>> torch.allclose(symmetric_spmm(adj, x), adj.to_dense() @ x)
        True

    Under autocast (``precision="bf16-mixed"`` or ``"16-mixed"``) the product is taken in the
    graph's own precision (float32), with ``x`` cast up: autocast would otherwise hand the sparse
    kernel reduced-precision operands, which the CPU (MKL) kernel does not implement for bfloat16,
    and a sum over a node's neighbours loses the most from rounding. The result is float32.
    """
    device = x.device.type
    if torch.is_autocast_enabled(device):
        with torch.autocast(device, enabled=False):
            return _SymmetricSpMM.apply(adj, x.to(adj.dtype))
    return _SymmetricSpMM.apply(adj, x)


def graph_embedding(backbone: torch.nn.Module, adj: Tensor) -> Tensor:
    """``backbone.get_embedding(adj)`` on darec's normalised adjacency, without changing ``backbone``.

    ``adj`` is the symmetric normalised adjacency of :func:`normalized_adjacency`. A plain PyG
    :class:`~torch_geometric.nn.models.LightGCN` (its own class, sum-aggregating ``LGConv`` layers,
    no hooks) is propagated here with :func:`symmetric_spmm`, which is what its layers compute on
    an adjacency that is already normalised, with the fast backward; the model itself is only
    read. Any other backbone gets ``backbone.get_embedding(adj)``.

    Example:
        >>> from torch_geometric.nn.models import LightGCN
        >>> _ = torch.manual_seed(0)
        >>> model = LightGCN(3, 2, num_layers=2)
        >>> adj = normalized_adjacency(torch.tensor([[0, 1], [2, 2]]), num_nodes=3)
        >>> for conv in model.convs:
        ...     conv.normalize = False  # what PyG's own layers need for a normalised adjacency
        >>> torch.equal(graph_embedding(model, adj), model.get_embedding(adj))
        True
    """
    if _is_plain_lightgcn(backbone) and _is_sparse_matrix(adj):
        return _lightgcn_embedding(backbone, adj)
    return backbone.get_embedding(adj)


def _is_sparse_matrix(adj: Any) -> bool:
    return isinstance(adj, Tensor) and adj.layout in (torch.sparse_csr, torch.sparse_coo)


_CALL_HOOKS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_propagate_forward_pre_hooks",
    "_propagate_forward_hooks",
    "_message_and_aggregate_forward_pre_hooks",
    "_message_and_aggregate_forward_hooks",
)


def _has_call_hooks(module: torch.nn.Module) -> bool:
    """Whether calling ``module`` (an ``LGConv``) would run hooks that propagating it here would skip."""
    return any(getattr(module, name, None) for name in _CALL_HOOKS)


def _is_plain_lightgcn(backbone: torch.nn.Module) -> bool:
    """Whether ``backbone`` is exactly PyG's LightGCN with stock sum-aggregating LGConv layers."""
    from torch_geometric.nn.conv import LGConv
    from torch_geometric.nn.models import LightGCN

    if type(backbone) is not LightGCN or "get_embedding" in vars(backbone):
        return False
    hooks = torch.nn.modules.module
    if hooks._global_forward_hooks or hooks._global_forward_pre_hooks or hooks._global_backward_hooks:
        return False
    for conv in backbone.convs:
        override = vars(conv).get("message_and_aggregate")
        if type(conv) is not LGConv or conv.aggr not in ("add", "sum") or not conv.fuse or conv.explain:
            return False
        if (override is not None and not isinstance(override, _SymmetricAggregation)) or _has_call_hooks(conv):
            return False
    return len(backbone.convs) == backbone.num_layers


def _lightgcn_embedding(model: torch.nn.Module, adj: Tensor) -> Tensor:
    """``LightGCN.get_embedding`` on the symmetric ``adj``: :class:`_LayerSum` where it applies, else layer by layer."""
    x, alpha = model.embedding.weight, model.alpha
    if (
        model.num_layers > 0
        and x.dtype == adj.dtype == alpha.dtype
        and x.device == adj.device == alpha.device
        and alpha.dim() == 1
        and not x.is_sparse
    ):
        # x * alpha[0] stays an operation of its own in the autograd graph, as in PyG's get_embedding: the
        # table's gradient then arrives in the same two parts, in the same order, as there (see _LayerSum)
        return _LayerSum.apply(adj, x, x * alpha[0], alpha.detach())
    return _layerwise_lightgcn_embedding(model, adj)


def _layerwise_lightgcn_embedding(model: torch.nn.Module, adj: Tensor) -> Tensor:
    """``LightGCN.get_embedding`` with each layer's product taken by :func:`symmetric_spmm` (one autograd node per operation)."""
    x = model.embedding.weight
    out = x * model.alpha[0]
    for i in range(model.num_layers):
        x = symmetric_spmm(adj, x)
        out = out + x * model.alpha[i + 1]
    return out


class _LayerSum(torch.autograd.Function):
    r"""LightGCN's layers and layer mean after the first term: ``base + x_1 a_1 + ... + x_L a_L`` with
    ``x_{k+1} = adj @ x_k``, ``x_0 = x``, for a symmetric ``adj``; ``base`` is ``x * a_0``.

    The same floating-point operations as :func:`_layerwise_lightgcn_embedding`, in the same order,
    so the output and the gradients are bit for bit those of PyG's ``get_embedding`` with
    :func:`symmetric_spmm`; what it saves is memory traffic. Forward: each ``x_k`` is scaled in place
    once the next product has read it and added in place into the sum (the autograd version allocates
    two new ``(N, d)`` tensors per layer). Backward: the gradient of ``x_k`` is ``g a_k + adj @ grad(x_{k+1})``
    (a sum of two terms, which is exact in either order), accumulated in place into the product; ``g a_k``
    is computed once for equal weights (PyG's default, ``1 / (L + 1)`` for every layer) instead of once
    per layer. The gradient returned for ``x`` is only the product's part, and ``base``'s gradient is
    ``g`` itself: autograd adds ``g a_0`` (from ``x * a_0``) to it as it does for PyG's graph.
    """

    @staticmethod
    def forward(ctx, adj: Tensor, x: Tensor, base: Tensor, alpha: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj, ctx.alpha = adj, alpha
        device = x.device.type
        with torch.autocast(device, enabled=False) if torch.is_autocast_enabled(device) else _no_context():
            layers = [x]  # x_k, until the next product has read it
            out = None
            for k in range(1, len(alpha)):
                layers.append(_product(adj, layers[-1]))
                if k >= 2:
                    term = layers.pop(-2).mul_(alpha[k - 1])  # x_{k-1}, a product of ours: scaled in place
                    out = base + term if out is None else out.add_(term)
            last = layers.pop().mul_(alpha[-1]) if len(layers) > 1 else None
            if last is not None:
                out = base + last if out is None else out.add_(last)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor, Tensor, None]:  # type: ignore[override]
        adj, alpha = ctx.adj, ctx.alpha
        device = grad.device.type
        weights = alpha.tolist() if alpha.device.type == "cpu" else None  # no device sync for the reuse check
        with torch.autocast(device, enabled=False) if torch.is_autocast_enabled(device) else _no_context():
            scaled, scaled_by = None, None
            num_layers = len(alpha) - 1
            g = None  # the gradient of x_k
            for k in range(num_layers, 0, -1):
                if weights is None or scaled_by is None or not _same_float(weights[k], scaled_by):
                    scaled, scaled_by = grad * alpha[k], (None if weights is None else weights[k])
                g = scaled if g is None else _product(adj, g).add_(scaled)
            # the gradient of x_0 from the products; autograd adds g a_0 through base = x * a_0
            grad_x = _product(adj, g)
        return None, grad_x, grad, None


def _same_float(a: float, b: float) -> bool:
    """Equal bit for bit as far as a product with them goes (``0.0`` and ``-0.0`` differ)."""
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _no_context():
    return contextlib.nullcontext()


def renormalizing_convs(backbone: torch.nn.Module) -> list[str]:
    """Names of the ``LGConv`` layers that would normalise darec's adjacency a second time.

    Empty for a plain PyG LightGCN (:func:`graph_embedding` propagates it itself) and for models
    without such layers. Any other model whose ``LGConv`` layers keep ``normalize=True`` would
    normalise the already normalised adjacency again: build those layers with
    ``normalize=False``, or opt in with :func:`use_symmetric_spmm`.
    """
    from torch_geometric.nn.conv import LGConv

    if _is_plain_lightgcn(backbone):
        return []
    return [name for name, module in backbone.named_modules() if isinstance(module, LGConv) and module.normalize]


class _SymmetricAggregation:
    """Replacement of ``LGConv.message_and_aggregate`` for a symmetric sparse adjacency (picklable)."""

    def __init__(self, aggr: str) -> None:
        self.aggr = aggr

    def __call__(self, adj_t, x: Tensor) -> Tensor:
        if isinstance(adj_t, Tensor) and adj_t.layout in (torch.sparse_csr, torch.sparse_coo):
            return symmetric_spmm(adj_t, x)
        from torch_geometric.utils import spmm

        return spmm(adj_t, x, reduce=self.aggr)


def use_symmetric_spmm(backbone: torch.nn.Module) -> int:
    """Opt-in: makes every sum-aggregating ``LGConv`` in ``backbone`` take a pre-normalised symmetric adjacency.

    darec never calls this itself: a plain PyG LightGCN needs nothing (see
    :func:`graph_embedding`). Call it on a model of your own whose ``LGConv`` layers receive
    darec's adjacency (:func:`renormalizing_convs` lists them). It sets ``normalize=False`` (darec
    normalises the graph once) and routes the layer's sparse aggregation through
    :func:`symmetric_spmm`. Returns the number of layers changed. Only the instances are changed,
    never the class.
    """
    from torch_geometric.nn.conv import LGConv

    changed = 0
    for module in backbone.modules():
        if isinstance(module, LGConv):
            module.normalize = False
            if getattr(module, "aggr", None) in ("add", "sum"):
                module.message_and_aggregate = _SymmetricAggregation(module.aggr)
            changed += 1
    return changed
