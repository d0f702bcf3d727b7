"""The Lightning module: any CF backbone, BPR, optional disentangled alignment, full-ranking evaluation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from darec.backbones.graph import normalized_adjacency, use_symmetric_spmm
from darec.backbones.protocol import check_backbone
from darec.functional import bpr_loss, orthogonality, uniformity
from darec.losses import StackedProjectionHead
from darec.metrics import rank_items, ranking_metrics
from darec.module.objective import AlignmentObjective
from darec.module.views import SideViews, sum_over_sides
from darec.utils.spec import build_from_spec, init_spec

__all__ = ["DaRecModule"]

log = logging.getLogger(__name__)

_SCORE_WITH = ("backbone", "disentangled")


def _dense(pairs: Tensor, rows: int, cols: int) -> Tensor:
    """A ``(rows, cols)`` bool matrix that is True at the ``(2, nnz)`` (row, col) ``pairs``."""
    out = torch.zeros(rows, cols, dtype=torch.bool, device=pairs.device)
    out[pairs[0], pairs[1]] = True
    return out


def _drop_excluded(items: Tensor, scores: Tensor, exclude: Tensor | None) -> tuple[Tensor, Tensor]:
    """Marks the positions that :func:`rank_items` filled with excluded items (a user with fewer than
    ``k`` allowed items) as item ``-1`` with score ``-inf``, so that they are never recommended."""
    if exclude is None:
        return items, scores
    filler = exclude.gather(1, items)
    return items.masked_fill(filler, -1), scores.masked_fill(filler, float("-inf"))


def _sum_over_row_blocks(loss: Any, sizes: list[int], *tensors: Tensor) -> Tensor:
    """Sums a batched ``loss`` over consecutive row blocks of ``sizes`` rows (the sides of a step).

    The rows of ``(*, sum(sizes), d)`` tensors are one block per side; with blocks of equal size
    they are a free ``(*, sides, N, d)`` view and ``loss`` runs once."""
    if len(set(sizes)) == 1:
        return loss(*(t.unflatten(-2, (len(sizes), sizes[0])) for t in tensors)).sum()
    return sum_over_sides(loss, *(t.split(sizes, dim=-2) for t in tensors))


_LEGACY_HEADS = {"cf": ("cf_shared", "cf_specific"), "llm": ("llm_shared", "llm_specific")}


def _stack_legacy_heads(state_dict: dict[str, Tensor]) -> None:
    """Converts, in place, the heads of checkpoints written before the heads were stacked (one
    ``ProjectionHead`` per head, ``heads.cf_shared.layers.0.weight`` ...) to the stacked layout
    (``heads.cf.weight1`` ...), so that those checkpoints still load."""
    for side, names in _LEGACY_HEADS.items():
        present = [name for name in names if f"heads.{name}.layers.0.weight" in state_dict]
        if not present:
            continue
        layers = [
            [state_dict.pop(f"heads.{name}.layers.{i}.{key}") for i in (0, 2) for key in ("weight", "bias")]
            for name in present
        ]
        # nn.Linear keeps (out, in) weights and (out,) biases; the stacked head (heads, in, out) and (heads, 1, out).
        state_dict[f"heads.{side}.weight1"] = torch.stack([w1.T for w1, _, _, _ in layers])
        state_dict[f"heads.{side}.bias1"] = torch.stack([b1 for _, b1, _, _ in layers]).unsqueeze(1)
        state_dict[f"heads.{side}.weight2"] = torch.stack([w2.T for _, _, w2, _ in layers])
        state_dict[f"heads.{side}.bias2"] = torch.stack([b2 for _, _, _, b2 in layers]).unsqueeze(1)


class _EmbeddingCall(nn.Module):
    """Lets :func:`torch.func.functional_call` run ``backbone.get_embedding`` with swapped parameters."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, graph: Any) -> Tensor:
        return self.backbone.get_embedding(graph)


class DaRecModule(L.LightningModule):
    r"""Trains a collaborative-filtering backbone with BPR and, optionally, DaRec's disentangled alignment.

    The backbone is any :class:`~torch.nn.Module` with ``get_embedding(edge_index, edge_weight=None)``
    returning the stacked ``(num_users + num_items, d)`` embeddings (PyG's
    :class:`~torch_geometric.nn.models.LightGCN` works unchanged; see
    :class:`~darec.backbones.CFBackbone`). The training graph, the sizes and the frozen text
    embeddings come from the data module in :meth:`setup`; the symmetric normalisation of the graph
    is computed there once (graph convolutions of type ``LGConv`` then skip their per-step
    normalisation).

    The objective of one step is

    .. math::
        \mathcal{L} = \mathcal{L}_{BPR} + \lambda \lVert\Theta\rVert^2
        + \alpha\,(\mathcal{L}_{orth} + \mathcal{L}_{unif})
        + \sum_t w_t \mathcal{L}_t

    where the disentangling regularisers (weight :math:`\alpha`, orthogonality between shared and
    specific parts and uniformity of the specific parts, on both sides) are active when ``alpha > 0``
    and the alignment terms :math:`\mathcal{L}_t` are registered by callbacks
    (:class:`~darec.callbacks.GlobalStructureAlignment`,
    :class:`~darec.callbacks.LocalStructureAlignment`, ...). With neither, this is the plain backbone.

    Validation and test rank all items for every user with held-out items, masking the training
    items (and at test also the validation items), and log ``val/recall@20`` and friends for every
    ``k`` in ``ks``.

    - [0] Yang et al., "DaRec: A Disentangled Alignment Framework for Large Language Model and
      Recommender System", ICDE 2025, arXiv:2408.08231.

    Args:
        backbone (torch.nn.Module): the collaborative-filtering model (or its ``class_path`` spec).
        num_users (int, optional): number of users; taken from the data module when omitted.
        num_items (int, optional): number of items; taken from the data module when omitted.
        lr (float): Adam learning rate. (default: :obj:`1e-3`)
        weight_decay (float): :math:`\lambda`, the L2 penalty. (default: :obj:`1e-7`)
        l2_on (str): what the L2 penalty covers: ``"params"``, every trainable parameter
            (:math:`\lVert\Theta\rVert^2`, applied by Adam as ``weight_decay=2 * lambda``, the same
            gradient; see :meth:`configure_optimizers`); ``"batch"``, the batch's rows of the
            backbone's input embedding table, halved and divided by the batch size (the LightGCN
            authors' choice; added to the loss). (default: :obj:`"params"`)
        init_std (float, optional): re-initialise every :class:`~torch.nn.Embedding` of the backbone
            with :math:`\mathcal{N}(0, \sigma^2)` (the LightGCN authors use 0.1); by default the
            backbone keeps its own initialisation. (default: :obj:`None`)
        align_batch_size (int, optional): at most this many of a step's distinct users (and, separately,
            items), drawn at random, enter the regularisers and alignment terms; :obj:`None` uses
            them all. The pairwise terms cost :math:`O(N^2)`, so this bounds their cost.
            (default: :obj:`256`)
        head_hidden_dim (int, optional): hidden width of the four projection heads (Linear ->
            LeakyReLU -> Linear); by default ``(d_in + d_a) // 2`` of each head (OPEN point of the
            method). (default: :obj:`None`)
        ks (Sequence[int]): cut-offs of the ranking metrics. (default: :obj:`(5, 10, 20)`)
        predict_k (int): items recommended per user by ``predict``. (default: :obj:`20`)
        alpha (float): :math:`\alpha`, weight of the orthogonality and uniformity regularisers.
            (default: :obj:`0.0`)
        orthogonality_weight (float, optional): a separate weight for orthogonality, replacing
            ``alpha`` for that term (OPEN point of the method; 0 switches it off). (default: :obj:`None`)
        uniformity_weight (float, optional): a separate weight for uniformity, replacing ``alpha`` for
            that term. (default: :obj:`None`)
        disentangle (bool, optional): build the four projection heads (CF/LLM x shared/specific).
            By default they are built when ``alpha > 0`` or an alignment term needs shared parts.
        align_dim (int, optional): width :math:`d_a` of the shared and specific parts; the
            backbone's width by default.
        text_dim (int, optional): width of the text embeddings; taken from the data when omitted.
        uniformity_on_shared (bool): also apply uniformity to the shared parts (OPEN point of the
            method). (default: :obj:`False`)
        score_with (str): ``"backbone"`` scores with :math:`\langle e^C_u, e^C_i\rangle`;
            ``"disentangled"`` with the concatenation of the CF shared and specific parts (OPEN
            point of the method). (default: :obj:`"backbone"`)

    Example:
        >>> from darec.backbones import MatrixFactorization
        >>> model = DaRecModule(MatrixFactorization(num_nodes=7, embedding_dim=8), num_users=3, num_items=4)
        >>> model.set_graph(torch.tensor([[0, 0], [1, 1], [2, 3]]))
        >>> items, scores = model.recommend(torch.tensor([0, 2]), k=2)
        >>> items.shape, bool((items[0] != 0).all())   # user 0's training item is never recommended
        (torch.Size([2, 2]), True)
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_users: int | None = None,
        num_items: int | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-7,
        ks: Sequence[int] = (5, 10, 20),
        predict_k: int = 20,
        alpha: float = 0.0,
        orthogonality_weight: float | None = None,
        uniformity_weight: float | None = None,
        disentangle: bool | None = None,
        align_dim: int | None = None,
        text_dim: int | None = None,
        uniformity_on_shared: bool = False,
        score_with: str = "backbone",
        l2_on: str = "params",
        init_std: float | None = None,
        align_batch_size: int | None = 256,
        head_hidden_dim: int | None = None,
    ) -> None:
        super().__init__()
        if isinstance(backbone, dict):
            backbone = build_from_spec(backbone)
        self.backbone = check_backbone(backbone)
        if lr <= 0:
            raise ValueError(f"`lr` must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"`weight_decay` must be non-negative, got {weight_decay}")
        for name, value in (("alpha", alpha), ("orthogonality_weight", orthogonality_weight), ("uniformity_weight", uniformity_weight)):
            if value is not None and value < 0:
                raise ValueError(f"`{name}` must be non-negative, got {value}")
        if predict_k <= 0:
            raise ValueError(f"`predict_k` must be positive, got {predict_k}")
        if score_with not in _SCORE_WITH:
            raise ValueError(f"`score_with` must be one of {_SCORE_WITH}, got {score_with!r}")
        if align_batch_size is not None and align_batch_size < 2:
            raise ValueError(f"`align_batch_size` must be at least 2 (or None), got {align_batch_size}")
        if l2_on not in ("params", "batch"):
            raise ValueError(f"`l2_on` must be 'params' or 'batch', got {l2_on!r}")
        if init_std is not None:
            if init_std <= 0:
                raise ValueError(f"`init_std` must be positive, got {init_std}")
            # The LightGCN authors' initialisation, N(0, init_std^2), for every embedding table:
            for module in backbone.modules():
                if isinstance(module, nn.Embedding):
                    nn.init.normal_(module.weight, std=init_std)
        self.save_hyperparameters(ignore=["backbone"])
        spec = init_spec(self.backbone)
        if spec is not None:
            self.hparams["backbone"] = spec
        self.num_users = num_users
        self.num_items = num_items
        self.val_metrics = ranking_metrics(ks, prefix="val/")
        self.test_metrics = ranking_metrics(ks, prefix="test/")
        self.objective = AlignmentObjective()
        self.heads: nn.ModuleDict | None = None  # built in setup (or from a checkpoint), once sizes are known
        self._train_pairs: Tensor | None = None
        self._graph: Tensor | None = None
        self._eval_embedding: Tensor | None = None
        self._term_specs: dict[str, dict[str, Any]] = {}
        self._bound_to: Any = None
        self._cf_dim: int | None = None
        self._epoch_sums: dict[str, Tensor] = {}
        self._epoch_count = 0
        self.register_buffer("text_user", torch.empty(0), persistent=False)
        self.register_buffer("text_item", torch.empty(0), persistent=False)

    # -- data --------------------------------------------------------------------------------
    def set_graph(self, train_pairs: Tensor, num_users: int | None = None, num_items: int | None = None) -> None:
        """Gives the module its training interactions, without a data module.

        Args:
            train_pairs (Tensor): ``(E, 2)`` (user, item) training pairs.
            num_users (int, optional): defaults to the constructor's value.
            num_items (int, optional): defaults to the constructor's value.
        """
        self.num_users = int(num_users if num_users is not None else self.num_users or 0)
        self.num_items = int(num_items if num_items is not None else self.num_items or 0)
        if self.num_users <= 0 or self.num_items <= 0:
            raise ValueError("set_graph needs num_users and num_items (here or in the constructor)")
        pairs = torch.as_tensor(train_pairs, dtype=torch.long).cpu()
        if pairs.dim() != 2 or pairs.size(1) != 2:
            raise ValueError(f"`train_pairs` must have shape (E, 2), got {tuple(pairs.shape)}")
        if pairs.numel() == 0:
            raise ValueError("`train_pairs` is empty: there is no training graph")
        if pairs[:, 0].max() >= self.num_users or pairs[:, 1].max() >= self.num_items or pairs.min() < 0:
            raise ValueError(f"`train_pairs` has ids outside {self.num_users} users x {self.num_items} items")
        self.hparams["num_users"], self.hparams["num_items"] = self.num_users, self.num_items
        self._train_pairs = torch.unique(pairs, dim=0)
        self._graph = self._normalized_graph()
        # The adjacency passed to the backbone is already normalised (and symmetric): LGConv layers
        # skip their per-step normalisation and multiply without transposing in the backward.
        use_symmetric_spmm(self.backbone)

    def set_text_embeddings(self, user: Tensor | None = None, item: Tensor | None = None) -> None:
        """Stores frozen text embeddings as non-trainable buffers (not saved in checkpoints)."""
        from darec.text.cache import check_embeddings

        if user is not None:
            self.text_user = check_embeddings(user, self.num_users, "user text embeddings").to(self.device)
        if item is not None:
            self.text_item = check_embeddings(item, self.num_items, "item text embeddings").to(self.device)
        dims = {t.size(1) for t in (self.text_user, self.text_item) if t.numel()}
        if len(dims) > 1:
            raise ValueError(f"user and item text embeddings must have the same width, got {sorted(dims)}")

    @property
    def text_sides(self) -> list[str]:
        return [side for side in ("user", "item") if getattr(self, f"text_{side}").numel()]

    def _bind_datamodule(self) -> None:
        """Takes graph, sizes and text from the trainer's data module (once per data module)."""
        trainer = self._trainer
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        if datamodule is None or self._bound_to is datamodule:
            return
        data = datamodule.interactions
        for name, value in (("num_users", data.num_users), ("num_items", data.num_items)):
            given = getattr(self, name)
            if given is not None and given != value:
                raise ValueError(f"the model was built for {name}={given} but the data have {value}")
        self.set_graph(torch.from_numpy(data.train), data.num_users, data.num_items)
        text = getattr(datamodule, "text_embeddings", None) or {}
        self.set_text_embeddings(text.get("user"), text.get("item"))
        self._bound_to = datamodule

    def setup(self, stage: str) -> None:
        self._bind_datamodule()
        if self._graph is None:
            raise RuntimeError(
                "DaRecModule has no training graph: fit with a darec data module "
                "(trainer.fit(model, datamodule=...)) or call model.set_graph(train_pairs) first"
            )
        if stage == "fit" and (len(self.objective) or self.needs_heads) and not self.text_sides:
            raise ValueError(
                "alignment needs text embeddings, but none were given: give the data module a text_encoder "
                "and user/item text, or precomputed user_embeddings/item_embeddings"
            )
        if stage == "fit" and self.needs_heads and self.heads is None:
            align_dim = self.hparams.align_dim or self.cf_dim
            self._build_heads(self.cf_dim, self.text_dim, align_dim, full=self.hparams.disentangle is not False)
            self.hparams.update(align_dim=align_dim, text_dim=self.text_dim)

    @property
    def cf_dim(self) -> int:
        """Width of the backbone's embeddings (found by one forward pass)."""
        if self._cf_dim is None:
            self._bind_datamodule()
            with torch.no_grad():
                self._cf_dim = int(self._propagate().size(1))
        return self._cf_dim

    @property
    def text_dim(self) -> int:
        """Width of the frozen text embeddings."""
        self._bind_datamodule()
        sides = self.text_sides
        if not sides:
            raise ValueError("no text embeddings are set")
        return int(getattr(self, f"text_{sides[0]}").size(1))

    @property
    def needs_heads(self) -> bool:
        """Whether the disentangling heads are needed by the settings or by a registered term."""
        needed_by = [name for name, t in self.objective.terms.items() if getattr(t, "needs_shared", False)]
        if self.hparams.disentangle is False:
            if self._regularizer_weights != (0.0, 0.0):
                raise ValueError("alpha > 0 regularises the shared/specific split, but disentangle=False")
            return bool(needed_by)  # the ablation: a single LLM projection, E^C itself as the shared part
        return bool(self.hparams.disentangle) or self._regularizer_weights != (0.0, 0.0) or bool(needed_by)

    @property
    def _regularizer_weights(self) -> tuple[float, float]:
        """Weights of orthogonality and uniformity: ``alpha`` unless set separately."""
        alpha = self.hparams.alpha
        orth = self.hparams.get("orthogonality_weight")
        unif = self.hparams.get("uniformity_weight")
        return (alpha if orth is None else orth), (alpha if unif is None else unif)

    def _build_heads(self, cf_dim: int, text_dim: int, align_dim: int, full: bool = True) -> None:
        """The four projection heads, as one :class:`~darec.losses.StackedProjectionHead` per side
        (head 0: shared, head 1: specific); with ``full=False`` (no disentangling) only the LLM -> CF-width head."""
        hidden = self.hparams.head_hidden_dim
        if not full:
            if align_dim != cf_dim:
                raise ValueError("without disentangling the shared space is the CF space: align_dim must equal cf_dim")
            self.heads = nn.ModuleDict({"llm": StackedProjectionHead(text_dim, cf_dim, hidden, num_heads=1)})
        else:
            self.heads = nn.ModuleDict(
                {
                    "cf": StackedProjectionHead(cf_dim, align_dim, hidden, num_heads=2),
                    "llm": StackedProjectionHead(text_dim, align_dim, hidden, num_heads=2),
                }
            )
        if self._trainer is not None:
            self.heads.to(self.device)

    # -- alignment terms ---------------------------------------------------------------------
    def add_term(self, name: str, term: nn.Module, weight: float) -> None:
        """Registers an alignment term (called by the alignment callbacks in their ``setup``).

        The term's class and constructor arguments are recorded so that a checkpoint can rebuild it.
        """
        spec = init_spec(term)
        if spec is None:
            raise ValueError(f"cannot record how to rebuild term {name!r}: keep its constructor arguments as attributes")
        self.objective.add(name, term.to(self.device), weight)
        self._term_specs[name] = spec

    # -- forward -----------------------------------------------------------------------------
    def _propagate(self, masked_nodes: Tensor | None = None, mask_token: Tensor | None = None) -> Tensor:
        graph = self._graph_on_device()
        if masked_nodes is None:
            return self.backbone.get_embedding(graph)
        name, table = self._input_table()
        masked = table.index_put((masked_nodes,), mask_token.expand(len(masked_nodes), -1))
        return torch.func.functional_call(_EmbeddingCall(self.backbone), {f"backbone.{name}": masked}, (graph,))

    def _normalized_graph(self) -> Tensor:
        """The normalised user-item adjacency of the training pairs (items offset by the user count)."""
        edge_index = torch.stack([self._train_pairs[:, 0], self._train_pairs[:, 1] + self.num_users])
        return normalized_adjacency(edge_index, self.num_users + self.num_items)

    def _graph_on_device(self) -> Tensor:
        if self._graph is None and self._train_pairs is not None:  # e.g. after a copy or unpickling
            self._graph = self._normalized_graph()
        if self._graph is None:
            raise RuntimeError("no training graph: call set_graph(...) or fit with a data module")
        if self._graph.device != self.device:
            self._graph = self._graph.to(self.device)
        return self._graph

    def _input_table(self) -> tuple[str, Tensor]:
        """The backbone's ``(num_nodes, d)`` input embedding table (masked by RLMRec-Gen)."""
        num_nodes = self.num_users + self.num_items
        for name, param in self.backbone.named_parameters():
            if param.dim() == 2 and param.size(0) == num_nodes:
                return name, param
        raise ValueError(
            "generative alignment masks the backbone's input embedding table, but the backbone has no "
            f"({num_nodes}, d) parameter"
        )

    def forward(self) -> Tensor:
        """The ``(num_users + num_items, d)`` embeddings used for scoring."""
        emb = self._propagate()
        if self.hparams.score_with == "disentangled":
            if self.heads is None:
                raise RuntimeError("score_with='disentangled' needs the disentangling heads")
            shared, specific = self.heads["cf"](emb)
            emb = torch.cat([shared, specific], dim=-1)
        return emb

    def _distinct(self, ids: Tensor, count: int) -> Tensor:
        """The distinct ids of a step (in increasing order), or ``align_batch_size`` of them drawn at random.

        A scatter into a ``(count,)`` mask and ``nonzero`` (linear time) instead of ``torch.unique``
        (a sort of the whole batch)."""
        seen = torch.zeros(count, dtype=torch.bool, device=ids.device).index_fill_(0, ids, True)
        distinct = seen.nonzero().squeeze(1)
        cap = self.hparams.align_batch_size
        if cap is not None and len(distinct) > cap:
            distinct = distinct[torch.randperm(len(distinct), device=distinct.device)[:cap]]
        return distinct

    def _side_views(
        self, emb: Tensor, batch: dict[str, Tensor], masked: Tensor | None
    ) -> tuple[dict[str, SideViews], Tensor | None, list[int]]:
        """The step's views per side, plus the stacked projections and the row count of each side.

        Both sides' rows go through one gather and one pass of each head; the views are slices of
        ``parts``, the ``(2, 2, N_user + N_item, d_a)`` projections ([CF, LLM] x [shared, specific]),
        which is ``None`` without the four heads."""
        sides = self.text_sides
        ids = {"user": batch["user"], "item": torch.cat([batch["pos"], batch["neg"]])}
        count = {"user": self.num_users, "item": self.num_items}
        offset = {"user": 0, "item": self.num_users}
        index = {side: self._distinct(ids[side], count[side]) for side in sides}
        nodes = torch.cat([index[side] + offset[side] for side in sides])
        cf = emb.index_select(0, nodes)
        llm = torch.cat([getattr(self, f"text_{side}").index_select(0, index[side]) for side in sides])
        columns = {"cf": cf, "llm": llm}
        parts = None
        if self.heads is not None:
            columns["cf_shared"], columns["llm_shared"], parts = self._project(cf, llm)
            if parts is not None:
                columns.update(cf_specific=parts[0, 1], llm_specific=parts[1, 1])
        if masked is not None:
            columns["masked"] = masked[nodes]
        sizes = [len(index[side]) for side in sides]
        pieces = {name: column.split(sizes) for name, column in columns.items()}
        views = {
            side: SideViews(index=index[side], **{name: piece[s] for name, piece in pieces.items()})
            for s, side in enumerate(sides)
        }
        return views, parts, sizes

    def _project(self, cf: Tensor, llm: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(cf_shared, llm_shared, parts)`` of ``(N, d)`` rows, where ``parts`` is the
        ``(2, 2, N, d_a)`` stack [CF, LLM] x [shared, specific] of the four heads; without
        disentangling ``parts`` is ``None`` and E^C itself is the shared CF part."""
        if "cf" not in self.heads:
            return cf, self.heads["llm"](llm)[0], None
        parts = torch.stack([self.heads["cf"](cf), self.heads["llm"](llm)])
        return parts[0, 0], parts[1, 0], parts

    @torch.no_grad()
    def shared_spaces(self) -> dict[str, tuple[Tensor, Tensor]]:
        """``{side: (cf_shared, llm_shared)}`` for every user and item (no gradients); used for clustering."""
        if self.heads is None:
            raise RuntimeError("the module has no disentangling heads")
        emb = self._propagate()
        spans = {"user": (0, self.num_users), "item": (self.num_users, self.num_users + self.num_items)}
        out = {}
        for side in self.text_sides:
            start, end = spans[side]
            cf_shared, llm_shared, _ = self._project(emb[start:end], getattr(self, f"text_{side}"))
            out[side] = (cf_shared, llm_shared)
        return out

    def _regularizers(self, parts: Tensor, sizes: list[int], weights: tuple[float, float]) -> dict[str, Tensor]:
        """Orthogonality and uniformity summed over sides and over the CF and LLM parts (skipped at weight 0).

        ``parts`` is the ``(2, 2, N, d_a)`` stack of :meth:`_side_views`; the CF and LLM parts (and
        both sides, when they have as many rows) go through one batched call."""
        out = {}
        if weights[0] > 0:
            out["orthogonality"] = _sum_over_row_blocks(orthogonality, sizes, parts[:, 0], parts[:, 1])
        if weights[1] > 0:
            spread = parts.flatten(0, 1) if self.hparams.uniformity_on_shared else parts[:, 1]
            out["uniformity"] = _sum_over_row_blocks(uniformity, sizes, spread)
        return out

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        users, pos, neg = batch["user"], batch["pos"], batch["neg"]
        masked = None
        generative = next((t for t in self.objective.terms.values() if hasattr(t, "mask_token")), None)
        if generative is not None:
            num_nodes = self.num_users + self.num_items
            masked_nodes = torch.randperm(num_nodes, device=self.device)[: max(2, int(generative.mask_ratio * num_nodes))]
            masked = torch.zeros(num_nodes, dtype=torch.bool, device=self.device)
            masked[masked_nodes] = True
            emb = self._propagate(masked_nodes, generative.mask_token)
        else:
            emb = self._propagate()
        rows = torch.cat([users, pos + self.num_users, neg + self.num_users])  # node ids of the batch
        # One index_select (its backward is a scatter-add; advanced indexing's sorts the indices):
        eu, ep, en = emb.index_select(0, rows).split(len(users))
        bpr = bpr_loss((eu * ep).sum(-1), (eu * en).sum(-1))
        loss = bpr
        logs = {"train/bpr": bpr}
        if self.hparams.weight_decay > 0 and self.hparams.l2_on == "batch":
            # LightGCN authors: the batch rows of the input table (l2_on="params" is Adam's weight decay)
            _, table = self._input_table()
            loss = loss + self.hparams.weight_decay * table[rows].pow(2).sum() / (2 * len(users))
        if self.heads is not None or len(self.objective):
            views, parts, sizes = self._side_views(emb, batch, masked)
            w_orth, w_unif = self._regularizer_weights
            if parts is not None and (w_orth > 0 or w_unif > 0):
                regs = self._regularizers(parts, sizes, (w_orth, w_unif))
                weight = {"orthogonality": w_orth, "uniformity": w_unif}
                loss = loss + sum(weight[name] * value for name, value in regs.items())
                logs.update({f"train/{k}": v for k, v in regs.items()})
            if len(self.objective):
                total, terms = self.objective(views)
                loss = loss + total
                logs.update({f"train/{k}": v for k, v in terms.items()})
        logs["train/loss"] = loss
        self._accumulate(logs, len(users))
        return loss

    def _accumulate(self, logs: dict[str, Tensor], batch_size: int) -> None:
        """Adds a step's losses to the epoch's running sums (one in-place add per key, no sync).

        Logged once per epoch by :meth:`on_train_epoch_end`, as Lightning's ``on_epoch=True`` would
        (the mean over steps weighted by batch size), without Lightning's per-step, per-key
        logging cost."""
        for key, value in logs.items():
            if key in self._epoch_sums:
                self._epoch_sums[key].add_(value.detach(), alpha=batch_size)
            else:
                self._epoch_sums[key] = value.detach() * batch_size
        self._epoch_count += batch_size

    def on_train_epoch_start(self) -> None:
        self._epoch_sums, self._epoch_count = {}, 0

    def on_train_epoch_end(self) -> None:
        if self._epoch_count:
            means = {key: total / self._epoch_count for key, total in self._epoch_sums.items()}
            means.update({f"train/weight_{k}": float(w) for k, w in self.objective.weights.items()})
            self.log_dict(means, on_step=False, on_epoch=True, batch_size=self._epoch_count)
        self._epoch_sums, self._epoch_count = {}, 0

    def _log_protocol(self) -> None:
        """Records how the data were built and evaluated next to the results (the logger's hparams)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        protocol = getattr(datamodule, "protocol", None)
        if self.logger is not None and protocol is not None:
            self.logger.log_hyperparams({"protocol": protocol, "ks": list(self.hparams.ks)})

    def on_fit_start(self) -> None:
        self._log_protocol()

    def on_test_start(self) -> None:
        self._log_protocol()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        r"""Adam over all trainable parameters.

        With ``l2_on="params"`` the penalty :math:`\lambda \lVert\Theta\rVert^2` is applied as
        Adam's ``weight_decay=2 * lambda``, which adds exactly its gradient :math:`2 \lambda \Theta`
        to every parameter's gradient (in the fused kernel, instead of two operations per
        parameter in every step); ``train/loss`` therefore does not include it. Adam runs fused
        (one kernel for all parameters) on CPU and CUDA.
        """
        decay = 2.0 * self.hparams.weight_decay if self.hparams.l2_on == "params" else 0.0
        params = [p for p in self.parameters() if p.requires_grad]
        fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
        return torch.optim.Adam(params, lr=self.hparams.lr, weight_decay=decay, fused=fused or None)

    # -- evaluation --------------------------------------------------------------------------
    def _scores(self, users: Tensor) -> Tensor:
        emb = self._eval_embedding if self._eval_embedding is not None else self()
        return emb[users] @ emb[self.num_users :].T

    def _rank_batch(self, batch: dict[str, Tensor], k: int) -> tuple[Tensor, Tensor, Tensor]:
        """Top-``k`` items, their scores and the ``(B, I)`` mask of excluded items of a ranking batch."""
        users = batch["user"]
        scores = self._scores(users)
        exclude = _dense(batch["exclude"], len(users), self.num_items)
        items = rank_items(scores, k, exclude=exclude)
        return items, scores.gather(1, items), exclude

    def _evaluation_start(self) -> None:
        self._graph_on_device()
        with torch.no_grad():
            self._eval_embedding = self()

    def _evaluation_step(self, batch: dict[str, Tensor], metrics: Any) -> None:
        items, _, _ = self._rank_batch(batch, metrics.max_k)
        target = _dense(batch["target"], len(batch["user"]), self.num_items)
        metrics.update(items, target)

    def _evaluation_end(self, metrics: Any) -> None:
        self.log_dict(metrics.compute())
        metrics.reset()
        self._eval_embedding = None

    def on_validation_epoch_start(self) -> None:
        self._evaluation_start()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        self._evaluation_end(self.val_metrics)

    def on_test_epoch_start(self) -> None:
        self._evaluation_start()

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, self.test_metrics)

    def on_test_epoch_end(self) -> None:
        self._evaluation_end(self.test_metrics)

    def on_predict_epoch_start(self) -> None:
        self._evaluation_start()

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """Top-``predict_k`` items per user, masking everything the data module knows the user has seen."""
        items, scores, exclude = self._rank_batch(batch, self.hparams.predict_k)
        items, scores = _drop_excluded(items, scores, exclude)  # item -1: the user has fewer unseen items
        return {"user": batch["user"].cpu(), "item": items.cpu(), "score": scores.cpu()}

    def on_predict_epoch_end(self) -> None:
        self._eval_embedding = None

    @torch.no_grad()
    def recommend(self, users: Tensor | Sequence[int], k: int = 10, exclude_seen: bool = True) -> tuple[Tensor, Tensor]:
        """Top-``k`` items for ``users``, best first.

        Args:
            users (Tensor or sequence of int): ``(B,)`` user ids.
            k (int): items per user. (default: :obj:`10`)
            exclude_seen (bool): never recommend a user's training items. (default: :obj:`True`)

        Returns:
            ``(items, scores)``: two ``(B, k)`` tensors on the module's device. With
            ``exclude_seen``, a user with fewer than ``k`` unseen items gets item ``-1`` (score
            ``-inf``) in the remaining positions.
        """
        if self._train_pairs is None:
            raise RuntimeError("no training graph: load a checkpoint, call set_graph(...) or fit first")
        users = torch.as_tensor(users, dtype=torch.long, device=self.device).flatten()
        if users.numel() and (users.min() < 0 or users.max() >= self.num_users):
            raise ValueError(f"user ids must be in [0, {self.num_users}), got {users.min().item()}..{users.max().item()}")
        was_training = self.training
        self.eval()
        try:
            scores = self._scores(users)
            exclude = None
            if exclude_seen:
                pairs = self._train_pairs.to(self.device)
                position = torch.full((self.num_users,), -1, dtype=torch.long, device=self.device)
                position[users] = torch.arange(len(users), device=self.device)
                keep = position[pairs[:, 0]] >= 0
                exclude = _dense(torch.stack([position[pairs[keep, 0]], pairs[keep, 1]]), len(users), self.num_items)
            items = rank_items(scores, min(k, self.num_items), exclude=exclude)
            return _drop_excluded(items, scores.gather(1, items), exclude)
        finally:
            self.train(was_training)

    def __getstate__(self) -> dict[str, Any]:
        # Sparse tensors cannot be deep-copied or pickled; the graph is rebuilt from the pairs on use.
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        state["_graph"] = None
        state["_eval_embedding"] = None
        return state

    # -- checkpoints -------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["darec"] = {
            "num_users": self.num_users,
            "num_items": self.num_items,
            "train_pairs": self._train_pairs,
            "terms": {name: {**spec, "weight": self.objective.weights[name]} for name, spec in self._term_specs.items()},
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("darec")
        if state is None:
            return
        if state.get("train_pairs") is not None:
            self.set_graph(state["train_pairs"], state["num_users"], state["num_items"])
        for name, spec in state.get("terms", {}).items():
            if name not in self.objective:
                weight = spec.pop("weight", 0.0)
                self.add_term(name, build_from_spec(spec), weight)
        weights = checkpoint.get("state_dict", {})
        _stack_legacy_heads(weights)
        if self.heads is None and "heads.llm.weight1" in weights:
            # Rebuild the heads with the shapes they were saved with: weight1 is (heads, in, hidden), weight2 (heads, hidden, out)
            self.heads = nn.ModuleDict(
                {
                    name: StackedProjectionHead(
                        weights[f"heads.{name}.weight1"].shape[1],
                        weights[f"heads.{name}.weight2"].shape[2],
                        weights[f"heads.{name}.weight1"].shape[2],
                        num_heads=weights[f"heads.{name}.weight1"].shape[0],
                    )
                    for name in ("cf", "llm")
                    if f"heads.{name}.weight1" in weights
                }
            )
