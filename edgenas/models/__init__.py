"""PyTorch models built from genotypes: operators, the LDP backbone, task heads."""

from edgenas.models.builder import HEAD_KINDS, DensePredictionNet, build_model, canonical_task
from edgenas.models.complexity import count_macs, count_params

__all__ = [
    "HEAD_KINDS",
    "DensePredictionNet",
    "build_model",
    "canonical_task",
    "count_macs",
    "count_params",
]
