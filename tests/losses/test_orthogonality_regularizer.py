import math

import pytest
import torch

import darec.functional as DF
from darec.losses import OrthogonalityRegularizer


def naive_orthogonality(shared, specific):
    total = 0.0
    for s, p in zip(shared.tolist(), specific.tolist()):
        cos = sum(a * b for a, b in zip(s, p)) / (math.hypot(*s) * math.hypot(*p))
        total += cos * cos
    return total / len(shared)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_orthogonality_module_matches_functional_and_reference(dtype):
    torch.manual_seed(0)
    shared, specific = torch.randn(10, 4, dtype=dtype), torch.randn(10, 4, dtype=dtype)
    out = OrthogonalityRegularizer().compute(shared, specific)
    assert torch.equal(out, DF.orthogonality(shared, specific))
    assert out.item() == pytest.approx(naive_orthogonality(shared, specific), rel=1e-5)


def test_orthogonality_module_extremes_and_backward():
    reg = OrthogonalityRegularizer()
    x = torch.randn(6, 3, requires_grad=True)
    assert reg.compute(x, x).item() == pytest.approx(1.0, abs=1e-6)
    assert reg.compute(torch.eye(3), torch.eye(3).roll(1, dims=0)).item() == pytest.approx(0.0, abs=1e-7)
    reg.compute(x, torch.randn(6, 3)).backward()
    assert torch.isfinite(x.grad).all()


def test_orthogonality_module_sums_over_sides_by_the_caller():
    torch.manual_seed(1)
    reg = OrthogonalityRegularizer()
    cf_sh, cf_sp, llm_sh, llm_sp = (torch.randn(5, 4) for _ in range(4))
    total = reg.compute(cf_sh, cf_sp) + reg.compute(llm_sh, llm_sp)
    expected = naive_orthogonality(cf_sh, cf_sp) + naive_orthogonality(llm_sh, llm_sp)
    assert total.item() == pytest.approx(expected, rel=1e-5)


def test_orthogonality_module_checks_shapes():
    with pytest.raises(ValueError, match=r"`shared` and `specific` must have the same shape"):
        OrthogonalityRegularizer().compute(torch.zeros(4, 2), torch.zeros(3, 2))


def test_regulariser_terms_need_the_four_heads():
    from darec.losses import UniformityRegularizer
    from darec.losses.views import SideViews, StepViews

    views = StepViews({"user": SideViews(index=torch.arange(3), cf=torch.randn(3, 2), llm=torch.randn(3, 2))})
    for reg in (OrthogonalityRegularizer(), UniformityRegularizer()):
        with pytest.raises(RuntimeError, match="needs the four disentangling heads"):
            reg(views)


def test_regulariser_term_sums_parts_and_sides():
    from darec.losses.views import StepViews

    torch.manual_seed(0)
    parts = torch.randn(2, 2, 7, 3)  # [CF, LLM] x [shared, specific], 3 users then 4 items
    views = StepViews({}, parts=parts, sizes=[3, 4])
    reg = OrthogonalityRegularizer()
    expected = sum(reg.compute(parts[p, 0, rows], parts[p, 1, rows]) for p in (0, 1) for rows in (slice(0, 3), slice(3, 7)))
    torch.testing.assert_close(reg(views), expected)
