"""The objective and its terms (the losses of darec.losses, on a step's views) against their one-side computation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from darec.backbones import MatrixFactorization
from darec.functional import contrastive_alignment, generative_alignment, global_structure_alignment, local_structure_alignment
from darec.losses import (
    ContrastiveAlignmentLoss,
    GenerativeAlignmentLoss,
    GlobalStructureAlignmentLoss,
    LocalStructureAlignmentLoss,
)
from darec.module import DaRecModule, Objective, SideViews, StepViews

CF_DIM, LLM_DIM, ALIGN_DIM = 8, 12, 6


class Const(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, views):
        return torch.tensor(self.value)


def _views(seed: int = 0, masked: bool = False, requires_grad: bool = True) -> StepViews:
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
    return StepViews(views)


# -- the objective ------------------------------------------------------------------------------
def test_objective_sums_weighted_terms_and_returns_parts():
    objective = Objective()
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


def test_objective_adds_regularisers_one_by_one_then_alignment_terms():
    objective = Objective()
    objective.add("a", Const(2.0), weight=0.5)
    objective.add("r", Const(3.0), weight=2.0, regularizer=True)
    assert objective.alignment_terms == ["a"] and objective.regularizers == ["r"]
    loss, parts = objective({}, torch.tensor(1.0))
    assert loss.item() == 1.0 + 6.0 + 1.0 and set(parts) == {"a", "r"}


def test_objective_builds_requested_terms_with_the_sizes():
    from darec.module import Sizes

    objective = Objective()
    objective.request("a", lambda sizes: Const(float(sizes.cf_dim)), 0.5)
    assert "a" in objective and objective.pending == ["a"] and len(objective) == 0
    objective.set_weight("a", 0.25)
    assert objective.build(Sizes(2, 3, cf_dim=8, text_dim=4, align_dim=8)) == ["a"]
    assert objective.pending == [] and objective.weights["a"] == 0.25
    assert objective({})[1]["a"].item() == 8.0
    objective.request("a", lambda sizes: Const(0.0), 1.0)  # a built term is kept
    assert objective.pending == [] and objective({})[1]["a"].item() == 8.0
    with pytest.raises(KeyError, match="no term 'b'"):
        objective.set_weight("b", 1.0)


def test_objective_holds_term_parameters():
    objective = Objective()
    term = ContrastiveAlignmentLoss(LLM_DIM, CF_DIM)
    objective.add("contrastive", term, 1.0)
    assert {id(p) for p in term.parameters()} <= {id(p) for p in objective.parameters()}


@pytest.mark.parametrize("name", ["train/x", "a-b", "", "1st"])
def test_objective_rejects_bad_names(name):
    with pytest.raises(ValueError, match="identifiers"):
        Objective().add(name, Const(1.0), 1.0)


def test_objective_rejects_negative_weights():
    with pytest.raises(ValueError, match="non-negative"):
        Objective().add("a", Const(1.0), -0.1)


def test_empty_objective_raises():
    with pytest.raises(RuntimeError, match="no terms"):
        Objective()({})


# -- the terms against the losses ---------------------------------------------------------------
@pytest.mark.parametrize(("mode", "temperature"), [("mse", 1.0), ("kl", 0.5)])
def test_global_structure_term_equals_loss_summed_over_sides(mode, temperature):
    views = _views()
    term = GlobalStructureAlignmentLoss(mode=mode, temperature=temperature)
    expected = sum(global_structure_alignment(v.cf_shared, v.llm_shared, mode, temperature) for v in views.values())
    value = term(views)
    torch.testing.assert_close(value, expected)
    value.backward()
    assert views["user"].cf_shared.grad is not None and views["item"].llm_shared.grad is not None


def test_term_needs_shared_views():
    views = {"user": SideViews(index=torch.arange(3), cf=torch.randn(3, CF_DIM), llm=torch.randn(3, LLM_DIM))}
    with pytest.raises(RuntimeError, match="needs the shared projections"):
        GlobalStructureAlignmentLoss()(StepViews(views))
    with pytest.raises(RuntimeError, match="needs the shared projections"):
        LocalStructureAlignmentLoss(num_clusters=2)(StepViews(views))


def test_local_structure_term_without_assignment_is_zero_with_grad():
    views = _views()
    value = LocalStructureAlignmentLoss(num_clusters=3)(views)
    assert value.item() == 0.0
    assert value.requires_grad
    value.backward()
    assert torch.count_nonzero(views["user"].cf_shared.grad) == 0


def test_local_structure_term_equals_loss_with_assignment():
    views = _views()
    term = LocalStructureAlignmentLoss(num_clusters=3, temperature=0.3)
    gen = torch.Generator().manual_seed(1)
    assignments = {"user": torch.randint(3, (10,), generator=gen), "item": torch.randint(3, (12,), generator=gen)}
    for side, a in assignments.items():
        term.set_assignment(side, a)
    assert torch.equal(term.assignment_user, assignments["user"])
    expected = sum(
        local_structure_alignment(v.cf_shared, v.llm_shared, assignments[side][v.index], 3, 0.3)
        for side, v in views.items()
    )
    value = term(views)
    torch.testing.assert_close(value, expected)
    assert value.item() > 0
    value.backward()
    assert views["item"].llm_shared.grad.abs().sum() > 0


def test_local_structure_term_uses_both_columns_of_per_side_assignment():
    views = _views()
    term = LocalStructureAlignmentLoss(num_clusters=3)
    gen = torch.Generator().manual_seed(2)
    assignments = {"user": torch.randint(3, (10, 2), generator=gen), "item": torch.randint(3, (12, 2), generator=gen)}
    for side, a in assignments.items():
        term.set_assignment(side, a)
    expected = sum(
        local_structure_alignment(v.cf_shared, v.llm_shared, assignments[side][v.index, 0], 3,
                                  llm_assignment=assignments[side][v.index, 1])
        for side, v in views.items()
    )
    only_first = sum(
        local_structure_alignment(v.cf_shared, v.llm_shared, assignments[side][v.index, 0], 3) for side, v in views.items()
    )
    value = term(views)
    torch.testing.assert_close(value, expected)
    assert not torch.allclose(value, only_first)


def test_contrastive_term_equals_loss_summed_over_sides():
    torch.manual_seed(0)
    views = _views()
    term = ContrastiveAlignmentLoss(llm_dim=LLM_DIM, cf_dim=CF_DIM, temperature=0.3)
    expected = sum(contrastive_alignment(v.cf, term.projector(v.llm), temperature=0.3) for v in views.values())
    value = term(views)
    torch.testing.assert_close(value, expected)
    value.backward()
    params = list(term.parameters())
    assert params and all(p.grad is not None for p in params)  # the MLP learns


def test_generative_term_equals_loss_on_masked_rows():
    torch.manual_seed(0)
    views = _views(masked=True)
    term = GenerativeAlignmentLoss(llm_dim=LLM_DIM, cf_dim=CF_DIM, mask_ratio=0.2, temperature=0.3)
    assert term.mask_token.shape == (1, CF_DIM)
    assert any(p is term.mask_token for p in term.parameters())

    def reference(cf, llm):
        return generative_alignment(term.decoder(cf), llm, temperature=0.3)

    expected = sum(reference(v.cf[v.masked], v.llm[v.masked]) for v in views.values())
    torch.testing.assert_close(term(views), expected)
    # on all rows the value differs: only the masked rows count
    everything = sum(reference(v.cf, v.llm) for v in views.values())
    assert not torch.allclose(term(views), everything)


def test_generative_term_skips_sides_with_fewer_than_two_masked_rows():
    views = _views(masked=True)
    term = GenerativeAlignmentLoss(llm_dim=LLM_DIM, cf_dim=CF_DIM)
    views["item"].masked = torch.zeros_like(views["item"].masked)
    views["item"].masked[0] = True
    expected = term.compute(views["user"].cf[views["user"].masked], views["user"].llm[views["user"].masked])
    torch.testing.assert_close(term(views), expected)
    views["user"].masked = None
    value = term(views)
    assert value.item() == 0.0 and value.requires_grad


@pytest.mark.parametrize("mask_ratio", [0.0, 1.0, -0.2])
def test_generative_term_rejects_bad_mask_ratio(mask_ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        GenerativeAlignmentLoss(LLM_DIM, CF_DIM, mask_ratio=mask_ratio)


def test_generative_mask_input_masks_a_fraction_of_the_table_without_touching_it():
    term = GenerativeAlignmentLoss(LLM_DIM, CF_DIM, mask_ratio=0.25)
    table = torch.nn.Parameter(torch.randn(40, CF_DIM))
    before = table.detach().clone()
    masked_table, masked = term.mask_input(table, torch.Generator().manual_seed(0))
    assert masked.dtype == torch.bool and int(masked.sum()) == 10
    assert torch.equal(masked_table[masked], term.mask_token.expand(10, -1).detach())
    assert torch.equal(masked_table[~masked], before[~masked]) and torch.equal(table.detach(), before)
    masked_table.sum().backward()
    assert term.mask_token.grad is not None and table.grad is not None


@pytest.mark.parametrize(
    "factory",
    [
        lambda: GlobalStructureAlignmentLoss(mode="cosine"),
        lambda: GlobalStructureAlignmentLoss(temperature=0.0),
        lambda: LocalStructureAlignmentLoss(num_clusters=1),
        lambda: ContrastiveAlignmentLoss(LLM_DIM, CF_DIM, temperature=-1.0),
        lambda: GenerativeAlignmentLoss(LLM_DIM, CF_DIM, temperature=float("nan")),
    ],
)
def test_losses_validate_their_arguments_once(factory):
    with pytest.raises(ValueError):
        factory()


def test_add_term_takes_a_factory():
    class Learned(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(width))

        def forward(self, views):
            return self.w.sum()

    model = DaRecModule(MatrixFactorization(10, 4))
    with pytest.raises(TypeError, match="factory"):
        model.add_term("learned", Learned(2), 1.0)
    model.add_term("learned", lambda sizes: Learned(sizes.cf_dim), 0.5)
    assert "learned" in model.objective and model.objective.pending == ["learned"]
    model.set_term_weight("learned", 0.25)
    with pytest.raises(ValueError, match="non-negative"):
        model.set_term_weight("learned", -1.0)
