"""A PNG of sample predictions for each task (matplotlib, Agg backend, written atomically).

Rows are samples, columns input | prediction | ground truth. Depth: image | prediction |
ground truth in one colour map (invalid ground truth black). Segmentation: image |
predicted classes | ground-truth classes, each pixel in its class colour (not blended
with the image, so colours read exactly) with a legend naming the classes shown
(ignored pixels black). Super-resolution: bicubic | network | HR. Classification: the
image titled with predicted and true class.

:func:`write_samples` is the one call runs use: the first samples of the validation
data through a trained model, drawn by the task's visualiser.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from edgenas.atomic import atomic_path


def _rgb(image: torch.Tensor) -> np.ndarray:
    return image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def class_palette(info) -> list[tuple[int, int, int]]:
    """The dataset's class colours (0-255 RGB), completed with distinct colours from
    matplotlib's tab20 / tab20b for classes the dataset gives none."""
    import matplotlib

    palette = [tuple(int(c) for c in colour) for colour in (getattr(info, "palette", ()) or ())]
    count = max(len(palette), int(getattr(info, "num_classes", 0) or 0))
    spare = [*matplotlib.colormaps["tab20"].colors, *matplotlib.colormaps["tab20b"].colors]
    while len(palette) < count:
        colour = spare[len(palette) % len(spare)]
        palette.append(tuple(round(255 * c) for c in colour[:3]))
    return palette


def colourise_labels(labels: np.ndarray, palette, ignore_index: int) -> np.ndarray:
    """Class ids -> RGB in [0, 1]; ignored / unknown ids are black."""
    table = np.zeros((256, 3), np.float32)
    for i, colour in enumerate(palette[:256]):
        table[i] = np.asarray(colour, np.float32) / 255.0
    if 0 <= ignore_index < 256:
        table[ignore_index] = 0.0
    return table[np.clip(labels, 0, 255)]


def class_legend(info, label_maps, palette) -> list[tuple[str, tuple[float, float, float]]]:
    """``(name, RGB in [0, 1])`` of every class that occurs in ``label_maps`` (class-id
    arrays), by class id, then ``ignored`` (black) if the ignore index occurs."""
    ignore = getattr(info, "ignore_index", -1)
    names = list(getattr(info, "class_names", ()) or ())
    seen: set[int] = set()
    for labels in label_maps:
        seen.update(int(v) for v in np.unique(labels))
    entries = []
    for cls in sorted(seen):
        if cls == ignore or not 0 <= cls < len(palette):
            continue
        name = names[cls] if cls < len(names) else f"class {cls}"
        entries.append((name, tuple(c / 255.0 for c in palette[cls])))
    if ignore in seen:
        entries.append(("ignored", (0.0, 0.0, 0.0)))
    return entries


def save_predictions(task: str, images, preds, targets, info, path, max_rows: int = 4) -> None:
    """Write the sample-prediction figure of ``task`` to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    n = min(max_rows, len(images))
    cols = 1 if task == "classification" else 3
    fig, axes = plt.subplots(n, cols, figsize=(3.2 * cols, 2.6 * n), squeeze=False)
    palette = class_palette(info) if task == "segmentation" else []
    label_maps = []
    for r in range(n):
        if task == "depth":
            gt = targets[r, 0].cpu().numpy()
            pr = preds[r, 0].detach().cpu().numpy()
            vmax = float(gt[gt > 0].max()) if (gt > 0).any() else float(pr.max())
            cmap = matplotlib.colormaps["magma_r"].with_extremes(bad="black")
            panels = [
                ("image", _rgb(images[r]), {}),
                ("prediction (m)", pr, dict(cmap=cmap, vmin=0, vmax=vmax)),
                (
                    "ground truth (m)",
                    np.ma.masked_where(gt <= 0, gt),
                    dict(cmap=cmap, vmin=0, vmax=vmax),
                ),
            ]
        elif task == "segmentation":
            gt_labels = targets[r].cpu().numpy()
            pr_labels = preds[r].argmax(0).cpu().numpy()
            label_maps += [gt_labels, pr_labels]
            panels = [
                ("image", _rgb(images[r]), {}),
                ("prediction", colourise_labels(pr_labels, palette, -1), {}),
                ("ground truth", colourise_labels(gt_labels, palette, info.ignore_index), {}),
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
    bottom = 0.0
    if task == "segmentation":
        from matplotlib.patches import Patch

        legend = class_legend(info, label_maps, palette)
        columns = min(4, max(1, len(legend)))
        rows = -(-len(legend) // columns)
        bottom = min(0.5, (0.22 * rows + 0.3) / fig.get_size_inches()[1])
        fig.legend(
            handles=[Patch(facecolor=c, edgecolor="gray", label=name) for name, c in legend],
            loc="lower center",
            ncol=columns,
            fontsize=8,
            frameon=False,
            title="classes",
            title_fontsize=8,
        )
    fig.tight_layout(rect=(0, bottom, 1, 1))
    try:
        with atomic_path(path) as tmp:
            # The temporary name ends in .tmp, so matplotlib cannot guess the format.
            fig.savefig(tmp, dpi=80, format="png")
    finally:
        plt.close(fig)


def write_samples(model, task, data, path, *, n: int = 4, input_size=None) -> Path:
    """Draw the first ``n`` samples of ``data`` through ``model`` with ``task``'s
    visualiser (input | prediction | ground truth) into the PNG ``path``; returns it.

    ``task``: a :class:`~edgenas.tasks.Task` or its name; ``input_size`` as for
    :func:`sample_predictions`.
    """
    from edgenas.tasks import get_task

    task = get_task(task) if isinstance(task, str) else task
    images, preds, targets = sample_predictions(model, data, n=n, input_size=input_size)
    task.visualise(images, preds, targets, data.info, Path(path))
    return Path(path)


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
    else:
        # Full-resolution validation images may differ in size: show those of the first's.
        samples = [s for s in samples if s[0].shape == samples[0][0].shape]
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
