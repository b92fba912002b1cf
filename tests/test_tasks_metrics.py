"""Metrics against oracles: hand computations, torchmetrics, scikit-image, Set5 bicubic."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edgenas.metrics import (
    AccuracyMeter,
    ConfusionMeter,
    DepthMeter,
    SRMeter,
    eval_crop_mask,
    psnr_y,
    rgb_to_y,
    ssim_y,
)


def _depth_reference(pred: np.ndarray, gt: np.ndarray, lo: float, hi: float) -> dict:
    """Eigen-style metrics of one image written out with numpy."""
    valid = (gt > lo) & (gt < hi)
    p, t = np.clip(pred[valid], lo, hi), gt[valid]
    thresh = np.maximum(p / t, t / p)
    return {
        "rel": np.mean(np.abs(p - t) / t),
        "rmse": np.sqrt(np.mean((p - t) ** 2)),
        "log10": np.mean(np.abs(np.log10(p) - np.log10(t))),
        "delta1": np.mean(thresh < 1.25),
        "delta2": np.mean(thresh < 1.25**2),
        "delta3": np.mean(thresh < 1.25**3),
    }


def test_depth_metrics_match_hand_computation_per_image_mean():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 12.0, (3, 1, 20, 24))
    gt[rng.random(gt.shape) < 0.3] = 0.0  # invalid pixels
    pred = gt * rng.uniform(0.6, 1.6, gt.shape) + rng.uniform(0, 0.1, gt.shape)
    meter = DepthMeter(min_depth=1e-3, max_depth=10.0)
    meter.update(torch.from_numpy(pred[:2]), torch.from_numpy(gt[:2]))
    meter.update(torch.from_numpy(pred[2:]), torch.from_numpy(gt[2:]))
    got = meter.compute()
    refs = [_depth_reference(pred[i, 0], gt[i, 0], 1e-3, 10.0) for i in range(3)]
    for name in DepthMeter.NAMES:
        assert got[name] == pytest.approx(np.mean([r[name] for r in refs]), rel=1e-9)


def test_depth_metrics_perfect_prediction_and_invalid_pixels_ignored():
    gt = torch.full((1, 1, 8, 8), 2.0)
    gt[..., :4] = 0.0
    pred = gt.clone()
    pred[..., :4] = 100.0  # wildly wrong only where the target is invalid
    meter = DepthMeter()
    meter.update(pred, gt)
    m = meter.compute()
    assert m["rel"] == 0 and m["rmse"] == 0 and m["delta1"] == 1.0


def test_garg_crop_selects_the_kitti_eval_window():
    mask = eval_crop_mask(375, 1242, "garg")
    rows = mask.any(1).nonzero().flatten()
    cols = mask.any(0).nonzero().flatten()
    assert (int(rows[0]), int(rows[-1]) + 1) == (int(0.40810811 * 375), int(0.99189189 * 375))
    assert (int(cols[0]), int(cols[-1]) + 1) == (int(0.03594771 * 1242), int(0.96405229 * 1242))


def test_miou_matches_torchmetrics_with_ignore_index():
    from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

    gen = torch.Generator().manual_seed(0)
    num_classes, ignore = 6, 255
    meter = ConfusionMeter(num_classes, ignore)
    jaccard = MulticlassJaccardIndex(num_classes, average="macro", ignore_index=ignore)
    acc = MulticlassAccuracy(num_classes, average="micro", ignore_index=ignore)
    for _ in range(3):
        target = torch.randint(0, num_classes, (2, 16, 16), generator=gen)
        target[torch.rand(2, 16, 16, generator=gen) < 0.2] = ignore
        logits = torch.randn(2, num_classes, 16, 16, generator=gen)
        logits += 2.0 * torch.nn.functional.one_hot(target.clamp(max=5), num_classes).permute(
            0, 3, 1, 2
        )
        meter.update(logits, target)
        jaccard.update(logits.argmax(1), target)
        acc.update(logits.argmax(1), target)
    got = meter.compute()
    assert got["miou"] == pytest.approx(float(jaccard.compute()), abs=1e-6)
    assert got["pixel_acc"] == pytest.approx(float(acc.compute()), abs=1e-6)


def test_miou_averages_only_classes_that_occur():
    meter = ConfusionMeter(4, ignore_index=None)
    target = torch.tensor([[0, 0, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1]])
    meter.update(pred, target)
    # class 0: 1/(1+0+1) = 0.5; class 1: 2/(2+1+0) = 2/3; classes 2, 3 absent.
    assert meter.compute()["miou"] == pytest.approx((0.5 + 2 / 3) / 2)


def test_y_channel_matches_scikit_image_rgb2ycbcr():
    from skimage.color import rgb2ycbcr

    rgb = np.random.default_rng(1).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(rgb), rgb2ycbcr(rgb)[..., 0], atol=1e-9)


def test_psnr_and_ssim_match_scikit_image_on_shaved_y():
    from skimage.color import rgb2ycbcr
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(2)
    hr = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-12, 13, hr.shape), 0, 255).astype(np.uint8)
    y_sr, y_hr = rgb2ycbcr(sr)[3:-3, 3:-3, 0], rgb2ycbcr(hr)[3:-3, 3:-3, 0]
    assert psnr_y(sr, hr, 3) == pytest.approx(
        peak_signal_noise_ratio(y_hr, y_sr, data_range=255), abs=1e-9
    )
    ref = structural_similarity(
        y_hr, y_sr, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim_y(sr, hr, 3) == pytest.approx(ref, abs=1e-9)


def test_sr_meter_rounds_to_8_bits_and_averages_images():
    hr = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    hr = (hr * 255).round() / 255
    meter = SRMeter(scale=2)
    meter.update(hr + 0.4 / 255, hr)  # rounds back to hr: identical images
    assert math.isinf(meter.compute()["psnr"])
    assert meter.compute()["ssim"] == pytest.approx(1.0)


def test_accuracy_meter():
    meter = AccuracyMeter()
    meter.update(torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), torch.tensor([1, 1, 1]))
    assert meter.compute()["top1"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(("scale", "psnr", "ssim"), [(2, 33.66, 0.9299), (4, 28.42, 0.8104)])
def test_set5_bicubic_reproduces_published_baseline(shared_data, scale, psnr, ssim):
    from edgenas.tasks import get_task
    from edgenas.tasks.baselines import BicubicUpscaler
    from edgenas.training import evaluate

    task = get_task("sr")
    data = task.dataset(shared_data / "sr" / "Set5", "all", scale=scale)
    assert len(data) == 5
    metrics = evaluate(BicubicUpscaler(scale), task, data)
    assert metrics["psnr"] == pytest.approx(psnr, abs=0.05)
    assert metrics["ssim"] == pytest.approx(ssim, abs=0.002)
