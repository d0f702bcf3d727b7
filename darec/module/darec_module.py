"""The Lightning module: any CF backbone, BPR, optional disentangled alignment, full-ranking evaluation."""

from __future__ import annotations

import contextvars
import logging
import os
import warnings
from collections.abc import Sequence
from typing import IO, Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities.model_helpers import _restricted_classmethod
from torch import Tensor, nn

from darec.backbones.graph import normalized_adjacency, use_symmetric_spmm
from darec.backbones.protocol import check_backbone
from darec.functional import bpr_loss, orthogonality, uniformity
from darec.losses import StackedProjectionHead
from darec.metrics import rank_items, ranking_metrics
from darec.module.checkpoint import _comparable, hparams_differences, read_checkpoint
from darec.module.objective import AlignmentObjective
from darec.module.views import SideViews, sum_over_sides
from darec.utils.spec import build_from_spec, init_spec

__all__ = ["DaRecModule"]

log = logging.getLogger(__name__)

_SCORE_WITH = ("backbone", "disentangled")
# The training generator's seed is torch.initial_seed() plus this (an arbitrary odd constant), so that
# its draws do not mirror those of the negative sampler, which is seeded with torch.initial_seed().
_GENERATOR_SEED_OFFSET = 0x9E3779B97F4A7C15
_EXCLUDE = ("known", "train", None)

# Set by DaRecModule.load_from_checkpoint, which builds the module from the checkpoint's own
# hyperparameters (plus the caller's explicit overrides): nothing to compare them with.
_LOADING_FROM_CHECKPOINT: contextvars.ContextVar[bool] = contextvars.ContextVar("darec_loading", default=False)


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


def _check_exclude(exclude: str | None, name: str = "exclude") -> None:
    if exclude not in _EXCLUDE:
        raise ValueError(f"`{name}` must be 'known', 'train' or None, got {exclude!r}")


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
        predict_exclude (str, optional): what ``predict`` never recommends, as ``exclude`` of
            :meth:`recommend`: ``"known"``, every interaction of the data (train, valid and test);
            ``"train"``, the training items only; :obj:`None`, nothing. (default: :obj:`"known"`)
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
        predict_exclude: str | None = "known",
    ) -> None:
        super().__init__()
        if isinstance(backbone, dict):
            backbone = build_from_spec(backbone, what="the backbone")
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
        _check_exclude(predict_exclude, "predict_exclude")
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
        self._heldout_pairs: Tensor | None = None  # (E, 2) valid + test pairs: masked, never in the graph
        #: Raw ids of the users and items (``user_ids[u]``, ``item_ids[i]``) of the data the module was
        #: fitted on, from the data module or the checkpoint; :obj:`None` after :meth:`set_graph`.
        self.user_ids: np.ndarray | None = None
        self.item_ids: np.ndarray | None = None
        self._user_index: dict[str, int] | None = None
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
    def set_graph(
        self,
        train_pairs: Tensor,
        num_users: int | None = None,
        num_items: int | None = None,
        *,
        heldout_pairs: Tensor | None = None,
        user_ids: Sequence[Any] | None = None,
        item_ids: Sequence[Any] | None = None,
    ) -> None:
        """Gives the module its training interactions, without a data module.

        Only ``train_pairs`` build the graph. Whatever a data module or checkpoint gave before is
        replaced, held-out pairs and raw ids included (forgotten unless given again).

        Args:
            train_pairs (Tensor): ``(E, 2)`` (user, item) training pairs.
            num_users (int, optional): defaults to the constructor's value.
            num_items (int, optional): defaults to the constructor's value.
            heldout_pairs (Tensor, optional): ``(E', 2)`` other known (user, item) pairs (validation
                and test): never in the graph, masked by ``recommend(..., exclude="known")``.
            user_ids (sequence, optional): the ``num_users`` raw user ids, for :meth:`recommend_raw`.
            item_ids (sequence, optional): the ``num_items`` raw item ids.
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
        self._set_known(heldout_pairs, user_ids, item_ids)
        self._graph = self._normalized_graph()
        # The adjacency passed to the backbone is already normalised (and symmetric): LGConv layers
        # skip their per-step normalisation and multiply without transposing in the backward.
        use_symmetric_spmm(self.backbone)

    def _set_known(self, heldout_pairs: Tensor | None, user_ids: Sequence[Any] | None, item_ids: Sequence[Any] | None) -> None:
        """Stores the ``(E, 2)`` held-out (valid + test) pairs, which ``exclude="known"`` masks and
        which never enter the graph, and the raw id maps of the data (kept as strings, as
        :class:`~darec.data.Interactions` has them)."""
        pairs = None
        if heldout_pairs is not None and len(heldout_pairs):
            pairs = torch.as_tensor(heldout_pairs, dtype=torch.long).cpu()
            if pairs.dim() != 2 or pairs.size(1) != 2:
                raise ValueError(f"`heldout_pairs` must have shape (E, 2), got {tuple(pairs.shape)}")
            if pairs[:, 0].max() >= self.num_users or pairs[:, 1].max() >= self.num_items or pairs.min() < 0:
                raise ValueError(f"`heldout_pairs` has ids outside {self.num_users} users x {self.num_items} items")
            pairs = torch.unique(pairs, dim=0)
        self._heldout_pairs = pairs
        maps = {}
        for name, ids, count in (("user_ids", user_ids, self.num_users), ("item_ids", item_ids, self.num_items)):
            maps[name] = None if ids is None else np.asarray(list(ids)).astype(str)
            if maps[name] is not None and maps[name].shape != (count,):
                raise ValueError(f"`{name}` must list one raw id per entity ({count}), got {maps[name].shape[0]}")
        self.user_ids, self.item_ids = maps["user_ids"], maps["item_ids"]
        self._user_index = None

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
        held_out = torch.from_numpy(np.concatenate([data.split(name) for name in ("valid", "test")]))
        self.set_graph(
            torch.from_numpy(data.train),
            data.num_users,
            data.num_items,
            heldout_pairs=held_out,
            user_ids=data.user_ids,
            item_ids=data.item_ids,
        )
        text = getattr(datamodule, "text_embeddings", None) or {}
        self.set_text_embeddings(text.get("user"), text.get("item"))
        self._bound_to = datamodule

    def _missing_text_error(self) -> ValueError:
        """The error for alignment without text embeddings, saying what is actually missing."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        data = getattr(datamodule, "interactions", None)
        has_text = data is not None and bool(data.user_text or data.item_text)
        encoder = getattr(datamodule, "text_encoder", None)
        if datamodule is None:
            missing = (
                "there is no data module to take them from: fit with trainer.fit(model, datamodule=...) "
                "or call model.set_text_embeddings(user, item) first"
            )
        elif has_text:
            missing = (
                "the data have user/item text but the data module has no text encoder (text_encoder=None): "
                "give it a text_encoder (e.g. 'all-MiniLM-L6-v2'), or precomputed user_embeddings/item_embeddings"
            )
        else:
            source = getattr(datamodule, "source", None)
            where = f"the data source {str(source)!r} has" if source is not None else "the interactions have"
            missing = (
                f"{where} no user or item text to encode (a TSV/CSV ratings file carries none): pass "
                "item_info='items.csv' (titles, descriptions, ...) and/or user_info='users.csv' to "
                "RecDataModule, use a split directory with item_text.jsonl/user_text.jsonl, or give "
                "precomputed user_embeddings/item_embeddings"
                + ("" if encoder is not None else " (text from files also needs a text_encoder; it is None now)")
            )
        return ValueError(f"alignment needs text embeddings, but {missing}")

    def setup(self, stage: str) -> None:
        self._bind_datamodule()
        if self._graph is None:
            raise RuntimeError(
                "DaRecModule has no training graph: fit with a darec data module "
                "(trainer.fit(model, datamodule=...)) or call model.set_graph(train_pairs) first"
            )
        if stage == "fit" and (len(self.objective) or self.needs_heads) and not self.text_sides:
            raise self._missing_text_error()
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
            raise self._missing_text_error()
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
            draw = torch.randperm(len(distinct), device=distinct.device, generator=self._training_generator())
            distinct = distinct[draw[:cap]]
        return distinct

    def _training_generator(self) -> torch.Generator:
        """The module's own source of randomness in training (RLMRec-Gen's masked nodes, the
        ``align_batch_size`` subsample), on the module's device.

        Lightning does not save or restore the global random state, so draws from it make a resumed
        fit differ from the uninterrupted one. This generator is saved in checkpoints (see
        :meth:`on_save_checkpoint`) and restored on resume; it is seeded on first use from
        :func:`torch.initial_seed` (the seed of :func:`lightning.seed_everything`), offset so that its
        draws differ from the data module's negative sampler, which starts from the same seed."""
        generator = self.__dict__.get("_generator")
        if generator is None or generator.device != self.device:
            generator = torch.Generator(device=self.device)
            saved = self.__dict__.pop("_generator_state", None)
            if saved is not None and saved["device"] == self.device.type:
                state = saved["state"]
                if isinstance(state, (bytes, bytearray)):
                    state = torch.tensor(list(state), dtype=torch.uint8)
                generator.set_state(state.cpu())
            else:  # a fresh fit (or a checkpoint written on another kind of device)
                generator.manual_seed((torch.initial_seed() + _GENERATOR_SEED_OFFSET) % 2**63)
            self.__dict__["_generator"] = generator
        return generator

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
        if "_resumed_epoch_sums" in self.__dict__:  # Lightning resumes mid-epoch without on_train_epoch_start
            self._resume_epoch_sums()
        users, pos, neg = batch["user"], batch["pos"], batch["neg"]
        masked = None
        generative = next((t for t in self.objective.terms.values() if hasattr(t, "mask_token")), None)
        if generative is not None:
            num_nodes = self.num_users + self.num_items
            draw = torch.randperm(num_nodes, device=self.device, generator=self._training_generator())
            masked_nodes = draw[: max(2, int(generative.mask_ratio * num_nodes))]
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
        self._resume_epoch_sums()

    def _resume_epoch_sums(self) -> None:
        """In a fit resumed mid-epoch (from ``interrupted.ckpt``), continues the epoch's running loss sums
        saved in the checkpoint, so that the epoch's logged means cover all of its steps."""
        resumed = self.__dict__.pop("_resumed_epoch_sums", None)
        if resumed is not None and resumed["epoch"] == self.current_epoch and not self._epoch_count:
            self._epoch_sums = {key: value.to(self.device) for key, value in resumed["sums"].items()}
            self._epoch_count = resumed["count"]

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
        """Top-``predict_k`` items per user of a ranking batch, as :meth:`recommend` ranks them.

        What is masked follows ``predict_exclude``: by default (``"known"``) every interaction the
        data module knows of (train, valid and test, the batch's ``exclude`` pairs), as
        ``recommend(..., exclude="known")``; ``"train"`` masks the training items only, :obj:`None`
        nothing.

        Returns:
            ``{"user": (B,), "item": (B, K), "score": (B, K)}`` on the CPU, with
            ``K = min(predict_k, num_items)``; a user with fewer than ``K`` items left to recommend
            gets item ``-1`` (score ``-inf``) in the remaining positions.
        """
        users = batch["user"]
        mode = self.hparams.get("predict_exclude", "known")
        scores = self._scores(users)
        if mode == "known" and "exclude" in batch:
            exclude = _dense(batch["exclude"], len(users), self.num_items)
        else:
            exclude = self._exclusion_mask(users, mode)
        items = rank_items(scores, min(self.hparams.predict_k, self.num_items), exclude=exclude)
        items, scores = _drop_excluded(items, scores.gather(1, items), exclude)
        return {"user": users.cpu(), "item": items.cpu(), "score": scores.cpu()}

    def on_predict_epoch_end(self) -> None:
        self._eval_embedding = None

    def _exclusion_mask(self, users: Tensor, exclude: str | None) -> Tensor | None:
        """The ``(B, I)`` mask of the items ``exclude`` rules out for ``users`` (``None``: nothing)."""
        if exclude is None:
            return None
        known = [self._train_pairs]
        if exclude == "known" and self._heldout_pairs is not None:
            known.append(self._heldout_pairs)
        pairs = torch.cat(known).to(self.device)
        position = torch.full((self.num_users,), -1, dtype=torch.long, device=self.device)
        position[users] = torch.arange(len(users), device=self.device)
        keep = position[pairs[:, 0]] >= 0
        return _dense(torch.stack([position[pairs[keep, 0]], pairs[keep, 1]]), len(users), self.num_items)

    @torch.no_grad()
    def recommend(
        self,
        users: Tensor | Sequence[int],
        k: int = 10,
        exclude: str | None = "known",
        *,
        exclude_seen: bool | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Top-``k`` items for ``users`` (internal ids), best first.

        By default nothing the user already has is recommended: ``exclude="known"`` masks every
        interaction the module knows of, the training pairs and the held-out (validation and test)
        pairs of the data it was fitted on (stored in its checkpoints; the held-out pairs never
        enter the graph). ``predict`` masks the same by default (``predict_exclude``). A module
        given only :meth:`set_graph` ``(train_pairs)`` knows its training pairs only.

        Args:
            users (Tensor or sequence of int): ``(B,)`` internal user ids, ``0 .. num_users - 1``.
            k (int): items per user. (default: :obj:`10`)
            exclude (str, optional): ``"known"``, every known interaction; ``"train"``, the
                training items only (the former default);
                :obj:`None`, nothing. (default: :obj:`"known"`)
            exclude_seen (bool, optional): deprecated; ``True`` is ``exclude="train"`` and
                ``False`` is ``exclude=None``.

        Returns:
            ``(items, scores)``: two ``(B, min(k, num_items))`` tensors on the module's device,
            internal item ids and their scores, best first. ``k`` larger than the catalogue gives
            ``num_items`` columns. A user with fewer items left than columns (the others excluded)
            gets item ``-1`` with score ``-inf`` in the remaining positions. For raw ids, see
            :meth:`recommend_raw`.

        Example:
            >>> from darec.backbones import MatrixFactorization
            >>> model = DaRecModule(MatrixFactorization(num_nodes=7, embedding_dim=8), num_users=3, num_items=4)
            >>> model.set_graph(torch.tensor([[0, 0], [1, 1], [2, 3]]), heldout_pairs=torch.tensor([[0, 1]]))
            >>> items, scores = model.recommend([0], k=10)  # k > 4 items: 4 columns
            >>> items.shape, sorted(items[0, :2].tolist()), items[0, 2:].tolist()  # items 0 and 1 are known
            (torch.Size([1, 4]), [2, 3], [-1, -1])
            >>> sorted(model.recommend([0], k=10, exclude="train")[0][0, :3].tolist())  # item 1 is allowed
            [1, 2, 3]
        """
        if isinstance(exclude, bool):  # recommend(users, k, True): the former positional exclude_seen
            exclude_seen, exclude = exclude, "known"
        if exclude_seen is not None:
            warnings.warn(
                "`exclude_seen` is deprecated: use exclude='train' for exclude_seen=True (training items "
                "only), exclude=None for exclude_seen=False, or the default exclude='known'",
                FutureWarning,
                stacklevel=3,  # through torch.no_grad's wrapper
            )
            exclude = "train" if exclude_seen else None
        _check_exclude(exclude)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"`k` must be a positive integer, got {k!r}")
        if self._train_pairs is None:
            raise RuntimeError("no training graph: load a checkpoint, call set_graph(...) or fit first")
        users = torch.as_tensor(users, dtype=torch.long, device=self.device).flatten()
        if users.numel() and (users.min() < 0 or users.max() >= self.num_users):
            raise ValueError(f"user ids must be in [0, {self.num_users}), got {users.min().item()}..{users.max().item()}")
        was_training = self.training
        self.eval()
        try:
            scores = self._scores(users)
            mask = self._exclusion_mask(users, exclude)
            items = rank_items(scores, min(int(k), self.num_items), exclude=mask)
            return _drop_excluded(items, scores.gather(1, items), mask)
        finally:
            self.train(was_training)

    def recommend_raw(
        self, users: Sequence[Any] | np.ndarray, k: int = 10, exclude: str | None = "known"
    ) -> tuple[np.ndarray, Tensor]:
        """Top-``k`` items for ``users`` in the raw ids of the data, best first.

        The same ranking as :meth:`recommend` (same ``exclude`` default), translated with the raw id
        maps the module keeps from its data module (:attr:`user_ids`, :attr:`item_ids`, stored in
        its checkpoints): ``DaRecModule.load_from_checkpoint(path).recommend_raw(["196"])`` needs
        nothing else. Raw ids are compared as strings (as the data module reads them), so
        MovieLens user ``196`` may be given as ``196`` or ``"196"``.

        Args:
            users (sequence): ``B`` raw user ids.
            k (int): items per user. (default: :obj:`10`)
            exclude (str, optional): as in :meth:`recommend`. (default: :obj:`"known"`)

        Returns:
            ``(items, scores)``: ``items`` a ``(B, min(k, num_items))`` numpy array of objects, the raw
            item ids (strings), best first, with :obj:`None` where a user has no item left;
            ``scores`` the ``(B, min(k, num_items))`` tensor of :meth:`recommend` (``-inf`` there).

        Raises:
            KeyError: a user id is not among the users of the data (the message lists them).
            RuntimeError: the module has no raw ids (fitted with :meth:`set_graph` alone, or a
                checkpoint written before darec stored them); use :meth:`recommend`.

        Example:
            >>> from darec.backbones import MatrixFactorization
            >>> model = DaRecModule(MatrixFactorization(num_nodes=5, embedding_dim=8), num_users=2, num_items=3)
            >>> model.set_graph(
            ...     torch.tensor([[0, 0], [1, 1]]), user_ids=["ann", "bob"], item_ids=["tea", "jam", "oat"],
            ...     heldout_pairs=torch.tensor([[0, 2]]),
            ... )
            >>> items, scores = model.recommend_raw(["ann"], k=3)  # "tea" and "oat" are known for ann
            >>> items.tolist(), scores.shape
            ([['jam', None, None]], torch.Size([1, 3]))
            >>> model.recommend_raw(["zoe"])
            Traceback (most recent call last):
            ...
            KeyError: "unknown user id(s) 'zoe': not among the 2 users of the data this model was fitted on (e.g. 'ann', 'bob')"
        """
        if self.user_ids is None or self.item_ids is None:
            raise RuntimeError(
                "raw ids are unknown: this model was not fitted with a darec data module (set_graph(...) "
                "without user_ids/item_ids, or a checkpoint written before darec stored them); use "
                "recommend() with internal ids, or set_graph(..., user_ids=..., item_ids=...)"
            )
        if isinstance(users, (str, bytes)) or not hasattr(users, "__iter__"):
            raise TypeError(f"`users` must be a sequence of raw user ids, e.g. [{users!r}], got {type(users).__name__}")
        if self._user_index is None:
            self._user_index = {raw: index for index, raw in enumerate(self.user_ids.tolist())}
        raw_users = [str(user) for user in users]
        unknown = [user for user in raw_users if user not in self._user_index]
        if unknown:
            listed = ", ".join(repr(user) for user in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            examples = ", ".join(repr(user) for user in self.user_ids[:3].tolist())
            raise KeyError(
                f"unknown user id(s) {listed}: not among the {len(self.user_ids)} users of the data this "
                f"model was fitted on (e.g. {examples})"
            )
        internal = torch.tensor([self._user_index[user] for user in raw_users], dtype=torch.long)
        items, scores = self.recommend(internal, k, exclude)
        found = items.cpu().numpy()
        raw = np.full(found.shape, None, dtype=object)
        raw[found >= 0] = self.item_ids[found[found >= 0]]
        return raw, scores

    def __getstate__(self) -> dict[str, Any]:
        # Sparse tensors cannot be deep-copied or pickled; the graph is rebuilt from the pairs on use.
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        state["_graph"] = None
        state["_eval_embedding"] = None
        if state.get("_generator") is not None:  # travels as its state (ddp_spawn's pickler drops generators)
            generator = state.pop("_generator")
            state["_generator_state"] = {"device": generator.device.type, "state": bytes(generator.get_state().tolist())}
        return state

    # -- checkpoints -------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["darec"] = {
            "num_users": self.num_users,
            "num_items": self.num_items,
            "train_pairs": self._train_pairs,
            # masked by recommend(exclude="known") after loading; never part of the graph
            "heldout_pairs": self._heldout_pairs,
            # the data's raw ids, for recommend_raw() from the checkpoint alone
            "user_ids": None if self.user_ids is None else self.user_ids.tolist(),
            "item_ids": None if self.item_ids is None else self.item_ids.tolist(),
            "terms": {name: {**spec, "weight": self.objective.weights[name]} for name, spec in self._term_specs.items()},
        }
        generator = self.__dict__.get("_generator")
        if generator is not None:  # the training draws continue where they were on resume
            checkpoint["darec"]["generator"] = {"device": generator.device.type, "state": generator.get_state()}
        if self._epoch_count and self._trainer is not None:  # the running sums of the epoch's logged losses
            sums = {key: value.detach().cpu() for key, value in self._epoch_sums.items()}
            checkpoint["darec"]["epoch_sums"] = {"epoch": self.current_epoch, "sums": sums, "count": self._epoch_count}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._check_checkpoint_model(checkpoint)
        state = checkpoint.get("darec")
        if state is None:
            return
        if state.get("generator") is not None:  # used by _training_generator on the first draw
            self.__dict__.pop("_generator", None)
            self.__dict__["_generator_state"] = state["generator"]
        if state.get("epoch_sums") is not None:  # used if the fit resumes within that epoch
            self.__dict__["_resumed_epoch_sums"] = state["epoch_sums"]
        if state.get("train_pairs") is not None:
            self.set_graph(
                state["train_pairs"],
                state["num_users"],
                state["num_items"],
                heldout_pairs=state.get("heldout_pairs"),  # absent from older checkpoints
                user_ids=state.get("user_ids"),
                item_ids=state.get("item_ids"),
            )
        for name, spec in state.get("terms", {}).items():
            if name not in self.objective:
                weight = spec.pop("weight", 0.0)
                self.add_term(name, build_from_spec(spec, what=f"the alignment term {name!r}"), weight)
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

    def _check_checkpoint_model(self, checkpoint: dict[str, Any]) -> None:
        """Refuses a checkpoint of another model than this (configured) module; warns about other settings.

        Lightning loads a ``ckpt_path`` into the module built from the config, and
        :meth:`on_load_checkpoint` would then rebuild the checkpoint's heads and terms: a DaRec
        checkpoint would run under a plain LightGCN config without a word. The hyperparameters
        that define the model (:data:`~darec.module.checkpoint.STRUCTURAL_HPARAMS`: backbone, sizes, regulariser weights, heads,
        scoring) and the alignment terms must therefore agree; the others (``lr``, ``ks``,
        ``predict_k``, ...) only warn. :meth:`load_from_checkpoint` builds the module from the
        checkpoint itself and skips this.
        """
        if _LOADING_FROM_CHECKPOINT.get():
            return
        saved = checkpoint.get("hyper_parameters")
        if not isinstance(saved, dict):
            return
        current = dict(self.hparams)
        if "backbone" not in current or "backbone" not in saved:  # a custom backbone without a spec: compare classes
            cls = type(self.backbone)
            current["backbone"] = {"class_path": f"{cls.__module__}.{cls.__qualname__}"}
            if isinstance(saved.get("backbone"), dict):
                saved = {**saved, "backbone": {"class_path": saved["backbone"].get("class_path")}}
        structural, other = hparams_differences(saved, current)
        saved_terms = {
            name: {key: value for key, value in spec.items() if key != "weight"}
            for name, spec in ((checkpoint.get("darec") or {}).get("terms") or {}).items()
        }
        configured = set(self._term_specs) | self._configured_alignment_terms()
        if configured and configured != set(saved_terms):
            structural.append(f"alignment terms: checkpoint {sorted(saved_terms)}, config {sorted(configured)}")
        elif not configured and saved_terms:
            other.append(f"alignment terms: checkpoint {sorted(saved_terms)}, config none (they do not change scores)")
        for name in sorted(set(self._term_specs) & set(saved_terms)):
            was, now = _comparable(saved_terms[name]), _comparable(self._term_specs[name])
            if was != now:
                structural.append(f"term {name!r}: checkpoint {was!r}, config {now!r}")
        trainer = self._trainer
        path = getattr(trainer, "ckpt_path", None) if trainer is not None else None
        where = f"checkpoint {os.fspath(path)}" if path is not None else "the checkpoint"
        if structural:
            raise ValueError(
                f"{where} holds a different model than the configured one: {'; '.join(structural)}. "
                "Use the config the checkpoint was trained with (its settings are the checkpoint's "
                "'hyper_parameters', and `darec fit` saved config.yaml in the run's log directory), or "
                "load it with DaRecModule.load_from_checkpoint(path), which needs no config."
            )
        if other:
            warnings.warn(
                f"{where} was saved with other settings than the configured module's; they do not define "
                f"the model, so it loads: {'; '.join(other)}",
                UserWarning,
                stacklevel=2,
            )

    def _configured_alignment_terms(self) -> set[str]:
        """Names of the terms that the trainer's alignment callbacks register (in ``fit``)."""
        from darec.callbacks.alignment_callback import AlignmentCallback

        trainer = self._trainer
        callbacks = trainer.callbacks if trainer is not None else []
        return {callback.name for callback in callbacks if isinstance(callback, AlignmentCallback)}

    @_restricted_classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | os.PathLike | IO,
        map_location: Any = None,
        hparams_file: str | os.PathLike | None = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> DaRecModule:
        """Builds the module from a checkpoint alone: backbone, heads, terms, graph, held-out pairs, raw ids.

        Lightning's :meth:`~lightning.pytorch.core.LightningModule.load_from_checkpoint`, which
        first checks the file with :func:`~darec.module.checkpoint.read_checkpoint`: a file that
        is empty, not a PyTorch file, not a darec checkpoint or damaged (a failed checksum, a
        truncated archive) raises :class:`~darec.module.checkpoint.CheckpointError` naming it,
        instead of whatever ``torch.load`` or Lightning would stumble on. Arguments as
        Lightning's; keyword arguments override the saved hyperparameters (e.g. ``backbone=`` for
        a custom backbone whose constructor arguments could not be recorded).

        Raises:
            FileNotFoundError: ``checkpoint_path`` does not exist.
            CheckpointError: ``checkpoint_path`` is not a (readable) darec checkpoint.

        Example:
            >>> import tempfile
            >>> from pathlib import Path
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     empty = Path(tmp) / "best.ckpt"
            ...     empty.touch()
            ...     try:
            ...         DaRecModule.load_from_checkpoint(empty)
            ...     except ValueError as err:
            ...         print(str(err).replace(tmp, "<tmp>"))
            <tmp>/best.ckpt is not a darec checkpoint (the file is empty)
        """
        if isinstance(checkpoint_path, (str, os.PathLike)) and "://" not in os.fspath(checkpoint_path):
            read_checkpoint(checkpoint_path, weights_only=weights_only)  # local files; URLs and buffers as Lightning reads them
        token = _LOADING_FROM_CHECKPOINT.set(True)
        try:
            return super().load_from_checkpoint(
                checkpoint_path,
                map_location=map_location,
                hparams_file=hparams_file,
                strict=strict,
                weights_only=weights_only,
                **kwargs,
            )
        finally:
            _LOADING_FROM_CHECKPOINT.reset(token)
