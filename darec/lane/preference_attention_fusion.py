"""The LANE Lightning module: a sequential backbone whose states attend to the user's preferences (LN-3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from darec.lane.preference_attention import PreferenceAttention
from darec.module.sequential_module import SequentialModule

__all__ = ["PreferenceAttentionFusion"]


class PreferenceAttentionFusion(SequentialModule):
    r"""SASRec (or any sequential backbone) with LANE's preference attention, trained and evaluated as a :class:`~darec.module.SequentialModule`.

    The backbone's states :math:`H_u` of a user's sequence attend to the user's ``m`` preference
    embeddings :math:`P_u` (:class:`~darec.lane.PreferenceAttention`: multi-head attention,
    residual, layer norm, ReLU feed-forward, residual, layer norm), and the fused state scores
    the items with the backbone's item table: :math:`\mathrm{score}(u, i) = F_{u,\text{last}} \cdot e_i`.
    Everything else is :class:`~darec.module.SequentialModule`'s: BCE with one sampled negative
    per position (the backbone is trained jointly, not frozen), Adam, full and sampled ranking
    (``val/full/*``, ``val/sampled/*``), ``item_init="titles"``.

    The preference embeddings come from the data module
    (:attr:`SequenceDataModule.preference_embeddings <darec.data.SequenceDataModule.preference_embeddings>`,
    set with ``SequenceDataModule(preferences="prefs.jsonl")``) in :meth:`setup`, or from
    :meth:`set_preferences`; they are a buffer outside the checkpoint (the preference file and
    the embedding cache hold them). Batches must carry ``user``, the row of that table.

    :meth:`preference_weights` gives the weight of each preference for a user, from the
    backbone's last state (LANE's single-head weights): the numbers the explanation prompt shows.

    - [0] Zhao et al., "LANE", arXiv:2407.02833.

    Args:
        backbone (torch.nn.Module): the sequential model, with ``sequence_states(seq)`` and
            ``item_embeddings()`` (e.g. :class:`~darec.backbones.SASRec`; or its ``class_path`` spec).
        preference_dim (int): width of the preference embeddings (384 for MiniLM). (default: :obj:`384`)
        num_heads (int): attention heads; must divide the backbone's width. (default: :obj:`4`)
        dropout (float): dropout of the preference attention. (default: :obj:`0.5`)
        lr (float): Adam learning rate. (default: :obj:`1e-3`)
        weight_decay (float): Adam weight decay. (default: :obj:`0.0`)
        ks (Sequence[int]): cut-offs of the full-ranking metrics. (default: ``(5, 10, 20)``)
        sampled_ks (Sequence[int]): cut-offs of the sampled-ranking metrics. (default: ``(5, 10)``)
        item_init (str): ``"random"`` or ``"titles"``. (default: :obj:`"random"`)
        predict_k (int): items recommended per user by ``predict``. (default: :obj:`20`)
        predict_exclude (str, optional): what ``predict`` never recommends (``"known"``, ``"train"``
            or :obj:`None`, as :meth:`~darec.module.SequentialModule.recommend`). (default: :obj:`"known"`)

    Example:
        >>> from darec.backbones import SASRec
        >>> model = PreferenceAttentionFusion(SASRec(num_items=5, embedding_dim=8, max_len=4), preference_dim=6, num_heads=2)
        >>> model.set_preferences(torch.randn(3, 4, 6))             # 3 users, m = 4 preferences each
        >>> batch = {"user": torch.tensor([0, 2]), "seq": torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])}
        >>> weights = model.preference_weights(batch)
        >>> weights.shape, bool(torch.allclose(weights.sum(-1), torch.ones(2)))
        (torch.Size([2, 4]), True)
        >>> model.score_items(batch["seq"], batch["user"]).shape
        torch.Size([2, 5])
    """

    preferences: Tensor

    def __init__(
        self,
        backbone: nn.Module,
        preference_dim: int = 384,
        num_heads: int = 4,
        dropout: float = 0.5,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        ks: Sequence[int] = (5, 10, 20),
        sampled_ks: Sequence[int] = (5, 10),
        item_init: str = "random",
        predict_k: int = 20,
        predict_exclude: str | None = "known",
    ) -> None:
        super().__init__(
            backbone, lr=lr, weight_decay=weight_decay, ks=ks, sampled_ks=sampled_ks, item_init=item_init,
            predict_k=predict_k, predict_exclude=predict_exclude,
        )  # fmt: skip
        hidden = int(self.backbone.item_embeddings().size(1))
        if hidden % num_heads:
            raise ValueError(f"`num_heads` ({num_heads}) must divide the backbone's width ({hidden})")
        self.fusion = PreferenceAttention(hidden, preference_dim, num_heads, dropout)
        self.register_buffer("preferences", torch.zeros(0, 0, preference_dim), persistent=False)

    # -- preferences ---------------------------------------------------------------------------
    def set_preferences(self, embeddings: Tensor) -> None:
        """Sets the ``(num_users, m, preference_dim)`` preference embeddings (row ``u`` for user ``u``).

        Raises:
            ValueError: ``embeddings`` has another width than ``preference_dim``, or holds NaN/inf.
        """
        embeddings = torch.as_tensor(embeddings).detach().float()
        if embeddings.dim() != 3 or embeddings.size(-1) != self.fusion.preference_dim:
            raise ValueError(
                f"the preference embeddings must have shape (num_users, m, {self.fusion.preference_dim}), got "
                f"{tuple(embeddings.shape)}; set preference_dim to the width of the preference encoder"
            )
        if not torch.isfinite(embeddings).all():
            raise ValueError("the preference embeddings hold NaN or infinite values")
        self.preferences = embeddings.clone().to(self.preferences.device)

    def user_preferences(self, users: Tensor) -> Tensor:
        """``(B, m, p)``: the preference embeddings of ``users`` ``(B,)``.

        Raises:
            RuntimeError: no preferences were set.
            IndexError: a user has no row.
        """
        if self.preferences.numel() == 0:
            raise RuntimeError(
                "PreferenceAttentionFusion has no preference embeddings: give the data module a preference file "
                "(SequenceDataModule(preferences=...)) or call set_preferences(...)"
            )
        users = users.to(self.preferences.device).long()
        if len(users) and (users.min() < 0 or users.max() >= len(self.preferences)):
            raise IndexError(f"user {int(users.max())} has no preferences (there are {len(self.preferences)} users)")
        return self.preferences[users]

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None:
            return
        embeddings = getattr(datamodule, "preference_embeddings", None)
        if embeddings is None and self.preferences.numel() == 0:
            raise ValueError(
                "PreferenceAttentionFusion needs the users' preferences, but the data module has none: give it "
                "`preferences` (a file written by darec.lane.PreferenceExtractor)"
            )
        if embeddings is not None:
            self.set_preferences(embeddings)

    # -- states --------------------------------------------------------------------------------
    def sequence_states(self, batch: Mapping[str, Tensor]) -> Tensor:  # type: ignore[override]
        """``(B, L, d)`` fused states of ``batch["seq"]`` with the preferences of ``batch["user"]``."""
        if "user" not in batch:
            raise TypeError(
                "PreferenceAttentionFusion needs the users of the sequences (the rows of their preferences): "
                "give batches a 'user' entry, or recommend(users, sequences=...)"
            )
        states = self.backbone.sequence_states(batch["seq"])
        fused = self.fusion(states, self.user_preferences(batch["user"]).to(states.dtype))
        return fused * (batch["seq"] != 0).unsqueeze(-1).to(fused.dtype)

    def forward(self, seq: Tensor, users: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """``(B, d)``: the fused state after the last position of ``seq`` for ``users`` ``(B,)``."""
        if users is None:
            raise TypeError("PreferenceAttentionFusion needs the users of the sequences: call model(seq, users)")
        return self.sequence_states({"seq": seq, "user": users})[:, -1]

    def preference_weights(self, batch: Mapping[str, Tensor] | Tensor, users: Tensor | None = None) -> Tensor:
        r"""``(B, m)`` weight of each preference of each user; rows sum to 1.

        LANE's single-head weights from the backbone's last state :math:`h_u`:
        :math:`\mathrm{softmax}\big((h_u W_q)(P_u W_k)^\top / \sqrt{d}\big)`
        (:meth:`PreferenceAttention.weights <darec.lane.PreferenceAttention.weights>`).

        Args:
            batch: a batch with ``seq`` ``(B, L)`` and ``user`` ``(B,)``, or the ``seq`` tensor
                itself with ``users`` given.
            users (Tensor, optional): ``(B,)`` users, when ``batch`` is a tensor.
        """
        if isinstance(batch, Tensor):
            if users is None:
                raise TypeError("preference_weights(seq, users) needs the users of the sequences")
            batch = {"seq": batch, "user": users}
        state = self.backbone.sequence_states(batch["seq"])[:, -1]
        return self.fusion.weights(state, self.user_preferences(batch["user"]).to(state.dtype))

    @torch.no_grad()
    def score_items(self, seq: Tensor, users: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """``(B, num_items)`` float32 scores of items ``1 .. num_items`` (column ``i - 1``) for ``users`` after ``seq``."""
        return self(seq, users).float() @ self.backbone.item_embeddings()[1:].float().T
