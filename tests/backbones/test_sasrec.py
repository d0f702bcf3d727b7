"""Tests of darec.backbones.SASRec: shapes, causality, padding, gradients, title initialisation."""

from __future__ import annotations

import pytest
import torch

from darec.backbones import SASRec
from darec.utils.spec import build_from_spec, describe


def _model(**kwargs) -> SASRec:
    torch.manual_seed(0)
    model = SASRec(num_items=20, embedding_dim=16, num_heads=2, max_len=6, **kwargs)
    return model.eval()


def test_shapes_and_padding_row():
    model = _model()
    states = model.sequence_states(torch.tensor([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]]))
    assert states.shape == (2, 6, 16) and model.item_embeddings().shape == (21, 16)
    assert torch.all(model.item_embeddings()[0] == 0)
    assert torch.all(states[0, :2] == 0)  # padded positions have zero states
    assert model(torch.tensor([[1, 2, 3]])).shape == (1, 16)


def test_a_future_item_does_not_change_earlier_states():
    model = _model()
    seq = torch.tensor([[0, 1, 2, 3, 4, 5]])
    changed = seq.clone()
    changed[0, 4] = 17
    a, b = model.sequence_states(seq), model.sequence_states(changed)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_padding_does_not_change_the_states_of_real_items():
    model = _model()
    short = model.sequence_states(torch.tensor([[3, 4, 5]]))
    padded = model.sequence_states(torch.tensor([[0, 0, 0, 3, 4, 5]]))
    assert torch.allclose(short, padded[:, 3:], atol=1e-5)


def test_sequences_longer_than_max_len_are_refused():
    with pytest.raises(ValueError, match="exceed max_len=6"):
        _model().sequence_states(torch.ones(1, 7, dtype=torch.long))


def test_gradients_reach_the_item_and_position_tables():
    model = _model(dropout=0.0).train()
    seq = torch.tensor([[0, 1, 2, 3, 4, 5]])
    states = model.sequence_states(seq)
    (states[:, -1] @ model.item_embeddings()[7]).backward()
    grad = model.items.weight.grad
    assert grad[1:6].abs().sum(1).gt(0).all() and grad[7].abs().sum() > 0
    assert grad[0].abs().sum() == 0  # padding row stays put
    assert model.positions.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.blocks.parameters())


def test_title_initialisation_copies_rows_and_zeroes_padding():
    model = _model()
    titles = torch.randn(21, 16)
    titles[3] = titles[5]  # identical titles, identical rows
    model.init_item_embeddings(titles)
    assert torch.equal(model.item_embeddings()[1:], titles[1:])
    assert torch.all(model.item_embeddings()[0] == 0)
    assert torch.equal(model.item_embeddings()[3], model.item_embeddings()[5])
    assert model.items.weight.requires_grad
    with pytest.raises(ValueError, match="embedding_dim=384"):
        model.init_item_embeddings(torch.randn(21, 384))


def test_spec_rebuilds_the_model():
    model = SASRec(num_items=7, embedding_dim=8, num_blocks=1, dropout=0.5, max_len=9)
    rebuilt = build_from_spec(describe(model))
    assert isinstance(rebuilt, SASRec) and rebuilt.darec_spec() == model.darec_spec()


@pytest.mark.parametrize("kwargs", [{"num_heads": 3}, {"dropout": 1.0}, {"max_len": 0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        SASRec(num_items=5, embedding_dim=16, **kwargs)
