"""Random full-ranking problems shared by the metric tests."""

from __future__ import annotations

from typing import NamedTuple

import pytest
import torch
from torch import Tensor


class RankingProblem(NamedTuple):
    scores: Tensor  # (U, I) float, tie-free
    exclude: Tensor  # (U, I) bool, already-seen items
    target: Tensor  # (U, I) bool, held-out items, disjoint from `exclude`


def make_problem(num_users: int = 50, num_items: int = 60, seed: int = 0, max_k: int = 20) -> RankingProblem:
    """Tie-free scores; per-user target densities from 0 to 0.5, so some users have more than
    ``max_k`` relevant items and the first five have none; every user keeps ``>= max_k``
    allowed items."""
    gen = torch.Generator().manual_seed(seed)
    scores = torch.rand(num_users, num_items, generator=gen, dtype=torch.float64).float()
    exclude = torch.rand(num_users, num_items, generator=gen) < 0.25
    density = torch.rand(num_users, 1, generator=gen) * 0.5
    target = (torch.rand(num_users, num_items, generator=gen) < density) & ~exclude
    target[:5] = False
    assert ((~exclude).sum(1) >= max_k).all()
    assert all(row.unique().numel() == num_items for row in scores)  # no ties within a user
    return RankingProblem(scores, exclude, target)


@pytest.fixture
def problem() -> RankingProblem:
    return make_problem()


@pytest.fixture
def make_ranking_problem():
    """The :func:`make_problem` factory, for tests that need other sizes or seeds."""
    return make_problem
