import math

import pytest
import torch
from torchmetrics import Metric
from torchmetrics.retrieval import (
    RetrievalHitRate,
    RetrievalMRR,
    RetrievalNormalizedDCG,
    RetrievalPrecision,
    RetrievalRecall,
)

from darec.metrics import (
    HitRateAtK,
    MRRAtK,
    NDCGAtK,
    PrecisionAtK,
    RankingMetrics,
    RecallAtK,
    TopKMetric,
    hit_rate_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    rank_items,
    ranking_metrics,
    recall_at_k,
)

METRIC_CLASSES = [RecallAtK, NDCGAtK, HitRateAtK, PrecisionAtK, MRRAtK]
KS = [1, 5, 20]


def _naive_recall(hits, num_relevant, k):
    return sum(hits) / num_relevant


def _naive_precision(hits, num_relevant, k):
    return sum(hits) / k


def _naive_hit_rate(hits, num_relevant, k):
    return float(any(hits))


def _naive_ndcg(hits, num_relevant, k):
    dcg = sum(1.0 / math.log2(rank + 2) for rank, hit in enumerate(hits) if hit)
    idcg = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, num_relevant)))
    return dcg / idcg


def _naive_mrr(hits, num_relevant, k):
    return next((1.0 / (rank + 1) for rank, hit in enumerate(hits) if hit), 0.0)


NAIVE = {
    RecallAtK: _naive_recall,
    NDCGAtK: _naive_ndcg,
    HitRateAtK: _naive_hit_rate,
    PrecisionAtK: _naive_precision,
    MRRAtK: _naive_mrr,
}

TORCHMETRICS = {
    RecallAtK: RetrievalRecall,
    NDCGAtK: RetrievalNormalizedDCG,
    HitRateAtK: RetrievalHitRate,
    PrecisionAtK: RetrievalPrecision,  # adaptive_k=False by default: divides by k
    MRRAtK: RetrievalMRR,
}


def naive_mean(metric_cls, scores, exclude, target, k):
    """Python-loop reference: rank the allowed items of each user, skip users without targets."""
    values = []
    for u in range(scores.shape[0]):
        relevant = {i for i in range(scores.shape[1]) if target[u, i]}
        if not relevant:
            continue
        allowed = [i for i in range(scores.shape[1]) if not exclude[u, i]]
        ranked = sorted(allowed, key=lambda i: -scores[u, i].item())[:k]
        hits = [i in relevant for i in ranked]
        values.append(NAIVE[metric_cls](hits, len(relevant), k))
    return sum(values) / len(values) if values else 0.0


def torchmetrics_mean(metric_cls, scores, exclude, target, k):
    """torchmetrics.retrieval reference on the allowed (user, item) pairs, with global user ids."""
    keep = ~exclude
    indexes = torch.arange(scores.shape[0]).unsqueeze(1).expand_as(scores)
    reference = TORCHMETRICS[metric_cls](top_k=k, empty_target_action="skip")
    reference.update(scores[keep], target[keep], indexes=indexes[keep])
    return reference.compute().item()


def evaluate(metric, scores, exclude, target, batch_size=None):
    batch_size = batch_size or scores.shape[0]
    for start in range(0, scores.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        metric.update(rank_items(scores[rows], metric.k, exclude=exclude[rows]), target[rows])
    return metric.compute()


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("metric_cls", METRIC_CLASSES)
def test_matches_torchmetrics_retrieval(problem, metric_cls, k):
    value = evaluate(metric_cls(k), *problem)
    expected = torchmetrics_mean(metric_cls, *problem, k)
    assert value.item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("metric_cls", METRIC_CLASSES)
def test_matches_naive_loop(problem, metric_cls, k):
    value = evaluate(metric_cls(k), *problem)
    expected = naive_mean(metric_cls, *problem, k)
    assert value.item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("metric_cls", METRIC_CLASSES)
def test_independent_of_batch_size(problem, metric_cls):
    values = [evaluate(metric_cls(10), *problem, batch_size=size) for size in (1, 7, None)]
    torch.testing.assert_close(values[0], values[2])
    torch.testing.assert_close(values[1], values[2])


@pytest.mark.parametrize("metric_cls", METRIC_CLASSES)
def test_uses_only_the_first_k_columns(problem, metric_cls):
    scores, exclude, target = problem
    wide, narrow = metric_cls(5), metric_cls(5)
    wide.update(rank_items(scores, 20, exclude=exclude), target)
    narrow.update(rank_items(scores, 5, exclude=exclude), target)
    torch.testing.assert_close(wide.compute(), narrow.compute())


@pytest.mark.parametrize("metric_cls", METRIC_CLASSES)
def test_users_without_relevant_items_are_skipped(problem, metric_cls):
    scores, exclude, target = problem
    with_empty, without_empty = metric_cls(10), metric_cls(10)
    with_empty.update(rank_items(scores, 10, exclude=exclude), target)
    has_target = target.any(1)
    without_empty.update(rank_items(scores[has_target], 10, exclude=exclude[has_target]), target[has_target])
    torch.testing.assert_close(with_empty.compute(), without_empty.compute())
    assert with_empty.count.item() == has_target.sum().item()


@pytest.mark.parametrize("metric_cls", METRIC_CLASSES)
def test_no_relevant_item_at_all_gives_zero(metric_cls):
    metric = metric_cls(3)
    metric.update(torch.tensor([[0, 1, 2]]), torch.zeros(1, 4, dtype=torch.bool))
    assert metric.compute().item() == 0.0


@pytest.mark.parametrize("metric_cls", METRIC_CLASSES)
def test_perfect_ranking_gives_one(metric_cls):
    target = torch.tensor([[True, True, False, False, False]])
    metric = metric_cls(2)
    metric.update(torch.tensor([[0, 1]]), target)
    assert metric.compute().item() == pytest.approx(1.0)


def test_precision_divides_by_k_even_for_a_small_catalogue():
    # 3 items, k=5: the whole catalogue is ranked and precision keeps the nominal k
    target = torch.tensor([[True, False, True]])
    preds = rank_items(torch.tensor([[0.9, 0.5, 0.1]]), 5)
    precision, recall = PrecisionAtK(5), RecallAtK(5)
    precision.update(preds, target)
    recall.update(preds, target)
    assert precision.compute().item() == pytest.approx(2 / 5)
    assert recall.compute().item() == pytest.approx(1.0)


@pytest.mark.parametrize("metric_cls", METRIC_CLASSES)
def test_forward_returns_the_batch_value_and_accumulates(problem, metric_cls):
    scores, exclude, target = problem
    metric = metric_cls(10)
    first = metric(rank_items(scores[:25], 10, exclude=exclude[:25]), target[:25])
    alone = metric_cls(10)
    alone.update(rank_items(scores[:25], 10, exclude=exclude[:25]), target[:25])
    torch.testing.assert_close(first, alone.compute())
    metric(rank_items(scores[25:], 10, exclude=exclude[25:]), target[25:])
    torch.testing.assert_close(metric.compute(), evaluate(metric_cls(10), *problem))


@pytest.mark.parametrize("metric_cls", METRIC_CLASSES)
def test_reset(problem, metric_cls):
    metric = metric_cls(5)
    evaluate(metric, *problem)
    metric.reset()
    assert metric.total.item() == 0.0 and metric.count.item() == 0


@pytest.mark.parametrize(
    ("metric_cls", "name"),
    [(RecallAtK, "recall@20"), (NDCGAtK, "ndcg@20"), (HitRateAtK, "hit_rate@20"),
     (PrecisionAtK, "precision@20"), (MRRAtK, "mrr@20")],
)
def test_name_repr_and_attributes(metric_cls, name):
    metric = metric_cls(20)
    assert isinstance(metric, Metric)
    assert metric.name == name
    assert repr(metric) == f"{metric_cls.__name__}(k=20)"
    assert metric.is_differentiable is False
    assert metric.higher_is_better is True
    assert metric.full_state_update is False
    assert (metric.plot_lower_bound, metric.plot_upper_bound) == (0.0, 1.0)
    assert metric.total.dtype == torch.float64
    assert metric.state_dict() == {}  # states are not persisted in checkpoints


@pytest.mark.parametrize("k", [0, -3, 2.5, "5", True, None])
@pytest.mark.parametrize("metric_cls", METRIC_CLASSES)
def test_rejects_bad_k(metric_cls, k):
    with pytest.raises(ValueError, match="`k` must be a positive integer"):
        metric_cls(k)


@pytest.mark.parametrize("metric_cls", METRIC_CLASSES)
def test_update_rejects_bad_inputs(metric_cls):
    metric = metric_cls(3)
    preds = torch.tensor([[0, 1, 2], [3, 2, 1]])
    target = torch.zeros(2, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="`preds` must hold integer item indices"):
        metric.update(preds.float(), target)
    with pytest.raises(ValueError, match="`preds` must be a 2-D"):
        metric.update(preds[0], target)
    with pytest.raises(ValueError, match="`target` must be a 2-D"):
        metric.update(preds, target[0])
    with pytest.raises(ValueError, match="`target` must be a bool tensor"):
        metric.update(preds, target.float())
    with pytest.raises(ValueError, match="same batch size, got 2 and 3"):
        metric.update(preds, torch.zeros(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="`preds` has 2 columns but k=3"):
        metric.update(preds[:, :2], target)
    with pytest.raises(ValueError, match="`num_relevant` must have shape"):
        metric.update(preds, target, num_relevant=torch.zeros(3, dtype=torch.long))


def test_functional_values_by_hand():
    hits = torch.tensor([[False, True, True, False], [False, False, False, False], [True, True, True, True]])
    num_relevant = torch.tensor([3, 0, 10])
    torch.testing.assert_close(recall_at_k(hits, num_relevant), torch.tensor([2 / 3, 0.0, 0.4]))
    torch.testing.assert_close(precision_at_k(hits, num_relevant), torch.tensor([0.5, 0.0, 1.0]))
    torch.testing.assert_close(precision_at_k(hits, num_relevant, k=8), torch.tensor([0.25, 0.0, 0.5]))
    torch.testing.assert_close(hit_rate_at_k(hits, num_relevant), torch.tensor([1.0, 0.0, 1.0]))
    torch.testing.assert_close(mrr_at_k(hits, num_relevant), torch.tensor([0.5, 0.0, 1.0]))
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    torch.testing.assert_close(ndcg_at_k(hits, num_relevant), torch.tensor([dcg / idcg, 0.0, 1.0]))


@pytest.mark.parametrize("fn", [recall_at_k, precision_at_k, hit_rate_at_k, ndcg_at_k, mrr_at_k])
def test_functional_shapes_and_errors(fn):
    assert fn(torch.zeros(0, 3, dtype=torch.bool), torch.zeros(0, dtype=torch.long)).shape == (0,)
    assert fn(torch.zeros(4, 3, dtype=torch.bool), torch.ones(4, dtype=torch.long)).dtype == torch.float32
    with pytest.raises(ValueError, match="`hits` must be a bool"):
        fn(torch.zeros(2, 3), torch.ones(2, dtype=torch.long))
    with pytest.raises(ValueError, match="`hits` must be a 2-D"):
        fn(torch.zeros(3, dtype=torch.bool), torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="`num_relevant` must have shape"):
        fn(torch.zeros(2, 3, dtype=torch.bool), torch.ones(3, dtype=torch.long))


# -- user-defined metrics ------------------------------------------------------------------------
class FirstHitAtK(TopKMetric):
    """1 if the first recommendation is relevant, whatever k (a user-defined metric)."""

    short_name = "first_hit"

    def per_user(self, hits, num_relevant):
        return hits[:, 0].float()


def test_user_defined_metric_plugs_into_the_collection():
    scores = torch.tensor([[0.9, 0.1, 0.8, 0.3], [0.2, 0.7, 0.4, 0.6], [0.1, 0.2, 0.3, 0.4]])
    target = torch.tensor([[True, False, False, False], [False, False, True, False], [False] * 4])
    metrics = ranking_metrics(ks=(1, 3), names=(FirstHitAtK, "recall"), prefix="val/")
    assert sorted(metrics.keys(keep_base=True)) == ["first_hit@1", "first_hit@3", "recall@1", "recall@3"]
    metrics.update(rank_items(scores, k=metrics.max_k), target)
    values = {name: round(value.item(), 4) for name, value in metrics.compute().items()}
    assert values == {"val/first_hit@1": 0.5, "val/first_hit@3": 0.5, "val/recall@1": 0.5, "val/recall@3": 1.0}
    assert isinstance(RecallAtK(5), TopKMetric)
    collection = RankingMetrics([FirstHitAtK(2), RecallAtK(2)])
    assert collection.max_k == 2 and "first_hit@2" in collection


def test_a_metric_without_per_user_says_so():
    class Incomplete(TopKMetric):
        short_name = "incomplete"

    with pytest.raises(NotImplementedError, match="Incomplete must implement per_user"):
        Incomplete(2).update(torch.tensor([[0, 1]]), torch.tensor([[True, False]]))
    with pytest.raises(ValueError, match="pass TopKMetric subclasses"):
        ranking_metrics(names=(int,))
