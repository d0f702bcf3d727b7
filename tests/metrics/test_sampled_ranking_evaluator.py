"""Tests of darec.metrics.SampledRankingEvaluator: known ranks, ties, fixed seeded negatives."""

from __future__ import annotations

import math

import pytest
import torch

from darec.metrics import SampledRankingEvaluator

HISTORIES = [[1, 2, 3], [4, 5], [6], [7, 8, 9, 10]]


def _evaluator(**kwargs) -> SampledRankingEvaluator:
    defaults = {"num_items": 40, "num_negatives": 10, "ks": (5, 10), "seed": 3}
    return SampledRankingEvaluator(HISTORIES, **{**defaults, **kwargs})


def _scores_with_rank(rank: int, n: int = 10) -> torch.Tensor:
    """One row whose true item (column 0) has exactly ``rank`` sampled items above it."""
    negatives = torch.tensor([2.0] * rank + [0.0] * (n - rank))
    return torch.cat([torch.tensor([1.0]), negatives]).unsqueeze(0)


def test_known_ranks_give_hand_computed_metrics():
    ev = _evaluator()
    for rank in (0, 3, 7, 10):
        ev.update(_scores_with_rank(rank))
    got = {k: round(v.item(), 6) for k, v in ev.compute().items()}
    ndcg = lambda r: 1 / math.log2(r + 2)  # noqa: E731
    assert got == {
        "hit_rate@5": 0.5,  # ranks 0 and 3
        "hit_rate@10": 0.75,  # ranks 0, 3 and 7; rank 10 is last of 11
        "ndcg@5": round((ndcg(0) + ndcg(3)) / 4, 6),
        "ndcg@10": round((ndcg(0) + ndcg(3) + ndcg(7)) / 4, 6),
    }


def test_ties_count_against_the_true_item():
    ev = _evaluator(ks=(1,))
    ev.update(torch.zeros(2, 11))  # a constant model
    assert ev.compute()["hit_rate@1"] == 0
    assert SampledRankingEvaluator.ranks(torch.zeros(1, 11)).item() == 10


def test_negatives_are_unseen_distinct_and_seeded():
    ev = _evaluator(padding_idx=0)
    assert ev.negatives.shape == (4, 10)
    for history, row in zip(HISTORIES, ev.negatives.tolist()):
        assert len(set(row)) == 10 and not set(row) & set(history) and 0 not in row
    assert torch.equal(ev.negatives, _evaluator(padding_idx=0).negatives)  # same seed, same table
    assert not torch.equal(ev.negatives, _evaluator(padding_idx=0, seed=4).negatives)


def test_candidates_put_the_target_first_and_skip_users_outside_the_subset():
    ev = _evaluator(max_users=2, user_seed=1)
    assert len(ev.users) == 2
    assert torch.equal(ev.users, _evaluator(max_users=2, user_seed=1).users)
    users, targets = torch.arange(4), torch.tensor([11, 12, 13, 14])
    candidates, keep = ev.candidates(users, targets)
    assert keep.sum() == 2 and torch.equal(users[keep], ev.users)
    assert torch.equal(candidates[:, 0], targets[keep]) and torch.equal(candidates[:, 1:], ev.negatives)


def test_prefix_and_reset():
    ev = _evaluator(prefix="val/sampled/")
    ev.update(_scores_with_rank(0))
    assert set(ev.compute()) == {"val/sampled/hit_rate@5", "val/sampled/hit_rate@10", "val/sampled/ndcg@5", "val/sampled/ndcg@10"}
    ev.reset()
    ev.update(_scores_with_rank(9))
    assert ev.compute()["val/sampled/hit_rate@5"] == 0


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="must not exceed"):
        _evaluator(ks=(20,))
    with pytest.raises(ValueError, match="fewer than num_negatives"):
        SampledRankingEvaluator([[0, 1, 2]], num_items=5, num_negatives=3, ks=(1,))
    with pytest.raises(ValueError, match="shape"):
        _evaluator().update(torch.zeros(2, 5))
