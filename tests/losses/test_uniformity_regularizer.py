import math

import pytest
import torch

import darec.functional as DF
from darec.losses import UniformityRegularizer


def naive_uniformity(x, t):
    unit = [[v / math.sqrt(sum(w * w for w in r)) for v in r] for r in x.tolist()]
    n = len(unit)
    pairs = [
        math.exp(-t * sum((a - b) ** 2 for a, b in zip(unit[i], unit[j]))) for i in range(n) for j in range(n) if i != j
    ]
    return math.log(sum(pairs) / len(pairs))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("t", [1.0, 2.0])
def test_uniformity_module_matches_functional_and_reference(dtype, t):
    torch.manual_seed(0)
    x = torch.randn(8, 3, dtype=dtype)
    out = UniformityRegularizer(t=t).compute(x)
    assert torch.equal(out, DF.uniformity(x, t=t))
    assert out.item() == pytest.approx(naive_uniformity(x, t), rel=1e-5)


def test_uniformity_module_prefers_spread_points_and_backward():
    torch.manual_seed(1)
    reg = UniformityRegularizer()
    spread = torch.randn(16, 4, requires_grad=True)
    clustered = torch.ones(16, 4) + 0.01 * torch.randn(16, 4)
    value = reg.compute(spread)
    assert value < reg.compute(clustered)
    value.backward()
    assert torch.isfinite(spread.grad).all()


@pytest.mark.parametrize("t", [0.0, -1.0, float("inf"), float("nan"), "2"])
def test_uniformity_module_rejects_bad_t(t):
    with pytest.raises(ValueError, match=r"`t` must be"):
        UniformityRegularizer(t=t)


def test_uniformity_module_repr_and_row_check():
    reg = UniformityRegularizer(t=3)
    assert reg.t == 3.0 and "t=3.0" in repr(reg)
    with pytest.raises(ValueError, match=r"`x` must have at least 2 rows"):
        reg.compute(torch.randn(1, 4))
