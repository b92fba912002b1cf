"""Search spaces as plain data: genotypes, their string form, sampling and mutation."""

from edgenas.space.genotype import OPS, BlockSpec, Genotype, block_roles, blocks_for_scales, decode
from edgenas.space.ldp import LDPSpace, SpaceSize

__all__ = [
    "OPS",
    "BlockSpec",
    "Genotype",
    "LDPSpace",
    "SpaceSize",
    "block_roles",
    "blocks_for_scales",
    "decode",
]
