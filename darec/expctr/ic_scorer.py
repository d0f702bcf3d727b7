"""The ID-model click predictor of ExpCTR's IC alignment: the text-augmented CTR model fed an explanation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from darec.text.encoders import TextEncoder, resolve_encoder

__all__ = ["ICScorer"]


class ICScorer:
    """Predicts clicks with a frozen text-augmented CTR model, the explanation embedded as its text feature.

    ``p = sigmoid(model(user, item, encoder.encode([explanation])))``: the IC alignment's predictor.
    The model is a backbone built with ``text_dim`` equal to the encoder's width (e.g.
    :class:`~darec.ctr.DeepFM`), or a :class:`~darec.ctr.CTRModule` around one, trained on
    explanations of the same kind (stage 2 of :class:`~darec.expctr.ExpCTRLoop`). It is put in
    evaluation mode and never updated.

    Args:
        model (torch.nn.Module): the CTR model, called as ``model(user, item, text)`` (a
            :class:`~darec.ctr.CTRModule` is unwrapped to its backbone).
        encoder (str or TextEncoder): what embeds the explanations: the encoder the model was
            trained with. (default: :obj:`"all-MiniLM-L6-v2"`)

    Example:
        >>> from darec.ctr import FM
        >>> class Length:  # a stand-in encoder: one feature, the text's length
        ...     cache_key = {"kind": "length"}
        ...     def encode(self, texts): return torch.tensor([[len(t) / 10.0] for t in texts])
        >>> scorer = ICScorer(FM(num_users=2, num_items=3, text_dim=1), Length())
        >>> scorer(["Fine.", "Not for them."], torch.tensor([0, 1]), torch.tensor([2, 0])).shape
        torch.Size([2])
    """

    def __init__(self, model: nn.Module, encoder: str | TextEncoder = "all-MiniLM-L6-v2") -> None:
        backbone = getattr(model, "backbone", model)
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"the IC scorer needs a CTR model (torch.nn.Module), got {type(model).__name__}")
        text_dim = getattr(backbone, "text_dim", None)
        if text_dim == 0:
            raise ValueError(
                f"the CTR model {type(backbone).__name__} has text_dim=0 (ids only): the IC reward needs a text-augmented "
                "model trained on explanations"
            )
        self.model = backbone.eval().requires_grad_(False)
        self.encoder = resolve_encoder(encoder)
        self.text_dim = text_dim

    @torch.no_grad()
    def __call__(self, explanations: Sequence[str], users: Any, items: Any) -> Tensor:
        """``(B,)`` click probabilities of the pairs ``(users[b], items[b])`` with ``explanations[b]``."""
        if isinstance(explanations, str):
            raise TypeError("pass a list of explanations, not one string")
        users = torch.as_tensor(users, dtype=torch.long).reshape(-1)
        items = torch.as_tensor(items, dtype=torch.long).reshape(-1)
        if not len(users) == len(items) == len(explanations):
            raise ValueError(f"{len(explanations)} explanations, {len(users)} users, {len(items)} items: one each")
        if not len(users):
            return torch.empty(0)
        text = torch.as_tensor(self.encoder.encode(list(explanations))).float()
        if self.text_dim is not None and text.shape[-1] != self.text_dim:
            raise ValueError(
                f"the encoder gives {text.shape[-1]}-d embeddings but the CTR model expects text_dim={self.text_dim}: use "
                "the encoder the model was trained with"
            )
        device = next(self.model.parameters()).device
        logits = self.model(users.to(device), items.to(device), text.to(device))
        return logits.float().sigmoid().cpu()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__}, text_dim={self.text_dim})"
