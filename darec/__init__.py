"""darec: disentangled alignment of LLM text representations with collaborative filtering.

Sub-packages, one concept each: :mod:`darec.data` (interactions, readers, data modules),
:mod:`darec.text` (profiles, encoders, embedding cache), :mod:`darec.backbones`,
:mod:`darec.losses` and :mod:`darec.functional` (the loss zoo), :mod:`darec.metrics` (full-ranking
metrics), :mod:`darec.module` (:class:`DaRecModule`), :mod:`darec.callbacks` (alignment switches)
and :mod:`darec.cli` (the ``darec`` command).
"""

__version__ = "0.1.0"

from darec import backbones, callbacks, data, functional, losses, metrics, text  # noqa: E402
from darec.module import DaRecModule  # noqa: E402

__all__ = ["DaRecModule", "__version__", "backbones", "callbacks", "data", "functional", "losses", "metrics", "text"]
