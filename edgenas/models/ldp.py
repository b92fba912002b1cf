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

import torch
from torch import nn

from edgenas.models.ops import Block, UpsampleBlock, conv_bn
from edgenas.space.genotype import Genotype


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
        specs = dict(zip(genotype.roles, genotype.blocks, strict=True))

        width = stem_channels
        skip_widths: dict[int, int] = {}
        for s in range(1, self.scales + 1):
            if s > 1:
                self.blocks[f"down{s}"] = Block(specs[f"down{s}"], width, stride=2)
                width = specs[f"down{s}"].channels
            for part in "ab":
                self.blocks[f"enc{s}{part}"] = Block(specs[f"enc{s}{part}"], width)
                width = specs[f"enc{s}{part}"].channels
            skip_widths[s] = width
        for s in range(self.scales, 0, -1):
            if s < self.scales:
                width += skip_widths[s]  # concatenation with the encoder skip
            for role in self._decoder_roles(s):
                self.blocks[role] = Block(specs[role], width)
                width = specs[role].channels
            if s > 1:
                self.blocks[f"up{s}"] = UpsampleBlock(specs[f"up{s}"], width)
                width = specs[f"up{s}"].channels
        if self.upsampled:
            self.blocks["up1"] = UpsampleBlock(specs["up1"], width)
            self.blocks["ref0"] = Block(specs["ref0"], specs["up1"].channels)
            width = specs["ref0"].channels
        self.out_channels = width

    def _decoder_roles(self, s: int) -> tuple[str, ...]:
        """The blocks of scale ``s`` on the decoder side (the paper layout's scale 1 has
        no refine block: ``ref0`` refines at the output resolution instead)."""
        if s == 1 and self.upsampled:
            return ("dec1a", "dec1b")
        return (f"dec{s}a", f"dec{s}b", f"ref{s}")

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
            for role in self._decoder_roles(s):
                x = self.blocks[role](x)
        if self.upsampled:
            size = (x.shape[-2] * self.upscale, x.shape[-1] * self.upscale)
            x = self.blocks["ref0"](self.blocks["up1"](x, size))
        return x
