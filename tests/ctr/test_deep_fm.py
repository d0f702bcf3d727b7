"""DeepFM: shapes with and without text, the FM part, gradients, the spec."""

from __future__ import annotations

import pytest
import torch

from darec.ctr import DeepFM, fm_interaction
from darec.utils.spec import build_from_spec, describe


@pytest.mark.parametrize("text_dim", [0, 7])
def test_output_shape_and_gradients(text_dim):
    model = DeepFM(num_users=6, num_items=9, embedding_dim=4, text_dim=text_dim, hidden_dims=[8, 4])
    user, item = torch.randint(0, 6, (5,)), torch.randint(0, 9, (5,))
    out = model(user, item, torch.randn(5, text_dim) if text_dim else None)
    assert out.shape == (5,) and out.dtype == torch.float32
    out.sum().backward()
    assert all(p.grad is not None for name, p in model.named_parameters()), "every parameter is used"


def test_logit_is_fm_plus_mlp():
    torch.manual_seed(0)
    model = DeepFM(num_users=3, num_items=4, embedding_dim=2, hidden_dims=[3], dropout=0.0).eval()
    user, item = torch.tensor([0, 2]), torch.tensor([3, 1])
    fields = model.fields(user, item)
    deep = model.head(model.deep(fields.flatten(1))).squeeze(-1)
    torch.testing.assert_close(model(user, item), model.fields.first_order(user, item) + fm_interaction(fields) + deep)


def test_arguments_and_spec():
    with pytest.raises(ValueError, match="`hidden_dims`"):
        DeepFM(3, 3, hidden_dims=[])
    with pytest.raises(ValueError, match="`dropout`"):
        DeepFM(3, 3, dropout=1.0)
    spec = describe(DeepFM(3, 4, text_dim=2, hidden_dims=(16,)))
    assert spec["init_args"] == {"num_users": 3, "num_items": 4, "text_dim": 2, "hidden_dims": [16]}
    assert isinstance(build_from_spec(spec), DeepFM)
