import math

import pytest
import torch

import darec.functional as DF
from darec.losses import LocalStructureAlignmentLoss


def naive_local(cf, llm, assignment, k, temperature):
    ids = assignment.tolist()
    present = [c for c in range(k) if c in ids]

    def unit_centre(x, c):
        members = [r for r, a in zip(x.tolist(), ids) if a == c]
        mean = [sum(col) / len(members) for col in zip(*members)]
        norm = math.sqrt(sum(v * v for v in mean))
        return [v / norm for v in mean]

    u_cf = {c: unit_centre(cf, c) for c in present}
    u_llm = {c: unit_centre(llm, c) for c in present}
    total = 0.0
    for anchors, others in ((u_cf, u_llm), (u_llm, u_cf)):
        for c in present:
            logits = [sum(a * b for a, b in zip(anchors[c], others[j])) / temperature for j in present]
            positive = sum(a * b for a, b in zip(anchors[c], others[c])) / temperature
            total += -positive + math.log(sum(math.exp(v) for v in logits))
    return total / (2 * len(present))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_local_module_matches_functional_and_reference(dtype):
    torch.manual_seed(0)
    cf, llm = torch.randn(24, 6, dtype=dtype), torch.randn(24, 6, dtype=dtype)
    assignment = torch.randint(0, 5, (24,)) * 2  # odd ids never used: 5 empty clusters of 10
    loss = LocalStructureAlignmentLoss(num_clusters=10, temperature=0.3)
    out = loss.compute(cf, llm, assignment)
    assert torch.equal(out, DF.local_structure_alignment(cf, llm, assignment, 10, 0.3))
    assert out.item() == pytest.approx(naive_local(cf, llm, assignment, 10, 0.3), rel=1e-4)


def test_local_module_relabelling_and_backward():
    torch.manual_seed(1)
    loss = LocalStructureAlignmentLoss(num_clusters=6)
    cf = torch.randn(30, 4, requires_grad=True)
    llm = torch.randn(30, 4, requires_grad=True)
    assignment = torch.randint(0, 6, (30,))
    value = loss.compute(cf, llm, assignment)
    assert loss.compute(cf, llm, torch.randperm(6)[assignment]).item() == pytest.approx(value.item(), rel=1e-5)
    value.backward()
    assert torch.isfinite(cf.grad).all() and torch.isfinite(llm.grad).all()


def test_local_module_single_cluster_is_connected_zero():
    cf = torch.randn(5, 3, requires_grad=True)
    out = LocalStructureAlignmentLoss(num_clusters=3).compute(cf, torch.randn(5, 3), torch.full((5,), 2))
    assert out.item() == 0.0 and out.requires_grad
    out.backward()
    assert torch.equal(cf.grad, torch.zeros_like(cf))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_clusters": 1}, r"`num_clusters` must be >= 2, got 1"),
        ({"num_clusters": 2.5}, r"`num_clusters` must be an integer"),
        ({"num_clusters": 4, "temperature": -0.2}, r"`temperature` must be a finite number > 0"),
    ],
)
def test_local_module_validates_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LocalStructureAlignmentLoss(**kwargs)


def test_local_module_repr_and_shape_checks():
    loss = LocalStructureAlignmentLoss(num_clusters=4)
    assert "num_clusters=4, temperature=0.2" in repr(loss)
    with pytest.raises(ValueError, match=r"`assignment` must have shape \(5,\)"):
        loss.compute(torch.randn(5, 2), torch.randn(5, 2), torch.zeros(4, dtype=torch.long))
