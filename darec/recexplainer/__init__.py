"""RecExplainer: align an LLM with a trained darec recommender so that it imitates and explains it.

RecExplainer (Lei et al., KDD 2024, arXiv:2311.10947) fine-tunes an LLM to imitate a *target*
recommender: every label of its alignment tasks comes from the target's scores, and the intention
and hybrid styles put the target's user and item vectors into the LLM at ``<user>``/``<item>``
placeholders.

- :class:`Recommender`: what a target must offer (scores, item vectors, user vectors);
  :class:`CFRecommender` (a :class:`~darec.DaRecModule`: MF, LightGCN, with or without DaRec) and
  :class:`SequentialRecommender` (SASRec, LANE's fusion model) adapt darec's trained models, and
  :func:`load_recommender` loads one from its checkpoint, checked against the data;
- :class:`AlignmentTaskBuilder` (RX-1): the alignment tasks in the behaviour, intention or hybrid
  style, as :class:`AlignmentTask` records, written and read with :func:`write_tasks` and
  :func:`read_tasks`;
- :class:`RecEmbeddingInjector` and :class:`RecExplainerModule` (RX-2), trained by ``darec fit``
  on a :class:`RecExplainerDataModule`; :class:`RecExplainer` (and ``darec ask``) questions the
  trained explainer;
- RX-3 alignment metrics, :class:`RubricJudge` (RX-4) and :class:`FidelityProbe` (RX-5).
"""

from darec.recexplainer.alignment_task import ITEM_TOKEN, TASK_NUMBERS, USER_TOKEN, AlignmentTask, read_tasks, write_tasks
from darec.recexplainer.alignment_task_builder import AlignmentTaskBuilder
from darec.recexplainer.cf_recommender import CFRecommender
from darec.recexplainer.recommender import Recommender, check_recommender, load_recommender
from darec.recexplainer.sequential_recommender import SequentialRecommender

from darec.recexplainer.alignment_metrics import (
    GRADED_WEIGHTS,
    graded_ndcg_at_5,
    hit_ndcg_at_k,
    history_coverage_ratio,
    normalize_title,
    parse_yes_no,
    split_titles,
    yes_no_accuracy,
    yes_no_accuracy_from_text,
    yes_no_logits,
)
from darec.recexplainer.alignment_score import AlignmentScore
from darec.recexplainer.catalog import item_catalog
from darec.recexplainer.rec_explainer import EXPLAIN_TEMPLATES, RecExplainer
from darec.recexplainer.recexplainer_datamodule import RecExplainerDataModule
from darec.recexplainer.fidelity_probe import FidelityProbe
from darec.recexplainer.judge_report import JudgeReport
from darec.recexplainer.rec_connector import RecConnector
from darec.recexplainer.rec_embedding_injector import RecEmbeddingInjector
from darec.recexplainer.recexplainer_dataset import RecExplainerDataset
from darec.recexplainer.recexplainer_module import RecExplainerModule
from darec.recexplainer.rubric_judge import RUBRIC_TEMPLATE, RubricJudge
from darec.recexplainer.score_probe_result import ScoreProbeResult
from darec.recexplainer.sentence_encoder import SentenceEncoder
from darec.recexplainer.source_probe_result import SourceProbeResult

__all__ = [
    "ITEM_TOKEN",
    "TASK_NUMBERS",
    "USER_TOKEN",
    "AlignmentTask",
    "AlignmentTaskBuilder",
    "CFRecommender",
    "Recommender",
    "SequentialRecommender",
    "check_recommender",
    "load_recommender",
    "read_tasks",
    "write_tasks",
    "EXPLAIN_TEMPLATES", "RecExplainer", "RecExplainerDataModule", "item_catalog",
    "AlignmentScore", "FidelityProbe", "GRADED_WEIGHTS", "JudgeReport", "RUBRIC_TEMPLATE", "RecConnector",
    "RecEmbeddingInjector", "RecExplainerDataset", "RecExplainerModule", "RubricJudge", "ScoreProbeResult",
    "SentenceEncoder", "SourceProbeResult", "graded_ndcg_at_5", "hit_ndcg_at_k", "history_coverage_ratio",
    "normalize_title", "parse_yes_no", "split_titles", "yes_no_accuracy", "yes_no_accuracy_from_text",
    "yes_no_logits",
]
