"""Full-ranking top-k metrics for collaborative filtering, as :class:`torchmetrics.Metric` objects,
and the sampled protocol of sequential recommendation (:class:`SampledRankingEvaluator`).

Typical use in a LightningModule::

    self.val_metrics = ranking_metrics(ks=(10, 20), prefix="val/")
    ...
    topk = rank_items(scores, k=self.val_metrics.max_k, exclude=train_mask)  # validation_step
    self.val_metrics.update(topk, test_mask)
    ...
    self.log_dict(self.val_metrics.compute())  # on_validation_epoch_end
    self.val_metrics.reset()
"""

from darec.metrics.functional import (
    hit_rate_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    rank_items,
    recall_at_k,
    topk_hits,
)
from darec.metrics.base import TopKMetric
from darec.metrics.collection import METRICS, RankingMetrics, ranking_metrics
from darec.metrics.hit_rate import HitRateAtK
from darec.metrics.mrr import MRRAtK
from darec.metrics.ndcg import NDCGAtK
from darec.metrics.precision import PrecisionAtK
from darec.metrics.recall import RecallAtK
from darec.metrics.sampled_ranking_evaluator import SampledRankingEvaluator

__all__ = [
    "rank_items",
    "topk_hits",
    "recall_at_k",
    "precision_at_k",
    "hit_rate_at_k",
    "ndcg_at_k",
    "mrr_at_k",
    "RecallAtK",
    "NDCGAtK",
    "HitRateAtK",
    "PrecisionAtK",
    "MRRAtK",
    "TopKMetric",
    "RankingMetrics",
    "ranking_metrics",
    "METRICS",
    "SampledRankingEvaluator",
]
