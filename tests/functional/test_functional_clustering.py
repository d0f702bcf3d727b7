"""Batched k-means and Hungarian cluster matching."""

from __future__ import annotations

import pytest
import torch

from darec.functional.clustering import kmeans, match_clusters


def _blobs(k: int = 4, per: int = 25, dim: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    centres = torch.eye(k, dim) * 20 if k <= dim else torch.randn(k, dim, generator=gen) * 20
    labels = torch.arange(k).repeat_interleave(per)
    x = centres[labels] + 0.3 * torch.randn(k * per, dim, generator=gen)
    perm = torch.randperm(k * per, generator=gen)
    return x[perm], labels[perm]


def _same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two labelings agree up to a permutation of the labels."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("k", [3, 5])
def test_kmeans_recovers_separated_blobs(k):
    x, labels = _blobs(k=k, dim=4)
    centres, assignment = kmeans(x, k, generator=torch.Generator().manual_seed(1))
    assert centres.shape == (k, 4) and assignment.shape == (len(x),) and assignment.dtype == torch.long
    assert _same_partition(assignment, labels)
    for c in range(k):  # each centre is the mean of its points
        torch.testing.assert_close(centres[c], x[assignment == c].mean(0))


def test_kmeans_is_deterministic_for_a_generator_seed():
    x = torch.randn(60, 5, generator=torch.Generator().manual_seed(3))
    a = kmeans(x, 6, generator=torch.Generator().manual_seed(7))
    b = kmeans(x, 6, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a[1], b[1]) and torch.equal(a[0], b[0])


def test_kmeans_with_as_many_clusters_as_points():
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    centres, assignment = kmeans(x, 6, generator=torch.Generator().manual_seed(0))
    assert sorted(assignment.tolist()) == list(range(6))
    torch.testing.assert_close(centres[assignment], x)


def test_kmeans_warm_start_from_its_own_centres_is_a_fixed_point():
    x, labels = _blobs(k=4, dim=4)
    centres, assignment = kmeans(x, 4, generator=torch.Generator().manual_seed(1))
    again, reassigned = kmeans(x, 4, num_iters=1, init=centres)  # one iteration suffices
    assert torch.equal(reassigned, assignment)  # same ids: cluster k stays cluster k
    torch.testing.assert_close(again, centres)


def test_kmeans_warm_start_skips_the_random_seeding():
    x, labels = _blobs(k=3, dim=4)
    init = torch.stack([x[labels == c].mean(0) for c in range(3)])
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    _, assignment = kmeans(x, 3, generator=generator, init=init + 0.5)
    assert torch.equal(generator.get_state(), state)  # no draw was made
    assert torch.equal(assignment, labels)  # warm-started ids follow init's order
    with pytest.raises(ValueError, match=r"`init` must have shape \(3, 4\)"):
        kmeans(x, 3, init=init[:2])


def test_kmeans_single_cluster_and_duplicates():
    x = torch.ones(5, 3)
    centres, assignment = kmeans(x, 1)
    assert assignment.tolist() == [0] * 5 and torch.equal(centres, torch.ones(1, 3))
    centres, assignment = kmeans(x, 3)  # identical points: no NaN
    assert torch.isfinite(centres).all() and assignment.max() < 3


@pytest.mark.parametrize("k", [0, -1, 11])
def test_kmeans_rejects_bad_num_clusters(k):
    with pytest.raises(ValueError, match="num_clusters"):
        kmeans(torch.randn(10, 2), k)


def test_kmeans_rejects_bad_input():
    with pytest.raises(ValueError):
        kmeans(torch.randn(10), 2)
    with pytest.raises(ValueError, match="num_iters"):
        kmeans(torch.randn(10, 2), 2, num_iters=0)


def test_kmeans_does_not_track_gradients():
    x = torch.randn(20, 3, requires_grad=True)
    centres, _ = kmeans(x, 2)
    assert not centres.requires_grad


def test_match_clusters_recovers_a_permutation():
    gen = torch.Generator().manual_seed(0)
    reference = torch.randn(6, 8, generator=gen)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    other = torch.empty_like(reference)
    other[perm] = reference + 0.01 * torch.randn(6, 8, generator=gen)  # other's cluster perm[k] is reference's k
    found = match_clusters(reference, other)
    assert torch.equal(found, perm)
    # relabelling the other side's assignment with the inverse permutation gives the reference labels
    inverse = torch.empty_like(found)
    inverse[found] = torch.arange(6)
    assert torch.equal(inverse[perm], torch.arange(6))


def test_match_clusters_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        match_clusters(torch.randn(3, 2), torch.randn(4, 2))
