r"""The alignment rewards of ExpCTR (EC-3): does an explanation lead a click predictor to the observed label?

Both rewards score a batch of explanations by how well a click predictor that reads them agrees
with the observed labels :math:`y \in \{0, 1\}`: the predictor returns click probabilities
:math:`p`, and each explanation is rewarded by

.. math::
    r = (2y - 1)(2p - 1) \in [-1, 1],

the probability the predictor gives the observed outcome, rescaled so that a perfect predictor
scores :math:`1`, an inverted one :math:`-1` and an uninformed :math:`p = 0.5` scores :math:`0`.
The reward is linear in :math:`p`, so a confidently wrong prediction costs no more than its
probability says (a log-likelihood reward would be unbounded below and dominate a GRPO group).

- **LC alignment** (:func:`lc_reward`): the predictor is an LLM that reads the explanation alone
  (:class:`~darec.expctr.LCScorer`): the explanation must carry the user's real intent.
- **IC alignment** (:func:`ic_reward`): the predictor is the text-augmented ID-based CTR model fed
  the explanation's embedding (:class:`~darec.expctr.ICScorer`): the explanation must agree with
  what the ids know.

An empty explanation gets the minimum reward, :math:`-1`, without being scored (a generator that
answers nothing must not look neutral), and is counted in :attr:`RewardResult.empty`. A predictor
that returns NaN raises a :class:`ValueError` naming the rows, or with ``on_nan="neutral"`` (what
the RL loop uses) gives those explanations reward :math:`0` and counts them in
:attr:`RewardResult.invalid`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["RewardResult", "agreement_rate", "agreement_reward", "ic_reward", "lc_reward"]

_ON_NAN = ("error", "neutral")


def agreement_reward(probabilities: Tensor, labels: Tensor) -> Tensor:
    r"""The per-sample reward :math:`(2y - 1)(2p - 1)` of click probabilities against 0/1 labels.

    Args:
        probabilities (Tensor): ``(B,)`` predicted click probabilities in :math:`[0, 1]`.
        labels (Tensor): ``(B,)`` observed labels, 0 or 1.

    Returns:
        A ``(B,)`` float tensor in :math:`[-1, 1]`.

    Example:
        >>> agreement_reward(torch.tensor([1.0, 0.0, 0.5, 0.8]), torch.tensor([1, 1, 0, 0]))
        tensor([ 1.0000, -1.0000,  0.0000, -0.6000])
    """
    probabilities, labels = _check(probabilities, labels)
    return (2 * labels - 1) * (2 * probabilities - 1) + 0.0  # + 0.0: no negative zero


def agreement_rate(probabilities: Tensor, labels: Tensor) -> float:
    """The share of samples whose thresholded prediction (``p > 0.5``) is the label; ``p = 0.5`` counts one half.

    Example:
        >>> agreement_rate(torch.tensor([0.9, 0.2, 0.5, 0.7]), torch.tensor([1, 0, 1, 0]))
        0.625
    """
    probabilities, labels = _check(probabilities, labels)
    if not len(labels):
        return float("nan")
    hits = torch.where(probabilities == 0.5, 0.5, ((probabilities > 0.5).float() == labels).float())
    return float(hits.mean())


@dataclasses.dataclass
class RewardResult:
    """The rewards of a batch of explanations and how the predictor did on it.

    Attributes:
        rewards (Tensor): ``(B,)`` per-sample rewards in :math:`[-1, 1]`.
        probabilities (Tensor): ``(B,)`` the predictor's click probabilities (NaN where the
            explanation was empty or the predictor gave none).
        agreement (float): :func:`agreement_rate` over the scored samples (NaN when none was).
        empty (int): explanations that were empty or blank (reward :math:`-1`).
        invalid (int): scored explanations whose probability was NaN (reward :math:`0`).
    """

    rewards: Tensor
    probabilities: Tensor
    agreement: float
    empty: int = 0
    invalid: int = 0

    @property
    def mean(self) -> float:
        """The mean reward."""
        return float(self.rewards.mean()) if len(self.rewards) else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """Summary numbers (no tensors), for logs."""
        return {"reward": self.mean, "agreement": self.agreement, "empty": self.empty, "invalid": self.invalid,
                "samples": len(self.rewards)}  # fmt: skip


def lc_reward(
    explanations: Sequence[str], labels: Any, scorer: Callable[[Sequence[str]], Any], *, on_nan: str = "error"
) -> RewardResult:
    """LC alignment: reward explanations by how well an LLM that reads them alone predicts the labels.

    Args:
        explanations (Sequence[str]): one explanation per sample.
        labels: ``(B,)`` observed labels, 0 or 1 (a tensor or a sequence).
        scorer (callable): click probabilities of a list of explanations, e.g.
            :class:`~darec.expctr.LCScorer` (p("Yes") of a frozen LLM), or any function with that
            signature.
        on_nan (str): ``"error"`` or ``"neutral"`` (see the module). (default: :obj:`"error"`)

    Example:
        >>> perfect = lambda texts: [1.0 if "will like" in t else 0.0 for t in texts]
        >>> texts = ["They will like it.", "They will hate it.", ""]
        >>> result = lc_reward(texts, [1, 0, 1], perfect)
        >>> result.rewards, result.agreement, result.empty
        (tensor([ 1.,  1., -1.]), 1.0, 1)
    """
    return _score(explanations, labels, lambda texts, keep: scorer(texts), on_nan)


def ic_reward(
    explanations: Sequence[str], users: Any, items: Any, labels: Any, scorer: Callable[..., Any], *, on_nan: str = "error"
) -> RewardResult:
    """IC alignment: reward explanations by how well the text-augmented CTR model fed them predicts the labels.

    Args:
        explanations (Sequence[str]): one explanation per sample.
        users, items: ``(B,)`` the pairs' user and item rows (the CTR model's ids).
        labels: ``(B,)`` observed labels, 0 or 1.
        scorer (callable): ``scorer(explanations, users, items)`` -> click probabilities, e.g.
            :class:`~darec.expctr.ICScorer`.
        on_nan (str): ``"error"`` or ``"neutral"`` (see the module). (default: :obj:`"error"`)

    Example:
        >>> inverted = lambda texts, users, items: [0.0 if "will like" in t else 1.0 for t in texts]
        >>> result = ic_reward(["They will like it.", "No."], [0, 1], [3, 4], [1, 0], inverted)
        >>> result.rewards.tolist(), result.agreement
        ([-1.0, -1.0], 0.0)
    """
    users = torch.as_tensor(users, dtype=torch.long).reshape(-1)
    items = torch.as_tensor(items, dtype=torch.long).reshape(-1)
    if not len(users) == len(items) == len(explanations):
        raise ValueError(
            f"ic_reward: {len(explanations)} explanations, {len(users)} users and {len(items)} items: one of each per sample"
        )
    return _score(explanations, labels, lambda texts, keep: scorer(texts, users[keep], items[keep]), on_nan)


# -- shared ---------------------------------------------------------------------------------------
def _check(probabilities: Any, labels: Any) -> tuple[Tensor, Tensor]:
    probabilities = torch.as_tensor(probabilities, dtype=torch.float32).reshape(-1)
    labels = torch.as_tensor(labels, dtype=torch.float32).reshape(-1)
    if probabilities.shape != labels.shape:
        raise ValueError(f"{len(probabilities)} probabilities for {len(labels)} labels: one of each per sample")
    if len(labels) and not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(f"labels must be 0 or 1, got {sorted(set(labels.tolist()))[:5]}")
    finite = probabilities[~probabilities.isnan()]
    if len(finite) and bool(((finite < 0) | (finite > 1)).any()):
        raise ValueError("click probabilities must lie in [0, 1] (did the scorer return logits?)")
    return probabilities, labels


def _score(
    explanations: Sequence[str], labels: Any, predict: Callable[[list[str], Tensor], Any], on_nan: str
) -> RewardResult:
    if on_nan not in _ON_NAN:
        raise ValueError(f"`on_nan` must be one of {_ON_NAN}, got {on_nan!r}")
    if isinstance(explanations, str):
        raise TypeError("explanations must be a sequence of strings, got one string")
    texts = [text if isinstance(text, str) else "" for text in explanations]
    labels = torch.as_tensor(labels, dtype=torch.float32).reshape(-1)
    if len(labels) != len(texts):
        raise ValueError(f"{len(texts)} explanations for {len(labels)} labels: one of each per sample")
    keep = torch.tensor([bool(text.strip()) for text in texts], dtype=torch.bool)
    probabilities = torch.full((len(texts),), float("nan"))
    if bool(keep.any()):
        scored = torch.as_tensor(predict([t for t, k in zip(texts, keep.tolist()) if k], keep), dtype=torch.float32)
        if scored.shape != (int(keep.sum()),):
            raise ValueError(f"the scorer returned shape {tuple(scored.shape)} for {int(keep.sum())} explanations")
        probabilities[keep] = scored.detach().cpu()
    nan = keep & probabilities.isnan()
    if bool(nan.any()) and on_nan == "error":
        rows = torch.nonzero(nan).flatten().tolist()
        raise ValueError(f"the scorer returned NaN for {len(rows)} of {len(texts)} explanations (rows {rows[:5]})")
    rewards = torch.full((len(texts),), -1.0)
    ok = keep & ~nan
    rewards[nan] = 0.0
    rewards[ok] = agreement_reward(probabilities[ok], labels[ok])
    agreement = agreement_rate(probabilities[ok], labels[ok]) if bool(ok.any()) else float("nan")
    return RewardResult(rewards, probabilities, agreement, empty=int((~keep).sum()), invalid=int(nan.sum()))
