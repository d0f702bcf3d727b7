"""The Recommender protocol: what a target must have, and the error that names what it lacks."""

from __future__ import annotations

import pytest
import torch

from darec.recexplainer import Recommender, check_recommender
from tests.recexplainer.conftest import KnownScores


def test_any_object_with_the_members_is_a_target():
    target = KnownScores()
    assert isinstance(target, Recommender) and check_recommender(target) is target


def test_a_missing_member_is_named():
    class NoUsers:
        num_users, num_items, dim = 2, 3, 4

        def score(self, users, items=None): ...

        def item_embeddings(self): ...

    with pytest.raises(TypeError, match="NoUsers is not a darec.recexplainer.Recommender: it lacks user_embeddings;"):
        check_recommender(NoUsers())
    assert not isinstance(torch.nn.Linear(2, 2), Recommender)
