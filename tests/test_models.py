"""Builder: every operator variant and every head builds, runs and trains."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from edgenas.models import build_model, count_macs, count_params
from edgenas.models.ops import micro_groups
from edgenas.space.genotype import BlockSpec, Genotype, blocks_for_scales, decode
from edgenas.tasks.defaults import DENSE_GENOTYPE

OPERATIONS = [("conv", 1), ("ds", 1), ("sep", 1), ("ib", 3), ("ib", 6), ("micro", 1)]
VARIANTS = [
    (op, expansion, kernel, se, residual)
    for (op, expansion), kernel, se, residual in itertools.product(
        OPERATIONS, (3, 5), (0, 25), (True, False)
    )
]
TASKS = [
    ("depth", {}),
    ("segmentation", {"num_classes": 5}),
    ("sr", {"scale": 2}),
    ("classification", {"num_classes": 7}),
]


def uniform_genotype(
    op, expansion, kernel, se, residual, scales=2, channels=8, layers=2
) -> Genotype:
    """Every block the same operator; widths alternate so some layers change width."""
    blocks = tuple(
        BlockSpec(
            op=op,
            expansion=expansion,
            kernel=kernel,
            se=se,
            residual=residual,
            channels=channels * (1 + index % 2),
            layers=layers,
        )
        for index in range(blocks_for_scales(scales))
    )
    return Genotype(scales, blocks)


def expected_shape(task, options, n, h, w):
    if task == "depth":
        return (n, 1, h, w)
    if task == "segmentation":
        return (n, options["num_classes"], h, w)
    if task == "sr":
        return (n, 3, h * options["scale"], w * options["scale"])
    return (n, options["num_classes"])


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v)))
@pytest.mark.parametrize(("task", "options"), TASKS, ids=[t for t, _ in TASKS])
def test_every_variant_trains_with_every_head(variant, task, options):
    torch.manual_seed(0)
    model = build_model(uniform_genotype(*variant), task, **options)
    model.train()
    image = torch.randn(2, 3, 20, 28)
    out = model(image)
    assert out.shape == expected_shape(task, options, 2, 20, 28)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []
    model.eval()
    with torch.no_grad():
        assert model(image).shape == out.shape


@pytest.mark.parametrize(("h", "w"), [(17, 23), (33, 9), (64, 48), (5, 5)])
def test_any_input_size_works(h, w):
    model = build_model(uniform_genotype("ib", 3, 3, 25, True, scales=4), "depth").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, h, w))
    assert out.shape == (1, 1, h, w)


def test_depth_is_positive():
    model = build_model(uniform_genotype("conv", 1, 3, 0, True), "depth").eval()
    with torch.no_grad():
        assert (model(torch.randn(3, 3, 16, 16) * 10) > 0).all()


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("upsampler", ["pixelshuffle", "deconv"])
def test_super_resolution_scales(scale, upsampler):
    model = build_model(
        uniform_genotype("ds", 1, 3, 0, True), "sr", scale=scale, upsampler=upsampler
    )
    assert model(torch.randn(1, 3, 12, 10)).shape == (1, 3, 12 * scale, 10 * scale)


def test_residual_only_where_shapes_match():
    model = build_model(uniform_genotype("conv", 1, 3, 0, True, layers=3), "depth")
    layers = [
        layer
        for block in model.backbone.blocks.values()
        for layer in block.modules()
        if hasattr(layer, "use_residual")
    ]
    assert len(layers) == 3 * 12
    for layer in layers:
        assert layer.use_residual == (layer.stride == 1 and layer.in_channels == layer.out_channels)
    assert any(layer.use_residual for layer in layers) and not all(
        layer.use_residual for layer in layers
    )
    plain = build_model(uniform_genotype("conv", 1, 3, 0, False, layers=3), "depth")
    assert not any(getattr(m, "use_residual", False) for m in plain.modules())


def test_bad_task_options_are_rejected():
    genotype = uniform_genotype("conv", 1, 3, 0, True)
    with pytest.raises(ValueError, match="unknown task"):
        build_model(genotype, "detection")
    with pytest.raises(ValueError, match="takes no option"):
        build_model(genotype, "depth", num_classes=3)
    with pytest.raises(ValueError, match="scale"):
        build_model(genotype, "sr", scale=5)


def test_genotype_string_accepted_and_aliases_resolve():
    genotype = uniform_genotype("micro", 1, 5, 25, False)
    model = build_model(genotype.encode(), "seg")
    assert model.task == "segmentation" and model.genotype == genotype


def test_micro_groups_divide_widths():
    for c_in, c_out in [(16, 8), (8, 24), (3, 16), (6, 10), (64, 64)]:
        groups, hidden = micro_groups(c_in, c_out)
        assert c_in % groups == 0 and hidden % groups == 0 and c_out % groups == 0


class _TwoConvs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 5, padding=2, groups=8, bias=False)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.b(self.a(x)).mean((2, 3)))


def test_mac_count_matches_hand_formula():
    # a: 8 outputs x 3 inputs x 3x3 per pixel; b: depthwise 5x5; fc: 8x4.
    h, w = 10, 12
    expected = h * w * 8 * 3 * 9 + h * w * 8 * 25 + 8 * 4
    assert count_macs(_TwoConvs(), (1, 3, h, w)) == expected
    assert count_params(_TwoConvs()) == (8 * 27 + 8) + 8 * 25 + (8 * 4 + 4)


def test_mac_count_agrees_with_torch_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode

    for task, options in TASKS:
        model = build_model(uniform_genotype("micro", 1, 5, 25, True), task, **options).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, 24, 32))
        assert count_macs(model, (1, 3, 24, 32)) == counter.get_total_flops() // 2
    deconv = build_model(
        uniform_genotype("ds", 1, 3, 0, True), "sr", scale=3, upsampler="deconv"
    ).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        deconv(torch.zeros(1, 3, 16, 16))
    assert count_macs(deconv, (1, 3, 16, 16)) == counter.get_total_flops() // 2


@pytest.mark.parametrize(
    ("in_channels", "channels", "stride", "se", "residual"),
    [(16, 24, 1, 0, True), (16, 16, 1, 0, True), (16, 16, 2, 25, True), (16, 32, 2, 0, False)],
)
def test_separable_layer_costs_what_ds_costs_with_one_batch_norm(
    in_channels, channels, stride, se, residual
):
    """``sep`` has ``ds``'s convolutions (so the same MACs at inference) but normalises
    once, after the pointwise half, has no depthwise bias (the batch norm would cancel
    it) and ends on a ReLU, before the residual where one applies."""
    from edgenas.models.ops import Layer

    def layer(op):
        return Layer(BlockSpec(op, 3, se, residual, channels, 1), in_channels, stride)

    sep, ds = layer("sep"), layer("ds")

    def convs(module):
        return [
            (m.in_channels, m.out_channels, m.kernel_size, m.stride, m.groups)
            for m in module.modules()
            if isinstance(m, nn.Conv2d)
        ]

    assert convs(sep) == convs(ds)
    assert count_macs(sep, (1, in_channels, 20, 28)) == count_macs(ds, (1, in_channels, 20, 28))
    depthwise = next(m for m in sep.modules() if isinstance(m, nn.Conv2d))
    assert depthwise.groups == in_channels and depthwise.bias is None
    batch_norms = [m for m in sep.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(batch_norms) == 1 and batch_norms[0].num_features == channels
    assert sum(isinstance(m, nn.BatchNorm2d) for m in ds.modules()) == 2
    torch.manual_seed(0)
    x = torch.randn(2, in_channels, 20, 28)
    out = sep.train()(x)
    assert out.shape == (2, channels, 20 // stride, 28 // stride)
    branch = sep.body(x)
    assert (branch >= 0).all() and (branch > 0).any()  # the branch ends on the ReLU
    expect_residual = residual and stride == 1 and in_channels == channels
    assert sep.use_residual == expect_residual
    assert torch.allclose(out, branch + x if expect_residual else branch)


def test_mac_count_scales_with_resolution_and_restores_mode():
    model = build_model(uniform_genotype("ib", 6, 5, 25, True), "depth").train()
    small = count_macs(model, (1, 3, 32, 32))
    large = count_macs(model, (1, 3, 64, 64))
    assert model.training
    assert 3.5 < large / small < 4.5


def test_id_blocks_are_the_identity_or_a_projection():
    from edgenas.models.ops import Block

    keep = Block(BlockSpec("id", 1, 0, False, 16, 1), in_channels=16)
    assert keep.is_identity and sum(p.numel() for p in keep.parameters()) == 0
    x = torch.randn(2, 16, 9, 11)
    assert torch.equal(keep(x), x)
    down = Block(BlockSpec("id", 1, 0, False, 32, 1), in_channels=16, stride=2)
    assert not down.is_identity
    assert down(x).shape == (2, 32, 5, 6)  # 1x1 projection, strided like any down block
    # A genotype with id blocks builds, runs at an odd size and every parameter learns.
    dense = decode(DENSE_GENOTYPE)
    blocks, roles = list(dense.blocks), dense.roles
    for role in ("enc1b", "down2", "dec2b", "up2"):
        i = roles.index(role)
        blocks[i] = BlockSpec("id", 1, 0, False, blocks[i].channels, 1)
    genotype = Genotype(dense.scales, tuple(blocks))
    model = build_model(genotype, "seg", num_classes=5)
    out = model(torch.randn(2, 3, 37, 45))
    assert out.shape == (2, 5, 37, 45)
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters())
