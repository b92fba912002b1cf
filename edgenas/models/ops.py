"""Layer operators of the LDP search space.

Every layer maps ``in_channels`` to ``out_channels`` with a given stride and knows
nothing about search. All non-linearities are :class:`torch.nn.ReLU` modules (never the
functional form) so that the NASWOT score sees every one of them; the only other
activation is the sigmoid gate of squeeze-and-excitation, which NASWOT ignores.

The micro-block follows MicroNet's micro-factorised convolutions (depthwise ``k x 1``
then ``1 x k``, and a pointwise convolution factorised into two grouped ``1 x 1``
convolutions with a channel shuffle between them). MicroNet's dynamic shift-max
activation is replaced by ReLU: it is not in ONNX's standard operator set, exports to a
tangle of gathers, and a ReLU keeps the block's binary activation codes meaningful for
NASWOT.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgenas.space.genotype import BlockSpec


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    groups: int = 1,
    relu: bool = True,
) -> nn.Sequential:
    """Convolution (no bias), batch norm and an optional ReLU, padded to keep the size."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels,
            out_channels,
            (kh, kw),
            stride=stride,
            padding=(kh // 2, kw // 2),
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: global pool, bottleneck of ``ratio * channels``, sigmoid gate."""

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        hidden = max(1, round(channels * ratio))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * scale


def _maybe_se(channels: int, spec: BlockSpec) -> list[nn.Module]:
    return [SqueezeExcite(channels, spec.se_ratio)] if spec.se > 0 else []


class ChannelShuffle(nn.Module):
    """Interleave channels across ``groups`` (ShuffleNet), so grouped convs mix groups."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def micro_groups(in_channels: int, out_channels: int) -> tuple[int, int]:
    """Groups and hidden width of the micro-block's factorised pointwise convolution.

    The hidden width is half the output width; the group count is the largest of 4, 2, 1
    that divides the input, hidden and output widths.
    """
    hidden = max(1, out_channels // 2)
    for groups in (4, 2, 1):
        if in_channels % groups == 0 and hidden % groups == 0 and out_channels % groups == 0:
            return groups, hidden
    raise AssertionError("unreachable: groups=1 always divides")


def build_layer_body(spec: BlockSpec, in_channels: int, stride: int) -> nn.Sequential:
    """The operator of one layer (without its residual connection)."""
    out, k = spec.channels, spec.kernel
    if spec.op == "id":
        # No layers: the identity (an empty Sequential) where the shape is kept, else
        # the cheapest layer that changes it, a linear 1x1 projection (as in ResNet's
        # shortcuts).
        if stride == 1 and in_channels == out:
            return nn.Sequential()
        return nn.Sequential(conv_bn(in_channels, out, 1, stride, relu=False))
    if spec.op == "conv":
        return nn.Sequential(conv_bn(in_channels, out, k, stride), *_maybe_se(out, spec))
    if spec.op == "ds":
        return nn.Sequential(
            conv_bn(in_channels, in_channels, k, stride, groups=in_channels),
            *_maybe_se(in_channels, spec),
            conv_bn(in_channels, out, 1, relu=False),
        )
    if spec.op == "sep":
        # A separable convolution as in Xception: the depthwise half feeds the pointwise
        # half directly (no batch norm, no activation between them), then one batch norm
        # and a ReLU, so that every layer is non-linear. No bias on the depthwise half:
        # through the pointwise conv it would only shift each output channel, which the
        # batch norm removes. At inference it costs what ``ds`` costs (batch norms fold
        # into the convolutions; the MACs are equal), but a training step skips the
        # batch norm and ReLU over the wide depthwise output: in a CamVid network made
        # of such layers the step ran 1.04x a U-Net's against 1.42x with ``ds``
        # (docs/search-space.md, "Separable blocks").
        return nn.Sequential(
            nn.Conv2d(
                in_channels, in_channels, k, stride, padding=k // 2, groups=in_channels, bias=False
            ),
            *_maybe_se(in_channels, spec),
            conv_bn(in_channels, out, 1),
        )
    if spec.op == "ib":
        hidden = in_channels * spec.expansion
        return nn.Sequential(
            conv_bn(in_channels, hidden, 1),
            conv_bn(hidden, hidden, k, stride, groups=hidden),
            *_maybe_se(hidden, spec),
            conv_bn(hidden, out, 1, relu=False),
        )
    if spec.op == "micro":
        groups, hidden = micro_groups(in_channels, out)
        return nn.Sequential(
            conv_bn(in_channels, in_channels, (k, 1), (stride, 1), groups=in_channels, relu=False),
            conv_bn(in_channels, in_channels, (1, k), (1, stride), groups=in_channels),
            *_maybe_se(in_channels, spec),
            conv_bn(in_channels, hidden, 1, groups=groups),
            ChannelShuffle(groups),
            conv_bn(hidden, out, 1, groups=groups, relu=False),
        )
    raise ValueError(f"unknown op {spec.op!r}")


class Layer(nn.Module):
    """One layer of a block: the operator plus a residual where shapes allow it.

    The residual is added only when the spec asks for it, the stride is 1 and the width
    does not change (as in MobileNetV2); otherwise the layer is plain.
    """

    def __init__(self, spec: BlockSpec, in_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.body = build_layer_body(spec, in_channels, stride)
        self.in_channels, self.out_channels, self.stride = in_channels, spec.channels, stride
        self.use_residual = spec.residual and stride == 1 and in_channels == spec.channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.use_residual else out


class Block(nn.Sequential):
    """``spec.layers`` identical layers; only the first may change width or stride."""

    def __init__(self, spec: BlockSpec, in_channels: int, stride: int = 1) -> None:
        layers = [Layer(spec, in_channels, stride)]
        layers += [Layer(spec, spec.channels) for _ in range(spec.layers - 1)]
        super().__init__(*layers)
        self.spec = spec
        self.out_channels = spec.channels

    @property
    def is_identity(self) -> bool:
        """An ``id`` block that keeps its input's shape: it computes nothing."""
        return self.spec.op == "id" and len(self[0].body) == 0


class UpsampleBlock(nn.Module):
    """Bilinear upsampling to the size of the next-finer scale, then a block."""

    def __init__(self, spec: BlockSpec, in_channels: int) -> None:
        super().__init__()
        self.block = Block(spec, in_channels)
        self.out_channels = spec.channels

    def forward(self, x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
        x = nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.block(x)


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal convs, unit batch norms, small linear layers (MobileNet-style)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 1.0 / math.sqrt(m.in_features))
            nn.init.zeros_(m.bias)
