"""The HR-NAS multi-branch supernet (Sec. 3.2, Fig. 3a-b) with a task head.

Stem: two stride-2 3x3 convs (1/4 resolution). Then parallel modules with
``branches = (1, 2, 3, 4, 4)`` branches (branch b at 1/2^(b+2) resolution, width
``widths[b]``), ``depth`` searching blocks per branch. Between consecutive parallel
modules a fusion module: output branch j sums input branch j, a reduction block
(stride 2) of input branch j-1 and a normal block of input branch j+1 upsampled
bilinearly, then a ReLU; a new lower-resolution branch (down to 1/32) is a reduction
block of the lowest input branch. At the end every branch is resized to 1/4,
concatenated, mixed by a 1x1 conv + BN + ReLU and fed to the task head of
:mod:`edgenas.models.heads` (depth, segmentation, classification; for
super-resolution the features are first resized to the input size).

Defaults are scaled for CPU: widths (16, 24, 32, 48), expansion 2 (paper: 4), 8 tokens
per transformer, transformers in the parallel modules' blocks only.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from edgenas.hrnas.block import SearchingBlock, reduced_size
from edgenas.hrnas.config import SupernetConfig
from edgenas.hrnas.transformer import LightTransformer
from edgenas.models.builder import HEAD_KINDS, canonical_task
from edgenas.models.heads import (
    ClassificationHead,
    DepthHead,
    SegmentationHead,
    SuperResolutionHead,
)
from edgenas.models.ops import conv_bn, init_weights


class Fusion(nn.Module):
    """Exchange between neighbouring branches, plus a new lower branch if asked."""

    def __init__(self, config: SupernetConfig, n_in: int, n_out: int) -> None:
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        w, c = config.widths, config
        common = dict(expansion=c.expansion, token_size=c.token_size, heads=c.heads)
        self.paths = nn.ModuleDict()
        for j in range(n_out):
            if 0 <= j - 1 < n_in:
                self.paths[f"r{j - 1}{j}"] = SearchingBlock(
                    w[j - 1], w[j], stride=2, tokens=c.fusion_tokens, **common
                )
            if j + 1 < n_in:
                self.paths[f"u{j + 1}{j}"] = SearchingBlock(
                    w[j + 1], w[j], stride=1, tokens=c.fusion_tokens, **common
                )

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for j in range(self.n_out):
            terms = [feats[j]] if j < self.n_in else []
            if 0 <= j - 1 < self.n_in:
                terms.append(self.paths[f"r{j - 1}{j}"](feats[j - 1]))
            if j + 1 < self.n_in:
                up = self.paths[f"u{j + 1}{j}"](feats[j + 1])
                terms.append(
                    F.interpolate(
                        up, size=feats[j].shape[-2:], mode="bilinear", align_corners=False
                    )
                )
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            out.append(F.relu(total))
        return out


class HRSupernet(nn.Module):
    """``forward(image) -> task output`` with the same conventions as
    :func:`edgenas.build_model` (depth / segmentation at the input size, SR at ``scale``
    times it, classification logits)."""

    def __init__(self, config: SupernetConfig, task: str, **task_options) -> None:
        super().__init__()
        kind = HEAD_KINDS[canonical_task(task)]
        unknown = set(task_options) - set(kind.defaults)
        if unknown:
            raise ValueError(f"task {kind.name!r} takes no option(s) {', '.join(sorted(unknown))}")
        self.task = kind.name
        self.options = {**kind.defaults, **task_options}
        self.config = config
        c, w = config, config.widths
        self.stem = nn.Sequential(
            conv_bn(3, c.stem_channels, 3, 2), conv_bn(c.stem_channels, w[0], 3, 2)
        )
        common = dict(expansion=c.expansion, token_size=c.token_size, heads=c.heads)
        self.parallel = nn.ModuleList()
        self.fusions = nn.ModuleList()
        for m, n in enumerate(c.branches):
            self.parallel.append(
                nn.ModuleList(
                    nn.Sequential(
                        *[
                            SearchingBlock(w[b], w[b], tokens=c.tokens, **common)
                            for _ in range(c.depth)
                        ]
                    )
                    for b in range(n)
                )
            )
            if m + 1 < len(c.branches):
                self.fusions.append(Fusion(c, n, c.branches[m + 1]))
        total = sum(w[: c.branches[-1]])
        self.mix = conv_bn(total, c.head_channels, 1)
        ch = c.head_channels
        o = self.options
        if self.task == "depth":
            self.head: nn.Module = DepthHead(ch)
        elif self.task == "segmentation":
            self.head = SegmentationHead(ch, o["num_classes"])
        elif self.task == "sr":
            self.head = SuperResolutionHead(ch, o["scale"], 3, o["upsampler"])
        else:
            self.head = ClassificationHead(ch, o["num_classes"])
        init_weights(self)
        if isinstance(self.head, SuperResolutionHead):
            self.head.zero_init()
        for module in self.modules():  # the stored projector order (SupernetConfig)
            if isinstance(module, LightTransformer):
                module.resize_first = c.projector == "resize-first"

    def blocks(self) -> Iterator[tuple[str, SearchingBlock]]:
        """Every searching block with a stable name, in network order:
        ``p{module}.b{branch}.{i}`` in parallel modules, ``f{fusion}.r{a}{b}`` /
        ``f{fusion}.u{a}{b}`` for reduction / upsampling paths."""
        for m, module in enumerate(self.parallel):
            for b, branch in enumerate(module):
                for i, block in enumerate(branch):
                    yield f"p{m}.b{b}.{i}", block
            if m < len(self.fusions):
                for key, block in self.fusions[m].paths.items():
                    yield f"f{m}.{key}", block

    def features(self, image: torch.Tensor) -> torch.Tensor:
        feats = [self.stem(image)]
        for m, module in enumerate(self.parallel):
            feats = [branch(f) for branch, f in zip(module, feats, strict=True)]
            if m < len(self.fusions):
                feats = self.fusions[m](feats)
        size = feats[0].shape[-2:]
        resized = [feats[0]] + [
            F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats[1:]
        ]
        return self.mix(torch.cat(resized, dim=1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.features(image)
        if self.task == "sr":
            x = F.interpolate(x, size=image.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(x, image)


def block_input_sizes(model: HRSupernet, input_shape: tuple[int, ...]) -> dict[str, tuple]:
    """``{block name: (C, H, W) of its input}`` from one forward pass with hooks."""
    sizes: dict[str, tuple] = {}
    handles = []
    for name, block in model.blocks():

        def hook(_module, args, name=name):
            sizes[name] = tuple(args[0].shape[1:])

        handles.append(block.register_forward_pre_hook(hook))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(input_shape))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return sizes


def output_size(block: SearchingBlock, in_hw: tuple[int, int]) -> tuple[int, int]:
    return reduced_size(in_hw, block.stride)
