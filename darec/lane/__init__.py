"""LANE: explain a sequential recommender with a frozen LLM, its preferences and its own attention.

LANE (Zhao et al., arXiv:2407.02833) never tunes the LLM. It asks it for ``m`` preferences of
every user (from the training history only), lets the recommender's sequence states attend to
their embeddings, and asks the LLM for a four-step explanation that uses the learned weights:

- :class:`PreferenceExtractor` (LN-2): the cached, resumable extraction, with
  :class:`PreferenceAnswer` (the tolerant parser, :class:`PreferenceParseError`) and
  :class:`PreferenceReport` (which users could not be parsed);
- :class:`PreferenceAttention` and :class:`PreferenceAttentionFusion` (LN-3): the attention
  block and the Lightning module (a :class:`~darec.module.SequentialModule`) with
  ``preference_weights()``;
- :class:`CoTExplainer` (LN-4): the chain-of-thought prompt and its parser, which returns an
  :class:`Explanation` or an :class:`Unparsed`.

The ``darec preferences`` command (:mod:`darec.lane.preferences_command`) extracts the
preferences of every user, and ``darec explain`` (:mod:`darec.lane.command`) explains a trained
checkpoint's recommendations, from the shell. Any :mod:`darec.llm` backend works.
"""

from darec.lane.cot_explainer import CoTExplainer
from darec.lane.errors import PreferenceParseError
from darec.lane.explanation import Explanation
from darec.lane.preference_answer import PreferenceAnswer
from darec.lane.preference_attention import PreferenceAttention
from darec.lane.preference_attention_fusion import PreferenceAttentionFusion
from darec.lane.preference_extractor import LIST_PREFILL, PREFERENCE_LIST_TEMPLATE, PREFERENCE_TEMPLATE, PreferenceExtractor
from darec.lane.preference_report import PreferenceReport
from darec.lane.unparsed import Unparsed

__all__ = [
    "LIST_PREFILL",
    "PREFERENCE_LIST_TEMPLATE",
    "PREFERENCE_TEMPLATE",
    "CoTExplainer",
    "Explanation",
    "PreferenceAnswer",
    "PreferenceAttention",
    "PreferenceAttentionFusion",
    "PreferenceExtractor",
    "PreferenceParseError",
    "PreferenceReport",
    "Unparsed",
]
