import pytest
import torch

from darec.metrics import rank_items, topk_hits


@pytest.mark.parametrize("k", [1, 5, 20])
def test_rank_items_matches_sorted_allowed_items(problem, k):
    scores, exclude, _ = problem
    topk = rank_items(scores, k, exclude=exclude)
    assert topk.shape == (scores.shape[0], k)
    assert topk.dtype == torch.long
    for u in range(scores.shape[0]):
        allowed = [i for i in range(scores.shape[1]) if not exclude[u, i]]
        expected = sorted(allowed, key=lambda i: -scores[u, i].item())[:k]
        assert topk[u].tolist() == expected


def test_rank_items_never_returns_excluded_items(problem):
    scores, exclude, _ = problem
    topk = rank_items(scores, 20, exclude=exclude)
    assert not exclude.gather(1, topk).any()


def test_rank_items_excluded_items_come_last_when_too_few_allowed():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.2]])
    exclude = torch.tensor([[True, True, False, True]])
    topk = rank_items(scores, 3, exclude=exclude)
    assert topk[0, 0].item() == 2
    assert exclude[0, topk[0, 1:]].all()


def test_rank_items_does_not_modify_inputs(problem):
    scores, exclude, _ = problem
    scores_before, exclude_before = scores.clone(), exclude.clone()
    rank_items(scores, 10, exclude=exclude)
    assert torch.equal(scores, scores_before)
    assert torch.equal(exclude, exclude_before)


def test_rank_items_clamps_k_to_the_number_of_items():
    scores = torch.tensor([[0.3, 0.1, 0.2], [0.0, 0.5, 0.4]])
    topk = rank_items(scores, 10)
    assert topk.tolist() == [[0, 2, 1], [1, 2, 0]]


def test_rank_items_without_exclude_equals_topk(problem):
    scores = problem.scores
    assert torch.equal(rank_items(scores, 7), scores.topk(7, dim=1).indices)


def test_rank_items_empty_batch():
    assert rank_items(torch.empty(0, 5), 3).shape == (0, 3)


@pytest.mark.parametrize("k", [0, -1, 2.0, True, None])
def test_rank_items_rejects_bad_k(k):
    with pytest.raises(ValueError, match="`k` must be a positive integer"):
        rank_items(torch.rand(2, 4), k)


def test_rank_items_rejects_bad_inputs():
    with pytest.raises(ValueError, match="`scores` must be a 2-D"):
        rank_items(torch.rand(4), 2)
    with pytest.raises(ValueError, match="`scores` must be a floating-point"):
        rank_items(torch.arange(8).view(2, 4), 2)
    with pytest.raises(ValueError, match="`exclude` must be a bool"):
        rank_items(torch.rand(2, 4), 2, exclude=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="`exclude` must have the shape of `scores`"):
        rank_items(torch.rand(2, 4), 2, exclude=torch.zeros(2, 5, dtype=torch.bool))


def test_topk_hits_looks_up_target():
    target = torch.tensor([[True, False, False, True], [False, True, False, False]])
    topk = torch.tensor([[3, 1], [0, 1]])
    assert topk_hits(topk, target).tolist() == [[True, False], [False, True]]


def test_topk_hits_rejects_bad_inputs():
    target = torch.zeros(2, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="`topk_items` must hold integer"):
        topk_hits(torch.zeros(2, 2), target)
    with pytest.raises(ValueError, match="`topk_items` must be a 2-D"):
        topk_hits(torch.zeros(2, dtype=torch.long), target)
    with pytest.raises(ValueError, match="`target` must be a bool"):
        topk_hits(torch.zeros(2, 2, dtype=torch.long), target.long())
    with pytest.raises(ValueError, match="`target` must be a 2-D"):
        topk_hits(torch.zeros(2, 2, dtype=torch.long), target[0])
    with pytest.raises(ValueError, match="same batch size"):
        topk_hits(torch.zeros(3, 2, dtype=torch.long), target)
