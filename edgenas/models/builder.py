"""``build_model(genotype, task)``: a genotype and a task name in, a torch model out."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgenas.models.heads import (
    ClassificationHead,
    DepthHead,
    SegmentationHead,
    SuperResolutionHead,
    UpsampledOutputHead,
)
from edgenas.models.ldp import LDPBackbone
from edgenas.models.ops import init_weights
from edgenas.space.genotype import Genotype, decode
from edgenas.task_names import TASK_ALIASES, canonical_task  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class HeadKind:
    """How a task sits on the backbone: its head, its stem stride, its options' defaults."""

    name: str
    stem_stride: int
    defaults: dict


HEAD_KINDS: dict[str, HeadKind] = {
    "depth": HeadKind("depth", stem_stride=2, defaults={}),
    "segmentation": HeadKind("segmentation", stem_stride=2, defaults={"num_classes": 11}),
    "sr": HeadKind("sr", stem_stride=1, defaults={"scale": 2, "upsampler": "pixelshuffle"}),
    "classification": HeadKind("classification", stem_stride=2, defaults={"num_classes": 10}),
}


def reject_unknown_options(owner: str, given: dict, accepted: dict) -> None:
    """ValueError naming the options ``owner`` does not take (and those it does)."""
    unknown = set(given) - set(accepted)
    if unknown:
        raise ValueError(
            f"{owner} takes no option(s) {', '.join(sorted(unknown))}"
            + (f" (it takes {', '.join(accepted)})" if accepted else "")
        )


class DensePredictionNet(nn.Module):
    """Backbone plus task head; ``forward(image) -> task output``."""

    def __init__(self, backbone: LDPBackbone, head: nn.Module, task: str, options: dict) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.task = task
        self.options = dict(options)

    @property
    def genotype(self) -> Genotype:
        return self.backbone.genotype

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(image), image)


def resolve_options(genotype: Genotype, task: str, task_options: dict) -> tuple[HeadKind, dict]:
    """The task's head kind and its full options for ``genotype`` (defaults filled in);
    ValueError for options the task does not take or that the layout rules out."""
    kind = HEAD_KINDS[canonical_task(task)]
    reject_unknown_options(f"task {kind.name!r}", task_options, kind.defaults)
    options = {**kind.defaults, **task_options}
    if genotype.layout == "paper":
        if kind.name != "sr":
            raise ValueError(
                f"{genotype.header}: genotypes (the super-resolution upsample layout) build "
                f"for task sr only, not {kind.name}: use task sr, or an "
                f"S{genotype.scales}: genotype for {kind.name}"
            )
        if "upsampler" in task_options:
            raise ValueError(
                f"an {genotype.header}: genotype upsamples in its searched up1 block and "
                "takes no upsampler; drop it (upsampler applies to S<n>: genotypes)"
            )
        options.pop("upsampler")
    return kind, options


def build_head(
    task: str, upsampled: bool, width: int, options: dict, in_channels: int
) -> nn.Module:
    """The head of ``task`` (a canonical name) on a backbone of output ``width``."""
    if upsampled:
        return UpsampledOutputHead(width, options["scale"], in_channels)
    if task == "depth":
        return DepthHead(width)
    if task == "segmentation":
        return SegmentationHead(width, options["num_classes"])
    if task == "sr":
        return SuperResolutionHead(width, options["scale"], in_channels, options["upsampler"])
    return ClassificationHead(width, options["num_classes"])


def build_model(
    genotype: Genotype | str,
    task: str,
    *,
    in_channels: int = 3,
    stem_channels: int = 16,
    **task_options,
) -> DensePredictionNet:
    """Build the network of ``genotype`` with the head of ``task``.

    Args:
        genotype: a :class:`Genotype` or its string form.
        task: ``depth``, ``segmentation`` (``seg``), ``sr`` (``super-resolution``) or
            ``classification`` (``cls``).
        in_channels: channels of the input image.
        stem_channels: width of the fixed 3x3 stem convolution.
        **task_options: ``num_classes`` (segmentation, classification), ``scale`` (2, 3
            or 4) and ``upsampler`` (``pixelshuffle`` or ``deconv``) for super-resolution.

    Any input size works: strided layers round up and upsampling resizes to the exact
    size of the skip feature. Depth and segmentation outputs have the input's size;
    super-resolution outputs ``scale`` times it.

    A ``paper``-layout genotype (``S<n>U:``) builds for ``sr`` only: its ``up1`` block
    upsamples by ``scale`` inside the pyramid and the head only projects to RGB (plus
    the bilinear residual), so it takes no ``upsampler``.
    """
    if isinstance(genotype, str):
        genotype = decode(genotype)
    kind, options = resolve_options(genotype, task, task_options)
    backbone = LDPBackbone(
        genotype, in_channels, stem_channels, kind.stem_stride, upscale=options.get("scale", 2)
    )
    head = build_head(kind.name, genotype.layout == "paper", backbone.out_channels, options,
                      in_channels)  # fmt: skip
    model = DensePredictionNet(backbone, head, kind.name, options)
    init_weights(model)
    if isinstance(head, SuperResolutionHead | UpsampledOutputHead):
        head.zero_init()
    return model
