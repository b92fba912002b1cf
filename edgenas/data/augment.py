"""Training augmentation (LDP paper Sec. 2.4), applied per sample on a batch in torch.

Depth, segmentation, classification: random rotation in [-5, 5] degrees and horizontal
flip applied to image and target alike (nearest neighbour for labels and depth, so
class ids stay ids and invalid depth stays invalid; pixels rotated in from outside the
frame become ignore / invalid), then colour jitter (brightness, contrast, saturation)
and one dropped rectangular window on the RGB image only.

Super-resolution: flips and 90-degree rotations of the LR/HR pair only; they are
lossless, whereas a small-angle rotation would blur the HR target and colour jitter or
window dropping would break the LR = bicubic(HR) relation.
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
    theta = torch.zeros(n, 2, 3, dtype=x.dtype)
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
    n = images.shape[0]
    angles = (torch.rand(n, generator=generator) * 2 - 1) * config.max_rotation
    flips = torch.rand(n, generator=generator) < config.flip
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
    n, _, h, w = images.shape
    images = images.clone()
    for i in range(n):
        if torch.rand(1, generator=generator).item() >= config.drop_prob:
            continue
        lo, hi = config.drop_area
        area = (lo + (hi - lo) * torch.rand(1, generator=generator).item()) * h * w
        ratio = math.exp((torch.rand(1, generator=generator).item() - 0.5) * 2 * math.log(2))
        dh = max(1, min(h, round(math.sqrt(area / ratio))))
        dw = max(1, min(w, round(math.sqrt(area * ratio))))
        y = int(torch.randint(0, h - dh + 1, (1,), generator=generator))
        x = int(torch.randint(0, w - dw + 1, (1,), generator=generator))
        images[i, :, y : y + dh, x : x + dw] = images[i].mean()
    return images


def _augment_sr(lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator, config):
    lr, hr = lr.clone(), hr.clone()
    for i in range(lr.shape[0]):
        if torch.rand(1, generator=generator).item() < config.flip:
            lr[i], hr[i] = lr[i].flip(-1).clone(), hr[i].flip(-1).clone()
        if torch.rand(1, generator=generator).item() < config.flip:
            lr[i], hr[i] = lr[i].flip(-2), hr[i].flip(-2)
        if lr.shape[-1] == lr.shape[-2] and torch.rand(1, generator=generator).item() < 0.5:
            lr[i], hr[i] = lr[i].transpose(-1, -2).clone(), hr[i].transpose(-1, -2).clone()
    return lr, hr
