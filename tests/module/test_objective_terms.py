"""AlignmentObjective and the alignment terms, against the losses of darec.losses."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from darec.backbones import MatrixFactorization
from darec.losses import (
    ContrastiveAlignmentLoss,
    GenerativeAlignmentLoss,
    GlobalStructureAlignmentLoss,
    LocalStructureAlignmentLoss,
)
from darec.module import (
    AlignmentObjective,
    ContrastiveTerm,
    DaRecModule,
    GenerativeTerm,
    GlobalStructureTerm,
    LocalStructureTerm,
    SideViews,
)
from darec.utils.spec import build_from_spec, init_spec

CF_DIM, LLM_DIM, ALIGN_DIM = 8, 12, 6


class Const(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, views):
        return torch.tensor(self.value)


def _views(seed: int = 0, masked: bool = False, requires_grad: bool = True) -> dict[str, SideViews]:
    """Hand-built views of 7 users (ids 0..6 of 10) and 9 items (ids 2..10 of 12)."""
    gen = torch.Generator().manual_seed(seed)
    views = {}
    for side, index in (("user", torch.arange(7)), ("item", torch.arange(2, 11))):
        n = len(index)

        def rand(*shape):
            return torch.randn(*shape, generator=gen).requires_grad_(requires_grad)

        view = SideViews(
            index=index,
            cf=rand(n, CF_DIM),
            llm=torch.randn(n, LLM_DIM, generator=gen),
            cf_shared=rand(n, ALIGN_DIM),
            cf_specific=rand(n, ALIGN_DIM),
            llm_shared=rand(n, ALIGN_DIM),
            llm_specific=rand(n, ALIGN_DIM),
        )
        if masked:
            view.masked = torch.rand(n, generator=gen) < 0.6
            view.masked[:2] = True
        views[side] = view
    return views


# -- the objective ------------------------------------------------------------------------------
def test_objective_sums_weighted_terms_and_returns_parts():
    objective = AlignmentObjective()
    objective.add("a", Const(2.0), weight=0.5)
    objective.add("b", Const(3.0), weight=2.0)
    total, parts = objective({})
    assert set(parts) == {"a", "b"}
    assert parts["a"].item() == 2.0 and parts["b"].item() == 3.0
    assert total.item() == pytest.approx(0.5 * 2.0 + 2.0 * 3.0)
    assert len(objective) == 2 and "a" in objective and "c" not in objective
    objective.weights["b"] = 0.0  # callbacks change the weights between steps
    assert objective({})[0].item() == pytest.approx(1.0)
    objective.add("a", Const(1.0), weight=1.0)  # same name: replaced
    assert len(objective) == 2 and objective({})[0].item() == pytest.approx(1.0)


def test_objective_holds_term_parameters():
    objective = AlignmentObjective()
    term = ContrastiveTerm(LLM_DIM, CF_DIM)
    objective.add("contrastive", term, 1.0)
    assert {id(p) for p in term.parameters()} <= {id(p) for p in objective.parameters()}


@pytest.mark.parametrize("name", ["train/x", "a-b", "", "1st"])
def test_objective_rejects_bad_names(name):
    with pytest.raises(ValueError, match="identifiers"):
        AlignmentObjective().add(name, Const(1.0), 1.0)


def test_objective_rejects_negative_weights():
    with pytest.raises(ValueError, match="non-negative"):
        AlignmentObjective().add("a", Const(1.0), -0.1)


def test_empty_objective_raises():
    with pytest.raises(RuntimeError, match="no terms"):
        AlignmentObjective()({})


# -- the terms against the losses ---------------------------------------------------------------
@pytest.mark.parametrize(("mode", "temperature"), [("mse", 1.0), ("kl", 0.5)])
def test_global_structure_term_equals_loss_summed_over_sides(mode, temperature):
    views = _views()
    term = GlobalStructureTerm(mode=mode, temperature=temperature)
    loss = GlobalStructureAlignmentLoss(mode=mode, temperature=temperature)
    expected = sum(loss(v.cf_shared, v.llm_shared) for v in views.values())
    value = term(views)
    torch.testing.assert_close(value, expected)
    value.backward()
    assert views["user"].cf_shared.grad is not None and views["item"].llm_shared.grad is not None


def test_term_needs_shared_views():
    views = {"user": SideViews(index=torch.arange(3), cf=torch.randn(3, CF_DIM), llm=torch.randn(3, LLM_DIM))}
    with pytest.raises(RuntimeError, match="needs the shared projections"):
        GlobalStructureTerm()(views)
    with pytest.raises(RuntimeError, match="needs the shared projections"):
        LocalStructureTerm(num_clusters=2)(views)


def test_local_structure_term_without_assignment_is_zero_with_grad():
    views = _views()
    value = LocalStructureTerm(num_clusters=3)(views)
    assert value.item() == 0.0
    assert value.requires_grad
    value.backward()
    assert torch.count_nonzero(views["user"].cf_shared.grad) == 0


def test_local_structure_term_equals_loss_with_assignment():
    views = _views()
    term = LocalStructureTerm(num_clusters=3, temperature=0.3)
    gen = torch.Generator().manual_seed(1)
    assignments = {"user": torch.randint(3, (10,), generator=gen), "item": torch.randint(3, (12,), generator=gen)}
    for side, a in assignments.items():
        term.set_assignment(side, a)
    assert torch.equal(term.assignment_user, assignments["user"])
    loss = LocalStructureAlignmentLoss(num_clusters=3, temperature=0.3)
    expected = sum(
        loss(v.cf_shared, v.llm_shared, assignments[side][v.index]) for side, v in views.items()
    )
    value = term(views)
    torch.testing.assert_close(value, expected)
    assert value.item() > 0
    value.backward()
    assert views["item"].llm_shared.grad.abs().sum() > 0


def test_local_structure_term_uses_both_columns_of_per_side_assignment():
    views = _views()
    term = LocalStructureTerm(num_clusters=3)
    gen = torch.Generator().manual_seed(2)
    assignments = {"user": torch.randint(3, (10, 2), generator=gen), "item": torch.randint(3, (12, 2), generator=gen)}
    for side, a in assignments.items():
        term.set_assignment(side, a)
    loss = LocalStructureAlignmentLoss(num_clusters=3)
    expected = sum(
        loss(v.cf_shared, v.llm_shared, assignments[side][v.index, 0], assignments[side][v.index, 1])
        for side, v in views.items()
    )
    only_first = sum(loss(v.cf_shared, v.llm_shared, assignments[side][v.index, 0]) for side, v in views.items())
    value = term(views)
    torch.testing.assert_close(value, expected)
    assert not torch.allclose(value, only_first)


def test_contrastive_term_equals_loss_summed_over_sides():
    torch.manual_seed(0)
    views = _views()
    term = ContrastiveTerm(llm_dim=LLM_DIM, cf_dim=CF_DIM, temperature=0.3)
    reference = ContrastiveAlignmentLoss(llm_dim=LLM_DIM, cf_dim=CF_DIM, temperature=0.3)
    reference.load_state_dict(term.loss.state_dict())
    expected = sum(reference(v.cf, v.llm) for v in views.values())
    value = term(views)
    torch.testing.assert_close(value, expected)
    value.backward()
    params = list(term.parameters())
    assert params and all(p.grad is not None for p in params)  # the MLP learns


def test_generative_term_equals_loss_on_masked_rows():
    torch.manual_seed(0)
    views = _views(masked=True)
    term = GenerativeTerm(llm_dim=LLM_DIM, cf_dim=CF_DIM, mask_ratio=0.2, temperature=0.3)
    assert term.mask_token.shape == (1, CF_DIM)
    assert any(p is term.mask_token for p in term.parameters())
    reference = GenerativeAlignmentLoss(llm_dim=LLM_DIM, cf_dim=CF_DIM, temperature=0.3)
    reference.load_state_dict(term.loss.state_dict())
    expected = sum(reference(v.cf[v.masked], v.llm[v.masked]) for v in views.values())
    torch.testing.assert_close(term(views), expected)
    # on all rows the value differs: only the masked rows count
    everything = sum(reference(v.cf, v.llm) for v in views.values())
    assert not torch.allclose(term(views), everything)


def test_generative_term_skips_sides_with_fewer_than_two_masked_rows():
    views = _views(masked=True)
    term = GenerativeTerm(llm_dim=LLM_DIM, cf_dim=CF_DIM)
    views["item"].masked = torch.zeros_like(views["item"].masked)
    views["item"].masked[0] = True
    expected = term.loss(views["user"].cf[views["user"].masked], views["user"].llm[views["user"].masked])
    torch.testing.assert_close(term(views), expected)
    views["user"].masked = None
    value = term(views)
    assert value.item() == 0.0 and value.requires_grad


@pytest.mark.parametrize("mask_ratio", [0.0, 1.0, -0.2])
def test_generative_term_rejects_bad_mask_ratio(mask_ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        GenerativeTerm(LLM_DIM, CF_DIM, mask_ratio=mask_ratio)


@pytest.mark.parametrize(
    "term",
    [
        GlobalStructureTerm(mode="kl", temperature=0.5),
        LocalStructureTerm(num_clusters=4, temperature=0.1),
        ContrastiveTerm(LLM_DIM, CF_DIM, temperature=0.3),
        GenerativeTerm(LLM_DIM, CF_DIM, mask_ratio=0.3),
    ],
    ids=lambda t: type(t).__name__,
)
def test_terms_can_be_rebuilt_from_their_spec(term):
    spec = init_spec(term)
    assert spec is not None
    rebuilt = build_from_spec(spec)
    assert type(rebuilt) is type(term)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in term.state_dict().items()}
    for name in ("mode", "temperature", "num_clusters", "mask_ratio", "llm_dim", "cf_dim"):
        assert getattr(rebuilt, name, None) == getattr(term, name, None)


def test_add_term_rejects_terms_that_cannot_be_recorded():
    class Opaque(nn.Module):
        def __init__(self, weights: torch.Tensor) -> None:
            super().__init__()
            self.w = nn.Parameter(weights)

        def forward(self, views):
            return self.w.sum()

    model = DaRecModule(MatrixFactorization(10, 4))
    with pytest.raises(ValueError, match="cannot record how to rebuild term"):
        model.add_term("opaque", Opaque(torch.zeros(2)), 1.0)
    model.add_term("const", Const(1.0), 0.5)
    assert "const" in model.objective and model.objective.weights["const"] == 0.5
