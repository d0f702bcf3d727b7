import math

import pytest
import torch

import darec.functional as DF
from darec.losses import BPRLoss


def naive_bpr(pos, neg):
    return sum(-math.log(1.0 / (1.0 + math.exp(-(p - n)))) for p, n in zip(pos.tolist(), neg.tolist())) / len(pos)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bpr_module_matches_functional_and_reference(dtype):
    torch.manual_seed(0)
    pos, neg = torch.randn(12, dtype=dtype), torch.randn(12, dtype=dtype)
    out = BPRLoss()(pos, neg)
    assert torch.equal(out, DF.bpr_loss(pos, neg))
    assert out.item() == pytest.approx(naive_bpr(pos, neg), rel=1e-5)


def test_bpr_module_log2_and_backward():
    pos = torch.zeros(3, requires_grad=True)
    out = BPRLoss()(pos, torch.zeros(3))
    assert out.item() == pytest.approx(math.log(2.0))
    out.backward()
    assert torch.allclose(pos.grad, torch.full((3,), -0.5 / 3))


def test_bpr_module_has_no_parameters_and_checks_shapes():
    loss = BPRLoss()
    assert list(loss.parameters()) == []
    with pytest.raises(ValueError, match=r"`pos_scores` and `neg_scores` must have the same shape"):
        loss(torch.zeros(3), torch.zeros(2))
