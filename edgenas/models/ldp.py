"""The LDP pyramid backbone, built from a :class:`~edgenas.space.genotype.Genotype`.

Data flow for ``S`` scales (scale 1 = the stem's resolution, scale ``s`` = 1/2^(s-1) of it)::

    stem -> enc1a enc1b -> down2 enc2a enc2b -> ... -> downS encSa encSb
                 |skip1              |skip2                        |
    ref1 <- dec1b dec1a <- [up2 ++ skip1] ... [upS ++ skip(S-1)] <- refS decSb decSa

Each encoder scale ends with a skip feature. The decoder walks back up: at the bottom
scale it continues from the encoder; at every other scale ``s`` the upsample block
``up(s+1)`` resizes the coarser features to the exact size of skip ``s`` (so any input
size works, odd sizes included) and its output is concatenated with that skip before
``dec(s)a``. ``ref1``'s output (at the stem's resolution) goes to the task head.

The ``paper`` layout (super-resolution, ``S<n>U:`` strings) ends differently::

    ... [up2 ++ skip1] -> dec1a dec1b -> up1 (x upscale) -> ref0 -> head

``up1`` resizes the features to ``upscale`` times scale 1 (bilinear, exact size) and
applies its searched layers there; ``ref0`` refines at that output resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgenas.models.ops import Block, UpsampleBlock, conv_bn
from edgenas.space.genotype import BlockSpec, Genotype


@dataclass(frozen=True)
class PlannedBlock:
    """One searched block of a backbone: its role, spec, input width and kind."""

    role: str
    spec: BlockSpec
    in_channels: int
    stride: int = 1  # 2 for the down blocks
    upsample: bool = False  # an UpsampleBlock (bilinear resize, then the block)


def decoder_roles(s: int, upsampled: bool) -> tuple[str, ...]:
    """The blocks of scale ``s`` on the decoder side (the paper layout's scale 1 has no
    refine block: ``ref0`` refines at the output resolution instead)."""
    if s == 1 and upsampled:
        return ("dec1a", "dec1b")
    return (f"dec{s}a", f"dec{s}b", f"ref{s}")


def backbone_plan(genotype: Genotype, stem_channels: int) -> tuple[list[PlannedBlock], int]:
    """The blocks of ``genotype``'s backbone in build order, each with the width it
    receives, and the backbone's output width. Pure: no torch modules are built, so the
    builder and :func:`edgenas.models.param_count.genotype_params` share one walk."""
    upsampled = genotype.layout == "paper"
    specs = dict(zip(genotype.roles, genotype.blocks, strict=True))
    plan: list[PlannedBlock] = []
    width = stem_channels
    skip_widths: dict[int, int] = {}
    for s in range(1, genotype.scales + 1):
        if s > 1:
            plan.append(PlannedBlock(f"down{s}", specs[f"down{s}"], width, stride=2))
            width = specs[f"down{s}"].channels
        for part in "ab":
            plan.append(PlannedBlock(f"enc{s}{part}", specs[f"enc{s}{part}"], width))
            width = specs[f"enc{s}{part}"].channels
        skip_widths[s] = width
    for s in range(genotype.scales, 0, -1):
        if s < genotype.scales:
            width += skip_widths[s]  # concatenation with the encoder skip
        for role in decoder_roles(s, upsampled):
            plan.append(PlannedBlock(role, specs[role], width))
            width = specs[role].channels
        if s > 1:
            plan.append(PlannedBlock(f"up{s}", specs[f"up{s}"], width, upsample=True))
            width = specs[f"up{s}"].channels
    if upsampled:
        plan.append(PlannedBlock("up1", specs["up1"], width, upsample=True))
        plan.append(PlannedBlock("ref0", specs["ref0"], specs["up1"].channels))
        width = specs["ref0"].channels
    return plan, width


class LDPBackbone(nn.Module):
    """Multi-scale pyramid of searched blocks; returns features at the stem's resolution
    (``upscale`` times it in the ``paper`` layout)."""

    def __init__(
        self,
        genotype: Genotype,
        in_channels: int = 3,
        stem_channels: int = 16,
        stem_stride: int = 2,
        upscale: int = 2,
    ) -> None:
        super().__init__()
        self.genotype = genotype
        self.scales = genotype.scales
        self.upsampled = genotype.layout == "paper"
        self.upscale = upscale
        self.stem = conv_bn(in_channels, stem_channels, 3, stem_stride)
        self.stem_stride = stem_stride
        self.blocks = nn.ModuleDict()
        plan, self.out_channels = backbone_plan(genotype, stem_channels)
        for planned in plan:
            if planned.upsample:
                self.blocks[planned.role] = UpsampleBlock(planned.spec, planned.in_channels)
            else:
                self.blocks[planned.role] = Block(
                    planned.spec, planned.in_channels, stride=planned.stride
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        skips: list[torch.Tensor] = []
        for s in range(1, self.scales + 1):
            if s > 1:
                x = self.blocks[f"down{s}"](x)
            x = self.blocks[f"enc{s}b"](self.blocks[f"enc{s}a"](x))
            skips.append(x)
        for s in range(self.scales, 0, -1):
            if s < self.scales:
                skip = skips[s - 1]
                x = self.blocks[f"up{s + 1}"](x, skip.shape[-2:])
                x = torch.cat([x, skip], dim=1)
            for role in decoder_roles(s, self.upsampled):
                x = self.blocks[role](x)
        if self.upsampled:
            size = (x.shape[-2] * self.upscale, x.shape[-1] * self.upscale)
            x = self.blocks["ref0"](self.blocks["up1"](x, size))
        return x
