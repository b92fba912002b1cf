"""Task heads on top of the backbone's features (at the stem's resolution).

Each head receives the backbone features and the network input, and returns the task's
output at the resolution the task expects: the input size for depth and segmentation,
``scale`` times the input size for super-resolution, a vector for classification.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _resize_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class DepthHead(nn.Module):
    """One-channel depth map at the input size, at least ``min_depth``.

    Softplus keeps the map positive but underflows to exactly 0 in float32 for very
    negative inputs, so ``min_depth`` is added: log-based losses and metrics never see 0.
    """

    def __init__(self, in_channels: int, min_depth: float = 1e-3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, 1, 3, padding=1)
        self.positive = nn.Softplus()
        self.min_depth = min_depth

    def set_initial_depth(self, depth: float) -> None:
        """Make the untrained head predict about ``depth`` everywhere.

        The bias becomes softplus^-1(depth - min_depth) and the weights shrink 100x, so
        the random features of an untrained backbone move the output only a little.
        """
        target = max(depth - self.min_depth, 1e-3)
        with torch.no_grad():
            self.proj.weight.mul_(0.01)
            # softplus^-1(y) = y + log(1 - exp(-y)), stable for large y
            self.proj.bias.fill_(target + math.log(-math.expm1(-target)))

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.positive(_resize_to(self.proj(features), image)) + self.min_depth


class SegmentationHead(nn.Module):
    """Per-pixel class logits at the input size."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"segmentation needs num_classes >= 2, got {num_classes}")
        self.classifier = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return _resize_to(self.classifier(features), image)


class SuperResolutionHead(nn.Module):
    """Learned upsampling by ``scale`` plus a bilinear copy of the input (global residual).

    ``upsampler="pixelshuffle"``: 3x3 conv to ``out * scale^2`` channels and a pixel
    shuffle (ESPCN); ``"deconv"``: a transposed conv with kernel = stride = ``scale``.
    The residual lets the network learn only the missing high frequencies, and
    :meth:`zero_init` starts that learned branch at zero so that an untrained network is
    exactly bilinear: short proxy training then improves on interpolation instead of
    first unlearning a random residual.
    """

    def __init__(
        self, in_channels: int, scale: int, out_channels: int = 3, upsampler: str = "pixelshuffle"
    ) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f"super-resolution scale must be 2, 3 or 4, got {scale}")
        self.scale = scale
        if upsampler == "pixelshuffle":
            self.upsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels * scale * scale, 3, padding=1),
                nn.PixelShuffle(scale),
            )
        elif upsampler == "deconv":
            self.upsample = nn.ConvTranspose2d(in_channels, out_channels, scale, stride=scale)
        else:
            raise ValueError(f"unknown upsampler {upsampler!r} (pixelshuffle or deconv)")

    def zero_init(self) -> None:
        """Zero the last layer of the learned branch (weights and bias)."""
        last = [
            m for m in self.upsample.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)
        ][-1]
        with torch.no_grad():
            last.weight.zero_()
            if last.bias is not None:
                last.bias.zero_()

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(image, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return base + self.upsample(features)


class UpsampledOutputHead(nn.Module):
    """Super-resolution output of the ``paper`` layout, whose features are already at the
    output resolution: a 3x3 convolution to the image's channels plus the bilinear
    upscaled input (the same global residual as :class:`SuperResolutionHead`).

    The upsampling itself is the genotype's searched ``up1`` block, so this head is only
    the projection to RGB. :meth:`zero_init` zeroes the projection: an untrained network
    is exactly bilinear. Per output pixel it costs what the pixel-shuffle head's
    convolution costs (``9 * in_channels`` MACs per output value either way).
    """

    def __init__(self, in_channels: int, scale: int, out_channels: int = 3) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f"super-resolution scale must be 2, 3 or 4, got {scale}")
        self.scale = scale
        self.project = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def zero_init(self) -> None:
        """Zero the projection (weights and bias): the output is then the bilinear base."""
        with torch.no_grad():
            self.project.weight.zero_()
            if self.project.bias is not None:
                self.project.bias.zero_()

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(image, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return base + self.project(features)


class ClassificationHead(nn.Module):
    """Global average pooling and a linear classifier."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(features), 1))
