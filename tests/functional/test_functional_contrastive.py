import math

import pytest
import torch

from darec.functional import contrastive_alignment, generative_alignment, info_nce


def leaf64(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def naive_info_nce(a, b, temperature):
    def unit(rows):
        return [[v / math.sqrt(sum(w * w for w in r)) for v in r] for r in rows]

    ua, ub = unit(a.tolist()), unit(b.tolist())
    n = len(ua)
    total = 0.0
    for i in range(n):
        logits = [sum(x * y for x, y in zip(ua[i], ub[j])) / temperature for j in range(n)]
        total += -logits[i] + math.log(sum(math.exp(v) for v in logits))
    return total / n


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_info_nce_matches_naive_reference(dtype, temperature):
    torch.manual_seed(0)
    a, b = torch.randn(9, 5, dtype=dtype), torch.randn(9, 5, dtype=dtype)
    out = info_nce(a, b, temperature=temperature)
    assert out.dtype == dtype and out.shape == ()
    assert out.item() == pytest.approx(naive_info_nce(a, b, temperature), rel=1e-5)
    sym = info_nce(a, b, temperature=temperature, symmetric=True)
    expected = 0.5 * (naive_info_nce(a, b, temperature) + naive_info_nce(b, a, temperature))
    assert sym.item() == pytest.approx(expected, rel=1e-5)


def test_info_nce_is_lower_for_matching_rows():
    torch.manual_seed(1)
    a = torch.randn(32, 16)
    assert info_nce(a, a) < info_nce(a, torch.randn(32, 16))
    assert info_nce(a, a + 0.01 * torch.randn(32, 16)) < info_nce(a, a[torch.randperm(32)])


def test_info_nce_properties():
    torch.manual_seed(2)
    a, b = torch.randn(10, 4), torch.randn(10, 4)
    perm = torch.randperm(10)
    out = info_nce(a, b)
    assert info_nce(a[perm], b[perm]).item() == pytest.approx(out.item(), rel=1e-5)
    assert info_nce(2.0 * a, 0.5 * b).item() == pytest.approx(out.item(), rel=1e-5)
    assert info_nce(a, b, symmetric=True).item() == pytest.approx(info_nce(b, a, symmetric=True).item(), rel=1e-5)
    # A single row has no negatives:
    assert info_nce(a[:1], b[:1]).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("symmetric", [False, True])
def test_info_nce_gradients(symmetric):
    a = torch.randn(7, 3, requires_grad=True)
    b = torch.randn(7, 3, requires_grad=True)
    info_nce(a, b, symmetric=symmetric).backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    args = (leaf64(5, 3), leaf64(5, 3))
    assert torch.autograd.gradcheck(lambda x, y: info_nce(x, y, 0.5, symmetric), args)


def test_rlmrec_terms_are_info_nce_in_their_direction():
    torch.manual_seed(3)
    a, b = torch.randn(6, 4), torch.randn(6, 4)
    assert torch.equal(contrastive_alignment(a, b, 0.3), info_nce(a, b, 0.3))
    assert torch.equal(generative_alignment(a, b, 0.3), info_nce(a, b, 0.3))
    assert not torch.allclose(contrastive_alignment(a, b), contrastive_alignment(b, a))


def test_info_nce_errors():
    with pytest.raises(ValueError, match=r"`a` and `b` must have the same shape, got \(4, 3\) and \(4, 5\)"):
        info_nce(torch.randn(4, 3), torch.randn(4, 5))
    with pytest.raises(ValueError, match=r"`a` and `b` must have the same shape"):
        info_nce(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"`temperature` must be > 0"):
        info_nce(torch.randn(4, 3), torch.randn(4, 3), temperature=0)
    with pytest.raises(ValueError, match=r"`b` must be a 2-D tensor"):
        info_nce(torch.randn(4, 3), torch.randn(12))
    with pytest.raises(ValueError, match=r"`a` must have at least one row"):
        info_nce(torch.randn(0, 3), torch.randn(0, 3))
    with pytest.raises(ValueError, match=r"`a` and `b` must have the same shape"):
        contrastive_alignment(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"`temperature` must be > 0"):
        generative_alignment(torch.randn(4, 3), torch.randn(4, 3), temperature=-0.1)
