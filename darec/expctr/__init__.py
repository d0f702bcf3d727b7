"""ExpCTR: an LLM explanation generator trained inside click-through-rate prediction.

ExpCTR (Yu, Zhang and Chen, WSDM 2025, arXiv:2412.02588) asks an LLM for one sentence on how a
user would see a target item, given the items they liked and disliked (:class:`~darec.ctr.ExplanationPrompt`),
and trains it with two alignment rewards; the explanations then become a text feature of an
ID-based CTR model (:mod:`darec.ctr`). This sub-package holds the LLM side:

- :func:`lc_reward` and :func:`ic_reward` (EC-3): the per-sample rewards
  :math:`(2y - 1)(2p - 1)` of a click predictor that reads the explanation: an LLM alone
  (:class:`LCScorer`, LC alignment) or the text-augmented CTR model (:class:`ICScorer`, IC
  alignment), with agreement rates (:class:`RewardResult`);
- :class:`ExpCTRLoop` (EC-4) with :class:`ExpCTRConfig`: LC-rewarded LoRA fine-tuning with TRL's
  GRPO (or RLOO) -> fresh explanations -> the text-augmented CTR model -> IC-rewarded refinement,
  repeated, resumable stage by stage; its two outputs are ExpCTR-LLM (the LC scorer on the
  trained generator's explanations) and ExpCTR-Aug (the augmented CTR model);
- ``darec expctr run --config ...`` and ``darec expctr explain --run ... --user ... --item ...``
  from the shell (:mod:`darec.expctr.command`).

The RL stages need the ``llm`` extra (``transformers``, ``peft``, ``trl``).
"""

from darec.expctr.expctr_config import CTR_MODELS, ExpCTRConfig
from darec.expctr.expctr_loop import ExpCTRLoop
from darec.expctr.ic_scorer import ICScorer
from darec.expctr.lc_scorer import LC_TEMPLATE, LCScorer
from darec.expctr.reward import RewardResult, agreement_rate, agreement_reward, ic_reward, lc_reward

__all__ = [
    "CTR_MODELS",
    "LC_TEMPLATE",
    "ExpCTRConfig",
    "ExpCTRLoop",
    "ICScorer",
    "LCScorer",
    "RewardResult",
    "agreement_rate",
    "agreement_reward",
    "ic_reward",
    "lc_reward",
]
