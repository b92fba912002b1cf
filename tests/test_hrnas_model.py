"""HR-NAS building blocks: transformer, searching block, supernet, extraction oracle."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from edgenas.hrnas.arch import architecture, decode_units
from edgenas.hrnas.block import SearchingBlock
from edgenas.hrnas.costs import count_hrnas_macs, flops_costs
from edgenas.hrnas.extract import apply_masks, extract, select_units, shrink_model
from edgenas.hrnas.shrink import recalibrate_batchnorm
from edgenas.hrnas.supernet import BranchMix, HRSupernet, SupernetConfig
from edgenas.hrnas.surgery import Surgery
from edgenas.hrnas.transformer import LightTransformer, transformer_macs
from edgenas.models.ops import conv_bn

TINY = SupernetConfig(
    widths=(4, 6, 8, 8), tokens=3, fusion_tokens=2, expansion=1, token_size=4, head_channels=8
)


class _Fixed(nn.Module):
    def __init__(self, tf: LightTransformer, size) -> None:
        super().__init__()
        self.tf, self.size = tf, size

    def forward(self, x):
        return self.tf(x, self.size)


def _randomise(model: nn.Module, seed: int = 1, dead: float = 0.3) -> None:
    """Random importances (some below 0.1) and BN statistics, so that eval outputs
    depend on everything the extraction must carry over."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) - dead)
                m.bias.normal_(0, 0.1, generator=g)
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)


@pytest.mark.parametrize("heads", [1, 2])
def test_transformer_macs_formula_matches_counted_macs(heads):
    for tokens in (1, 3):
        tf = _Fixed(LightTransformer(5, 7, tokens, size=4, heads=heads), (5, 6))
        assert count_hrnas_macs(tf, (1, 5, 10, 12)) == transformer_macs(
            5, 7, tokens, (10, 12), size=4
        )


def test_token_mask_equals_token_removal():
    torch.manual_seed(0)
    tf = LightTransformer(6, 5, 4, size=4, heads=2)
    _randomise(tf)
    tf.eval()
    x = torch.randn(2, 6, 9, 11)
    keep = torch.tensor([0, 2])
    mask = torch.zeros(4, dtype=torch.bool)
    mask[keep] = True
    tf.token_mask = mask
    masked = tf(x, (5, 6))
    small = copy.deepcopy(tf)
    small.keep_tokens(keep, Surgery())
    assert small.tokens == 2 and small.token_mask is None
    torch.testing.assert_close(small(x, (5, 6)), masked, rtol=1e-5, atol=1e-5)
    assert masked.shape == (2, 5, 5, 6)


def test_reduction_block_halves_size_and_normal_block_keeps_it():
    x = torch.randn(1, 4, 9, 10)
    down = SearchingBlock(4, 6, stride=2, expansion=1, tokens=2, token_size=4)
    same = SearchingBlock(4, 4, expansion=2, tokens=2, token_size=4)
    assert down(x).shape == (1, 6, 5, 5) and not down.residual
    assert same(x).shape == (1, 4, 9, 10) and same.residual
    assert same.units() == {"k3": 8, "k5": 8, "k7": 8, "tokens": 2}


@pytest.mark.parametrize(
    ("task", "options", "shape"),
    [
        ("seg", {"num_classes": 3}, (2, 3, 32, 40)),
        ("depth", {}, (2, 1, 32, 40)),
        ("sr", {"scale": 2}, (2, 3, 64, 80)),
        ("cls", {"num_classes": 4}, (2, 4)),
    ],
)
def test_supernet_outputs_follow_task_conventions(task, options, shape):
    model = HRSupernet(TINY, task, **options).eval()
    out = model(torch.rand(2, 3, 32, 40))
    assert out.shape == shape
    if task == "depth":
        assert bool((out > 0).all())
    names = [name for name, _ in model.blocks()]
    assert len(names) == len(set(names)) == 14 + 15  # parallel blocks + fusion paths


def test_extracted_network_equals_masked_supernet_and_exports(tmp_path):
    """The oracle: pruning by masks and pruning physically give the same outputs."""
    from edgenas.export import export_onnx, run_onnxruntime

    torch.manual_seed(0)
    model = HRSupernet(TINY, "seg", num_classes=3)
    _randomise(model)
    blocks = dict(model.blocks())
    with torch.no_grad():  # one residual block loses everything, one reduction block too
        for name in ("p1.b0.0", "f1.r12"):
            for k in blocks[name].kernels:
                blocks[name].channel_importance(k).zero_()
            if blocks[name].transformer is not None:
                blocks[name].transformer.importance.zero_()
    model.eval()
    x = torch.randn(2, 3, 32, 40)
    selection = select_units(model, 0.1)
    apply_masks(model, selection)
    masked = model(x)
    static = extract(model, 0.1)
    static_blocks = dict(static.blocks())
    assert static_blocks["p1.b0.0"].empty  # residual block became the identity
    assert sum(static_blocks["f1.r12"].units().values()) == 1  # reduction keeps its best unit
    assert all(b.channel_mask is None for b in static_blocks.values())
    torch.testing.assert_close(static(x), masked, rtol=1e-4, atol=1e-4)
    assert count_hrnas_macs(static, (1, 3, 32, 40)) < count_hrnas_macs(model, (1, 3, 32, 40))

    report = export_onnx(static, (1, 3, 32, 40), tmp_path / "hr.onnx")
    onnx_out = run_onnxruntime(tmp_path / "hr.onnx", x[:1].numpy())
    torch.testing.assert_close(torch.from_numpy(onnx_out), masked[:1], rtol=1e-3, atol=1e-3)
    assert report.max_rel_err < 1e-3


@pytest.mark.slow  # suite time: see docs/testing.md
def test_extracted_network_round_trips_a_checkpoint_spec_and_exports_at_any_size(tmp_path):
    """best.pt names an extracted network by its architecture; the rebuilt network takes
    the weights, and its ONNX file has dynamic height and width (verified at two sizes
    by export_onnx, and here at a third, odd size)."""
    from edgenas.checkpoint import build_from_spec, describe_spec, model_spec
    from edgenas.export import export_onnx, run_onnxruntime
    from edgenas.hrnas.arch import build_architecture

    torch.manual_seed(0)
    model = HRSupernet(TINY, "seg", num_classes=3)
    _randomise(model)
    static = extract(model.eval(), 0.1)
    spec = model_spec(static)
    assert spec["hrnas_arch"] == architecture(static).encode() and spec["task"] == "segmentation"
    assert describe_spec(spec) == f"HR-NAS {spec['hrnas_arch']}"
    rebuilt = build_from_spec(spec)
    rebuilt.load_state_dict(static.state_dict())  # same structure, parameter for parameter
    rebuilt.eval()
    x = torch.randn(2, 3, 45, 59)
    torch.testing.assert_close(rebuilt(x), static(x))

    report = export_onnx(rebuilt, (1, 3, 32, 40), tmp_path / "any.onnx", dynamic=True)
    assert report.dynamic and report.max_rel_err < 1e-3
    onnx_out = torch.from_numpy(run_onnxruntime(tmp_path / "any.onnx", x.numpy()))
    torch.testing.assert_close(onnx_out, static(x), rtol=1e-3, atol=1e-3)

    with pytest.raises(ValueError, match="supernet"):  # units of another supernet
        build_architecture(spec["hrnas_arch"], SupernetConfig(), "seg", num_classes=3)
    head, body = spec["hrnas_arch"].split("):")
    too_many = head + "):" + ",".join(["99/0/0/0", *body.split(",")[1:]])
    with pytest.raises(ValueError, match="keeps 99"):
        build_architecture(too_many, TINY, "seg", num_classes=3)


def test_flops_cost_is_the_exact_mac_saving_of_one_unit():
    model = HRSupernet(TINY, "seg", num_classes=3)
    shape = (1, 3, 32, 40)
    costs = flops_costs(model, shape)
    base = count_hrnas_macs(model, shape)
    for name in ("p0.b0.0", "f0.r01", "f3.u32", "p4.b3.0"):
        for kind in ("k3", "k7", "tokens"):
            if dict(model.blocks())[name].units()[kind] == 0:
                continue
            selection = select_units(model, -1.0)  # keep everything ...
            selection[name][kind] = selection[name][kind][1:]  # ... but one unit
            smaller = copy.deepcopy(model)
            shrink_model(smaller, selection)
            assert base - count_hrnas_macs(smaller, shape) == costs[name][kind], (name, kind)


def test_surgery_slices_adam_state_with_the_weights():
    torch.manual_seed(0)
    block = SearchingBlock(4, 4, expansion=1, tokens=3, token_size=4)
    opt = torch.optim.Adam(block.parameters(), lr=1e-3)
    for _ in range(2):
        opt.zero_grad()
        block(torch.randn(2, 4, 8, 8)).square().mean().backward()
        opt.step()
    dw = block.dw["k5"][0].weight
    project = block.project[0].weight
    old_dw = opt.state[dw]["exp_avg"].clone()
    old_project = opt.state[project]["exp_avg_sq"].clone()
    old_queries = opt.state[block.transformer.queries]["exp_avg"].clone()
    keep = {
        "k3": torch.tensor([0, 1, 2, 3]),
        "k5": torch.tensor([1, 3]),
        "k7": torch.tensor([], dtype=torch.long),
        "tokens": torch.tensor([2]),
    }
    surgery = Surgery()
    block.keep_units(keep, surgery)
    new = surgery.transfer(opt, block)
    assert "k7" not in block.dw and block.splits == {3: 4, 5: 2, 7: 0}
    torch.testing.assert_close(new.state[block.dw["k5"][0].weight]["exp_avg"], old_dw[[1, 3]])
    # project lost input channels 4 + {0, 2} and 8..11 (the 7x7 part)
    torch.testing.assert_close(
        new.state[block.project[0].weight]["exp_avg_sq"], old_project[:, [0, 1, 2, 3, 5, 7]]
    )
    torch.testing.assert_close(new.state[block.transformer.queries]["exp_avg"], old_queries[[2]])
    new.zero_grad()
    block(torch.randn(2, 4, 8, 8)).square().mean().backward()
    new.step()  # training goes on with the sliced state


def test_architecture_string_round_trips_units():
    model = HRSupernet(TINY, "seg", num_classes=3)
    arch = architecture(model)
    text = arch.encode()
    assert text.startswith("hrnas(w4-6-8-8,b1-2-3-4-4,d1,r1,t3,ft2,s4,h1):")
    assert decode_units(text) == [(b.k3, b.k5, b.k7, b.tokens) for b in arch.blocks]
    with pytest.raises(ValueError):
        decode_units(text + ",1/2/x/4")


def test_batchnorm_recalibration_averages_batch_statistics():
    bn = nn.BatchNorm2d(3)
    model = nn.Sequential(bn)
    batches = [torch.randn(4, 3, 5, 5) * (i + 1) + i for i in range(3)]
    recalibrate_batchnorm(model, batches)
    expected = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    torch.testing.assert_close(bn.running_mean, expected)
    assert bn.momentum == 0.1


def test_alignment_keeps_the_most_important_channels_in_multiples():
    torch.manual_seed(0)
    model = HRSupernet(SupernetConfig(widths=(8, 8), branches=(1, 2), tokens=0), "seg")
    _randomise(model, dead=0.0)
    plain = select_units(model, 0.5)
    aligned = select_units(model, 0.5, align=8)
    for name, block in model.blocks():
        for k in block.kernels:
            alpha = block.channel_importance(k).detach().abs()
            kept = aligned[name][f"k{k}"]
            assert len(kept) % 8 == 0 or len(kept) == block.splits[k]
            assert set(plain[name][f"k{k}"].tolist()) <= set(kept.tolist())
            dropped = sorted(set(range(block.splits[k])) - set(kept.tolist()))
            if dropped and len(kept):
                assert float(alpha[dropped].max()) <= float(alpha[kept].min())
    model.eval()
    apply_masks(model, aligned)
    x = torch.randn(1, 3, 32, 40)
    torch.testing.assert_close(extract(model, 0.5, align=8)(x), model(x), rtol=1e-4, atol=1e-4)


def _concat_mix(mix: BranchMix, feats: list[torch.Tensor]) -> torch.Tensor:
    """The mix as the paper describes it: every branch resized to the first one's size,
    concatenated, then 1x1 conv + BN + ReLU at that size."""
    size = feats[0].shape[-2:]
    resized = [feats[0]] + [
        nn.functional.interpolate(f, size=size, mode="bilinear", align_corners=False)
        for f in feats[1:]
    ]
    return mix.relu(mix.bn(mix.conv(torch.cat(resized, dim=1))))


class _ConcatMix(nn.Module):
    def __init__(self, mix: BranchMix) -> None:
        super().__init__()
        self.conv, self.bn, self.relu = mix.conv, mix.bn, mix.relu

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return _concat_mix(self, feats)


@pytest.mark.parametrize("widths", [(4,), (4, 6), (4, 6, 8)])
@pytest.mark.parametrize("training", [True, False])
def test_branch_mix_is_the_concatenated_mix_computed_per_branch(widths, training):
    torch.manual_seed(0)
    mix = BranchMix(list(widths), 5)
    _randomise(mix)
    # the stride-2 branches of a 45x60 map: heights 45 / 23 / 12 are no exact factor 2
    sizes = [(45, 60), (23, 30), (12, 15)][: len(widths)]
    feats = [torch.randn(2, c, h, w) for c, (h, w) in zip(widths, sizes, strict=True)]
    mix.train(training)
    reference = copy.deepcopy(mix)
    out = mix(feats)
    expected = _concat_mix(reference, feats)
    assert out.shape == expected.shape == (2, 5, 45, 60)
    assert torch.allclose(out, expected, atol=1e-5, rtol=1e-4)
    if training:  # the BN statistics move exactly as they would after the concatenation
        assert torch.allclose(mix.bn.running_mean, reference.bn.running_mean, atol=1e-6)
        assert torch.allclose(mix.bn.running_var, reference.bn.running_var, atol=1e-5)
    assert [k for k in mix.state_dict() if not k.endswith("num_batches_tracked")] == [
        "0.weight",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
    ]  # conv_bn's keys: checkpoints written before BranchMix load unchanged
    mix.load_state_dict(conv_bn(sum(widths), 5, 1).state_dict())  # strict: keys and shapes


def test_branch_mix_macs_count_each_branch_at_its_own_resolution():
    model = HRSupernet(TINY, "seg", num_classes=3)
    shape = (1, 3, 64, 80)
    # the branches reach the mix at 1/4 .. 1/32: 16x20, 8x10, 4x5, 2x3
    sizes = [(16, 20), (8, 10), (4, 5), (2, 3)]
    per_branch = sum(c * h * w for c, (h, w) in zip(TINY.widths, sizes, strict=True))
    concatenated = sum(TINY.widths) * 16 * 20
    old = copy.deepcopy(model)
    old.mix = _ConcatMix(old.mix)
    saving = (concatenated - per_branch) * TINY.head_channels
    assert count_hrnas_macs(old, shape) - count_hrnas_macs(model, shape) == saving
