"""The paper's super-resolution layout (LDP Sec. 3.3): ``S<n>U:`` genotypes whose searched
upsample block ``up1`` sits between the decoder and the refine block ``ref0``, which runs
at the output resolution; and the head layout (``S<n>:``) left exactly as it was."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from edgenas.models.builder import build_model
from edgenas.models.complexity import count_params
from edgenas.search.config import SearchConfig, preset_config
from edgenas.space import LDPSpace
from edgenas.space.genotype import (
    BlockSpec,
    Genotype,
    block_roles,
    blocks_for_scales,
    decode,
    role_area,
    role_scale,
)
from edgenas.tasks.defaults import DENSE_GENOTYPE, SEG_GENOTYPE, SR_GENOTYPE, SR_PAPER_GENOTYPE

BLOCK = "conv_k3_se0_res_c8_n1"
SMALL_PAPER = "S2U:" + "-".join([BLOCK] * 13)
SR_SPACE = {"scales": (2, 3), "channels": (8, 16, 24, 32), "ops": ("conv", "ds", "ib")}


def _paper(scales: int = 2, block: str = BLOCK, **at: str) -> str:
    """An ``S<scales>U:`` string of ``block`` everywhere, ``at={role: other}`` excepted."""
    roles = block_roles(scales, "paper")
    return f"S{scales}U:" + "-".join(at.get(role, block) for role in roles)


# ---------------------------------------------------------------- string form


def test_roles_put_up1_between_the_decoder_and_ref0_at_scale_zero():
    roles = block_roles(2, "paper")
    assert roles == (
        "enc1a", "enc1b", "down2", "enc2a", "enc2b", "dec2a", "dec2b", "ref2", "up2",
        "dec1a", "dec1b", "up1", "ref0",
    )  # fmt: skip
    for scales in (1, 2, 3, 4, 5):
        assert blocks_for_scales(scales, "paper") == blocks_for_scales(scales) + 1
        head, paper = block_roles(scales), block_roles(scales, "paper")
        assert paper[: len(head) - 1] == head[:-1]  # all but ref1 are shared, in order
        assert head[-1] == "ref1" and paper[-2:] == ("up1", "ref0")
    assert role_scale("up1") == role_scale("ref0") == 0
    assert [role_area("ref0", s) for s in (2, 3, 4)] == [4.0, 9.0, 16.0]
    assert role_area("ref1") == 1.0 and role_area("up2") == 1.0 and role_area("down3") == 1 / 16


def test_paper_strings_round_trip_and_keep_their_layout():
    space = LDPSpace(layout="paper")
    for genotype in space.sample_unique(60, seed=2):
        text = genotype.encode()
        assert text.startswith(f"S{genotype.scales}U:")
        assert decode(text) == genotype and decode(text).encode() == text
        assert decode(text).layout == "paper"
    assert decode(SMALL_PAPER).roles[-2:] == ("up1", "ref0")
    # the same blocks in the two layouts are different genotypes with different strings
    blocks = decode(SMALL_PAPER).blocks
    head = Genotype(2, blocks[:-1])
    assert head != decode(SMALL_PAPER) and head.encode() != SMALL_PAPER


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("S2U:" + "-".join([BLOCK] * 12), ("S2U needs 13 blocks, got 12", "write S2:")),
        ("S2:" + "-".join([BLOCK] * 13), ("S2 needs 12 blocks, got 13", "write S2U:")),
        ("S2U:" + "-".join([BLOCK] * 14), ("S2U needs 13 blocks, got 14",)),
        ("S2u:" + "-".join([BLOCK] * 13), ("'S2u'", "S<scales>U")),
        ("SU2:" + "-".join([BLOCK] * 13), ("'SU2'",)),
        ("S2UU:" + "-".join([BLOCK] * 13), ("'S2UU'",)),
        ("S0U:" + BLOCK, ("'S0U'", ">= 1")),
        (_paper(up1="conv_k4_se0_res_c8_n1"), ("block 11 (up1)", "kernel")),
        (_paper(ref0="ib_k3_se0_res_c8_n1"), ("block 12 (ref0)", "'ib'")),
    ],
)
def test_bad_paper_strings_name_the_problem(text, named):
    with pytest.raises(ValueError) as info:
        decode(text)
    for fragment in named:
        assert fragment in str(info.value)


def test_a_genotype_checks_its_layout_and_block_count():
    blocks = decode(SMALL_PAPER).blocks
    with pytest.raises(ValueError, match="unknown genotype layout 'pyramid'"):
        Genotype(2, blocks, "pyramid")
    with pytest.raises(ValueError, match="paper-layout genotype has 13 blocks, got 12"):
        Genotype(2, blocks[:-1], "paper")
    child = decode(SMALL_PAPER).replace_block(11, BlockSpec.decode("ds_k5_se0_res_c16_n2"))
    assert child.layout == "paper" and child.encode().startswith("S2U:")


# ------------------------------------------------------- old strings unchanged


def test_head_layout_genotypes_build_exactly_todays_networks():
    """Parameter counts, state-dict keys and the space's samples, mutations and budgets
    as the code before the paper layout gave them (old runs resume, old checkpoints load)."""
    sr = decode(SR_GENOTYPE)
    assert sr.layout == "head" and sr.encode() == SR_GENOTYPE
    assert sr == Genotype(2, sr.blocks)  # the default layout: same value, same hash
    expected = {
        ("sr", 2, "pixelshuffle"): 32_540,
        ("sr", 3, "pixelshuffle"): 34_715,
        ("sr", 4, "pixelshuffle"): 37_760,
        ("sr", 3, "deconv"): 31_235,
    }
    for (task, scale, upsampler), params in expected.items():
        model = build_model(SR_GENOTYPE, task, scale=scale, upsampler=upsampler)
        assert count_params(model) == params
    # The dense default was built of ds blocks before sep: that network is unchanged.
    dense_ds = DENSE_GENOTYPE.replace("sep_", "ds_")
    assert count_params(build_model(dense_ds, "depth")) == 67_409
    assert count_params(build_model(dense_ds, "seg")) == 67_451
    assert count_params(build_model(DENSE_GENOTYPE, "depth")) == 65_137
    assert count_params(build_model(SEG_GENOTYPE, "seg", num_classes=11)) == 37_131

    def digest(lines) -> str:
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]

    assert digest(g.encode() for g in LDPSpace().sample_unique(20, seed=0)) == "c4bb42de461b4db9"
    space = LDPSpace(scales=(2, 3), channels=(8, 16, 24, 32), ops=("conv", "ds", "ib"), se=(0,))
    pool = space.sample_unique(20, seed=3)
    rng = random.Random(5)
    assert digest(space.mutate(g, rng).encode() for g in pool) == "1904b1596e3bb8f5"
    assert [LDPSpace.compute_units(g) for g in pool[:3]] == [4890.0, 6870.0, 4398.0]
    assert [space.budget(2), space.budget(3)] == [9000.0, 9750.0]
    keys = build_model(pool[0], "sr", scale=3).state_dict()
    assert digest(keys) == "35dc58f497105248"


# ----------------------------------------------------------------- the network


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_paper_network_outputs_scale_times_odd_inputs_and_is_bilinear_untrained(scale):
    model = build_model(SMALL_PAPER, "sr", scale=scale)
    assert model.options == {"scale": scale}  # no upsampler: up1 upsamples
    image = torch.rand(2, 3, 13, 7)
    bilinear = F.interpolate(image, scale_factor=scale, mode="bilinear", align_corners=False)
    for mode in (model.train, model.eval):
        out = mode()(image)
        assert out.shape == (2, 3, 13 * scale, 7 * scale)
        assert torch.equal(out, bilinear)  # zero-initialised projection: exactly bilinear
    # up1 and ref0 run at the output resolution, the rest at the LR resolution
    seen = {}
    hooks = [
        module.register_forward_hook(lambda _m, _i, out, role=role: seen.update({role: out.shape}))
        for role, module in model.backbone.blocks.items()
    ]
    with torch.no_grad():
        model(image)
    for hook in hooks:
        hook.remove()
    assert seen["up1"][-2:] == seen["ref0"][-2:] == (13 * scale, 7 * scale)
    assert seen["dec1b"][-2:] == (13, 7) and seen["ref2"][-2:] == (7, 4)


def test_paper_network_learns_through_the_hr_blocks():
    """One step moves the zero-initialised projection; after it every HR parameter
    receives a gradient (the untrained projection blocks it only at the very start)."""
    torch.manual_seed(0)
    model = build_model(SMALL_PAPER, "sr", scale=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    image, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    for _ in range(2):
        optimizer.zero_grad()
        F.l1_loss(model(image), target).backward()
        optimizer.step()
    for role in ("up1", "ref0"):
        grads = [p.grad for p in model.backbone.blocks[role].parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), role


def test_paper_genotypes_build_for_sr_only_and_take_no_upsampler():
    with pytest.raises(ValueError, match=r"S2U: genotypes .* build for task sr only"):
        build_model(SMALL_PAPER, "depth")
    with pytest.raises(ValueError, match="takes no upsampler"):
        build_model(SMALL_PAPER, "sr", upsampler="deconv")


def test_the_default_and_its_paper_equivalent_share_eleven_blocks():
    head, paper = decode(SR_GENOTYPE), decode(SR_PAPER_GENOTYPE)
    assert paper.layout == "paper" and paper.blocks[:11] == head.blocks[:11]
    assert paper.blocks[11:] == (head.blocks[11], head.blocks[11])  # ref1 -> up1 + ref0


# --------------------------------------------------------- space and budget


def test_hr_blocks_weigh_the_sr_factor_squared():
    genotype = decode(_paper(up1="conv_k5_se0_res_c16_n2"))
    low = sum(
        b.layers * b.kernel**2 * b.channels * role_area(r)
        for r, b in zip(genotype.roles[:-2], genotype.blocks[:-2], strict=True)
    )
    hr = 2 * 25 * 16 + 1 * 9 * 8  # up1 and ref0
    for scale in (2, 3, 4):
        assert LDPSpace.compute_units(genotype, scale) == low + hr * scale * scale
        space = LDPSpace(layout="paper", upscale=scale)
        assert space.units(genotype) == low + hr * scale * scale
    # the budget's reference network is of the same layout, HR blocks weighed alike
    kernel, width, layers = 5, 32, 2
    for scale in (2, 4):
        space = LDPSpace(layout="paper", upscale=scale)
        roles = block_roles(3, "paper")
        reference = sum(layers * kernel**2 * width * role_area(r, scale) for r in roles)
        assert space.budget(3) == reference


@pytest.mark.parametrize("scale", [2, 4])
def test_sampling_and_both_mutations_stay_in_the_layout_and_budget(scale):
    space = LDPSpace(**SR_SPACE, layout="paper", upscale=scale)
    rng = random.Random(scale)
    pool = space.sample_unique(25, seed=scale)
    for genotype in pool:
        assert genotype.layout == "paper"
        assert len(genotype.blocks) == blocks_for_scales(genotype.scales, "paper")
        assert space.units(genotype) <= space.budget(genotype.scales)
        for child in (
            space.mutate_swap(genotype, rng),
            space.mutate_replace(genotype, rng),
            space.mutate(genotype, rng),
        ):
            if child is None:  # a swap may find no compatible pair; mutate() never fails
                continue
            assert child.layout == "paper" and child != genotype
            assert space.is_valid(child), space.problems(child)


def test_a_space_holds_one_layout():
    paper, head = LDPSpace(layout="paper"), LDPSpace()
    assert paper.problems(decode(SR_GENOTYPE)) == [
        "S2: is the head layout; this space holds paper-layout genotypes"
    ]
    assert "S2U: is the paper layout" in head.problems(decode(SMALL_PAPER))[0]
    assert paper.is_valid(decode(SMALL_PAPER))
    with pytest.raises(ValueError, match="unknown layout"):
        LDPSpace(layout="sideways")
    with pytest.raises(ValueError, match="upscale must be one of 2, 3, 4"):
        LDPSpace(layout="paper", upscale=5)


# ------------------------------------------------------------- export, latency


def test_export_and_onnxruntime_agree_on_a_paper_network(tmp_path):
    import onnxruntime as ort

    from edgenas.export import export_onnx

    torch.manual_seed(0)
    model = build_model(_paper(up1="ds_k5_se0_nores_c16_n1"), "sr", scale=3).eval()
    # a trained-looking network: the projection no longer zero, so its path counts
    torch.nn.init.normal_(model.head.project.weight, 0, 0.05)
    path = tmp_path / "sr.onnx"
    report = export_onnx(model, (1, 3, 11, 9), path, dynamic=True)
    assert path.exists() and report.max_rel_err < 1e-3
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = torch.rand(2, 3, 17, 14)
    (out,) = session.run(None, {session.get_inputs()[0].name: image.numpy()})
    with torch.no_grad():
        expected = model(image).numpy()
    assert out.shape == (2, 3, 51, 42)
    assert np.abs(out - expected).max() <= 1e-3 * np.abs(expected).max()


def test_latency_parts_see_the_hr_blocks_at_the_output_resolution():
    from edgenas.latency_table import network_parts

    model = build_model(SMALL_PAPER, "sr", scale=3)
    keys = network_parts(model, (1, 3, 20, 16)).keys
    assert f"up|{BLOCK}|8x20x16>60x48" in keys
    assert f"block|{BLOCK}|8x60x48|s1" in keys  # ref0
    assert keys[-1] == 'head|sr|{"scale":3}|8x60x48|3x20x16'


def test_memory_estimate_weighs_hr_blocks_at_the_largest_factor():
    from edgenas.network_memory import activation_bytes_per_pixel
    from edgenas.parsing import BYTES_PER_PIXEL

    per_channel = BYTES_PER_PIXEL // 64
    wide = decode(_paper(ref0="conv_k3_se0_res_c64_n1"))  # 64 channels on 16x the pixels
    assert activation_bytes_per_pixel(wide) == per_channel * 64 * 16
    head = decode("S2:" + "-".join([*[BLOCK] * 11, "conv_k3_se0_res_c64_n1"]))  # ref1
    assert activation_bytes_per_pixel(head) == per_channel * 64


def test_the_tui_compares_paper_genotypes_block_by_block():
    from edgenas.tui.genotypes import changes, parse

    parsed = parse(SMALL_PAPER)
    assert parsed is not None and parsed.names[-2:] == ("up1", "ref0")
    diff = changes(_paper(up1="ds_k3_se0_res_c8_n1"), SMALL_PAPER)
    assert [c.text() for c in diff] == ["up1:ds"]
    assert changes(SR_GENOTYPE, SR_PAPER_GENOTYPE) is None  # other layouts: no diff


def test_space_commands_sample_and_describe_the_paper_layout():
    from cli_helpers import run_cli

    sampled = run_cli("space", "sample", "--n", "3", "--task", "sr", "--sr-layout", "paper")
    assert sampled.returncode == 0, sampled.stderr
    lines = sampled.stdout.split()
    assert len(lines) == 3 and all(decode(line).layout == "paper" for line in lines)
    described = run_cli("space", "describe", SMALL_PAPER, "--scale", "3")  # task: sr
    assert described.returncode == 0, described.stderr
    out = described.stdout
    assert "SR upsample layout" in out and "HR blocks weigh 3^2 = 9" in out
    assert "x3 sr head" in out and out.count(" HR ") == 2  # up1 and ref0


# ----------------------------------------------------------- search config


def test_search_config_layouts_resolve_and_round_trip_through_the_store(tmp_path):
    from edgenas.store import RunStore

    config = SearchConfig(task="sr", scale=3, sr_layout="paper", run_name="paper-sr")
    config.validate()
    space = config.space()
    assert (space.layout, space.upscale) == ("paper", 3)
    assert config.start_genotypes == (SR_PAPER_GENOTYPE,)  # the warm start lies in it
    assert space.is_valid(decode(SR_PAPER_GENOTYPE))
    store = RunStore.create(tmp_path / "run", name="paper-sr", kind="ldp-search",
                            config=config.to_dict())  # fmt: skip
    store.close()
    reopened = RunStore.open(tmp_path / "run")
    try:
        resumed = SearchConfig.from_dict(reopened.run_info().config)
    finally:
        reopened.close()
    assert resumed == config and resumed.space() == space


def test_search_layout_defaults():
    default = SearchConfig(task="sr")
    assert default.sr_layout == "head" and default.start_genotypes == (SR_GENOTYPE,)
    assert default.space().layout == "head"
    assert preset_config("paper", task="sr").sr_layout == "paper"
    assert preset_config("paper", task="sr").space().layout == "paper"
    assert preset_config("paper", task="sr", sr_layout="head").sr_layout == "head"
    assert SearchConfig(task="seg").sr_layout is None
    assert SearchConfig(task="seg").space().layout == "head"
    # stored before the choice existed: an SR search searched the head layout
    old = SearchConfig(task="sr", sr_layout="paper").to_dict()
    del old["sr_layout"]
    assert SearchConfig.from_dict(old).sr_layout == "head"
    old = SearchConfig(task="depth").to_dict()
    del old["sr_layout"]
    assert SearchConfig.from_dict(old).sr_layout is None


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"task": "depth", "sr_layout": "paper"}, "--sr-layout applies to --task sr only"),
        ({"task": "sr", "sr_layout": "sideways"}, "--sr-layout must be head or paper"),
        (
            {"task": "sr", "sr_layout": "paper", "start_genotypes": (SR_GENOTYPE,)},
            "use --sr-layout head",
        ),
        ({"task": "sr", "start_genotypes": (SR_PAPER_GENOTYPE,)}, "use --sr-layout paper"),
        ({"task": "depth", "start_genotypes": (SMALL_PAPER,)}, "an S<scales>: genotype"),
    ],
)
def test_search_config_refuses_layout_mistakes(values, says):
    with pytest.raises(ValueError, match=None) as info:
        SearchConfig(**values).validate()
    assert says in str(info.value)
