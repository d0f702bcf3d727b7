"""The Lightning module and the pieces of its objective."""

from darec.module.checkpoint import CheckpointError, read_checkpoint
from darec.module.darec_module import DaRecModule
from darec.module.objective import AlignmentObjective
from darec.module.terms import ContrastiveTerm, GenerativeTerm, GlobalStructureTerm, LocalStructureTerm
from darec.module.views import SideViews

__all__ = [
    "AlignmentObjective",
    "CheckpointError",
    "ContrastiveTerm",
    "DaRecModule",
    "GenerativeTerm",
    "GlobalStructureTerm",
    "LocalStructureTerm",
    "SideViews",
    "read_checkpoint",
]
