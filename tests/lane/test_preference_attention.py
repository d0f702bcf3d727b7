"""Tests of darec.lane.PreferenceAttention: shapes, weights, the residual structure, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from darec.lane import PreferenceAttention


def test_shapes_and_weights_sum_to_one():
    torch.manual_seed(0)
    block = PreferenceAttention(hidden_dim=8, preference_dim=6, num_heads=2, dropout=0.0)
    states, prefs = torch.randn(3, 5, 8), torch.randn(3, 4, 6)
    assert block(states, prefs).shape == (3, 5, 8)
    weights = block.weights(states[:, -1], prefs)
    assert weights.shape == (3, 4) and torch.allclose(weights.sum(-1), torch.ones(3)) and (weights > 0).all()


def test_weights_are_the_single_head_softmax_of_lanes_code():
    torch.manual_seed(0)
    block = PreferenceAttention(hidden_dim=8, preference_dim=6, num_heads=2, dropout=0.0)
    h, prefs = torch.randn(2, 8), torch.randn(2, 3, 6)
    q = h @ block.query.weight.T + block.query.bias
    k = prefs @ block.key.weight.T + block.key.bias
    expected = torch.softmax(torch.einsum("bd,bmd->bm", q, k) / math.sqrt(8), dim=-1)
    assert torch.allclose(block.weights(h, prefs), expected, atol=1e-6)


def test_forward_is_attention_residual_norm_then_ffn_residual_norm():
    torch.manual_seed(0)
    block = PreferenceAttention(hidden_dim=8, preference_dim=6, num_heads=2, dropout=0.0).eval()
    states, prefs = torch.randn(2, 3, 8), torch.randn(2, 4, 6)
    mixed, weights = block.attention(states, prefs)
    assert weights.shape == (2, 2, 3, 4) and torch.allclose(weights.sum(-1), torch.ones(2, 2, 3))
    z = torch.nn.functional.layer_norm(mixed + states, (8,), block.norm1.weight, block.norm1.bias)
    f = torch.nn.functional.layer_norm(block.ffn(z) + z, (8,), block.norm2.weight, block.norm2.bias)
    assert torch.allclose(block(states, prefs), f, atol=1e-6)


def test_gradients_reach_every_parameter():
    block = PreferenceAttention(hidden_dim=8, preference_dim=6, num_heads=2, dropout=0.0)
    block(torch.randn(2, 3, 8), torch.randn(2, 4, 6)).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())


def test_bad_shapes_are_named():
    block = PreferenceAttention(hidden_dim=8, preference_dim=6, num_heads=2)
    with pytest.raises(ValueError, match=r"\(B, m, 6\)"):
        block(torch.randn(2, 3, 8), torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match="must divide"):
        PreferenceAttention(hidden_dim=8, num_heads=3)
