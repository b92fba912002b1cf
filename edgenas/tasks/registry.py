"""The task registry: what each dense-prediction task needs besides the network.

A :class:`Task` owns its head options, loss, metrics, dataset adapter, visualiser and
the normalised accuracy in [0, 1] that the search grades networks by:

========================  ==================  ==========================================
task                      primary metric      normalised accuracy
========================  ==================  ==========================================
``depth``                 delta1              delta1 (share of pixels within 1.25x)
``segmentation`` (seg)    mIoU                mIoU
``sr``                    PSNR (Y, dB)        ``clip((PSNR - 20) / 20, 0, 1)``: 20 dB -> 0,
                                              40 dB -> 1 (linear, monotone in PSNR)
``classification`` (cls)  top-1               top-1 accuracy
========================  ==================  ==========================================

The network itself comes from :func:`edgenas.build_model`; the task passes the head
options (number of classes, SR scale, upsampler) it reads from the dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from edgenas.errors import UserError

SR_PSNR_RANGE = (20.0, 40.0)


@dataclass(frozen=True)
class Task:
    """Base class; one frozen instance per task lives in :data:`TASKS`."""

    name: str
    primary_metric: str
    metric_names: tuple[str, ...]
    higher_is_better: dict = field(default_factory=dict)
    default_input: tuple[int, int] = (128, 160)

    # ----- network -------------------------------------------------------------------
    def head_options(self, info, **overrides) -> dict:
        """Options for :func:`edgenas.build_model` given a dataset's info."""
        return dict(overrides)

    def build_model(self, genotype, info=None, **overrides) -> nn.Module:
        """The network of ``genotype`` with this task's head sized for ``info``."""
        from edgenas.models.builder import build_model

        return build_model(genotype, self.name, **self.head_options(info, **overrides))

    # ----- data ----------------------------------------------------------------------
    def dataset(self, root=None, split: str = "train", **kwargs):
        """Dataset of this task in ``root`` (``None``: built-in demo data); see open_dataset."""
        from edgenas.data.open import open_dataset

        return open_dataset(self.name, root, split, **kwargs)

    def demo_data(self, **kwargs):
        """``(train, val)`` built-in datasets, no download, no arguments needed."""
        return self.dataset(None, "train", **kwargs), self.dataset(None, "val", **kwargs)

    # ----- training and evaluation ---------------------------------------------------
    def loss(self, pred: torch.Tensor, target: torch.Tensor, info) -> torch.Tensor:
        raise NotImplementedError

    def meter(self, info):
        raise NotImplementedError

    def normalised_accuracy(self, metrics: dict) -> float:
        """The primary metric mapped to [0, 1] (higher is better); 0 for NaN."""
        value = float(metrics.get(self.primary_metric, float("nan")))
        return 0.0 if math.isnan(value) else min(1.0, max(0.0, value))

    def init_output(self, model: nn.Module, data) -> None:
        """Data-driven initialisation of the output layer before training (default: none)."""

    def visualise(self, images, preds, targets, info, path) -> None:
        from edgenas.visualize import save_predictions

        save_predictions(self.name, images, preds, targets, info, path)


@dataclass(frozen=True)
class DepthTask(Task):
    def init_output(self, model: nn.Module, data) -> None:
        """Start the depth head at the training data's median valid depth.

        An untrained network otherwise predicts about 0.7 m everywhere; with depths of
        metres, delta1 stays 0 for the first hundreds of steps and a short proxy training
        cannot tell networks apart. The median comes from up to 32 evenly spaced samples.
        """
        from edgenas.models.heads import DepthHead

        head = getattr(model, "head", None)
        if not isinstance(head, DepthHead) or len(data) == 0:
            return
        step = max(1, len(data) // 32)
        depths = torch.cat([data[i][1].flatten() for i in range(0, len(data), step)])
        valid = depths[depths > 0]
        if valid.numel():
            head.set_initial_depth(float(valid.median()))

    def loss(self, pred, target, info):
        from edgenas.losses import depth_loss

        return depth_loss(pred, target, max_depth=info.max_depth if info else 10.0)

    def meter(self, info):
        from edgenas.metrics import DepthMeter

        return DepthMeter(info.min_depth, info.max_depth, info.eval_crop)


@dataclass(frozen=True)
class SegmentationTask(Task):
    def head_options(self, info, **overrides) -> dict:
        options = {"num_classes": info.num_classes} if info is not None else {}
        return {**options, **overrides}

    def loss(self, pred, target, info, weights: torch.Tensor | None = None):
        """Cross-entropy over labelled pixels, optionally class-weighted."""
        from edgenas.losses import segmentation_loss

        return segmentation_loss(pred, target, info.ignore_index if info else 255, weights)

    def meter(self, info):
        from edgenas.metrics import ConfusionMeter

        return ConfusionMeter(info.num_classes, info.ignore_index)


@dataclass(frozen=True)
class SRTask(Task):
    def head_options(self, info, **overrides) -> dict:
        options = {"scale": info.scale} if info is not None else {}
        return {**options, **overrides}

    def loss(self, pred, target, info):
        from edgenas.losses import sr_loss

        return sr_loss(pred, target)

    def meter(self, info):
        from edgenas.metrics import SRMeter

        return SRMeter(info.scale)

    def normalised_accuracy(self, metrics: dict) -> float:
        psnr = float(metrics.get("psnr", float("nan")))
        if math.isnan(psnr):
            return 0.0
        lo, hi = SR_PSNR_RANGE
        return min(1.0, max(0.0, (psnr - lo) / (hi - lo)))


@dataclass(frozen=True)
class ClassificationTask(Task):
    def head_options(self, info, **overrides) -> dict:
        options = {"num_classes": info.num_classes} if info is not None else {}
        return {**options, **overrides}

    def loss(self, pred, target, info):
        from edgenas.losses import classification_loss

        return classification_loss(pred, target)

    def meter(self, info):
        from edgenas.metrics import AccuracyMeter

        return AccuracyMeter()


TASKS: dict[str, Task] = {
    "depth": DepthTask(
        "depth",
        "delta1",
        ("rel", "rmse", "log10", "delta1", "delta2", "delta3"),
        {"rel": False, "rmse": False, "log10": False},
    ),
    "segmentation": SegmentationTask("segmentation", "miou", ("miou", "pixel_acc")),
    "sr": SRTask("sr", "psnr", ("psnr", "ssim"), default_input=(48, 48)),
    "classification": ClassificationTask("classification", "top1", ("top1",)),
}


def get_task(name: str) -> Task:
    """The task of a name or alias (``seg``, ``super-resolution``, ``cls``)."""
    from edgenas.models.builder import canonical_task

    try:
        return TASKS[canonical_task(name)]
    except ValueError as err:
        raise UserError(str(err)) from None
