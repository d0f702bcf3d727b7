"""DCN-V2: shapes of both structures, the cross layers against their formula, the spec."""

from __future__ import annotations

import pytest
import torch

from darec.ctr import DCNv2
from darec.utils.spec import build_from_spec, describe


@pytest.mark.parametrize("structure", ["parallel", "stacked"])
@pytest.mark.parametrize("text_dim", [0, 5])
def test_output_shape_and_gradients(structure, text_dim):
    model = DCNv2(num_users=6, num_items=9, embedding_dim=4, text_dim=text_dim, hidden_dims=[8], structure=structure)
    user, item = torch.randint(0, 6, (3,)), torch.randint(0, 9, (3,))
    out = model(user, item, torch.randn(3, text_dim) if text_dim else None)
    assert out.shape == (3,)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters()), "every parameter is used"


def test_cross_layers_follow_the_formula():
    torch.manual_seed(0)
    model = DCNv2(num_users=3, num_items=3, embedding_dim=2, num_cross_layers=3)
    x0 = torch.randn(4, 4)
    x = x0
    for layer in model.cross:
        x = x0 * (x @ layer.weight.T + layer.bias) + x  # x_{l+1} = x0 * (W x_l + b) + x_l
    torch.testing.assert_close(model.cross_network(x0), x)


def test_arguments_and_spec():
    with pytest.raises(ValueError, match="`structure`"):
        DCNv2(3, 3, structure="serial")
    with pytest.raises(ValueError, match="`num_cross_layers`"):
        DCNv2(3, 3, num_cross_layers=0)
    assert not hasattr(DCNv2(3, 3).fields, "user_bias")  # no first-order term
    spec = describe(DCNv2(3, 4, structure="stacked"))
    assert spec["init_args"] == {"num_users": 3, "num_items": 4, "structure": "stacked"}
    assert isinstance(build_from_spec(spec), DCNv2)
