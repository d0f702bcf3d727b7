"""The Lightning module: any CF backbone, BPR, optional disentangled alignment, full-ranking evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from darec.backbones.protocol import check_backbone
from darec.losses import BPRLoss, OrthogonalityRegularizer, UniformityRegularizer
from darec.metrics import ranking_metrics
from darec.module.checkpoint import Checkpointing
from darec.module.data import DataBinding
from darec.module.epoch_losses import EpochLosses
from darec.module.host import Sizes, TermFactory
from darec.module.objective import Objective
from darec.module.ranking import Ranking, check_exclude
from darec.module.schedule import EpochSchedule
from darec.module.step_views import StepViewsBuilder
from darec.utils.spec import build_from_spec, describe

__all__ = ["DaRecModule"]

_SCORE_WITH = ("backbone", "disentangled")


def _check_settings(lr: float, weight_decay: float, predict_k: int, score_with: str, l2_on: str, **optional: float | None) -> None:
    """Raises ``ValueError`` for a constructor setting out of range (``optional``: :obj:`None` allowed)."""
    if lr <= 0:
        raise ValueError(f"`lr` must be positive, got {lr}")
    if weight_decay < 0:
        raise ValueError(f"`weight_decay` must be non-negative, got {weight_decay}")
    for name in ("alpha", "orthogonality_weight", "uniformity_weight"):
        if optional[name] is not None and optional[name] < 0:
            raise ValueError(f"`{name}` must be non-negative, got {optional[name]}")
    if predict_k <= 0:
        raise ValueError(f"`predict_k` must be positive, got {predict_k}")
    if score_with not in _SCORE_WITH:
        raise ValueError(f"`score_with` must be one of {_SCORE_WITH}, got {score_with!r}")
    if optional["align_batch_size"] is not None and optional["align_batch_size"] < 2:
        raise ValueError(f"`align_batch_size` must be at least 2 (or None), got {optional['align_batch_size']}")
    if l2_on not in ("params", "batch"):
        raise ValueError(f"`l2_on` must be 'params' or 'batch', got {l2_on!r}")
    if optional["init_std"] is not None and optional["init_std"] <= 0:
        raise ValueError(f"`init_std` must be positive, got {optional['init_std']}")


class DaRecModule(Checkpointing, Ranking, StepViewsBuilder, DataBinding, L.LightningModule):
    r"""Trains a collaborative-filtering backbone with BPR and, optionally, DaRec's disentangled alignment.

    The backbone is any :class:`~torch.nn.Module` with ``get_embedding(edge_index, edge_weight=None)``
    returning the stacked ``(num_users + num_items, d)`` embeddings (PyG's
    :class:`~torch_geometric.nn.models.LightGCN` works unchanged; see
    :class:`~darec.backbones.CFBackbone`). The training graph, the sizes and the frozen text
    embeddings come from the data module in :meth:`setup`; the symmetric normalisation of the graph
    is computed there once, and the backbone is propagated on it with
    :func:`~darec.backbones.graph_embedding`, which leaves the backbone unchanged (a model of
    your own with ``LGConv`` layers builds them with ``normalize=False``).

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
    Regularisers and alignment terms are the terms of one :class:`~darec.module.Objective`
    (:attr:`objective`); callbacks reach the module through the
    :class:`~darec.module.AlignmentHost` interface (:meth:`add_term`, :meth:`term`,
    :meth:`set_term_weight`, :meth:`shared_spaces`), and the terms are built in :meth:`setup`, once
    the sizes are known.

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
            point of the method), which the BPR loss then trains as well (the heads are a row-wise
            MLP, so this is the score of the whole model, not a read-out of a backbone trained
            without them). (default: :obj:`"backbone"`)
        lr_schedule (str): ``"constant"`` or ``"cosine"``: after the warm-up, the learning rate
            stays at ``lr`` or decays along a half cosine to ``lr * lr_min_ratio`` at the trainer's
            last epoch (``max_epochs``); stepped once per epoch through Lightning's scheduler
            support (see :class:`~darec.module.schedule.EpochSchedule`). (default: :obj:`"constant"`)
        lr_warmup_epochs (int): epochs of linear warm-up from ``lr / lr_warmup_epochs`` to ``lr``.
            (default: :obj:`0`)
        lr_min_ratio (float): the floor of the cosine decay, as a fraction of ``lr``.
            (default: :obj:`0.01`)

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
        lr_schedule: str = "constant",
        lr_warmup_epochs: int = 0,
        lr_min_ratio: float = 0.01,
    ) -> None:
        super().__init__()
        if isinstance(backbone, dict):
            backbone = build_from_spec(backbone, what="the backbone")
        self.backbone = check_backbone(backbone)
        _check_settings(
            lr, weight_decay, predict_k, score_with, l2_on, alpha=alpha, orthogonality_weight=orthogonality_weight,
            uniformity_weight=uniformity_weight, align_batch_size=align_batch_size, init_std=init_std,
        )  # fmt: skip
        check_exclude(predict_exclude, "predict_exclude")
        EpochSchedule(lr_schedule, lr_warmup_epochs, 1, lr_min_ratio)  # checks the settings now, not at fit
        if init_std is not None:  # the LightGCN authors' initialisation, N(0, init_std^2), of every embedding table
            for module in backbone.modules():
                if isinstance(module, nn.Embedding):
                    nn.init.normal_(module.weight, std=init_std)
        self.save_hyperparameters(ignore=["backbone"])
        spec = describe(self.backbone)
        if spec is not None:
            self.hparams["backbone"] = spec
        self._init_data(num_users, num_items)
        self.val_metrics = ranking_metrics(ks, prefix="val/")
        self.test_metrics = ranking_metrics(ks, prefix="test/")
        #: The weighted terms of the loss: the regularisers and the alignment terms.
        self.objective = Objective()
        self.bpr = BPRLoss()
        self.heads: nn.ModuleDict | None = None  # built in setup (or from a checkpoint), once sizes are known
        self._head_sizes: dict | None = None
        self._eval_embedding: Tensor | None = None
        self._set_aside: dict[str, dict[str, Tensor]] = {}  # weights of terms loaded before a callback registers them
        self.epoch_losses = EpochLosses()
        self._val_history: list[tuple[int, float]] = []  # (epoch, val recall@max k) of this fit, for on_fit_end

    # -- setup: data, sizes, terms and heads ---------------------------------------------------
    def setup(self, stage: str) -> None:
        self._bind_datamodule()
        if self._graph is None:
            raise RuntimeError(
                "DaRecModule has no training graph: fit with a darec data module "
                "(trainer.fit(model, datamodule=...)) or call model.set_graph(train_pairs) first"
            )
        if stage != "fit":
            return
        objective = self.objective
        if (len(objective) or objective.pending or self.needs_heads) and not self.text_sides:
            raise self._missing_text_error()
        sizes = self.sizes() if objective.pending or (self.needs_heads and self.heads is None) else None
        for name in objective.build(sizes):
            term = objective.terms[name].to(self.device)
            if name in self._set_aside:  # trained in the fit that wrote the checkpoint this module was loaded from
                term.load_state_dict(self._set_aside.pop(name))
        if self.needs_heads and self.heads is None:
            full = self.hparams.disentangle is not False
            self._build_heads(sizes.cf_dim, sizes.text_dim, sizes.align_dim, full=full)
            self.hparams.update(align_dim=sizes.align_dim, text_dim=sizes.text_dim)
        self._add_regularizers()

    def sizes(self) -> Sizes:
        """The sizes of the data and embeddings (the backbone's width found by one forward pass)."""
        self._bind_datamodule()
        with torch.no_grad():
            cf_dim = int(self._propagate().size(1))
        sides = self.text_sides
        text_dim = int(getattr(self, f"text_{sides[0]}").size(1)) if sides else None
        return Sizes(self.num_users, self.num_items, cf_dim, text_dim, self.hparams.align_dim or cf_dim)

    @property
    def needs_heads(self) -> bool:
        """Whether the disentangling heads are needed by the settings or by a built alignment term."""
        objective = self.objective
        needed_by = [name for name in objective.alignment_terms if getattr(objective.terms[name], "needs_shared", False)]
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

    def _add_regularizers(self) -> None:
        """Orthogonality and uniformity as terms of the objective, where their weight is positive
        and the four heads exist (before the alignment terms in the sum, see :class:`Objective`)."""
        if self.heads is None or "cf" not in self.heads:
            return
        w_orth, w_unif = self._regularizer_weights
        if w_orth > 0:
            self.objective.add("orthogonality", OrthogonalityRegularizer(), w_orth, regularizer=True)
        if w_unif > 0:
            self.objective.add("uniformity", UniformityRegularizer(on_shared=self.hparams.uniformity_on_shared), w_unif, regularizer=True)

    # -- the AlignmentHost interface of the callbacks -------------------------------------------
    def add_term(self, name: str, build: TermFactory, weight: float) -> None:
        """Registers the alignment term ``name``, built by ``build(sizes)`` in :meth:`setup`
        (see :class:`~darec.module.AlignmentHost`); a term of that name the module holds is kept."""
        if isinstance(build, nn.Module) or not callable(build):
            raise TypeError(f"add_term takes a factory of the term, e.g. add_term({name!r}, lambda sizes: term, weight)")
        self.objective.request(name, build, weight)

    def term(self, name: str) -> nn.Module:
        """The built term ``name`` (see :class:`~darec.module.AlignmentHost`)."""
        return self.objective.terms[name]

    def set_term_weight(self, name: str, weight: float) -> None:
        """Sets the weight of term ``name`` for the following steps (see :class:`~darec.module.AlignmentHost`)."""
        self.objective.set_weight(name, weight)

    # -- training ------------------------------------------------------------------------------
    def forward(self) -> Tensor:
        """The ``(num_users + num_items, d)`` embeddings used for scoring."""
        emb = self._propagate()
        if self.hparams.score_with == "disentangled":
            if self.heads is None:
                raise RuntimeError("score_with='disentangled' needs the disentangling heads")
            shared, specific = self.heads["cf"](emb)
            emb = torch.cat([shared, specific], dim=-1)
        return emb

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        self.epoch_losses.resume(self.current_epoch, self.device)  # Lightning resumes mid-epoch without on_train_epoch_start
        users, pos, neg = batch["user"], batch["pos"], batch["neg"]
        emb, masked = self._training_propagation()
        rows = torch.cat([users, pos + self.num_users, neg + self.num_users])  # node ids of the batch
        # One index_select (its backward is a scatter-add; advanced indexing's sorts the indices):
        scored = emb.index_select(0, rows)
        if self.hparams.score_with == "disentangled":  # the ranking loss trains the vectors that score
            if self.heads is None:
                raise RuntimeError("score_with='disentangled' needs the disentangling heads")
            shared, specific = self.heads["cf"](scored)
            scored = torch.cat([shared, specific], dim=-1)
        eu, ep, en = scored.split(len(users))
        bpr = self.bpr((eu * ep).sum(-1), (eu * en).sum(-1))
        loss = bpr
        logs = {"train/bpr": bpr}
        if self.hparams.weight_decay > 0 and self.hparams.l2_on == "batch":
            # LightGCN authors: the batch rows of the input table (l2_on="params" is Adam's weight decay)
            _, table = self._input_table()
            loss = loss + self.hparams.weight_decay * table[rows].pow(2).sum() / (2 * len(users))
        if self.heads is not None or len(self.objective):
            views = self._step_views(emb, batch, masked)  # drawn even without terms: the same random draws
            if len(self.objective):
                loss, values = self.objective(views, loss)
                logs.update({f"train/{name}": value for name, value in values.items()})
        logs["train/loss"] = loss
        self.epoch_losses.add(logs, len(users))
        return loss

    def on_train_epoch_start(self) -> None:
        self.epoch_losses.reset()
        self.epoch_losses.resume(self.current_epoch, self.device)

    def on_train_epoch_end(self) -> None:
        means = self.epoch_losses.means()
        if means:
            means.update({f"train/weight_{name}": self.objective.weights[name] for name in self.objective.alignment_terms})
            self.log_dict(means, on_step=False, on_epoch=True, batch_size=self.epoch_losses.count)
        self.epoch_losses.reset()

    def _log_protocol(self) -> None:
        """Records how the data were built and evaluated next to the results (the logger's hparams)."""
        from darec.loggers import log_data_protocol

        log_data_protocol(self, ks=list(self.hparams.ks))

    def on_fit_start(self) -> None:
        self._val_history = []
        self._log_protocol()

    def on_test_start(self) -> None:
        self._log_protocol()

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        r"""Adam over all trainable parameters, with the epoch-wise schedule of ``lr_schedule`` if any.

        With ``l2_on="params"`` the penalty :math:`\lambda \lVert\Theta\rVert^2` is applied as
        Adam's ``weight_decay=2 * lambda``, which adds exactly its gradient :math:`2 \lambda \Theta`
        to every parameter's gradient (in the fused kernel, instead of two operations per
        parameter in every step); ``train/loss`` therefore does not include it. Adam runs fused
        (one kernel for all parameters) on CPU and CUDA.
        """
        decay = 2.0 * self.hparams.weight_decay if self.hparams.l2_on == "params" else 0.0
        params = [p for p in self.parameters() if p.requires_grad]
        fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
        optimizer = torch.optim.Adam(params, lr=self.hparams.lr, weight_decay=decay, fused=fused or None)
        schedule = self.hparams.get("lr_schedule", "constant")
        warmup = self.hparams.get("lr_warmup_epochs", 0)
        if schedule == "constant" and warmup == 0:
            return optimizer
        horizon = self.trainer.max_epochs if self._trainer is not None else None
        factor = EpochSchedule(schedule, warmup, horizon, self.hparams.get("lr_min_ratio", 0.01))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "name": "lr"}}
