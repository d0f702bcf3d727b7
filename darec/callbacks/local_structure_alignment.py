"""Switches on DaRec's local structure alignment and refreshes its clusters."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor

from darec.callbacks.alignment_callback import AlignmentCallback
from darec.functional.clustering import kmeans, match_clusters
from darec.losses import LocalStructureAlignmentLoss
from darec.module.host import AlignmentHost, Sizes
from darec.utils.generators import GeneratorPickling

__all__ = ["LocalStructureAlignment"]

_CLUSTERING = ("fused", "per_side")


class LocalStructureAlignment(GeneratorPickling, AlignmentCallback):
    r"""Aligns cluster centres of the shared CF and shared LLM spaces ("adaptive preference clustering").

    Every ``every_n_epochs`` epochs (at the start of the epoch) the callback embeds all users and
    all items, clusters each side into :math:`K` groups and hands the assignment to the term. By
    default (``clustering="fused"``) the clustered space is the detached, fused shared space
    :math:`z = (n(e^C_{sh}) + n(e^L_{sh}))/2`, and one assignment serves both sides;
    ``clustering="per_side"`` (an OPEN point of the method) clusters :math:`e^C_{sh}` and
    :math:`e^L_{sh}` separately and matches the LLM clusters to the CF clusters with the Hungarian
    algorithm. In a step, per-side centres are the means of the batch members of each cluster
    (with gradients) and the term is an InfoNCE over centres with the matched centre as positive
    (temperature :math:`\tau`); empty clusters are skipped. See
    :class:`~darec.losses.LocalStructureAlignmentLoss`.

    Clustering is batched k-means in torch on the module's device. Under several processes rank 0
    clusters and broadcasts the assignment, so every process uses the same clusters. The
    assignment is saved in checkpoints (``state_dict``) and restored on resume.

    Args:
        num_clusters (int): :math:`K`. (default: :obj:`10`)
        every_n_epochs (int): :math:`R`, epochs between cluster refreshes. (default: :obj:`1`)
        weight (float): :math:`\beta`, the weight of the term. (default: :obj:`1e-2`)
        temperature (float): :math:`\tau`. (default: :obj:`0.2`)
        clustering (str): ``"fused"`` or ``"per_side"``. (default: :obj:`"fused"`)
        num_iters (int): at most this many k-means iterations per refresh. (default: :obj:`25`)
        seed (int): seed of the k-means seeding. (default: :obj:`0`)
        warm_start (bool): start each refresh's k-means from the previous refresh's centres
            instead of a new k-means++ seeding: the space moves little between refreshes, so
            k-means converges in a few iterations, and cluster ids stay stable from one refresh
            to the next. (default: :obj:`True`)
        warmup_epochs (int): linear warm-up of the weight. (default: :obj:`0`)

    Example:
        >>> import lightning as L
        >>> trainer = L.Trainer(callbacks=[LocalStructureAlignment(num_clusters=10, weight=1e-2)], logger=False)
    """

    name = "local"

    def __init__(
        self,
        num_clusters: int = 10,
        every_n_epochs: int = 1,
        weight: float = 1e-2,
        temperature: float = 0.2,
        clustering: str = "fused",
        num_iters: int = 25,
        seed: int = 0,
        warmup_epochs: int = 0,
        warm_start: bool = True,
    ) -> None:
        super().__init__(weight, warmup_epochs)
        LocalStructureAlignmentLoss.check_arguments(num_clusters, temperature)
        if every_n_epochs < 1:
            raise ValueError(f"`every_n_epochs` must be at least 1, got {every_n_epochs}")
        if clustering not in _CLUSTERING:
            raise ValueError(f"`clustering` must be one of {_CLUSTERING}, got {clustering!r}")
        self.num_clusters = num_clusters
        self.every_n_epochs = every_n_epochs
        self.temperature = temperature
        self.clustering = clustering
        self.num_iters = num_iters
        self.seed = seed
        self.warm_start = warm_start
        self.assignments: dict[str, Tensor] = {}
        self.centres: dict[str, Tensor] = {}
        self.refreshed_at: int | None = None
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def state_key(self) -> str:
        return self._generate_state_key(name=self.name, num_clusters=self.num_clusters, clustering=self.clustering)

    def build_term(self, sizes: Sizes) -> LocalStructureAlignmentLoss:
        return LocalStructureAlignmentLoss(num_clusters=self.num_clusters, temperature=self.temperature)

    # -- clustering ---------------------------------------------------------------------------
    @torch.no_grad()
    def cluster(self, pl_module: AlignmentHost) -> dict[str, Tensor]:
        """Clusters every user and item; returns ``{"user": (U,) or (U, 2), "item": ...}`` cluster ids.

        With ``clustering="per_side"`` each row holds the CF id and the matched LLM id.
        """
        spaces = pl_module.shared_spaces()
        out: dict[str, Tensor] = {}
        for side, (cf_shared, llm_shared) in spaces.items():
            k = self._clusters_for(side, cf_shared.size(0))
            if self.clustering == "fused":
                z = (F.normalize(cf_shared, dim=1) + F.normalize(llm_shared, dim=1)) / 2
                _, out[side] = self._kmeans(side, z, k)
            else:
                centres_cf, a_cf = self._kmeans(f"{side}_cf", F.normalize(cf_shared, dim=1), k)
                centres_llm, a_llm = self._kmeans(f"{side}_llm", F.normalize(llm_shared, dim=1), k)
                perm = match_clusters(centres_cf, centres_llm).to(a_llm.device)
                relabel = torch.empty_like(perm)
                relabel[perm] = torch.arange(len(perm), device=perm.device)
                out[side] = torch.stack([a_cf, relabel[a_llm]], dim=1)
        return out

    def _clusters_for(self, side: str, count: int) -> int:
        """``num_clusters``, clamped to the ``count`` entities of ``side`` (with a warning, once per side)."""
        if self.num_clusters <= count:
            return self.num_clusters
        warned = self.__dict__.setdefault("_warned_sides", set())
        if side not in warned:
            warned.add(side)
            rank_zero_warn(
                f"LocalStructureAlignment: num_clusters={self.num_clusters} is more than the {count} {side}s "
                f"of the data; the {side}s are clustered into {count} clusters instead"
            )
        return count

    def _kmeans(self, key: str, x: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """k-means of ``x``, warm-started from the centres kept under ``key`` when they fit."""
        init = self.centres.get(key) if self.warm_start else None
        if init is not None and init.shape != (k, x.size(1)):
            init = None
        centres, assignment = kmeans(x, k, self.num_iters, generator=self.generator, init=init)
        self.centres[key] = centres
        return centres, assignment

    def _push(self, pl_module: AlignmentHost) -> None:
        term = pl_module.term(self.name)
        for side, assignment in self.assignments.items():
            term.set_assignment(side, assignment)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        epoch = trainer.current_epoch
        due = self.refreshed_at is None or epoch - self.refreshed_at >= self.every_n_epochs
        if due:
            assignments = None
            if trainer.is_global_zero:  # sent on the CPU: a pickled CUDA tensor would land on rank 0's GPU everywhere
                assignments = {side: a.cpu() for side, a in self.cluster(pl_module).items()}
            assignments = trainer.strategy.broadcast(assignments, src=0)
            self.assignments = {side: a.to(pl_module.device) for side, a in assignments.items()}
            self.refreshed_at = epoch
        self._push(pl_module)

    # -- checkpointing ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "assignments": {side: a.cpu() for side, a in self.assignments.items()},
            "refreshed_at": self.refreshed_at,
            "generator": self.generator.get_state(),
            "centres": {key: c.cpu() for key, c in self.centres.items()},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.assignments = dict(state_dict.get("assignments", {}))
        self.refreshed_at = state_dict.get("refreshed_at")
        self.centres = dict(state_dict.get("centres", {}))
        if "generator" in state_dict:
            self.generator.set_state(state_dict["generator"])
