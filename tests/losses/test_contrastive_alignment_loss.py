import math

import pytest
import torch

import darec.functional as DF
from darec.losses import ContrastiveAlignmentLoss
from darec.nn import ProjectionHead


def naive_info_nce(a, b, temperature):
    ua = [[v / math.sqrt(sum(w * w for w in r)) for v in r] for r in a.tolist()]
    ub = [[v / math.sqrt(sum(w * w for w in r)) for v in r] for r in b.tolist()]
    total = 0.0
    for i, anchor in enumerate(ua):
        logits = [sum(x * y for x, y in zip(anchor, other)) / temperature for other in ub]
        total += -logits[i] + math.log(sum(math.exp(v) for v in logits))
    return total / len(ua)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_contrastive_module_matches_reference(dtype):
    torch.manual_seed(0)
    loss = ContrastiveAlignmentLoss(llm_dim=12, cf_dim=4, temperature=0.3).to(dtype)
    cf, llm = torch.randn(10, 4, dtype=dtype), torch.randn(10, 12, dtype=dtype)
    out = loss.compute(cf, llm)
    projected = loss.projector(llm)
    assert torch.equal(out, DF.contrastive_alignment(cf, projected, 0.3))
    assert out.item() == pytest.approx(naive_info_nce(cf, projected.detach(), 0.3), rel=1e-5)


def test_contrastive_module_trains_the_projector():
    torch.manual_seed(1)
    loss = ContrastiveAlignmentLoss(llm_dim=16, cf_dim=4)
    assert isinstance(loss.projector, ProjectionHead)
    assert (loss.projector.in_dim, loss.projector.hidden_dim, loss.projector.out_dim) == (16, 10, 4)
    cf = torch.randn(32, 4, requires_grad=True)
    llm = torch.randn(32, 16)
    loss.compute(cf, llm).backward()
    assert torch.isfinite(cf.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in loss.parameters())
    # A few steps of the projector alone make the CF rows easier to identify:
    cf = cf.detach()
    opt = torch.optim.Adam(loss.parameters(), lr=1e-2)
    before = loss.compute(cf, llm).item()
    for _ in range(30):
        opt.zero_grad()
        loss.compute(cf, llm).backward()
        opt.step()
    assert loss.compute(cf, llm).item() < before


def test_contrastive_module_validates_arguments():
    with pytest.raises(ValueError, match=r"`temperature` must be a finite number > 0"):
        ContrastiveAlignmentLoss(8, 4, temperature=0.0)
    with pytest.raises(ValueError, match=r"`in_dim` must be >= 1"):
        ContrastiveAlignmentLoss(0, 4)
    with pytest.raises(ValueError, match=r"`hidden_dim` must be >= 1"):
        ContrastiveAlignmentLoss(8, 4, hidden_dim=0)
    loss = ContrastiveAlignmentLoss(8, 4, hidden_dim=5)
    assert "temperature=0.2" in repr(loss)
    with pytest.raises(ValueError, match=r"`a` and `b` must have the same shape"):
        loss.compute(torch.randn(3, 4), torch.randn(5, 8))
