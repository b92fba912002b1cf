"""Training augmentation (LDP paper Sec. 2.4), applied to a whole batch as tensor ops.

Depth, segmentation, classification: random rotation in [-5, 5] degrees and horizontal
flip applied to image and target alike (nearest neighbour for labels and depth, so
class ids stay ids and invalid depth stays invalid; pixels rotated in from outside the
frame become ignore / invalid), then colour jitter (brightness, contrast, saturation)
and one dropped rectangular window on the RGB image only.

Super-resolution: flips and 90-degree rotations of the LR/HR pair only; they are
lossless, whereas a small-angle rotation would blur the HR target and colour jitter or
window dropping would break the LR = bicubic(HR) relation.

Every random number comes from a CPU ``torch.Generator`` (so a seed gives the same
augmentation on any device) and is then moved to the batch's device; there is no Python
loop over the samples of a batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Strength of each augmentation; ``enabled=False`` turns them all off."""

    enabled: bool = True
    max_rotation: float = 5.0
    flip: float = 0.5
    jitter: float = 0.2
    drop_prob: float = 0.5
    drop_area: tuple[float, float] = (0.02, 0.12)


def _rotate(x: torch.Tensor, angles: torch.Tensor, flips: torch.Tensor, mode: str, pad: str):
    """Rotate (degrees) and optionally mirror each sample of ``x`` (N x C x H x W)."""
    n, _, h, w = x.shape
    rad = angles * math.pi / 180
    cos, sin = torch.cos(rad), torch.sin(rad)
    sign = 1.0 - 2.0 * flips.float()  # -1 mirrors x
    aspect = w / h
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = cos * sign
    theta[:, 0, 1] = -sin / aspect
    theta[:, 1, 0] = sin * aspect * sign
    theta[:, 1, 1] = cos
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode=pad, align_corners=False)


def augment_dense(
    images: torch.Tensor,
    targets: torch.Tensor,
    task: str,
    generator: torch.Generator,
    config: AugmentConfig = AugmentConfig(),
    ignore_index: int = 255,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch of ``images`` (N x 3 x H x W) and their ``targets`` consistently."""
    if not config.enabled:
        return images, targets
    if task == "sr":
        return _augment_sr(images, targets, generator, config)
    n, device = images.shape[0], images.device
    angles = ((torch.rand(n, generator=generator) * 2 - 1) * config.max_rotation).to(device)
    flips = (torch.rand(n, generator=generator) < config.flip).to(device)
    images = _rotate(images, angles, flips, "bilinear", "reflection")
    if task == "segmentation":
        # Shift ids by one so that zeros from outside the frame mark "ignore".
        shifted = _rotate((targets + 1).unsqueeze(1).float(), angles, flips, "nearest", "zeros")
        shifted = shifted.squeeze(1).round().long()
        targets = torch.where(shifted == 0, torch.full_like(shifted, ignore_index), shifted - 1)
    elif task == "depth":
        targets = _rotate(targets, angles, flips, "nearest", "zeros")
    images = _jitter(images, generator, config.jitter)
    images = _drop_window(images, generator, config)
    return images.clamp_(0, 1), targets


def _jitter(images: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    n = images.shape[0]

    def factor() -> torch.Tensor:
        return (1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * strength).to(images)

    images = images * factor()  # brightness
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    images = (images - mean) * factor() + mean  # contrast
    grey = 0.299 * images[:, :1] + 0.587 * images[:, 1:2] + 0.114 * images[:, 2:3]
    return (images - grey) * factor() + grey  # saturation


def _drop_window(images: torch.Tensor, generator: torch.Generator, config: AugmentConfig):
    """Replace one random rectangle (``drop_area`` of the image, aspect 1:2 to 2:1) by the
    image mean in a random half of the samples."""
    n, _, h, w = images.shape
    u = torch.rand(n, 5, generator=generator)
    lo, hi = config.drop_area
    area = (lo + (hi - lo) * u[:, 1]) * h * w
    ratio = torch.exp((u[:, 2] - 0.5) * 2 * math.log(2))
    dh = (area / ratio).sqrt().round().clamp(1, h)
    dw = (area * ratio).sqrt().round().clamp(1, w)
    y0 = (u[:, 3] * (h - dh + 1)).floor()
    x0 = (u[:, 4] * (w - dw + 1)).floor()
    drop = u[:, 0] < config.drop_prob
    device = images.device
    rows = torch.arange(h, device=device)[None, :]
    cols = torch.arange(w, device=device)[None, :]
    y0, x0, dh, dw, drop = (t.to(device) for t in (y0, x0, dh, dw, drop))
    in_rows = (rows >= y0[:, None]) & (rows < (y0 + dh)[:, None])  # n x h
    in_cols = (cols >= x0[:, None]) & (cols < (x0 + dw)[:, None])  # n x w
    mask = (in_rows[:, :, None] & in_cols[:, None, :] & drop[:, None, None])[:, None]
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return torch.where(mask, mean, images)


def _augment_sr(lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator, config):
    """Horizontal and vertical flips and (square patches) transposition of LR/HR pairs."""
    n, device = lr.shape[0], lr.device
    u = torch.rand(n, 3, generator=generator).to(device)

    def where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(mask[:, None, None, None], a, b)

    hflip, vflip = u[:, 0] < config.flip, u[:, 1] < config.flip
    lr, hr = where(hflip, lr.flip(-1), lr), where(hflip, hr.flip(-1), hr)
    lr, hr = where(vflip, lr.flip(-2), lr), where(vflip, hr.flip(-2), hr)
    if lr.shape[-1] == lr.shape[-2]:
        swap = u[:, 2] < 0.5
        lr = where(swap, lr.transpose(-1, -2), lr)
        hr = where(swap, hr.transpose(-1, -2), hr)
    return lr.contiguous(), hr.contiguous()
