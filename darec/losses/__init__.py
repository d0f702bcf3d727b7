"""The terms of :class:`~darec.DaRecModule`'s objective, each backed by a :mod:`darec.functional` twin.

An alignment loss or regulariser is a :class:`~torch.nn.Module` whose ``forward(views)`` takes a
training step's :class:`~darec.module.StepViews` (one :class:`~darec.module.SideViews`
per side) and returns a scalar; its ``compute(...)`` method is the loss of one set of rows. The
module holds the terms (``model.objective``); weights are not constructor arguments: the
objective weighs and sums the terms, and callbacks schedule the weights.
"""

from darec.losses.bpr_loss import BPRLoss
from darec.losses.contrastive_alignment_loss import ContrastiveAlignmentLoss
from darec.losses.generative_alignment_loss import GenerativeAlignmentLoss
from darec.losses.global_structure_alignment_loss import GlobalStructureAlignmentLoss
from darec.losses.local_structure_alignment_loss import LocalStructureAlignmentLoss
from darec.losses.orthogonality_regularizer import OrthogonalityRegularizer
from darec.losses.uniformity_regularizer import UniformityRegularizer

__all__ = [
    "BPRLoss",
    "ContrastiveAlignmentLoss",
    "GenerativeAlignmentLoss",
    "GlobalStructureAlignmentLoss",
    "LocalStructureAlignmentLoss",
    "OrthogonalityRegularizer",
    "UniformityRegularizer",
]
