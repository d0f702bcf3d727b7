"""Callbacks: the alignment switches (with their schedules) and the prediction writer.

Adding a callback to the trainer is how an alignment loss is turned on::

    trainer = L.Trainer(callbacks=[
        darec.callbacks.GlobalStructureAlignment(weight=1e-2),
        darec.callbacks.LocalStructureAlignment(num_clusters=10, weight=1e-2),
    ])
"""

from darec.callbacks.alignment_callback import AlignmentCallback
from darec.callbacks.checkpoint import ResumableCheckpoint
from darec.callbacks.contrastive_alignment import ContrastiveAlignment
from darec.callbacks.generative_alignment import GenerativeAlignment
from darec.callbacks.global_structure_alignment import GlobalStructureAlignment
from darec.callbacks.local_structure_alignment import LocalStructureAlignment
from darec.callbacks.prediction_writer import PredictionWriter
from darec.callbacks.warmup_early_stopping import WarmupEarlyStopping

__all__ = [
    "AlignmentCallback",
    "ContrastiveAlignment",
    "GenerativeAlignment",
    "GlobalStructureAlignment",
    "LocalStructureAlignment",
    "PredictionWriter",
    "ResumableCheckpoint",
    "WarmupEarlyStopping",
]
