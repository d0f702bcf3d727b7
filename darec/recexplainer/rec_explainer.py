"""A trained RecExplainer, ready to be asked about users and items of its target recommender."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from darec.recexplainer.alignment_task import ITEM_TOKEN, USER_TOKEN
from darec.recexplainer.recexplainer_module import RecExplainerModule
from darec.recexplainer.recommender import Recommender

__all__ = ["EXPLAIN_TEMPLATES", "RecExplainer"]

#: The question :meth:`RecExplainer.explain` asks, by the mode the explainer was trained in
#: (``str.format`` fields ``{user}``: the user's phrase, ``{item}``: the item's phrase).
EXPLAIN_TEMPLATES = {
    "question": "Would the recommender consider {item} a good match for {user}? Answer Yes or No, then explain why.",
}

_SLOT = re.compile(re.escape(USER_TOKEN) + "|" + re.escape(ITEM_TOKEN))


class RecExplainer:
    """Asks a trained :class:`~darec.recexplainer.RecExplainerModule` about its target's users and items.

    A question holds ``<user>`` and ``<item>`` placeholders where the mode puts them: each
    ``<user>`` receives the vector of ``user`` from the target, each ``<item>`` that of ``item``
    (intention and hybrid modes). :meth:`explain` builds the question the way the training tasks
    name users and items: with placeholders only (intention), placeholders followed by the history's
    titles and the item's title (hybrid), or the titles only (behaviour).

    Args:
        module (RecExplainerModule): the trained explainer.
        target (Recommender): the recommender it was aligned with.
        catalog (sequence of str): item titles, ``catalog[i]`` for item ``i``.
        mode (str): the mode it was trained in. (default: :obj:`"intention"`)
        max_history (int): history titles named in a hybrid or behaviour question. (default: :obj:`20`)

    Example:
        >>> # explainer = RecExplainer.from_checkpoint("best.ckpt", datamodule)
        >>> # explainer.explain(user=12, item=49)
    """

    def __init__(
        self,
        module: RecExplainerModule,
        target: Recommender,
        catalog: Sequence[str],
        mode: str = "intention",
        max_history: int = 20,
    ) -> None:
        if mode not in ("behavior", "intention", "hybrid"):
            raise ValueError(f"`mode` must be 'behavior', 'intention' or 'hybrid', got {mode!r}")
        if len(catalog) != int(target.num_items):
            raise ValueError(f"the catalog has {len(catalog):,} titles for the target's {int(target.num_items):,} items")
        self.module, self.target, self.catalog = module.eval(), target, list(catalog)
        self.mode, self.max_history = mode, int(max_history)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], datamodule: Any, **kwargs: Any) -> RecExplainer:
        """The explainer of a ``darec fit`` checkpoint of :class:`~darec.recexplainer.RecExplainerModule`.

        Args:
            path: the checkpoint (it holds the trainable parts; the LM is rebuilt from its path).
            datamodule (RecExplainerDataModule): the data module of the run (its target and titles).
            **kwargs: passed to :meth:`RecExplainerModule.load_from_checkpoint`.
        """
        from darec.recexplainer.catalog import item_catalog

        module = RecExplainerModule.load_from_checkpoint(path, map_location="cpu", **kwargs)
        return cls(module, datamodule.target, item_catalog(datamodule.data), datamodule.mode, datamodule.max_history)

    # -- questions ---------------------------------------------------------------------------------
    def _check(self, user: int | None, item: int | None) -> None:
        if user is not None and not 0 <= int(user) < int(self.target.num_users):
            raise ValueError(f"user {user} is not among the target's users (internal ids 0 .. {int(self.target.num_users) - 1})")
        if item is not None and not 0 <= int(item) < int(self.target.num_items):
            raise ValueError(f"item {item} is not among the target's items (internal ids 0 .. {int(self.target.num_items) - 1})")

    def _vectors(self, question: str, user: int | None, item: int | None) -> Tensor | None:
        slots = _SLOT.findall(question)
        if not slots:
            return None
        rows = []
        with torch.no_grad():
            for slot in slots:
                if slot == USER_TOKEN:
                    if user is None:
                        raise ValueError(f"the question has a {USER_TOKEN} placeholder but no user is given")
                    rows.append(torch.as_tensor(self.target.user_embeddings(torch.tensor([int(user)])))[0].float().cpu())
                else:
                    if item is None:
                        raise ValueError(f"the question has an {ITEM_TOKEN} placeholder but no item is given")
                    rows.append(torch.as_tensor(self.target.item_embeddings())[int(item)].float().cpu())
        return torch.stack(rows)

    def ask(self, question: str, user: int | None = None, item: int | None = None, **generation: Any) -> str:
        """The explainer's answer to ``question``, its placeholders filled with the vectors of ``user`` and ``item``.

        Args:
            question (str): the question, with ``<user>``/``<item>`` placeholders where the vectors go.
            user (int, optional): internal id of the user of every ``<user>``.
            item (int, optional): internal id of the item of every ``<item>``.
            **generation: passed to :meth:`RecEmbeddingInjector.generate_text
                <darec.recexplainer.RecEmbeddingInjector.generate_text>` (e.g. ``max_new_tokens``).

        Raises:
            ValueError: an id outside the target, or a placeholder without its id.
        """
        self._check(user, item)
        vectors = self._vectors(question, user, item)
        generation.setdefault("max_new_tokens", 96)
        return self.module.generate_text([question], None if vectors is None else [vectors], **generation)[0]

    def question(self, user: int, item: int) -> str:
        """The question :meth:`explain` asks about ``user`` and ``item``, in the explainer's mode."""
        self._check(user, item)
        history = list(getattr(self.target, "histories", [[]] * (int(user) + 1))[int(user)])[-self.max_history :]
        titles = "; ".join(self.catalog[i] for i in history)
        # the phrases of AlignmentTaskBuilder's tasks, so that the question reads like the training prompts
        if self.mode == "intention":
            user_phrase, item_phrase = f"the user {USER_TOKEN}", ITEM_TOKEN
        elif self.mode == "hybrid":
            user_phrase = f"the user {USER_TOKEN}, who has interacted with: {titles}"
            item_phrase = f"{ITEM_TOKEN} {self.catalog[item]}"
        else:
            user_phrase, item_phrase = f"the user who has interacted with: {titles}", self.catalog[item]
        return EXPLAIN_TEMPLATES["question"].format(user=user_phrase, item=item_phrase)

    def explain(self, user: int, item: int, **generation: Any) -> dict[str, Any]:
        """The explainer's explanation of the target's view of ``(user, item)``, with the target's score and rank.

        Returns:
            dict: ``user``, ``item``, ``title``, ``score`` (the target's), ``rank`` (1-based, among
            the items outside the user's training history; :obj:`None` for a history item),
            ``question`` and ``answer``.
        """
        question = self.question(user, item)
        with torch.no_grad():
            scores = torch.as_tensor(self.target.score(torch.tensor([int(user)])))[0].float().cpu()
        history = set(getattr(self.target, "histories", [[]] * (int(user) + 1))[int(user)])
        rank = None
        if item not in history:
            mask = torch.ones_like(scores, dtype=torch.bool)
            mask[list(history)] = False
            rank = int((scores[mask] > scores[item]).sum()) + 1
        answer = self.ask(question, user, item, **generation)
        return {
            "user": int(user), "item": int(item), "title": self.catalog[item], "score": float(scores[item]),
            "rank": rank, "question": question, "answer": answer,
        }  # fmt: skip

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mode={self.mode!r}, items={len(self.catalog):,})"
