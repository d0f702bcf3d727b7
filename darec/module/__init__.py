"""The Lightning modules (:class:`DaRecModule`, :class:`SequentialModule`), the objective and the interface its alignment callbacks use."""

from darec.losses.views import SideViews, StepViews
from darec.module.checkpoint import CheckpointError, read_checkpoint
from darec.module.darec_module import DaRecModule
from darec.module.host import AlignmentHost, Sizes, TermFactory
from darec.module.objective import Objective
from darec.module.sequential_module import SequentialModule

__all__ = [
    "AlignmentHost",
    "CheckpointError",
    "DaRecModule",
    "Objective",
    "SequentialModule",
    "SideViews",
    "Sizes",
    "StepViews",
    "TermFactory",
    "read_checkpoint",
]
