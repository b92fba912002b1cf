"""The HR-NAS searching block (Sec. 3.2, Fig. 3c) and its search units.

A pointwise conv expands ``c`` to ``3 r c`` channels (+BN, ReLU), split into three equal
parts that go through depthwise 3x3, 5x5 and 7x7 convs (each +BN, ReLU), concatenated
and projected by a pointwise conv (+BN) to ``c'``. A lightweight transformer path
(:mod:`edgenas.hrnas.transformer`) is added to the output, and so is the input when the
block keeps size and width (residual). The reduction variant uses stride 2 in the
depthwise convs and resizes the transformer output to half size.

Search units: every depthwise channel (importance = the scale of the BN after it) and
every transformer token. Removing a depthwise channel of kernel k removes one expand
output channel, one depthwise channel and one project input channel. A kernel whose
channels are all gone disappears; when every kernel is gone the conv path disappears;
when every token is gone the transformer disappears; a residual block with neither is
the identity.

``channel_mask`` / the transformer's ``token_mask`` give the *masked supernet*: a masked
unit contributes exactly nothing, so masked outputs equal the outputs of the physically
shrunk block (the extraction oracle).
"""

from __future__ import annotations

import torch
from torch import nn

from edgenas.hrnas.surgery import Surgery
from edgenas.hrnas.transformer import LightTransformer, feature_hw
from edgenas.models.ops import conv_bn

KERNELS = (3, 5, 7)


def reduced_size(hw: tuple, stride: int) -> tuple:
    """Output size of a stride-``stride`` conv with padding k // 2 (odd k): ceil(h / s).

    Works on Python ints and on the traced sizes of an ONNX export alike (only
    non-negative integer arithmetic), so exported networks take any input size.
    """
    if stride == 1:
        return tuple(hw)
    return tuple((d + stride - 1) // stride for d in hw)


class SearchingBlock(nn.Module):
    """``forward(x) -> y``; ``stride`` 1 (normal) or 2 (reduction)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stride: int = 1,
        expansion: float = 2,
        tokens: int = 0,
        token_size: int = 8,
        heads: int = 1,
        kernels: tuple[int, ...] = KERNELS,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.residual = stride == 1 and in_channels == out_channels
        hidden = max(1, round(expansion * in_channels))
        self.kernels = tuple(kernels)
        self.splits = {k: hidden for k in self.kernels}
        self.expand: nn.Sequential | None = conv_bn(in_channels, hidden * len(self.kernels), 1)
        self.dw = nn.ModuleDict(
            {f"k{k}": conv_bn(hidden, hidden, k, stride, groups=hidden) for k in self.kernels}
        )
        self.project: nn.Sequential | None = conv_bn(
            hidden * len(self.kernels), out_channels, 1, relu=False
        )
        self.transformer: LightTransformer | None = None
        if tokens:
            self.transformer = LightTransformer(
                in_channels, out_channels, tokens, size=token_size, heads=heads
            )
        # Masked-supernet view: {kernel: bool tensor}, not saved, not exported.
        self.channel_mask: dict[int, torch.Tensor] | None = None

    # ----- units --------------------------------------------------------------------
    def present_kernels(self) -> list[int]:
        return [k for k in self.kernels if self.splits[k] > 0]

    def channel_importance(self, kernel: int) -> torch.Tensor:
        """Importance alpha of kernel ``kernel``'s channels: the scale of its dw BN."""
        return self.dw[f"k{kernel}"][1].weight

    def units(self) -> dict[str, int]:
        """Units left: ``{"k3": n3, "k5": n5, "k7": n7, "tokens": n}``."""
        out = {f"k{k}": self.splits[k] for k in self.kernels}
        out["tokens"] = self.transformer.tokens if self.transformer is not None else 0
        return out

    @property
    def empty(self) -> bool:
        return self.expand is None and self.transformer is None

    # ----- forward ------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor | None = None
        if self.expand is not None and not self._conv_masked_out():
            kernels = self.present_kernels()
            parts = torch.split(self.expand(x), [self.splits[k] for k in kernels], dim=1)
            outs = []
            for k, part in zip(kernels, parts, strict=True):
                out = self.dw[f"k{k}"](part)
                if self.channel_mask is not None:
                    out = out * self.channel_mask[k].to(out.dtype).view(1, -1, 1, 1)
                outs.append(out)
            y = self.project(torch.cat(outs, dim=1) if len(outs) > 1 else outs[0])
        if self.transformer is not None and not self._tokens_masked_out():
            size = reduced_size(feature_hw(x), self.stride)
            t = self.transformer(x, size)
            y = t if y is None else y + t
        if self.residual:
            y = x if y is None else y + x
        if y is None:
            raise RuntimeError("a block without residual lost all its units")
        return y

    def _conv_masked_out(self) -> bool:
        # Skipping the whole conv path (rather than feeding zeros through the project
        # BN, which would add its bias) is what removing it does.
        masks = self.channel_mask
        return masks is not None and not any(bool(m.any()) for m in masks.values())

    def _tokens_masked_out(self) -> bool:
        mask = self.transformer.token_mask if self.transformer is not None else None
        return mask is not None and not bool(mask.any())

    # ----- masks and physical shrinking -----------------------------------------------
    def set_masks(self, keep: dict[str, torch.Tensor] | None) -> None:
        """Mask units: ``keep`` maps ``k3/k5/k7/tokens`` to index tensors of kept units
        (None clears every mask). A kernel with no kept channel is masked entirely;
        a conv path with no channel at all is skipped, as extraction drops it."""
        if keep is None:
            self.channel_mask = None
            if self.transformer is not None:
                self.transformer.token_mask = None
            return
        masks = {}
        for k in self.present_kernels():
            m = torch.zeros(self.splits[k], dtype=torch.bool)
            m[keep[f"k{k}"]] = True
            masks[k] = m
        self.channel_mask = masks
        if self.transformer is not None:
            m = torch.zeros(self.transformer.tokens, dtype=torch.bool)
            m[keep["tokens"]] = True
            self.transformer.token_mask = m

    def keep_units(self, keep: dict[str, torch.Tensor], surgery: Surgery) -> None:
        """Physically keep only the units in ``keep`` (index tensors, sorted)."""
        self.channel_mask = None
        kernels = self.present_kernels()
        if self.expand is not None:
            expand_index, offset = [], 0
            for k in kernels:
                index = keep[f"k{k}"]
                expand_index.append(index + offset)
                offset += self.splits[k]
            total = sum(len(i) for i in expand_index)
            if total == 0:
                self.expand = None
                self.project = None
                self.dw = nn.ModuleDict()
                self.splits = dict.fromkeys(self.kernels, 0)
            else:
                flat = torch.cat(expand_index)
                surgery.conv_out(self.expand[0], flat)
                surgery.batchnorm(self.expand[1], flat)
                surgery.conv_in(self.project[0], flat)
                for k in kernels:
                    index = keep[f"k{k}"]
                    name = f"k{k}"
                    if len(index) == 0:
                        del self.dw[name]
                    else:
                        surgery.conv_out(self.dw[name][0], index)
                        surgery.batchnorm(self.dw[name][1], index)
                    self.splits[k] = len(index)
        if self.transformer is not None:
            index = keep["tokens"]
            if len(index) == 0:
                self.transformer = None
            else:
                self.transformer.keep_tokens(index, surgery)
