import math

import pytest
import torch

from darec.functional import cluster_centres, global_structure_alignment, local_structure_alignment


def leaf64(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def cosine_matrix(x):
    rows = x.tolist()
    norms = [math.sqrt(sum(v * v for v in r)) for r in rows]
    n = len(rows)
    return [[sum(a * b for a, b in zip(rows[i], rows[j])) / (norms[i] * norms[j]) for j in range(n)] for i in range(n)]


def naive_global(cf, llm, mode, temperature):
    a_cf, a_llm = cosine_matrix(cf), cosine_matrix(llm)
    n = len(a_cf)
    if mode == "mse":
        return sum((a_cf[i][j] - a_llm[i][j]) ** 2 for i in range(n) for j in range(n)) / (n * n)
    total = 0.0
    for i in range(n):
        z_cf = sum(math.exp(v / temperature) for v in a_cf[i])
        z_llm = sum(math.exp(v / temperature) for v in a_llm[i])
        for j in range(n):
            p = math.exp(a_llm[i][j] / temperature) / z_llm
            q = math.exp(a_cf[i][j] / temperature) / z_cf
            total += p * math.log(p / q)
    return total / n


def naive_centres(x, assignment, k):
    rows, ids = x.tolist(), assignment.tolist()
    centres, counts = [], []
    for c in range(k):
        members = [r for r, a in zip(rows, ids) if a == c]
        counts.append(len(members))
        if members:
            centres.append([sum(col) / len(members) for col in zip(*members)])
        else:
            centres.append([0.0] * x.shape[1])
    return centres, counts


def naive_local(cf, llm, assignment, k, temperature):
    c_cf, counts = naive_centres(cf, assignment, k)
    c_llm, _ = naive_centres(llm, assignment, k)
    present = [c for c in range(k) if counts[c] > 0]
    if len(present) < 2:
        return 0.0

    def unit(v):
        norm = math.sqrt(sum(a * a for a in v))
        return [a / norm for a in v]

    u_cf = {c: unit(c_cf[c]) for c in present}
    u_llm = {c: unit(c_llm[c]) for c in present}

    def direction(anchors, others):
        total = 0.0
        for c in present:
            logits = {j: sum(a * b for a, b in zip(anchors[c], others[j])) / temperature for j in present}
            total += -logits[c] + math.log(sum(math.exp(v) for v in logits.values()))
        return total / len(present)

    return 0.5 * (direction(u_cf, u_llm) + direction(u_llm, u_cf))


# global structure alignment


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode, temperature", [("mse", 1.0), ("kl", 1.0), ("kl", 0.3)])
def test_global_matches_naive_reference(dtype, mode, temperature):
    torch.manual_seed(0)
    cf, llm = torch.randn(8, 4, dtype=dtype), torch.randn(8, 6, dtype=dtype)
    out = global_structure_alignment(cf, llm, mode=mode, temperature=temperature)
    assert out.dtype == dtype and out.shape == ()
    assert out.item() == pytest.approx(naive_global(cf, llm, mode, temperature), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("mode", ["mse", "kl"])
def test_global_is_zero_for_identical_structures(mode):
    torch.manual_seed(0)
    cf = torch.randn(10, 4)
    assert global_structure_alignment(cf, cf, mode=mode).item() == pytest.approx(0.0, abs=1e-6)
    # Same structure in a wider space, after an orthogonal map and a rescaling:
    q, _ = torch.linalg.qr(torch.randn(6, 6))
    llm = 3.0 * torch.cat([cf, torch.zeros(10, 2)], dim=1) @ q
    assert global_structure_alignment(cf, llm, mode=mode).item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("mode", ["mse", "kl"])
def test_global_is_invariant_to_permuting_rows_together(mode):
    torch.manual_seed(1)
    cf, llm = torch.randn(12, 4), torch.randn(12, 7)
    perm = torch.randperm(12)
    out = global_structure_alignment(cf, llm, mode=mode)
    assert global_structure_alignment(cf[perm], llm[perm], mode=mode).item() == pytest.approx(out.item(), rel=1e-5)
    assert out.item() > 0


@pytest.mark.parametrize("mode", ["mse", "kl"])
def test_global_gradients(mode):
    torch.manual_seed(2)
    cf = torch.randn(6, 3, requires_grad=True)
    llm = torch.randn(6, 5, requires_grad=True)
    global_structure_alignment(cf, llm, mode=mode).backward()
    assert torch.isfinite(cf.grad).all() and torch.isfinite(llm.grad).all()
    assert cf.grad.abs().sum() > 0 and llm.grad.abs().sum() > 0
    args = (leaf64(5, 3), leaf64(5, 4))
    assert torch.autograd.gradcheck(lambda a, b: global_structure_alignment(a, b, mode=mode, temperature=0.5), args)


def test_global_errors():
    message = r"`cf_shared` and `llm_shared` must have the same number of rows \(and batch dimensions\), got shapes \(4, 3\) and \(5, 3\)"
    with pytest.raises(ValueError, match=message):
        global_structure_alignment(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"must have the same number of rows \(and batch dimensions\)"):
        global_structure_alignment(torch.randn(2, 4, 3), torch.randn(3, 4, 3))
    with pytest.raises(ValueError, match=r"`mode` must be one of \('mse', 'kl'\), got 'cosine'"):
        global_structure_alignment(torch.randn(4, 3), torch.randn(4, 3), mode="cosine")
    with pytest.raises(ValueError, match=r"`temperature` must be > 0"):
        global_structure_alignment(torch.randn(4, 3), torch.randn(4, 3), mode="kl", temperature=-1.0)
    with pytest.raises(ValueError, match=r"`llm_shared` must be a tensor of shape \(N, d\) or \(\*, N, d\)"):
        global_structure_alignment(torch.randn(4, 3), torch.randn(4))
    with pytest.raises(ValueError, match=r"`cf_shared` must have at least one row"):
        global_structure_alignment(torch.randn(0, 3), torch.randn(0, 3))


@pytest.mark.parametrize("mode, temperature", [("mse", 1.0), ("kl", 0.3)])
def test_global_batched_matches_one_set_at_a_time(mode, temperature):
    torch.manual_seed(6)
    cf, llm = torch.randn(2, 3, 7, 4, dtype=torch.float64), torch.randn(2, 3, 7, 5, dtype=torch.float64)
    out = global_structure_alignment(cf, llm, mode=mode, temperature=temperature)
    assert out.shape == (2, 3)
    for b in range(2):
        for c in range(3):
            expected = naive_global(cf[b, c], llm[b, c], mode, temperature)
            assert out[b, c].item() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    args = (leaf64(2, 5, 3), leaf64(2, 5, 4))
    assert torch.autograd.gradcheck(lambda a, b: global_structure_alignment(a, b, mode=mode, temperature=temperature), args)


# cluster centres


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cluster_centres_match_naive_reference(dtype):
    torch.manual_seed(0)
    x = torch.randn(15, 3, dtype=dtype)
    assignment = torch.tensor([0, 2, 2, 4, 0, 0, 2, 4, 4, 4, 0, 2, 0, 2, 0])  # clusters 1 and 3 empty
    centres, counts = cluster_centres(x, assignment, num_clusters=5)
    ref_centres, ref_counts = naive_centres(x, assignment, 5)
    assert centres.dtype == dtype and counts.dtype == torch.long
    assert counts.tolist() == ref_counts
    assert torch.allclose(centres, torch.tensor(ref_centres, dtype=dtype), atol=1e-6)
    assert (centres[1] == 0).all() and (centres[3] == 0).all()


def test_cluster_centres_gradient_is_one_over_count():
    x = torch.randn(5, 2, requires_grad=True)
    assignment = torch.tensor([1, 1, 0, 1, 2], dtype=torch.int32)
    centres, _ = cluster_centres(x, assignment, 3)
    centres.sum().backward()
    expected = torch.tensor([1 / 3, 1 / 3, 1.0, 1 / 3, 1.0]).unsqueeze(1).expand(5, 2)
    assert torch.allclose(x.grad, expected)


def test_cluster_centres_errors():
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"`assignment` must have shape \(4,\)"):
        cluster_centres(x, torch.zeros(3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"`assignment` must hold integer cluster ids"):
        cluster_centres(x, torch.zeros(4), 2)
    with pytest.raises(ValueError, match=r"`num_clusters` must be >= 1"):
        cluster_centres(x, torch.zeros(4, dtype=torch.long), 0)
    with pytest.raises(ValueError, match=r"`x` must be a tensor of shape \(N, d\) or \(\*, N, d\)"):
        cluster_centres(torch.randn(4), torch.zeros(4, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"`assignment` must have shape \(2, 4\)"):
        cluster_centres(torch.randn(2, 4, 3), torch.zeros(4, dtype=torch.long), 2)


# local structure alignment


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_local_matches_naive_reference(dtype, temperature):
    torch.manual_seed(0)
    cf, llm = torch.randn(20, 4, dtype=dtype), torch.randn(20, 4, dtype=dtype)
    assignment = torch.randint(0, 6, (20,))
    assignment[assignment == 3] = 1  # make sure at least one cluster is empty
    out = local_structure_alignment(cf, llm, assignment, num_clusters=6, temperature=temperature)
    assert out.dtype == dtype and out.shape == ()
    assert out.item() == pytest.approx(naive_local(cf, llm, assignment, 6, temperature), rel=1e-4)


def test_local_is_invariant_to_relabelling_clusters():
    torch.manual_seed(1)
    cf, llm = torch.randn(30, 5), torch.randn(30, 5)
    assignment = torch.randint(0, 7, (30,))
    relabel = torch.randperm(7)
    out = local_structure_alignment(cf, llm, assignment, 7)
    assert local_structure_alignment(cf, llm, relabel[assignment], 7).item() == pytest.approx(out.item(), rel=1e-5)


def test_local_skips_empty_clusters():
    torch.manual_seed(2)
    cf, llm = torch.randn(16, 4), torch.randn(16, 4)
    compact = torch.randint(0, 3, (16,))
    sparse_ids = torch.tensor([1, 4, 8])[compact]  # the same partition spread over 10 ids
    out = local_structure_alignment(cf, llm, compact, 3)
    assert local_structure_alignment(cf, llm, sparse_ids, 10).item() == pytest.approx(out.item(), rel=1e-5)
    assert local_structure_alignment(cf, llm, compact, 50).item() == pytest.approx(out.item(), rel=1e-5)


def test_local_is_zero_but_connected_with_fewer_than_two_clusters():
    cf = torch.randn(8, 3, requires_grad=True)
    llm = torch.randn(8, 3, requires_grad=True)
    for num_clusters in (1, 4):
        out = local_structure_alignment(cf, llm, torch.full((8,), num_clusters - 1), num_clusters)
        assert out.item() == 0.0 and out.grad_fn is not None
        out.backward()
        assert torch.equal(cf.grad, torch.zeros_like(cf)) and torch.equal(llm.grad, torch.zeros_like(llm))
    empty = local_structure_alignment(cf[:0], llm[:0], torch.zeros(0, dtype=torch.long), 4)
    assert empty.item() == 0.0


def test_local_is_lower_when_centres_match():
    torch.manual_seed(3)
    directions = torch.eye(4) * 5.0
    assignment = torch.arange(40) % 4
    cf = directions[assignment] + 0.1 * torch.randn(40, 4)
    matched = local_structure_alignment(cf, cf + 0.1 * torch.randn(40, 4), assignment, 4)
    shuffled = local_structure_alignment(cf, directions[(assignment + 1) % 4], assignment, 4)
    assert matched < shuffled


def test_local_gradients_with_empty_clusters():
    torch.manual_seed(4)
    cf = torch.randn(10, 3, requires_grad=True)
    llm = torch.randn(10, 3, requires_grad=True)
    assignment = torch.tensor([0, 0, 2, 2, 2, 5, 5, 0, 2, 5])
    local_structure_alignment(cf, llm, assignment, 8).backward()
    assert torch.isfinite(cf.grad).all() and torch.isfinite(llm.grad).all()
    assert cf.grad.abs().sum() > 0 and llm.grad.abs().sum() > 0
    args = (leaf64(10, 3), leaf64(10, 3))
    assert torch.autograd.gradcheck(lambda a, b: local_structure_alignment(a, b, assignment, 8, 0.5), args)


def test_cluster_centres_batched_match_one_set_at_a_time():
    torch.manual_seed(7)
    x = torch.randn(2, 3, 9, 4, dtype=torch.float64)
    assignment = torch.randint(0, 5, (2, 3, 9))
    centres, counts = cluster_centres(x, assignment, 5)
    assert centres.shape == (2, 3, 5, 4) and counts.shape == (2, 3, 5)
    for b in range(2):
        for c in range(3):
            expected, expected_counts = naive_centres(x[b, c], assignment[b, c], 5)
            assert torch.allclose(centres[b, c], torch.tensor(expected, dtype=torch.float64))
            assert counts[b, c].tolist() == expected_counts


@pytest.mark.parametrize("separate", [False, True])
def test_local_batched_matches_one_set_at_a_time(separate):
    torch.manual_seed(8)
    cf, llm = torch.randn(3, 12, 4, dtype=torch.float64), torch.randn(3, 12, 4, dtype=torch.float64)
    assignment = torch.randint(0, 4, (3, 12))
    assignment[1] = 0  # one set with a single non-empty cluster: its value is 0
    llm_assignment = torch.randint(0, 4, (3, 12)) if separate else None
    out = local_structure_alignment(cf, llm, assignment, 4, temperature=0.5, llm_assignment=llm_assignment)
    assert out.shape == (3,)
    for b in range(3):
        one = local_structure_alignment(
            cf[b], llm[b], assignment[b], 4, temperature=0.5, llm_assignment=None if llm_assignment is None else llm_assignment[b]
        )
        assert out[b].item() == pytest.approx(one.item(), rel=1e-12, abs=1e-12)
        if not separate:
            assert out[b].item() == pytest.approx(naive_local(cf[b], llm[b], assignment[b], 4, 0.5), rel=1e-9, abs=1e-12)
    args = (leaf64(2, 10, 3), leaf64(2, 10, 3))
    ids = torch.randint(0, 4, (2, 10))
    assert torch.autograd.gradcheck(lambda a, b: local_structure_alignment(a, b, ids, 4, 0.5), args)


def test_local_errors():
    x = torch.randn(6, 3)
    ids = torch.zeros(6, dtype=torch.long)
    with pytest.raises(ValueError, match=r"`cf_shared` and `llm_shared` must have the same shape"):
        local_structure_alignment(x, torch.randn(6, 4), ids, 2)
    with pytest.raises(ValueError, match=r"`cf_shared` and `llm_shared` must have the same shape"):
        local_structure_alignment(x, torch.randn(5, 3), ids, 2)
    with pytest.raises(ValueError, match=r"`assignment` must have shape \(6,\)"):
        local_structure_alignment(x, x, ids[:5], 2)
    with pytest.raises(ValueError, match=r"`assignment` must hold integer cluster ids"):
        local_structure_alignment(x, x, ids.bool(), 2)
    with pytest.raises(ValueError, match=r"`temperature` must be > 0"):
        local_structure_alignment(x, x, ids, 2, temperature=0.0)
    with pytest.raises(ValueError, match=r"`num_clusters` must be >= 1"):
        local_structure_alignment(x, x, ids, 0)


def test_local_alignment_with_separate_llm_assignment_matches_loop_reference():
    import torch.nn.functional as F

    torch.manual_seed(3)
    cf, llm = torch.randn(20, 4, dtype=torch.float64), torch.randn(20, 4, dtype=torch.float64)
    a_cf = torch.arange(20) % 4
    a_llm = (torch.arange(20) + 1) % 4
    a_llm[a_llm == 3] = 2  # cluster 3 is empty on the LLM side: it must be skipped
    value = local_structure_alignment(cf, llm, a_cf, 4, temperature=0.5, llm_assignment=a_llm)
    ks = [k for k in range(4) if (a_cf == k).any() and (a_llm == k).any()]
    c = torch.stack([F.normalize(cf[a_cf == k].mean(0), dim=0) for k in ks])
    l = torch.stack([F.normalize(llm[a_llm == k].mean(0), dim=0) for k in ks])  # noqa: E741
    logits = c @ l.T / 0.5
    expected = 0.5 * (F.cross_entropy(logits, torch.arange(len(ks))) + F.cross_entropy(logits.T, torch.arange(len(ks))))
    assert torch.allclose(value, expected)
    # One assignment for both sides is the special case llm_assignment == assignment:
    same = local_structure_alignment(cf, llm, a_cf, 4, temperature=0.5)
    assert torch.allclose(same, local_structure_alignment(cf, llm, a_cf, 4, temperature=0.5, llm_assignment=a_cf))
