import math

import pytest
import torch

from darec.functional import orthogonality, uniformity


def leaf64(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def naive_orthogonality(shared, specific):
    total = 0.0
    for s, p in zip(shared.tolist(), specific.tolist()):
        dot = sum(a * b for a, b in zip(s, p))
        norm_s = math.sqrt(sum(a * a for a in s))
        norm_p = math.sqrt(sum(b * b for b in p))
        total += (dot / (norm_s * norm_p)) ** 2
    return total / len(shared)


def naive_uniformity(x, t):
    rows = x.tolist()
    unit = [[v / math.sqrt(sum(w * w for w in r)) for v in r] for r in rows]
    n = len(rows)
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                sq = sum((a - b) ** 2 for a, b in zip(unit[i], unit[j]))
                total += math.exp(-t * sq)
    return math.log(total / (n * (n - 1)))


# orthogonality


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_orthogonality_matches_naive_reference(dtype):
    torch.manual_seed(0)
    shared, specific = torch.randn(11, 5, dtype=dtype), torch.randn(11, 5, dtype=dtype)
    out = orthogonality(shared, specific)
    assert out.dtype == dtype and out.shape == ()
    assert out.item() == pytest.approx(naive_orthogonality(shared, specific), rel=1e-5)


def test_orthogonality_extremes():
    basis = torch.eye(4)
    assert orthogonality(basis, basis.roll(1, dims=1)).item() == pytest.approx(0.0, abs=1e-7)
    x = torch.randn(7, 4)
    assert orthogonality(x, x).item() == pytest.approx(1.0, abs=1e-6)
    assert orthogonality(x, -3.0 * x).item() == pytest.approx(1.0, abs=1e-6)


def test_orthogonality_is_scale_invariant_and_bounded():
    torch.manual_seed(1)
    shared, specific = torch.randn(9, 3), torch.randn(9, 3)
    out = orthogonality(shared, specific)
    assert 0.0 <= out.item() <= 1.0
    assert orthogonality(10.0 * shared, 0.1 * specific).item() == pytest.approx(out.item(), rel=1e-5)


def test_orthogonality_zero_row_counts_as_orthogonal():
    shared = torch.tensor([[0.0, 0.0], [1.0, 0.0]], requires_grad=True)
    specific = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    out = orthogonality(shared, specific)
    assert out.item() == pytest.approx(0.5)
    out.backward()
    assert torch.isfinite(shared.grad).all()


def test_orthogonality_gradients():
    shared = torch.randn(6, 3, requires_grad=True)
    specific = torch.randn(6, 3, requires_grad=True)
    orthogonality(shared, specific).backward()
    assert torch.isfinite(shared.grad).all() and torch.isfinite(specific.grad).all()
    args = (leaf64(5, 3), leaf64(5, 3))
    assert torch.autograd.gradcheck(orthogonality, args)


def test_orthogonality_errors():
    with pytest.raises(ValueError, match=r"`shared` must be a tensor of shape \(N, d\) or \(\*, N, d\)"):
        orthogonality(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match=r"`specific` must be a tensor of shape"):
        orthogonality(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match=r"`shared` and `specific` must have the same shape"):
        orthogonality(torch.zeros(4, 2), torch.zeros(4, 2, 1))
    with pytest.raises(ValueError, match=r"`shared` and `specific` must have the same shape"):
        orthogonality(torch.zeros(4, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"`shared` must have at least one row"):
        orthogonality(torch.zeros(0, 2), torch.zeros(0, 2))


def test_orthogonality_batched_matches_one_set_at_a_time():
    torch.manual_seed(4)
    shared, specific = torch.randn(2, 3, 7, 5), torch.randn(2, 3, 7, 5)
    out = orthogonality(shared, specific)
    assert out.shape == (2, 3)
    for b in range(2):
        for c in range(3):
            assert out[b, c].item() == pytest.approx(naive_orthogonality(shared[b, c], specific[b, c]), rel=1e-5)


# uniformity


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("t", [0.5, 2.0, 5.0])
def test_uniformity_matches_naive_reference(dtype, t):
    torch.manual_seed(0)
    x = torch.randn(9, 4, dtype=dtype)
    out = uniformity(x, t=t)
    assert out.dtype == dtype and out.shape == ()
    assert out.item() == pytest.approx(naive_uniformity(x, t), rel=1e-5, abs=1e-6)


def test_uniformity_is_lower_for_spread_points():
    torch.manual_seed(0)
    spread = torch.randn(32, 8)
    clustered = torch.ones(32, 8) + 0.05 * torch.randn(32, 8)
    assert uniformity(spread) < uniformity(clustered)
    assert uniformity(clustered).item() <= 0.0


def test_uniformity_excludes_self_pairs():
    # Two orthogonal rows are at squared distance 2, so the mean over distinct pairs is exp(-4);
    # counting the self pairs (distance 0) would give log((1 + exp(-4)) / 2) instead.
    assert uniformity(torch.eye(2)).item() == pytest.approx(-4.0)
    assert abs(uniformity(torch.ones(2, 3)).item()) < 1e-6


def test_uniformity_invariances():
    torch.manual_seed(2)
    x = torch.randn(10, 5)
    out = uniformity(x)
    assert uniformity(x[torch.randperm(10)]).item() == pytest.approx(out.item(), abs=1e-5)
    assert uniformity(7.0 * x).item() == pytest.approx(out.item(), abs=1e-5)


def test_uniformity_is_finite_for_large_t_and_duplicates():
    x = torch.randn(6, 3)
    x = torch.cat([x, x[:2]]).requires_grad_(True)
    out = uniformity(x, t=500.0)
    assert torch.isfinite(out)
    out.backward()
    assert torch.isfinite(x.grad).all()


def test_uniformity_gradients():
    torch.manual_seed(3)
    x = torch.randn(7, 4, requires_grad=True)
    uniformity(x).backward()
    assert torch.isfinite(x.grad).all()
    x64 = leaf64(5, 3)
    assert torch.autograd.gradcheck(lambda v: uniformity(v, t=2.0), (x64,))


def test_uniformity_errors():
    with pytest.raises(ValueError, match=r"`x` must have at least 2 rows"):
        uniformity(torch.randn(1, 3))
    with pytest.raises(ValueError, match=r"`x` must be a tensor of shape \(N, d\) or \(\*, N, d\)"):
        uniformity(torch.randn(3))
    with pytest.raises(ValueError, match=r"`t` must be > 0"):
        uniformity(torch.randn(3, 2), t=0.0)


@pytest.mark.parametrize("t", [2.0, 50.0])  # the direct sum and the logsumexp path
def test_uniformity_batched_matches_one_set_at_a_time(t):
    torch.manual_seed(5)
    x = torch.randn(2, 3, 6, 4, dtype=torch.float64)
    out = uniformity(x, t=t)
    assert out.shape == (2, 3)
    for b in range(2):
        for c in range(3):
            assert out[b, c].item() == pytest.approx(naive_uniformity(x[b, c], t), rel=1e-9)


@pytest.mark.parametrize("t", [2.0, 50.0])
def test_uniformity_batched_gradients(t):
    x = leaf64(2, 5, 3)
    assert torch.autograd.gradcheck(lambda v: uniformity(v, t=t), (x,))


def test_uniformity_half_precision_uses_the_stable_path():
    x = torch.randn(8, 4)
    out = uniformity(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    assert out.float().item() == pytest.approx(uniformity(x).item(), abs=0.05)
