"""A PNG of sample predictions for each task (matplotlib, Agg backend, written atomically).

Rows are samples. Depth: image | ground truth | prediction in one colour map (invalid
ground truth black). Segmentation: image | ground-truth overlay | predicted overlay in
the dataset palette. Super-resolution: bicubic | network | HR. Classification: the
image titled with predicted and true class.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F


def _rgb(image: torch.Tensor) -> np.ndarray:
    return image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def colourise_labels(labels: np.ndarray, palette, ignore_index: int) -> np.ndarray:
    """Class ids -> RGB in [0, 1]; ignored / unknown ids are black."""
    table = np.zeros((256, 3), np.float32)
    for i, colour in enumerate(palette[:256]):
        table[i] = np.asarray(colour, np.float32) / 255.0
    if 0 <= ignore_index < 256:
        table[ignore_index] = 0.0
    return table[np.clip(labels, 0, 255)]


def save_predictions(task: str, images, preds, targets, info, path, max_rows: int = 4) -> None:
    """Write the sample-prediction figure of ``task`` to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    n = min(max_rows, len(images))
    cols = 1 if task == "classification" else 3
    fig, axes = plt.subplots(n, cols, figsize=(3.2 * cols, 2.6 * n), squeeze=False)
    for r in range(n):
        if task == "depth":
            gt = targets[r, 0].cpu().numpy()
            pr = preds[r, 0].detach().cpu().numpy()
            vmax = float(gt[gt > 0].max()) if (gt > 0).any() else float(pr.max())
            cmap = matplotlib.colormaps["magma_r"].copy()
            cmap.set_bad("black")
            panels = [
                ("image", _rgb(images[r]), {}),
                (
                    "ground truth (m)",
                    np.ma.masked_where(gt <= 0, gt),
                    dict(cmap=cmap, vmin=0, vmax=vmax),
                ),
                ("prediction (m)", pr, dict(cmap=cmap, vmin=0, vmax=vmax)),
            ]
        elif task == "segmentation":
            img = _rgb(images[r])
            gt = colourise_labels(targets[r].cpu().numpy(), info.palette, info.ignore_index)
            pr = colourise_labels(preds[r].argmax(0).cpu().numpy(), info.palette, -1)
            panels = [
                ("image", img, {}),
                ("ground truth", 0.4 * img + 0.6 * gt, {}),
                ("prediction", 0.4 * img + 0.6 * pr, {}),
            ]
        elif task == "sr":
            hr = targets[r : r + 1]
            bicubic = F.interpolate(
                images[r : r + 1], size=hr.shape[-2:], mode="bicubic", align_corners=False
            )
            panels = [
                ("bicubic", _rgb(bicubic[0]), {}),
                ("network", _rgb(preds[r]), {}),
                ("HR", _rgb(hr[0]), {}),
            ]
        else:
            names = info.class_names or [str(i) for i in range(1000)]
            title = f"pred {names[int(preds[r].argmax())]} / true {names[int(targets[r])]}"
            panels = [(title, _rgb(images[r]), {})]
        for c, (title, data, kwargs) in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(data, **kwargs)
            ax.set_axis_off()
            if r == 0 or task == "classification":
                ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=80)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)


def sample_predictions(model, data, n: int = 4, input_size: tuple[int, int] | None = None):
    """First ``n`` samples of ``data`` with the model's predictions (for save_predictions).

    ``input_size``: dense inputs are resized to it for the forward pass (the training
    size) and the predictions resized back to the targets' size."""
    samples = [data[i] for i in range(min(n, len(data)))]
    if getattr(data.info, "task", "") == "sr":
        # Whole images differ in size: centre-crop every sample to the smallest one.
        h = min(s[0].shape[-2] for s in samples)
        w = min(s[0].shape[-1] for s in samples)
        h, w = min(h, 96), min(w, 96)
        scale = samples[0][1].shape[-1] // samples[0][0].shape[-1]
        cropped = []
        for lr, hr in samples:
            y, x = (lr.shape[-2] - h) // 2, (lr.shape[-1] - w) // 2
            cropped.append(
                (
                    lr[:, y : y + h, x : x + w],
                    hr[:, y * scale : (y + h) * scale, x * scale : (x + w) * scale],
                )
            )
        samples = cropped
    images = torch.stack([s[0] for s in samples])
    targets = torch.stack([s[1] for s in samples])
    with torch.inference_mode():
        was = model.training if hasattr(model, "training") else False
        if hasattr(model, "eval"):
            model.eval()
        if input_size is not None and images.dim() == 4 and targets.dim() >= 3:
            from edgenas.inference import resize_images

            preds = model(resize_images(images, input_size))
            if preds.dim() == 4 and preds.shape[-2:] != targets.shape[-2:]:
                preds = F.interpolate(
                    preds, size=targets.shape[-2:], mode="bilinear", align_corners=False
                )
        else:
            preds = model(images)
        if was:
            model.train()
    return images, preds, targets
