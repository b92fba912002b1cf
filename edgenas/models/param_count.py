"""Parameter counts of genotypes without building their networks.

Building a torch network costs tens of milliseconds (module construction, not
arithmetic), too slow to size the thousands of random genotypes that drawing a search
pool within a parameter target takes. A network's parameters are the sum of its parts
(stem, searched blocks, head), and each part's count depends only on its spec and
input width, so each distinct part is built once and its count cached.
"""

from __future__ import annotations

from functools import cache

from edgenas.models.builder import build_head, resolve_options
from edgenas.models.complexity import count_params
from edgenas.models.ldp import backbone_plan
from edgenas.models.ops import Block, UpsampleBlock, conv_bn
from edgenas.space.genotype import BlockSpec, Genotype, decode


def genotype_params(
    genotype: Genotype | str,
    task: str,
    *,
    in_channels: int = 3,
    stem_channels: int = 16,
    **task_options,
) -> int:
    """The parameter count of ``build_model(genotype, task, ...)`` with the same
    arguments, from cached per-part counts."""
    if isinstance(genotype, str):
        genotype = decode(genotype)
    kind, options = resolve_options(genotype, task, task_options)
    plan, width = backbone_plan(genotype, stem_channels)
    total = _stem_params(in_channels, stem_channels, kind.stem_stride)
    total += sum(_block_params(p.spec, p.in_channels, p.stride, p.upsample) for p in plan)
    head_options = tuple(sorted(options.items()))
    return total + _head_params(kind.name, genotype.layout == "paper", width, head_options,
                                in_channels)  # fmt: skip


@cache
def _stem_params(in_channels: int, stem_channels: int, stride: int) -> int:
    return count_params(conv_bn(in_channels, stem_channels, 3, stride))


@cache
def _block_params(spec: BlockSpec, in_channels: int, stride: int, upsample: bool) -> int:
    block = UpsampleBlock(spec, in_channels) if upsample else Block(spec, in_channels, stride)
    return count_params(block)


@cache
def _head_params(task: str, upsampled: bool, width: int, options: tuple, in_channels: int) -> int:
    return count_params(build_head(task, upsampled, width, dict(options), in_channels))
