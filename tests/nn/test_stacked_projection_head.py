import math

import pytest
import torch

from darec.nn import ProjectionHead, StackedProjectionHead


def test_each_head_is_a_projection_head():
    torch.manual_seed(0)
    stacked = StackedProjectionHead(6, 3, hidden_dim=5, num_heads=3)
    x = torch.randn(7, 6)
    out = stacked(x)
    assert out.shape == (3, 7, 3)
    for h in range(3):  # copy head h's weights into a ProjectionHead: same function
        single = ProjectionHead(6, 3, hidden_dim=5)
        with torch.no_grad():
            single.layers[0].weight.copy_(stacked.weight1[h].T)
            single.layers[0].bias.copy_(stacked.bias1[h, 0])
            single.layers[2].weight.copy_(stacked.weight2[h].T)
            single.layers[2].bias.copy_(stacked.bias2[h, 0])
        torch.testing.assert_close(out[h], single(x))


def test_gradients_match_separate_heads():
    torch.manual_seed(1)
    stacked = StackedProjectionHead(4, 2, hidden_dim=3).double()
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: stacked(v), (x,))
    stacked(x)[1].pow(2).sum().backward()  # only head 1 is used: head 0 gets zero gradients
    assert torch.count_nonzero(stacked.weight1.grad[0]) == 0 and torch.count_nonzero(stacked.weight1.grad[1]) > 0


def test_initialisation_and_default_width():
    torch.manual_seed(2)
    stacked = StackedProjectionHead(64, 16)
    assert stacked.hidden_dim == 40 and stacked.weight1.shape == (2, 64, 40) and stacked.weight2.shape == (2, 40, 16)
    for weight in (stacked.weight1, stacked.weight2):
        bound = math.sqrt(6.0 / (weight.shape[1] + weight.shape[2]))
        assert weight.abs().max() <= bound and weight.std() > bound / 4
        assert not torch.equal(weight[0], weight[1])  # independent heads
    assert torch.count_nonzero(stacked.bias1) == 0 and torch.count_nonzero(stacked.bias2) == 0


def test_errors():
    with pytest.raises(ValueError, match="`num_heads` must be >= 1"):
        StackedProjectionHead(4, 2, num_heads=0)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4\)"):
        StackedProjectionHead(4, 2)(torch.randn(3, 5))
