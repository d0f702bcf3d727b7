import math

import pytest
import torch

import darec.functional as DF
from darec.losses import GlobalStructureAlignmentLoss


def naive_mse(cf, llm):
    def cos(rows, i, j):
        dot = sum(a * b for a, b in zip(rows[i], rows[j]))
        return dot / (math.sqrt(sum(a * a for a in rows[i])) * math.sqrt(sum(b * b for b in rows[j])))

    c, l = cf.tolist(), llm.tolist()  # noqa: E741
    n = len(c)
    return sum((cos(c, i, j) - cos(l, i, j)) ** 2 for i in range(n) for j in range(n)) / (n * n)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode, temperature", [("mse", 1.0), ("kl", 0.5)])
def test_global_module_matches_functional(dtype, mode, temperature):
    torch.manual_seed(0)
    cf, llm = torch.randn(9, 4, dtype=dtype), torch.randn(9, 12, dtype=dtype)
    out = GlobalStructureAlignmentLoss(mode=mode, temperature=temperature).compute(cf, llm)
    assert torch.equal(out, DF.global_structure_alignment(cf, llm, mode=mode, temperature=temperature))
    if mode == "mse":
        assert out.item() == pytest.approx(naive_mse(cf, llm), rel=1e-5)


@pytest.mark.parametrize("mode", ["mse", "kl"])
def test_global_module_property_and_backward(mode):
    torch.manual_seed(1)
    loss = GlobalStructureAlignmentLoss(mode=mode)
    cf = torch.randn(8, 4, requires_grad=True)
    assert loss.compute(cf, cf.detach()).item() == pytest.approx(0.0, abs=1e-6)
    perm = torch.randperm(8)
    llm = torch.randn(8, 6)
    value = loss.compute(cf, llm)
    assert loss.compute(cf[perm], llm[perm]).item() == pytest.approx(value.item(), rel=1e-5)
    value.backward()
    assert torch.isfinite(cf.grad).all() and cf.grad.abs().sum() > 0


def test_global_module_validates_arguments():
    with pytest.raises(ValueError, match=r"`mode` must be one of \('mse', 'kl'\), got 'l1'"):
        GlobalStructureAlignmentLoss(mode="l1")
    with pytest.raises(ValueError, match=r"`temperature` must be a finite number > 0, got 0"):
        GlobalStructureAlignmentLoss(temperature=0)
    with pytest.raises(ValueError, match=r"must have the same number of rows"):
        GlobalStructureAlignmentLoss().compute(torch.randn(3, 2), torch.randn(4, 2))


def test_global_module_repr():
    assert "mode='kl', temperature=0.5" in repr(GlobalStructureAlignmentLoss("kl", 0.5))
