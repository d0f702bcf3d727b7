import math

import pytest
import torch

from darec.functional import bpr_loss


def leaf64(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def naive_bpr(pos, neg):
    total = 0.0
    for p, n in zip(pos.tolist(), neg.tolist()):
        total += math.log1p(math.exp(-(p - n)))
    return total / len(pos)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bpr_matches_naive_reference(dtype):
    torch.manual_seed(0)
    pos, neg = torch.randn(17, dtype=dtype), torch.randn(17, dtype=dtype)
    out = bpr_loss(pos, neg)
    assert out.dtype == dtype and out.shape == ()
    assert out.item() == pytest.approx(naive_bpr(pos, neg), rel=1e-5)


def test_bpr_is_log2_when_tied():
    scores = torch.randn(9)
    assert bpr_loss(scores, scores).item() == pytest.approx(math.log(2.0))


def test_bpr_is_stable_for_large_gaps():
    assert bpr_loss(torch.tensor([1000.0]), torch.tensor([0.0])).item() == pytest.approx(0.0, abs=1e-12)
    assert bpr_loss(torch.tensor([-1000.0]), torch.tensor([0.0])).item() == pytest.approx(1000.0)


def test_bpr_decreases_as_positives_win():
    neg = torch.zeros(5)
    assert bpr_loss(torch.full((5,), 2.0), neg) < bpr_loss(torch.full((5,), 1.0), neg)


def test_bpr_accepts_matching_2d_scores():
    pos, neg = torch.randn(4, 3), torch.randn(4, 3)
    assert bpr_loss(pos, neg).item() == pytest.approx(naive_bpr(pos.flatten(), neg.flatten()), rel=1e-5)


def test_bpr_gradients():
    pos = torch.randn(6, requires_grad=True)
    neg = torch.randn(6, requires_grad=True)
    bpr_loss(pos, neg).backward()
    assert torch.isfinite(pos.grad).all() and torch.isfinite(neg.grad).all()
    assert torch.allclose(pos.grad, -neg.grad)
    args = (leaf64(5), leaf64(5))
    assert torch.autograd.gradcheck(bpr_loss, args)


def test_bpr_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"`pos_scores` and `neg_scores` must have the same shape"):
        bpr_loss(torch.zeros(4), torch.zeros(5))
