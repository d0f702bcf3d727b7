"""What the terms of a training step see: the propagated embeddings, the disentangling heads' projections
and the step's rows, drawn with the module's own generator."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from darec.backbones.graph import graph_embedding
from darec.losses.views import SideViews, StepViews
from darec.nn import StackedProjectionHead

__all__ = ["StepViewsBuilder"]

# The training generator's seed is torch.initial_seed() plus this (an arbitrary odd constant), so that
# its draws do not mirror those of the negative sampler, which is seeded with torch.initial_seed().
_GENERATOR_SEED_OFFSET = 0x9E3779B97F4A7C15


class _EmbeddingCall(nn.Module):
    """Lets :func:`torch.func.functional_call` propagate the backbone with swapped parameters."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, graph: Any) -> Tensor:
        return graph_embedding(self.backbone, graph)


class StepViewsBuilder:
    """Mixin of :class:`~darec.DaRecModule`: the disentangling heads, propagation (with the terms'
    input masks) and the :class:`~darec.module.StepViews` of a training step."""

    heads: nn.ModuleDict | None
    backbone: nn.Module

    # -- heads ---------------------------------------------------------------------------------
    def _build_heads(
        self, cf_dim: int, text_dim: int, align_dim: int, full: bool = True, hidden_dim: int | None = None
    ) -> None:
        """The four projection heads, as one :class:`~darec.nn.StackedProjectionHead` per side (head
        0: shared, head 1: specific); with ``full=False`` (no disentangling) only the LLM -> CF-width
        head. ``hidden_dim`` defaults to the ``head_hidden_dim`` setting. The arguments are kept
        (``_head_sizes``) for checkpoints, which rebuild the heads with them."""
        hidden = self.hparams.head_hidden_dim if hidden_dim is None else hidden_dim
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
        self._head_sizes = {"cf_dim": cf_dim, "text_dim": text_dim, "align_dim": align_dim, "full": full, "hidden_dim": hidden}
        if self._trainer is not None:
            self.heads.to(self.device)

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

    # -- propagation ---------------------------------------------------------------------------
    def _propagate(self, input_table: tuple[str, Tensor] | None = None) -> Tensor:
        """The backbone's ``(num_nodes, d)`` embeddings; with ``input_table`` ``(name, table)``, those
        of the backbone whose parameter ``name`` is replaced by ``table`` (the parameter is untouched)."""
        graph = self._graph_on_device()
        if input_table is None:
            return graph_embedding(self.backbone, graph)
        name, table = input_table
        return torch.func.functional_call(_EmbeddingCall(self.backbone), {f"backbone.{name}": table}, (graph,))

    def _input_table(self) -> tuple[str, Tensor]:
        """The backbone's ``(num_nodes, d)`` input embedding table (what masking terms mask)."""
        num_nodes = self.num_users + self.num_items
        for name, param in self.backbone.named_parameters():
            if param.dim() == 2 and param.size(0) == num_nodes:
                return name, param
        raise ValueError(
            "generative alignment masks the backbone's input embedding table, but the backbone has no "
            f"({num_nodes}, d) parameter"
        )

    def _training_propagation(self) -> tuple[Tensor, Tensor | None]:
        """The step's embeddings and its ``(num_nodes,)`` bool mask of masked nodes (:obj:`None`
        unless a term defines the ``mask_input`` hook, see :class:`~darec.module.AlignmentHost`)."""
        maskers = [term for term in self.objective.terms.values() if callable(getattr(term, "mask_input", None))]
        if not maskers:
            return self._propagate(), None
        name, table = self._input_table()
        masked = None
        for term in maskers:
            table, mask = term.mask_input(table, self._training_generator())
            masked = mask if masked is None else masked | mask
        return self._propagate((name, table)), masked

    def _training_generator(self) -> torch.Generator:
        """The module's own source of randomness in training (the masked nodes of masking terms, the
        ``align_batch_size`` subsample), on the module's device.

        Lightning does not save or restore the global random state, so draws from it make a resumed
        fit differ from the uninterrupted one. This generator is saved in checkpoints and restored
        on resume; it is seeded on first use from :func:`torch.initial_seed` (the seed of
        :func:`lightning.seed_everything`), offset so that its draws differ from the data module's
        negative sampler, which starts from the same seed."""
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

    # -- views ---------------------------------------------------------------------------------
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

    def _step_views(self, emb: Tensor, batch: dict[str, Tensor], masked: Tensor | None) -> StepViews:
        """The step's views per side, with the stacked projections and the row count of each side.

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
        return StepViews(views, parts=parts, sizes=sizes)
