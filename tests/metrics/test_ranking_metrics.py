import pytest
import torch

from darec.metrics import (
    METRICS,
    HitRateAtK,
    NDCGAtK,
    PrecisionAtK,
    RankingMetrics,
    RecallAtK,
    rank_items,
    ranking_metrics,
)


def test_default_builder_keys_and_max_k():
    metrics = ranking_metrics()
    names = ("recall", "ndcg", "hit_rate", "precision", "mrr")
    assert set(metrics.keys()) == {f"{name}@{k}" for name in names for k in (5, 10, 20)}
    assert metrics.max_k == 20
    assert isinstance(metrics["ndcg@10"], NDCGAtK) and metrics["ndcg@10"].k == 10


def test_compute_returns_the_same_keys_with_prefix(problem):
    scores, exclude, target = problem
    metrics = ranking_metrics(ks=(3, 7), names=("recall", "mrr"), prefix="val/")
    metrics.update(rank_items(scores, metrics.max_k, exclude=exclude), target)
    values = metrics.compute()
    assert set(values) == {"val/recall@3", "val/recall@7", "val/mrr@3", "val/mrr@7"}
    assert all(value.shape == () for value in values.values())


def test_collection_equals_individual_metrics(problem):
    scores, exclude, target = problem
    metrics = ranking_metrics(ks=(5, 10, 20))
    for start in range(0, scores.shape[0], 16):
        rows = slice(start, start + 16)
        metrics.update(rank_items(scores[rows], metrics.max_k, exclude=exclude[rows]), target[rows])
    values = metrics.compute()
    for key, value in values.items():
        name, k = key.split("@")
        single = METRICS[name](int(k))
        single.update(rank_items(scores, int(k), exclude=exclude), target)
        torch.testing.assert_close(value, single.compute(), msg=key)


def test_no_compute_groups_merging_on_a_hitless_first_batch():
    # After a first batch without hits every member has the same state (total=0, count=1):
    # torchmetrics' compute groups would merge them and report one value for all.
    metrics = RankingMetrics([RecallAtK(2), PrecisionAtK(2), HitRateAtK(2)])
    metrics.update(torch.tensor([[0, 1]]), torch.tensor([[False, False, True, True]]))
    metrics.update(torch.tensor([[0, 1]]), torch.tensor([[True, False, True, True]]))
    values = metrics.compute()
    assert values["recall@2"].item() == pytest.approx((0 + 1 / 3) / 2)
    assert values["precision@2"].item() == pytest.approx((0 + 1 / 2) / 2)
    assert values["hit_rate@2"].item() == pytest.approx((0 + 1) / 2)


def test_log_dict_ready_values_are_floats(problem):
    scores, exclude, target = problem
    metrics = ranking_metrics(ks=(10,), names="ndcg")
    metrics.update(rank_items(scores, 10, exclude=exclude), target)
    logged = {f"val/{name}": value.item() for name, value in metrics.compute().items()}
    assert list(logged) == ["val/ndcg@10"] and 0.0 < logged["val/ndcg@10"] < 1.0


def test_reset_clears_every_member(problem):
    scores, exclude, target = problem
    metrics = ranking_metrics(ks=(5,))
    metrics.update(rank_items(scores, 5, exclude=exclude), target)
    metrics.reset()
    assert all(m.count.item() == 0 for m in metrics.values())


def test_mapping_input_keeps_the_given_keys():
    metrics = RankingMetrics({"r": RecallAtK(4), "n": NDCGAtK(8)})
    assert set(metrics.keys()) == {"r", "n"} and metrics.max_k == 8


def test_duplicate_ks_and_names_are_dropped():
    metrics = ranking_metrics(ks=(5, 5, 10), names=("recall", "recall"))
    assert sorted(metrics.keys()) == ["recall@10", "recall@5"]


def test_update_rejects_too_narrow_preds_naming_max_k():
    metrics = ranking_metrics(ks=(5, 10))
    with pytest.raises(ValueError, match="k=10"):
        metrics.update(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 30, dtype=torch.bool))
    with pytest.raises(TypeError, match="exactly `preds` and `target`"):
        metrics.update(torch.zeros(2, 10, dtype=torch.long), torch.zeros(2, 30, dtype=torch.bool), 1)


def test_builder_and_collection_errors():
    with pytest.raises(ValueError, match="unknown metric names \\['map'\\]"):
        ranking_metrics(names=("recall", "map"))
    with pytest.raises(ValueError, match="`k` must be a positive integer"):
        ranking_metrics(ks=(5, 0))
    with pytest.raises(ValueError, match="`ks` must hold at least one"):
        ranking_metrics(ks=())
    with pytest.raises(ValueError, match="`names` must hold at least one"):
        ranking_metrics(names=())
    with pytest.raises(ValueError, match="distinct names"):
        RankingMetrics([RecallAtK(5), RecallAtK(5)])
    with pytest.raises(ValueError, match="at least one metric"):
        RankingMetrics([])
    with pytest.raises(ValueError, match="top-k metrics"):
        RankingMetrics({"x": torch.nn.Identity()})


def test_flat_namespace_exports_functions_not_modules():
    import darec.metrics as metrics

    assert set(metrics.__all__) <= set(dir(metrics))
    for name in ("recall_at_k", "ndcg_at_k", "hit_rate_at_k", "precision_at_k", "mrr_at_k", "ranking_metrics"):
        assert callable(getattr(metrics, name)), name


def test_update_with_given_num_relevant_equals_counting():
    scores = torch.randn(6, 30, generator=torch.Generator().manual_seed(0))
    target = torch.rand(6, 30, generator=torch.Generator().manual_seed(1)) < 0.2
    counted, given = ranking_metrics(ks=(5, 10)), ranking_metrics(ks=(5, 10))
    items = rank_items(scores, k=10)
    counted.update(items, target)
    given.update(items, target, num_relevant=target.sum(1))
    assert counted.compute() == given.compute()
    with pytest.raises(ValueError, match="num_relevant"):
        given.update(items, target, num_relevant=torch.ones(5, dtype=torch.long))
