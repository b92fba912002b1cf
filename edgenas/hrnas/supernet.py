"""The HR-NAS multi-branch supernet (Sec. 3.2, Fig. 3a-b) with a task head.

Stem: two stride-2 3x3 convs (1/4 resolution). Then parallel modules with
``branches = (1, 2, 3, 4, 4)`` branches (branch b at 1/2^(b+2) resolution, width
``widths[b]``), ``depth`` searching blocks per branch. Between consecutive parallel
modules a fusion module: output branch j sums input branch j, a reduction block
(stride 2) of input branch j-1 and a normal block of input branch j+1 upsampled
bilinearly, then a ReLU; a new lower-resolution branch (down to 1/32) is a reduction
block of the lowest input branch. At the end every branch is resized to 1/4,
concatenated, mixed by a 1x1 conv + BN + ReLU (computed per branch before the resize,
:class:`BranchMix`) and fed to the task head of
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


class BranchMix(nn.Module):
    """The final mix: ``ReLU(BN(conv1x1(concat(f0, up(f1), up(f2), ...))))`` with every
    branch ``f_i`` resized bilinearly to the size of ``f0``, computed as
    ``ReLU(BN(W_0 f0 + up(W_1 f1) + up(W_2 f2) + ...))``.

    The two are the same function: a 1x1 convolution mixes channels at each pixel and
    bilinear resizing mixes pixels within each channel with weights that sum to one,
    so the two commute. Convolving each branch at its own resolution before the
    resize costs ``C_i * out * H_i * W_i`` MACs instead of ``C_i * out * H0 * W0`` (a
    16x saving on a 1/16-resolution branch) and resizes ``out`` channels instead of
    ``C_i``. In eval mode the BN is folded into the branch convolutions, so the
    exported graph is convolutions, resizes, adds and a ReLU that onnxruntime fuses
    into the first convolution.

    The children are those of :func:`~edgenas.models.ops.conv_bn` under the same
    names (``0`` = conv, ``1`` = BN, ``2`` = ReLU), so checkpoints written when the mix
    was a ``conv_bn`` load unchanged. The conv runs functionally on slices of its
    weight (hooks on ``0`` never fire), so :func:`edgenas.models.count_macs` counts
    this module through :meth:`forward_macs`. Nothing prunes the mix's input
    channels: ``branch_widths`` must keep summing to the conv's input width.
    """

    def __init__(self, branch_widths: list[int], out_channels: int) -> None:
        super().__init__()
        for name, layer in zip("012", conv_bn(sum(branch_widths), out_channels, 1), strict=True):
            self.add_module(name, layer)
        self.branch_widths = list(branch_widths)

    @property
    def conv(self) -> nn.Conv2d:
        return self._modules["0"]

    @property
    def bn(self) -> nn.BatchNorm2d:
        return self._modules["1"]

    @property
    def relu(self) -> nn.ReLU:
        return self._modules["2"]

    def extra_repr(self) -> str:
        return f"branch_widths={self.branch_widths}"

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        bn = self.bn
        weights = torch.split(self.conv.weight, self.branch_widths, dim=1)
        # fold the BN only where it computes a fixed affine map (eval, running stats)
        fold = not bn.training and bn.track_running_stats and bn.affine
        bias = None
        if fold:  # scale the weights, shift once
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            weights = [w * scale[:, None, None, None] for w in weights]
            bias = bn.bias - bn.running_mean * scale
        size = feats[0].shape[-2:]
        total = None
        for f, w in zip(feats[1:], weights[1:], strict=True):
            up = F.interpolate(F.conv2d(f, w), size=size, mode="bilinear", align_corners=False)
            total = up if total is None else total + up
        first = F.conv2d(feats[0], weights[0], bias)
        mixed = first if total is None else first + total
        return self.relu(mixed if fold else bn(mixed))

    def forward_macs(self, inputs: tuple[list[torch.Tensor]], output: torch.Tensor) -> int:
        """MACs of one call (:func:`edgenas.models.count_macs`): each branch's 1x1
        convolution at its own resolution."""
        out = self.conv.out_channels
        return sum(f.shape[0] * f.shape[1] * f.shape[2] * f.shape[3] * out for f in inputs[0])


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
        self.mix = BranchMix(list(w[: c.branches[-1]]), c.head_channels)
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
        return self.mix(feats)

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
