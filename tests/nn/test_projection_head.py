import math

import pytest
import torch
from torch import nn

from darec.nn import ProjectionHead


def test_projection_head_layout_and_default_hidden_width():
    head = ProjectionHead(384, 32)
    linear_in, act, linear_out = head.layers
    assert isinstance(act, nn.LeakyReLU)
    assert (linear_in.in_features, linear_in.out_features) == (384, 208)
    assert (linear_out.in_features, linear_out.out_features) == (208, 32)
    assert ProjectionHead(4, 8, hidden_dim=3).layers[0].out_features == 3


def test_projection_head_initialisation():
    torch.manual_seed(0)
    head = ProjectionHead(64, 16, hidden_dim=32)
    for layer in (head.layers[0], head.layers[2]):
        bound = math.sqrt(6.0 / (layer.in_features + layer.out_features))
        assert layer.weight.abs().max() <= bound
        assert layer.weight.std() > bound / 4  # not left at a tiny default scale
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))


def test_projection_head_matches_manual_forward_and_backward():
    torch.manual_seed(1)
    head = ProjectionHead(5, 3)
    x = torch.randn(7, 5)
    w1, b1, w2, b2 = head.layers[0].weight, head.layers[0].bias, head.layers[2].weight, head.layers[2].bias
    hidden = x @ w1.T + b1
    expected = torch.where(hidden > 0, hidden, 0.01 * hidden) @ w2.T + b2
    out = head(x)
    assert out.shape == (7, 3)
    assert torch.allclose(out, expected, atol=1e-6)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in head.parameters())


def test_projection_head_handles_leading_dims():
    assert ProjectionHead(4, 2)(torch.randn(3, 5, 4)).shape == (3, 5, 2)


@pytest.mark.parametrize(
    "args, message",
    [
        ((0, 4), r"`in_dim` must be >= 1, got 0"),
        ((4, -1), r"`out_dim` must be >= 1, got -1"),
        ((4, 4, 0), r"`hidden_dim` must be >= 1, got 0"),
        ((4.0, 4), r"`in_dim` must be an integer"),
    ],
)
def test_projection_head_validates_widths(args, message):
    with pytest.raises(ValueError, match=message):
        ProjectionHead(*args)
