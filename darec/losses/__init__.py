"""Loss and regularizer modules of darec, each a thin wrapper over a :mod:`darec.functional` twin.

Weights are not constructor arguments: the caller (e.g. the module's objective) weighs and sums
the terms.
"""

from darec.losses.bpr_loss import BPRLoss
from darec.losses.contrastive_alignment_loss import ContrastiveAlignmentLoss
from darec.losses.generative_alignment_loss import GenerativeAlignmentLoss
from darec.losses.global_structure_alignment_loss import GlobalStructureAlignmentLoss
from darec.losses.local_structure_alignment_loss import LocalStructureAlignmentLoss
from darec.losses.orthogonality_regularizer import OrthogonalityRegularizer
from darec.losses.projection_head import ProjectionHead
from darec.losses.stacked_projection_head import StackedProjectionHead
from darec.losses.uniformity_regularizer import UniformityRegularizer

__all__ = [
    "BPRLoss",
    "ContrastiveAlignmentLoss",
    "GenerativeAlignmentLoss",
    "GlobalStructureAlignmentLoss",
    "LocalStructureAlignmentLoss",
    "OrthogonalityRegularizer",
    "ProjectionHead",
    "StackedProjectionHead",
    "UniformityRegularizer",
]
