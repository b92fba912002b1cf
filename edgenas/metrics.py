"""Evaluation metrics with the literature's definitions, accumulated over a dataset.

Each meter has ``update(pred, target)`` for a batch and ``compute() -> dict[str, float]``.

* :class:`DepthMeter` (Eigen et al. 2014): over valid pixels (``min_depth < d* <
  max_depth``, inside the evaluation crop), prediction clamped to the same range;
  REL ``mean |d - d*| / d*``, RMSE, log10 ``mean |log10 d - log10 d*|`` and delta_k
  (share of pixels with ``max(d/d*, d*/d) < 1.25^k``), each computed per image and then
  averaged over images (as in the Eigen / BTS evaluation code).
* :class:`ConfusionMeter`: a confusion matrix over the whole dataset (ignore index
  excluded); IoU_c = TP / (TP + FP + FN), mIoU = mean over classes that occur in the
  labels or predictions; pixel accuracy = trace / total.
* :class:`SRMeter`: PSNR and SSIM on the Y channel (ITU-R BT.601,
  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for RGB in [0, 255]) after
  rounding the prediction to 8 bits and shaving ``scale`` pixels from each border;
  SSIM is scikit-image's with the Wang et al. settings (Gaussian window, sigma 1.5,
  K1 = 0.01, K2 = 0.03, data range 255), which matches MATLAB's ``ssim``.
* :class:`AccuracyMeter`: top-1 accuracy for classification.
"""

from __future__ import annotations

import math

import numpy as np
import torch

GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)  # rows, cols (fractions)


def eval_crop_mask(height: int, width: int, crop: str | None) -> torch.Tensor:
    """Boolean mask of the evaluation crop (``garg`` = KITTI Garg/Eigen crop) or all True."""
    mask = torch.ones(height, width, dtype=torch.bool)
    if crop == "garg":
        t, b, left, r = GARG_CROP
        mask[:] = False
        mask[int(t * height) : int(b * height), int(left * width) : int(r * width)] = True
    elif crop is not None:
        raise ValueError(f"unknown evaluation crop {crop!r}")
    return mask


class DepthMeter:
    """Depth metrics over valid pixels, averaged over images."""

    NAMES = ("rel", "rmse", "log10", "delta1", "delta2", "delta3")

    def __init__(self, min_depth: float = 1e-3, max_depth: float = 10.0, crop: str | None = None):
        self.min_depth, self.max_depth, self.crop = min_depth, max_depth, crop
        self.sums = dict.fromkeys(self.NAMES, 0.0)
        self.count = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """``pred`` and ``target`` are ``N x 1 x H x W`` metres (target 0 = invalid)."""
        pred = pred.detach().double().clamp(self.min_depth, self.max_depth)
        target = target.detach().double()
        crop = eval_crop_mask(*target.shape[-2:], self.crop)
        for p, t in zip(pred.flatten(0, 1), target.flatten(0, 1), strict=True):
            valid = (t > self.min_depth) & (t < self.max_depth) & crop
            if not bool(valid.any()):
                continue  # an image without valid depth does not count
            p, t = p[valid], t[valid]
            ratio = torch.maximum(p / t, t / p)
            self.sums["rel"] += float(((p - t).abs() / t).mean())
            self.sums["rmse"] += float(((p - t) ** 2).mean().sqrt())
            self.sums["log10"] += float((p.log10() - t.log10()).abs().mean())
            for k in (1, 2, 3):
                self.sums[f"delta{k}"] += float((ratio < 1.25**k).double().mean())
            self.count += 1

    def compute(self) -> dict[str, float]:
        if self.count == 0:
            return {name: float("nan") for name in self.NAMES}
        return {name: value / self.count for name, value in self.sums.items()}


class ConfusionMeter:
    """mIoU and pixel accuracy from a dataset-wide confusion matrix."""

    def __init__(self, num_classes: int, ignore_index: int | None = 255):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """``pred``: logits ``N x C x H x W`` or class ids ``N x H x W``; ``target`` ids."""
        if pred.dim() == target.dim() + 1:
            pred = pred.argmax(1)
        pred, target = pred.detach().flatten().long(), target.detach().flatten().long()
        keep = (target >= 0) & (target < self.num_classes)
        if self.ignore_index is not None:
            keep &= target != self.ignore_index
        index = target[keep] * self.num_classes + pred[keep].clamp(0, self.num_classes - 1)
        self.matrix += torch.bincount(index, minlength=self.num_classes**2).view(
            self.num_classes, self.num_classes
        )

    def iou_per_class(self) -> torch.Tensor:
        """IoU of each class (rows = truth, columns = prediction); NaN where absent."""
        m = self.matrix.double()
        tp = m.diag()
        union = m.sum(0) + m.sum(1) - tp
        return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))

    def compute(self) -> dict[str, float]:
        iou = self.iou_per_class()
        total = int(self.matrix.sum())
        present = iou[~iou.isnan()]
        return {
            "miou": float(present.mean()) if len(present) else float("nan"),
            "pixel_acc": float(self.matrix.diag().sum()) / total if total else float("nan"),
        }


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of ``H x W x 3`` RGB in [0, 255] -> float64 Y in [16, 235]."""
    rgb = rgb.astype(np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``3 x H x W`` float in [0, 1] -> ``H x W x 3`` uint8 (rounded, as saved images are)."""
    array = image.detach().float().clamp(0, 1).mul(255).round().byte()
    return array.permute(1, 2, 0).cpu().numpy()


def shave(array: np.ndarray, border: int) -> np.ndarray:
    """Drop ``border`` pixels on each side."""
    return array[border:-border, border:-border] if border > 0 else array


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """Y-channel PSNR (dB) of uint8 RGB images after shaving ``border`` pixels."""
    a, b = shave(rgb_to_y(sr), border), shave(rgb_to_y(hr), border)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """Y-channel SSIM (Wang et al. 2004 settings) after shaving ``border`` pixels."""
    from skimage.metrics import structural_similarity

    a, b = shave(rgb_to_y(sr), border), shave(rgb_to_y(hr), border)
    return float(
        structural_similarity(
            a, b, data_range=255.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
    )


class SRMeter:
    """Mean Y-channel PSNR and SSIM over images (SR literature protocol)."""

    def __init__(self, scale: int, ssim: bool = True):
        self.scale = scale
        self.ssim = ssim
        self.psnr_sum = 0.0
        self.ssim_sum = 0.0
        self.count = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """``pred``, ``target``: ``N x 3 x sH x sW`` RGB in [0, 1]."""
        for p, t in zip(pred, target, strict=True):
            sr, hr = to_uint8(p), to_uint8(t)
            self.update_uint8(sr, hr)

    def update_uint8(self, sr: np.ndarray, hr: np.ndarray) -> None:
        """Add one pair of ``H x W x 3`` uint8 images."""
        self.psnr_sum += psnr_y(sr, hr, self.scale)
        if self.ssim:
            self.ssim_sum += ssim_y(sr, hr, self.scale)
        self.count += 1

    def compute(self) -> dict[str, float]:
        if self.count == 0:
            return {"psnr": float("nan"), "ssim": float("nan")}
        out = {"psnr": self.psnr_sum / self.count}
        if self.ssim:
            out["ssim"] = self.ssim_sum / self.count
        return out


class AccuracyMeter:
    """Top-1 accuracy over the dataset."""

    def __init__(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        self.correct += int((pred.argmax(1) == target).sum())
        self.total += int(target.numel())

    def compute(self) -> dict[str, float]:
        return {"top1": self.correct / self.total if self.total else float("nan")}
