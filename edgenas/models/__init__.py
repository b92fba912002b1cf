"""PyTorch models built from genotypes: operators, the LDP backbone, task heads; and the
hand-written reference networks they are compared with."""

from edgenas.models.builder import HEAD_KINDS, DensePredictionNet, build_model, canonical_task
from edgenas.models.complexity import count_macs, count_params
from edgenas.models.reference import REFERENCE_MODELS, build_reference, reference_names

__all__ = [
    "HEAD_KINDS",
    "REFERENCE_MODELS",
    "DensePredictionNet",
    "build_model",
    "build_reference",
    "canonical_task",
    "count_macs",
    "count_params",
    "reference_names",
]
