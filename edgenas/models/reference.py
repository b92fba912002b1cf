"""Reference networks: the small models a user would otherwise write by hand.

What edgenas finds is only worth something next to a known baseline, so these are
built, trained, exported and profiled by the same code as genotype networks: every
model built by :func:`build_reference` follows the genotype networks' conventions
(input ``N x 3 x H x W`` RGB in [0, 1], any H and W, odd sizes included; outputs as in
:mod:`edgenas.models.heads`) and carries ``reference`` (its name), ``task`` and
``options`` (every option resolved, plain JSON values, so that
``build_reference(m.reference, **m.options)`` rebuilds the same architecture).

Written from the papers, not from their code; where a model departs from its paper,
the builder's docstring says so (and docs/tasks.md, "Reference models").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from edgenas.models.builder import canonical_task, reject_unknown_options
from edgenas.models.heads import DepthHead
from edgenas.models.ops import conv_bn, init_weights


@dataclass(frozen=True)
class ReferenceModel:
    """A registry entry: what the model is and the defaults of its options.

    ``defaults`` lists every option the builder takes (the task head's, such as
    ``scale`` or ``num_classes``, and architecture options such as ``width``); treat it
    as read-only.
    """

    name: str
    task: str
    description: str
    citation: str
    learned: bool
    defaults: dict = field(hash=False)  # entries stay hashable by their other fields
    # Training-config fields this model trains best with, over the task's recipe (e.g.
    # ESPCN's tanh layers want a lower rate than batch-normalised networks).
    recipe: dict = field(default_factory=dict, hash=False)


REFERENCE_MODELS: dict[str, ReferenceModel] = {}
# name -> builder(**options) -> (model, resolved options as plain JSON values)
_Builder = Callable[..., tuple[nn.Module, dict]]
_BUILDERS: dict[str, _Builder] = {}


def _register(
    name: str,
    task: str,
    description: str,
    citation: str,
    learned: bool,
    recipe: dict | None = None,
    **defaults,
):
    def decorate(builder: _Builder) -> _Builder:
        REFERENCE_MODELS[name] = ReferenceModel(
            name, task, description, citation, learned, dict(defaults), dict(recipe or {})
        )
        _BUILDERS[name] = builder
        return builder

    return decorate


def reference_names(task: str | None = None) -> list[str]:
    """Names of the reference models, all or those of ``task`` (aliases such as ``seg`` work)."""
    if task is None:
        return list(REFERENCE_MODELS)
    wanted = canonical_task(task)
    return [name for name, entry in REFERENCE_MODELS.items() if entry.task == wanted]


def build_reference(name: str, task: str | None = None, **options) -> nn.Module:
    """Build the reference model ``name`` with ``options`` (defaults from the registry).

    Args:
        name: a key of :data:`REFERENCE_MODELS`.
        task: if given, the task the caller expects (aliases allowed); a model of another
            task is a ValueError.
        **options: ``scale`` (sr: 2, 3 or 4), ``num_classes`` (segmentation) and the
            model's own architecture options (see ``REFERENCE_MODELS[name].defaults``).

    Raises:
        ValueError: unknown name or task, wrong task, an option the model does not take,
            or a bad option value.
    """
    entry = REFERENCE_MODELS.get(name)
    if entry is None:
        raise ValueError(f"unknown reference model {name!r} (known: {', '.join(REFERENCE_MODELS)})")
    if task is not None and canonical_task(task) != entry.task:
        raise ValueError(
            f"reference model {name!r} is a {entry.task} model, not {canonical_task(task)}"
        )
    reject_unknown_options(f"reference model {name!r}", options, entry.defaults)
    resolved = {**entry.defaults, **options}
    model, resolved = _BUILDERS[name](**resolved)
    model.reference = name
    model.task = entry.task
    model.options = resolved
    return model


# --- option checks (they return the plain JSON value stored in ``options``) ----------------


def _scale(scale) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in (2, 3, 4):
        raise ValueError(f"super-resolution scale must be 2, 3 or 4, got {scale!r}")
    return scale


def _num_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"segmentation needs num_classes >= 2, got {num_classes!r}")
    return num_classes


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"option {name} must be a positive integer, got {value!r}")
    return value


def _width(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 4:
        raise ValueError(f"option width must be a number in (0, 4], got {value!r}")
    return float(value)


def _divisible(channels: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor``, never below it nor 10% under ``channels``
    (the MobileNet rule for width multipliers)."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return rounded


def _resize(x: torch.Tensor, size, mode: str = "bilinear") -> torch.Tensor:
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


class _BilinearResidualSR(nn.Module):
    """A learned super-resolution branch on the input plus its bilinear upscale.

    The residual and the zero-initialised last layer make an untrained network exactly
    bilinear, as for the genotype networks' :class:`~edgenas.models.heads.SuperResolutionHead`.
    """

    def __init__(self, branch: nn.Module, scale: int) -> None:
        super().__init__()
        self.branch = branch
        self.scale = scale
        last = [m for m in branch.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)][-1]
        with torch.no_grad():
            last.weight.zero_()
            if last.bias is not None:
                last.bias.zero_()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(image, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return base + self.branch(image)


# --- super-resolution -------------------------------------------------------------------------


def pil_cubic(x: float, a: float = -0.5) -> float:
    """PIL's bicubic kernel (Keys' cubic with a = -0.5)."""
    x = abs(x)
    if x < 1:
        return ((a + 2) * x - (a + 3)) * x * x + 1
    if x < 2:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def bicubic_phase_taps(scale: int) -> tuple[torch.Tensor, int]:
    """Per-phase 1-D weights of PIL's bicubic upscaling by an integer ``scale``.

    Output pixel ``o = scale * i + p`` has its centre at input coordinate
    ``(o + 0.5) / scale = i + (p + 0.5) / scale`` (pixel-centre alignment); input pixel
    ``i + k`` gets the weight ``cubic(k + 0.5 - (p + 0.5) / scale)`` (support 2, as PIL:
    upscaling does not widen the kernel). Returns ``(weights, radius)``: ``weights[p]``
    over offsets ``k = -radius .. radius``. The weights are not normalised: PIL divides
    by the sum over the taps inside the image, which the module does at run time.
    """
    rows = []
    for phase in range(scale):
        centre = (phase + 0.5) / scale
        rows.append(
            {
                k: pil_cubic(k + 0.5 - centre)
                for k in range(math.floor(centre - 2.5), math.ceil(centre + 2.5) + 1)
            }
        )
    radius = max(abs(k) for row in rows for k, w in row.items() if w != 0.0)
    weights = torch.tensor(
        [[row.get(k, 0.0) for k in range(-radius, radius + 1)] for row in rows],
        dtype=torch.float64,
    )
    return weights, radius


class BicubicSR(nn.Module):
    """PIL-faithful bicubic upscaling as an exportable module with fixed weights.

    PIL (``Image.resize(size, Image.BICUBIC)``) resamples horizontally, clips to the
    8-bit range, then resamples vertically and clips again; at the borders it
    renormalises the weights over the taps that fall inside the image. Here each pass is
    a depthwise convolution with one output channel per phase on the zero-padded input,
    divided by the same convolution of a ones image (= the sum of the weights inside the
    image), clamped to [0, 1]; the phases are then interleaved by a pixel shuffle. The
    only difference from PIL is that PIL also rounds to 8 bits between the passes.
    """

    def __init__(self, scale: int, channels: int = 3) -> None:
        super().__init__()
        self.scale, self.channels = scale, channels
        taps, self.radius = bicubic_phase_taps(scale)
        taps = taps.float()
        size = taps.shape[1]
        # Horizontal: channel c -> c * s + q (phase q along the width).
        self.register_buffer(
            "weight_h", taps.repeat(channels, 1).view(channels * scale, 1, 1, size)
        )
        # Vertical on those: channel c * s + q -> (c * s + q) * s + p (phase p along the height).
        self.register_buffer(
            "weight_v", taps.repeat(channels * scale, 1).view(channels * scale * scale, 1, size, 1)
        )
        self.register_buffer("norm_h", taps.view(scale, 1, 1, size).clone())
        self.register_buffer("norm_v", taps.view(scale, 1, size, 1).clone())
        # Channel order (c, q, p) -> (c, p, q), the order pixel shuffle expects.
        order = [
            (c * scale + q) * scale + p
            for c in range(channels)
            for p in range(scale)
            for q in range(scale)
        ]
        self.register_buffer("order", torch.tensor(order, dtype=torch.long))
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        r, s, c = self.radius, self.scale, self.channels
        ones = torch.ones_like(image[:1, :1])
        norm_h = F.conv2d(ones, self.norm_h, padding=(0, r))  # 1 x s x H x W
        x = F.conv2d(image, self.weight_h, padding=(0, r), groups=c)
        x = (x / norm_h.repeat(1, c, 1, 1)).clamp(0, 1)
        norm_v = F.conv2d(ones, self.norm_v, padding=(r, 0))
        x = F.conv2d(x, self.weight_v, padding=(r, 0), groups=c * s)
        x = x / norm_v.repeat(1, c * s, 1, 1)
        return self.shuffle(torch.index_select(x, 1, self.order)).clamp(0, 1)


@_register(
    "bicubic",
    "sr",
    "PIL bicubic upscaling as fixed convolutions, no parameters",
    "Keys, Cubic convolution interpolation for digital image processing, IEEE TASSP 1981",
    learned=False,
    scale=2,
)
def _bicubic(scale):
    scale = _scale(scale)
    return BicubicSR(scale), {"scale": scale}


@_register(
    "espcn",
    "sr",
    "3 convolutions at LR size, pixel shuffle, bilinear residual",
    "Shi et al., Real-Time Single Image and Video Super-Resolution Using an Efficient "
    "Sub-Pixel Convolutional Neural Network, CVPR 2016",
    learned=True,
    recipe={"lr": 1e-3},
    scale=2,
)
def _espcn(scale):
    """ESPCN (5x5/64, 3x3/32, 3x3/3s^2, tanh). Deviation: RGB in and out with a bilinear
    global residual and a zero-initialised last convolution; the paper predicts Y only,
    without a residual."""
    scale = _scale(scale)
    branch = nn.Sequential(
        nn.Conv2d(3, 64, 5, padding=2),
        nn.Tanh(),
        nn.Conv2d(64, 32, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(32, 3 * scale * scale, 3, padding=1),
        nn.PixelShuffle(scale),
    )
    init_weights(branch)
    return _BilinearResidualSR(branch, scale), {"scale": scale}


@_register(
    "fsrcnn",
    "sr",
    "shrink, m 3x3 maps, expand, 9x9 deconvolution, bilinear residual",
    "Dong et al., Accelerating the Super-Resolution Convolutional Neural Network, ECCV 2016",
    learned=True,
    recipe={"lr": 1e-3},
    scale=2,
    d=56,
    s=12,
    m=4,
)
def _fsrcnn(scale, d, s, m):
    """FSRCNN with per-channel PReLU. Deviation: RGB in and out with a bilinear global
    residual and a zero-initialised deconvolution; the paper predicts Y only, without a
    residual. The deconvolution (padding 4, output_padding scale-1) outputs exactly
    ``scale`` times the input size."""
    scale = _scale(scale)
    d, s, m = _positive_int("d", d), _positive_int("s", s), _positive_int("m", m)
    layers: list[nn.Module] = [nn.Conv2d(3, d, 5, padding=2), nn.PReLU(d)]
    layers += [nn.Conv2d(d, s, 1), nn.PReLU(s)]
    for _ in range(m):
        layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
    layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
    layers.append(nn.ConvTranspose2d(d, 3, 9, stride=scale, padding=4, output_padding=scale - 1))
    branch = nn.Sequential(*layers)
    init_weights(branch)
    return _BilinearResidualSR(branch, scale), {"scale": scale, "d": d, "s": s, "m": m}


# --- segmentation ----------------------------------------------------------------------------


def _conv_bn_act(
    cin: int,
    cout: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    dilation: int = 1,
    act: type[nn.Module] | None = nn.ReLU,
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(
            cin, cout, kernel, stride, dilation * (kernel // 2), dilation, groups, bias=False
        ),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class _MobileSqueezeExcite(nn.Module):
    """MobileNetV3's squeeze-and-excitation: ReLU bottleneck, hard-sigmoid gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = _divisible(channels / 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU()
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class InvertedResidual(nn.Module):
    """MobileNetV3 bneck: 1x1 expansion (skipped when it would not widen), depthwise
    k x k, optional SE, linear 1x1 projection; residual when stride 1 and widths match."""

    def __init__(
        self,
        cin: int,
        kernel: int,
        expanded: int,
        cout: int,
        se: bool,
        act: type[nn.Module],
        stride: int,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(_conv_bn_act(cin, expanded, 1, act=act))
        layers.append(_conv_bn_act(expanded, expanded, kernel, stride, expanded, dilation, act))
        if se:
            layers.append(_MobileSqueezeExcite(expanded))
        layers.append(_conv_bn_act(expanded, cout, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.use_residual else out


# MobileNetV3-Small (Howard et al. 2019, Table 2): kernel, expansion, out, SE, NL, stride.
_MNV3_SMALL = [
    (3, 16, 16, True, "RE", 2),
    (3, 72, 24, False, "RE", 2),
    (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2),
    (5, 240, 40, True, "HS", 1),
    (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1),
    (5, 144, 48, True, "HS", 1),
    (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1),
    (5, 576, 96, True, "HS", 1),
]


class MobileNetV3SmallEncoder(nn.Module):
    """MobileNetV3-Small features at 1/8 (low level) and 1/16 (high level).

    For segmentation (the paper's Sec. 6.4) the last stage keeps stride 1 and uses
    dilation 2 (output stride 16), and with ``reduced_tail`` its channels are halved.
    """

    def __init__(self, width: float = 1.0, reduced_tail: bool = True) -> None:
        super().__init__()
        acts = {"RE": nn.ReLU, "HS": nn.Hardswish}
        cin = _divisible(16 * width)
        self.stem = _conv_bn_act(3, cin, 3, 2, act=nn.Hardswish)
        blocks, stride, dilation = [], 2, 1
        self.low_index = 0
        for index, (kernel, expanded, cout, se, nl, block_stride) in enumerate(_MNV3_SMALL):
            last_stage = index >= 8
            if last_stage and reduced_tail:  # the paper's RF2: half the last stage's width
                cout //= 2
                if index > 8:  # expansions follow the (now halved) input width
                    expanded //= 2
            if block_stride == 2 and stride == 16:
                block_stride, dilation = 1, 2  # atrous last stage: output stride 16
            stride *= block_stride
            expanded, cout = _divisible(expanded * width), _divisible(cout * width)
            blocks.append(
                InvertedResidual(cin, kernel, expanded, cout, se, acts[nl], block_stride, dilation)
            )
            cin = cout
            if stride == 8:
                self.low_index, self.low_channels = index, cout
        self.blocks = nn.ModuleList(blocks)
        self.high_channels = 6 * cin
        self.last = _conv_bn_act(cin, self.high_channels, 1, act=nn.Hardswish)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(x)
        low = x
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index == self.low_index:
                low = x
        return low, self.last(x)


class LRASPPHead(nn.Module):
    """Lite R-ASPP: the 1/16 features through a 1x1 conv (BN, ReLU) gated by a global
    pooled 1x1 conv + sigmoid, upsampled to the 1/8 features, classified and added to a
    1x1 classification of the 1/8 features.

    Deviation: global average pooling instead of the paper's 49x49 pooling with stride
    (16, 20), which was sized for 1024x2048 Cityscapes crops; global pooling works at any
    input size and is what the paper's formulation reduces to on small inputs.
    """

    def __init__(
        self, low_channels: int, high_channels: int, num_classes: int, inter_channels: int = 128
    ) -> None:
        super().__init__()
        self.cbr = _conv_bn_act(high_channels, inter_channels, 1)
        self.scale = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(high_channels, inter_channels, 1), nn.Sigmoid()
        )
        self.high_classifier = nn.Conv2d(inter_channels, num_classes, 1)
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        x = self.cbr(high) * self.scale(high)
        x = _resize(x, low.shape[-2:])
        return self.high_classifier(x) + self.low_classifier(low)


class LRASPPNet(nn.Module):
    def __init__(self, num_classes: int, width: float, reduced_tail: bool) -> None:
        super().__init__()
        self.backbone = MobileNetV3SmallEncoder(width, reduced_tail)
        self.head = LRASPPHead(self.backbone.low_channels, self.backbone.high_channels, num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        low, high = self.backbone(image)
        return _resize(self.head(low, high), image.shape[-2:])


@_register(
    "lraspp",
    "segmentation",
    "LR-ASPP head on MobileNetV3-Small, output stride 16",
    "Howard et al., Searching for MobileNetV3, ICCV 2019",
    learned=True,
    num_classes=11,
    width=1.0,
    reduced_tail=True,
)
def _lraspp(num_classes, width, reduced_tail):
    """MobileNetV3-Small + LR-ASPP, trained from scratch (no ImageNet pre-training).
    Deviation: global pooling in the head (see :class:`LRASPPHead`)."""
    num_classes, width = _num_classes(num_classes), _width(width)
    if not isinstance(reduced_tail, bool):
        raise ValueError(f"option reduced_tail must be true or false, got {reduced_tail!r}")
    model = LRASPPNet(num_classes, width, reduced_tail)
    init_weights(model)
    return model, {"num_classes": num_classes, "width": width, "reduced_tail": reduced_tail}


def _separable(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    """Depthwise k x k and pointwise 1x1 convolutions, each with BN and ReLU."""
    return nn.Sequential(conv_bn(cin, cin, kernel, stride, groups=cin), conv_bn(cin, cout, 1))


class SmallUNet(nn.Module):
    """A U-Net of depthwise-separable blocks with additive skips.

    Encoder: a 3x3 stem at 1/2, then one separable block per scale (strided where the
    scale changes) and a second one, at 1/2, 1/4, 1/8, 1/16. Decoder: bilinear resize
    to the skip's exact size, a 1x1 projection where the widths differ, add the skip, a
    separable block. A 1x1 classifier at 1/2, logits resized to the input size.
    """

    def __init__(self, num_classes: int, widths: list[int]) -> None:
        super().__init__()
        self.stem = conv_bn(3, widths[0], 3, 2)
        self.encoder = nn.ModuleList()
        cin = widths[0]
        for index, width in enumerate(widths):
            stride = 1 if index == 0 else 2
            self.encoder.append(
                nn.Sequential(_separable(cin, width, stride), _separable(width, width))
            )
            cin = width
        self.project = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.project.append(
                conv_bn(cin, width, 1, relu=False) if cin != width else nn.Identity()
            )
            self.decoder.append(_separable(width, width))
            cin = width
        self.classifier = nn.Conv2d(cin, num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.stem(image)
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        for project, decode, skip in zip(
            self.project, self.decoder, reversed(skips[:-1]), strict=True
        ):
            x = decode(project(_resize(x, skip.shape[-2:])) + skip)
        return _resize(self.classifier(x), image.shape[-2:])


@_register(
    "unet",
    "segmentation",
    "small U-Net: depthwise-separable blocks, additive skips",
    "Ronneberger et al., U-Net: Convolutional Networks for Biomedical Image Segmentation, "
    "MICCAI 2015; blocks from Howard et al., MobileNets, 2017",
    learned=True,
    num_classes=11,
    widths=[16, 32, 64, 96],
)
def _unet(num_classes, widths):
    """Deviation from U-Net: depthwise-separable blocks, additive (not concatenated)
    skips, bilinear upsampling, encoder at 1/2 .. 1/16 only."""
    num_classes = _num_classes(num_classes)
    if not isinstance(widths, list | tuple) or len(widths) < 2:
        raise ValueError(f"option widths must be a list of at least 2 widths, got {widths!r}")
    widths = [_positive_int("widths", w) for w in widths]
    model = SmallUNet(num_classes, widths)
    init_weights(model)
    return model, {"num_classes": num_classes, "widths": widths}


# --- depth -----------------------------------------------------------------------------------

# MobileNet (v1) body after its 3x3 stem (32 channels, stride 2): out channels, stride.
_MOBILENET_V1 = [
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
]  # fmt: skip


class FastDepthNet(nn.Module):
    """MobileNet encoder, NNConv5 decoder, additive skips from 1/2, 1/4 and 1/8.

    Decoder stage ``i`` (5 of them): depthwise 5x5 + pointwise, each with BN and ReLU,
    then nearest-neighbour upsampling to the exact size of the matching encoder feature
    (the input size for the last stage), where stages 2, 3, 4 add the encoder's 1/8, 1/4
    and 1/2 features. ``head`` is a :class:`DepthHead` whose projection is FastDepth's 1x1
    convolution.
    """

    def __init__(self, width: float) -> None:
        super().__init__()
        c = _divisible(32 * width)
        self.stem = conv_bn(3, c, 3, 2)
        self.encoder = nn.ModuleList()
        self.strides = [stride for _, stride in _MOBILENET_V1]
        for channels, stride in _MOBILENET_V1:
            out = _divisible(channels * width)
            self.encoder.append(_separable(c, out, stride))
            c = out
        # Encoder layers 1, 3, 5 of FastDepth's numbering (stem = 0) end 1/2, 1/4, 1/8.
        self.skip_layers = {0: 4, 2: 3, 4: 2}  # our encoder index -> decoder stage
        self.decoder = nn.ModuleList()
        for channels in (512, 256, 128, 64, 32):
            out = _divisible(channels * width)
            self.decoder.append(_separable(c, out, kernel=5))
            c = out
        self.head = DepthHead(c)
        self.head.proj = nn.Conv2d(c, 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        sizes = [image.shape[-2:]]  # the input, then 1/2, 1/4, 1/8, 1/16
        x = self.stem(image)
        skips: dict[int, torch.Tensor] = {}
        for index, (layer, stride) in enumerate(zip(self.encoder, self.strides, strict=True)):
            if stride == 2:
                sizes.append(x.shape[-2:])
            x = layer(x)
            if index in self.skip_layers:
                skips[self.skip_layers[index]] = x
        for stage, decode in enumerate(self.decoder, start=1):
            x = _resize(decode(x), sizes[-stage], mode="nearest")
            if stage in skips:
                x = x + skips[stage]
        return self.head(x, image)


@_register(
    "fastdepth",
    "depth",
    "MobileNet encoder, NNConv5 decoder, additive skips",
    "Wofk et al., FastDepth: Fast Monocular Depth Estimation on Embedded Systems, ICRA 2019",
    learned=True,
    width=0.5,
)
def _fastdepth(width):
    """FastDepth (MobileNet-NNConv5 with skip additions), trained from scratch. Deviations:
    width 0.5 by default (the paper uses 1.0 with ImageNet pre-training), and the output
    goes through softplus + 1e-3 (:class:`DepthHead`) instead of the paper's ReLU; no
    network pruning (the paper's NetAdapt step)."""
    width = _width(width)
    model = FastDepthNet(width)
    init_weights(model)
    return model, {"width": width}
