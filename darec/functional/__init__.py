"""Pure-function forms of darec's losses and regularizers.

Each function here has a module twin in :mod:`darec.losses`; the functions hold the maths and
check shapes, the modules hold configuration and parameters.
"""

from darec.functional.alignment import cluster_centres, global_structure_alignment, local_structure_alignment
from darec.functional.clustering import kmeans, match_clusters
from darec.functional.contrastive import contrastive_alignment, generative_alignment, info_nce
from darec.functional.disentangle import orthogonality, uniformity
from darec.functional.ranking import bpr_loss

__all__ = [
    "bpr_loss",
    "cluster_centres",
    "contrastive_alignment",
    "generative_alignment",
    "global_structure_alignment",
    "info_nce",
    "kmeans",
    "local_structure_alignment",
    "match_clusters",
    "orthogonality",
    "uniformity",
]
