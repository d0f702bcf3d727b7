"""FM: the O(Fd) pairwise term against the naive sum of dot products, the text field, the checks."""

from __future__ import annotations

import itertools

import pytest
import torch

from darec.ctr import FM, fm_interaction
from darec.utils.spec import build_from_spec, describe


def _naive_pairwise(fields: torch.Tensor) -> torch.Tensor:
    """Sum over every pair of distinct fields of their dot product, by explicit loops."""
    out = torch.zeros(fields.size(0), dtype=fields.dtype)
    for b in range(fields.size(0)):
        for f, g in itertools.combinations(range(fields.size(1)), 2):
            out[b] += torch.dot(fields[b, f], fields[b, g])
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("num_fields", [1, 2, 3, 5])
def test_pairwise_term_matches_the_naive_sum(num_fields, dtype):
    fields = torch.randn(6, num_fields, 4, dtype=dtype, generator=torch.Generator().manual_seed(num_fields))
    torch.testing.assert_close(fm_interaction(fields), _naive_pairwise(fields))


def test_pairwise_term_is_invariant_to_the_order_of_the_fields():
    fields = torch.randn(3, 4, 5)
    torch.testing.assert_close(fm_interaction(fields), fm_interaction(fields[:, [2, 0, 3, 1]]))
    with pytest.raises(ValueError, match=r"\(B, F, d\)"):
        fm_interaction(torch.randn(3, 4))


@pytest.mark.parametrize("text_dim", [0, 6])
def test_forward_is_biases_plus_the_pairwise_term(text_dim):
    torch.manual_seed(0)
    model = FM(num_users=4, num_items=5, embedding_dim=3, text_dim=text_dim)
    for p in model.parameters():
        torch.nn.init.normal_(p)
    user, item = torch.tensor([0, 3, 1]), torch.tensor([4, 0, 2])
    text = torch.randn(3, text_dim) if text_dim else None
    out = model(user, item, text)
    assert out.shape == (3,)
    f = model.fields
    vectors = [f.user.weight[user], f.item.weight[item]] + ([f.text(text)] if text_dim else [])
    expected = f.bias + f.user_bias.weight[user, 0] + f.item_bias.weight[item, 0]
    if text_dim:
        expected = expected + text @ f.text_bias.weight[0]
    expected = expected + _naive_pairwise(torch.stack(vectors, 1))
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert f.user.weight.grad is not None and (f.text is None or f.text.weight.grad is not None)


def test_text_feature_checks():
    ids = torch.tensor([0, 1]), torch.tensor([1, 2])
    with pytest.raises(ValueError, match="text_dim=4 but got no `text`"):
        FM(3, 3, text_dim=4)(*ids)
    with pytest.raises(ValueError, match="text_dim=0 \\(ids only\\) but got a `text` feature of shape \\(2, 5\\)"):
        FM(3, 3)(*ids, torch.randn(2, 5))
    with pytest.raises(ValueError, match="must have shape \\(B, text_dim\\) = \\(2, 4\\)"):
        FM(3, 3, text_dim=4)(*ids, torch.randn(2, 5))
    with pytest.raises(ValueError, match="equal length"):
        FM(3, 3)(torch.tensor([0, 1]), torch.tensor([1]))
    with pytest.raises(ValueError, match="`num_users` must be a positive integer"):
        FM(0, 3)
    with pytest.raises(ValueError, match="`text_dim` must be a non-negative integer"):
        FM(3, 3, text_dim=-1)


def test_spec_rebuilds_the_model():
    model = FM(num_users=4, num_items=5, embedding_dim=8, text_dim=3)
    spec = describe(model)
    assert spec == {
        "class_path": "darec.ctr.fm.FM",
        "init_args": {"num_users": 4, "num_items": 5, "embedding_dim": 8, "text_dim": 3},
    }
    rebuilt = build_from_spec(spec)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
