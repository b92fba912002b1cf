"""Search spaces as plain data: genotypes, their string form, sampling and mutation."""

from edgenas.space.genotype import (
    LAYOUTS,
    OPS,
    BlockSpec,
    Genotype,
    block_roles,
    blocks_for_scales,
    decode,
    role_area,
)
from edgenas.space.ldp import LDPSpace, SpaceSize

__all__ = [
    "LAYOUTS",
    "OPS",
    "BlockSpec",
    "Genotype",
    "LDPSpace",
    "SpaceSize",
    "block_roles",
    "blocks_for_scales",
    "decode",
    "role_area",
]
