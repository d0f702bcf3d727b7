"""Building blocks with parameters that are not losses: the projection heads."""

from darec.nn.heads import ProjectionHead, StackedProjectionHead

__all__ = ["ProjectionHead", "StackedProjectionHead"]
