import math

import pytest
import torch

import darec.functional as DF
from darec.losses import GenerativeAlignmentLoss
from darec.nn import ProjectionHead


def naive_info_nce(a, b, temperature):
    ua = [[v / math.sqrt(sum(w * w for w in r)) for v in r] for r in a.tolist()]
    ub = [[v / math.sqrt(sum(w * w for w in r)) for v in r] for r in b.tolist()]
    total = 0.0
    for i, anchor in enumerate(ua):
        logits = [sum(x * y for x, y in zip(anchor, other)) / temperature for other in ub]
        total += -logits[i] + math.log(sum(math.exp(v) for v in logits))
    return total / len(ua)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_generative_module_matches_reference(dtype):
    torch.manual_seed(0)
    loss = GenerativeAlignmentLoss(llm_dim=12, cf_dim=4).to(dtype)
    cf, llm = torch.randn(8, 4, dtype=dtype), torch.randn(8, 12, dtype=dtype)
    out = loss.compute(cf, llm)
    reconstructed = loss.decoder(cf)
    assert torch.equal(out, DF.generative_alignment(reconstructed, llm, 0.2))
    assert out.item() == pytest.approx(naive_info_nce(reconstructed.detach(), llm, 0.2), rel=1e-5)


def test_generative_module_on_masked_nodes_backpropagates_to_mask_token():
    torch.manual_seed(1)
    num_nodes, cf_dim, llm_dim = 40, 8, 24
    embedding = torch.nn.Parameter(torch.randn(num_nodes, cf_dim))
    loss = GenerativeAlignmentLoss(llm_dim=llm_dim, cf_dim=cf_dim)
    mask_token = loss.mask_token  # the loss holds its learnable mask token
    assert mask_token.shape == (1, cf_dim) and torch.equal(mask_token, torch.zeros(1, cf_dim))
    llm = torch.randn(num_nodes, llm_dim)
    masked = torch.randperm(num_nodes)[:6]
    is_masked = torch.zeros(num_nodes, 1, dtype=torch.bool)
    is_masked[masked] = True
    inputs = torch.where(is_masked, mask_token, embedding)
    adjacency = torch.rand(num_nodes, num_nodes).softmax(dim=1)  # stand-in for propagation
    propagated = adjacency @ inputs
    assert isinstance(loss.decoder, ProjectionHead)
    assert (loss.decoder.in_dim, loss.decoder.out_dim) == (cf_dim, llm_dim)
    loss.compute(propagated[masked], llm[masked]).backward()
    assert mask_token.grad is not None and torch.isfinite(mask_token.grad).all()
    assert all(p.grad is not None for p in loss.parameters())


def test_generative_module_validates_arguments():
    with pytest.raises(ValueError, match=r"`temperature` must be a finite number > 0"):
        GenerativeAlignmentLoss(8, 4, temperature=-1.0)
    with pytest.raises(ValueError, match=r"`out_dim` must be >= 1"):
        GenerativeAlignmentLoss(0, 4)
    loss = GenerativeAlignmentLoss(8, 4)
    assert loss.decoder.hidden_dim == 6 and "temperature=0.2" in repr(loss)
    with pytest.raises(ValueError, match=r"`a` and `b` must have the same shape"):
        loss.compute(torch.randn(3, 4), torch.randn(2, 8))
