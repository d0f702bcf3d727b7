"""Click-through-rate prediction with explanation text: the CTR side of ExpCTR.

ExpCTR (Yu, Zhang and Chen, WSDM 2025, arXiv:2412.02588) makes an LLM's explanation of a
(user, item) pair a feature of a conventional CTR model (ExpCTR-Aug). This sub-package holds that
model side, on CPU-sized data:

- :class:`CTRSamples`: labelled pairs (a rating at or above a threshold is a click, or explicit
  0/1 labels), a global time split (80/10/10) and each pair's liked and disliked history from
  earlier *training* interactions only (for the explanation prompts);
- :class:`CTRDataModule` (and :class:`MovieLens100KCTR`): batches ``{"user", "item", "label"}``
  and, from an explanation file embedded by MiniLM, the dense ``text`` feature, with the
  shuffled-explanations control;
- backbones, plain modules from ids (and the optional text feature, EC-2) to logits:
  :class:`FM` (with :func:`fm_interaction`), :class:`DeepFM` and :class:`DCNv2`;
- :class:`CTRModule`: BCE training, AUC and LogLoss (``val/auc``, ``val/logloss``, ``test/...``),
  and :func:`relative_auc_improvement` (RelaImpr) over a base model;
- :class:`ExplanationPrompt` and :class:`ExplanationJob` (EC-1): the liked/disliked prompt of a
  pair and a resumable run that writes an explanation of every pair with a language model into
  the file :class:`CTRDataModule` reads (``darec explanations`` from the shell,
  :mod:`darec.ctr.explanations_command`).

``darec fit --config examples/configs/ml100k_ctr_deepfm.yaml`` trains one from the shell
(:mod:`darec.ctr.cli`).
"""

from darec.ctr.ctr_datamodule import CTRDataModule
from darec.ctr.ctr_module import CTRModule
from darec.ctr.ctr_samples import PAD, CTRSamples
from darec.ctr.dcn_v2 import DCNv2
from darec.ctr.explanation_job import ExplanationJob, ExplanationReport
from darec.ctr.explanation_prompt import EXPLANATION_TEMPLATE, ExplanationPrompt
from darec.ctr.deep_fm import DeepFM
from darec.ctr.fm import FM, fm_interaction
from darec.ctr.movielens_100k_ctr import MovieLens100KCTR
from darec.ctr.relative_improvement import relative_auc_improvement

__all__ = [
    "EXPLANATION_TEMPLATE",
    "PAD",
    "CTRDataModule",
    "CTRModule",
    "CTRSamples",
    "DCNv2",
    "DeepFM",
    "ExplanationJob",
    "ExplanationPrompt",
    "ExplanationReport",
    "FM",
    "MovieLens100KCTR",
    "fm_interaction",
    "relative_auc_improvement",
]
