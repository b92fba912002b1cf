"""Training losses of the tasks.

* Depth: ``L1 + 1.0 * gradient + 0.5 * (1 - SSIM) / 2`` on valid pixels, in metres
  divided by the dataset's maximum depth (so the weights do not depend on the unit
  or range). L1 fits absolute depth; the gradient term (L1 of the difference of
  horizontal and vertical finite differences, where both neighbours are valid) sharpens
  edges; the SSIM term rewards local structure (the three-term loss of Alhashim &
  Wonka's DenseDepth). Invalid target pixels (0) contribute nothing: in the SSIM term
  they are filled with the detached prediction.
* Segmentation: cross-entropy with the dataset's ignore index, optional class weights.
* Super-resolution: L1 between the output and the HR image.
* Classification: cross-entropy.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def depth_gradient_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor):
    """Mean L1 of finite-difference mismatches where both neighbours are valid."""
    dx_p, dx_t = pred[..., :, 1:] - pred[..., :, :-1], target[..., :, 1:] - target[..., :, :-1]
    dy_p, dy_t = pred[..., 1:, :] - pred[..., :-1, :], target[..., 1:, :] - target[..., :-1, :]
    vx = valid[..., :, 1:] & valid[..., :, :-1]
    vy = valid[..., 1:, :] & valid[..., :-1, :]
    return _masked_mean((dx_p - dx_t).abs(), vx) + _masked_mean((dy_p - dy_t).abs(), vy)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 7, data_range: float = 1.0):
    """Mean-filtered SSIM map of ``N x 1 x H x W`` tensors (reflection padding)."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    pad = window // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(t, [pad] * 4, mode="reflect"), window, stride=1)

    mx, my = blur(x), blur(y)
    vx, vy = blur(x * x) - mx * mx, blur(y * y) - my * my
    cov = blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def depth_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    max_depth: float = 10.0,
    w_grad: float = 1.0,
    w_ssim: float = 0.5,
) -> torch.Tensor:
    """L1 + gradient + SSIM depth loss over valid pixels (``target > 0``)."""
    valid = target > 0
    p, t = pred / max_depth, target / max_depth
    l1 = _masked_mean((p - t).abs(), valid)
    loss = l1
    if w_grad:
        loss = loss + w_grad * depth_gradient_loss(p, t, valid)
    if w_ssim and min(p.shape[-2:]) > 7:
        filled = torch.where(valid, t, p.detach())
        dssim = ((1 - ssim_map(p, filled)) / 2).clamp(0, 1)
        loss = loss + w_ssim * dssim.mean()
    return loss


def segmentation_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = 255,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy over labelled pixels; ignore-index pixels do not count."""
    if class_weights is not None:
        class_weights = class_weights.to(logits)
    if not bool((target != ignore_index).any()):
        return logits.sum() * 0.0  # an all-ignored batch: zero loss, not NaN
    return F.cross_entropy(logits, target, weight=class_weights, ignore_index=ignore_index)


def sr_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between super-resolved and HR images."""
    return F.l1_loss(pred, target)


def classification_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy."""
    return F.cross_entropy(logits, target)
