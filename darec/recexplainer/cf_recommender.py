"""A trained :class:`~darec.DaRecModule` (MF, LightGCN, with or without alignment) as a frozen RecExplainer target."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from darec.recexplainer.recommender import _checked_ids, _gather

__all__ = ["CFRecommender"]


class CFRecommender(nn.Module):
    r"""A trained :class:`~darec.DaRecModule`, frozen, as a :class:`~darec.recexplainer.Recommender`.

    The module's ``forward()`` gives the ``(num_users + num_items, d)`` embeddings it ranks with
    (the backbone's propagated embeddings, or, with ``score_with="disentangled"``, the
    concatenated shared and specific parts): the first ``num_users`` rows are :math:`e_u`, the
    others :math:`e_i`, and :math:`f(u, i) = \langle e_u, e_i \rangle`, exactly the scores of
    :meth:`DaRecModule.recommend <darec.DaRecModule.recommend>`. Matrix factorisation and LightGCN
    backbones, with or without DaRec's alignment, all work.

    The target is frozen here: the module is put in eval mode with ``requires_grad=False`` (and
    stays in eval mode when a parent calls ``train()``), and the embeddings are computed once,
    without gradient, at construction, as a buffer that follows the adapter to its device (not
    saved in a ``state_dict``: the module's own weights are). They are plain tensors, not
    inference-mode ones, so a trainable connector may take them as input.

    Args:
        module (DaRecModule): the trained module, with its training graph (fitted, loaded with
            ``DaRecModule.load_from_checkpoint`` or given ``set_graph``); see :meth:`from_checkpoint`.

    Attributes:
        module (DaRecModule): the frozen module.
        histories (list[list[int]]): each user's training items, ascending (the pairs the module
            was trained on, which its checkpoint keeps).

    Example:
        >>> from darec import DaRecModule
        >>> from darec.backbones import MatrixFactorization
        >>> model = DaRecModule(MatrixFactorization(num_nodes=7, embedding_dim=8), num_users=3, num_items=4)
        >>> model.set_graph(torch.tensor([[0, 0], [1, 1], [2, 3]]))
        >>> target = CFRecommender(model)
        >>> target.score(torch.tensor([0, 2])).shape, target.item_embeddings().shape, target.histories
        (torch.Size([2, 4]), torch.Size([4, 8]), [[0], [1], [3]])
        >>> scores = target.score(torch.tensor([0]), torch.tensor([1, 3]))
        >>> torch.allclose(scores, target.user_embeddings(torch.tensor([0])) @ target.item_embeddings()[[1, 3]].T)
        True
    """

    embeddings: Tensor

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        for name in ("num_users", "num_items"):
            if not isinstance(getattr(module, name, None), int):
                raise TypeError(
                    f"CFRecommender wraps a trained darec.DaRecModule (or a module with `num_users`, `num_items` and "
                    f"forward() returning the stacked (num_users + num_items, d) embeddings); {type(module).__name__} has "
                    f"no `{name}` (a DaRecModule takes its sizes from its data: fit it, load it from a checkpoint or call "
                    "set_graph(...) first)"
                )
        self.module = module
        module.eval()
        module.requires_grad_(False)
        with torch.no_grad():
            embeddings = module().detach().float()
        expected = module.num_users + module.num_items
        if embeddings.dim() != 2 or embeddings.size(0) != expected:
            raise ValueError(
                f"{type(module).__name__}() returned embeddings of shape {tuple(embeddings.shape)}, not "
                f"({expected}, d) for its {module.num_users} users and {module.num_items} items"
            )
        self.register_buffer("embeddings", embeddings.clone(), persistent=False)
        pairs = getattr(module, "_train_pairs", None)
        self.histories: list[list[int]] = [[] for _ in range(module.num_users)]
        if pairs is not None:
            for user, item in sorted(map(tuple, torch.as_tensor(pairs).tolist())):
                self.histories[user].append(item)

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, datamodule: Any = None, map_location: Any = "cpu", **kwargs: Any
    ) -> CFRecommender:
        """Loads a :class:`~darec.DaRecModule` checkpoint and checks it against the data it is to explain.

        The file is read with :func:`~darec.module.read_checkpoint` (a damaged or foreign file is
        named as such), then compared with ``datamodule``'s interactions before the model is
        built: the numbers of users and items, the raw ids of both (so that internal item ``i``
        is the same item on both sides, and titles are looked up right) and the training pairs.
        Any difference stops here with a sentence that says what differs, e.g. ``"the checkpoint
        has 1,682 items, the data 1,447"``.

        Args:
            path (str or os.PathLike): the checkpoint (``darec fit`` writes them under
                ``lightning_logs/``).
            datamodule (RecDataModule, optional): the data the model was trained on; without it,
                nothing is compared.
            map_location: where the tensors land. (default: :obj:`"cpu"`)
            **kwargs: passed to :meth:`DaRecModule.load_from_checkpoint
                <darec.DaRecModule.load_from_checkpoint>` (e.g. ``trusted_classes``).

        Raises:
            FileNotFoundError: ``path`` does not exist.
            CheckpointError: ``path`` is not a (readable) darec checkpoint.
            ValueError: it is not a :class:`~darec.DaRecModule` checkpoint, or it does not match the data.
        """
        from darec.module import DaRecModule
        from darec.module.checkpoint import read_checkpoint

        path = Path(path).expanduser()
        checkpoint = read_checkpoint(path)
        state = checkpoint["darec"]
        if state.get("train_pairs") is None or state.get("num_users") is None:
            raise ValueError(
                f"{path} is not a DaRecModule checkpoint (it holds no user-item training pairs); a sequential model's "
                "checkpoint is loaded with SequentialRecommender.from_checkpoint(path, SequenceDataModule)"
            )
        if datamodule is not None:
            problems = _differences(state, datamodule.interactions)
            if problems:
                raise ValueError(
                    f"{path} does not match the data: {'; '.join(problems)}. Load the checkpoint with the data (and "
                    "split) it was trained on"
                )
        module = DaRecModule.load_from_checkpoint(path, map_location=map_location, **kwargs)
        return cls(module)

    def train(self, mode: bool = True) -> CFRecommender:
        """Sets the adapter's mode; the target stays in eval mode (it is frozen)."""
        super().train(mode)
        self.module.eval()
        return self

    @property
    def num_users(self) -> int:
        return int(self.module.num_users)

    @property
    def num_items(self) -> int:
        return int(self.module.num_items)

    @property
    def dim(self) -> int:
        return int(self.embeddings.size(1))

    def item_embeddings(self) -> Tensor:
        """``(num_items, d)`` float32 item vectors."""
        return self.embeddings[self.num_users :]

    def user_embeddings(self, users: Tensor) -> Tensor:
        """``(n, d)`` float32 vectors of ``users`` ``(n,)``.

        Raises:
            ValueError: a user id is outside ``[0, num_users)``.
        """
        return self.embeddings[_checked_ids(users, self.num_users, "user", self.embeddings.device)]

    def score(self, users: Tensor, items: Tensor | None = None) -> Tensor:
        """``(n, num_items)`` float32 scores of ``users`` ``(n,)``, or ``(n, m)`` at ``items`` (``(m,)`` or ``(n, m)``).

        Raises:
            ValueError: a user or item id is out of range, or ``items`` has another shape.
        """
        return _gather(self.user_embeddings(users) @ self.item_embeddings().T, items)

    def extra_repr(self) -> str:
        return f"num_users={self.num_users}, num_items={self.num_items}, dim={self.dim}"


def _count(number: int, what: str) -> str:
    return f"{number:,} {what}"


def _differences(state: dict[str, Any], data: Any) -> list[str]:
    """How a DaRecModule checkpoint's ``"darec"`` entry differs from the data's :class:`~darec.data.Interactions`."""
    problems = []
    for name in ("users", "items"):
        saved, found = int(state[f"num_{name}"]), int(getattr(data, f"num_{name}"))
        if saved != found:
            problems.append(f"the checkpoint has {_count(saved, name)}, the data {found:,}")
    if problems:
        return problems
    for name in ("user", "item"):
        saved = state.get(f"{name}_ids")
        found = getattr(data, f"{name}_ids", None)
        if saved is None or found is None:
            continue
        saved, found = np.asarray(saved).astype(str), np.asarray(found).astype(str)
        differ = np.flatnonzero(saved != found)
        if len(differ):
            k = int(differ[0])
            problems.append(
                f"{len(differ):,} of the {len(saved):,} {name}s have other raw ids (internal {name} {k} is "
                f"{str(saved[k])!r} in the checkpoint, {str(found[k])!r} in the data)"
            )
    if problems:
        return problems
    saved = torch.unique(torch.as_tensor(state["train_pairs"], dtype=torch.long), dim=0)
    found = torch.unique(torch.as_tensor(np.asarray(data.train), dtype=torch.long), dim=0)
    if saved.shape != found.shape or not torch.equal(saved, found):
        problems.append(
            f"the checkpoint was trained on {len(saved):,} training pairs, the data's training split has "
            f"{len(found):,}{'' if len(saved) != len(found) else ' other ones'} (another split or seed?)"
        )
    return problems
