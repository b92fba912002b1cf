"""The lightweight transformer's projector order and the MAC formulas, checked against
torch's own FLOP counter (``torch.utils.flop_counter.FlopCounterMode``: 2 FLOPs per
multiply-accumulate of convolutions, linear layers and matrix products)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from edgenas.hrnas.costs import count_hrnas_macs, flops_costs
from edgenas.hrnas.supernet import HRSupernet, SupernetConfig
from edgenas.hrnas.transformer import LightTransformer, marginal_token_macs, transformer_macs

# (in channels, out channels, tokens, input H x W, token size s, heads)
CONFIGS = [
    (5, 7, 3, (10, 12), 4, 1),
    (16, 16, 8, (24, 40), 8, 2),  # a high-resolution branch: H x W much larger than s x s
    (8, 12, 1, (3, 5), 4, 1),  # smaller than s x s: the resize enlarges
]


def _torch_flops(module, *args) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*args)
    return counter.get_total_flops()


def test_projector_resizes_to_s_by_s_before_its_1x1_convolution():
    """The official order: the 1x1 conv sees the (C + 2) x s x s map, whatever H x W."""
    tf = LightTransformer(6, 6, 4, size=4).eval()
    seen = []
    tf.proj_conv.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].shape))
    with torch.no_grad():
        tf(torch.rand(2, 6, 24, 40), (24, 40))
    assert seen == [torch.Size([2, 8, 4, 4])]


def test_a_network_stored_before_the_switch_keeps_its_projector_order():
    """A config dict without ``projector`` (every run and checkpoint made before the
    official order) rebuilds a conv-first network, which computes a different function
    (the positional map differs), so old weights give the outputs they were trained
    and reported with; new configs store the official order."""
    config = SupernetConfig(widths=(4, 8), branches=(1, 2), tokens=2, token_size=4)
    stored = config.to_dict()
    assert stored["projector"] == "resize-first"
    assert SupernetConfig.from_dict(stored) == config
    old = {k: v for k, v in stored.items() if k != "projector"}
    assert SupernetConfig.from_dict(old).projector == "conv-first"

    torch.manual_seed(0)
    new_net = HRSupernet(config, "seg", num_classes=3).eval()
    old_net = HRSupernet(SupernetConfig.from_dict(old), "seg", num_classes=3).eval()
    old_net.load_state_dict(new_net.state_dict())
    transformers = [m for m in old_net.modules() if isinstance(m, LightTransformer)]
    assert transformers and not any(m.resize_first for m in transformers)
    seen = []
    transformers[0].proj_conv.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    x = torch.rand(1, 3, 64, 80)
    with torch.no_grad():
        assert not torch.allclose(new_net(x), old_net(x), atol=1e-4)
    assert seen[0][-2:] != (4, 4)  # convolved at the branch's own resolution


@pytest.mark.parametrize(("c", "c_out", "n", "hw", "s", "heads"), CONFIGS)
def test_transformer_macs_match_torch_flop_counter(c, c_out, n, hw, s, heads):
    torch.manual_seed(0)
    tf = LightTransformer(c, c_out, n, size=s, heads=heads).eval()
    macs = transformer_macs(c, c_out, n, hw, size=s)
    assert _torch_flops(tf, torch.rand(1, c, *hw), hw) == 2 * macs
    # Eq. 6's token cost: the saving of removing one token is what torch counts less.
    fewer = LightTransformer(c, c_out, n + 1, size=s, heads=heads).eval()
    saved = _torch_flops(fewer, torch.rand(1, c, *hw), hw) - 2 * macs
    assert saved == 2 * marginal_token_macs(c, c_out, n + 1, hw, size=s)
    # The projector costs (C + 2) s^2 per token at any input size: no H x W term.
    assert transformer_macs(c, c_out, n, (4 * hw[0], 4 * hw[1]), size=s) == macs


def test_network_macs_and_unit_costs_match_torch_flop_counter():
    """count_hrnas_macs of a small supernet with transformers in its fusion blocks too,
    and every unit kind's cost in flops_costs, against torch's count."""
    config = SupernetConfig(
        widths=(4, 8), branches=(1, 2), tokens=2, fusion_tokens=2, token_size=4, head_channels=8
    )
    torch.manual_seed(0)
    model = HRSupernet(config, "seg", num_classes=3).eval()
    shape = (1, 3, 32, 40)
    assert _torch_flops(model, torch.zeros(shape)) == 2 * count_hrnas_macs(model, shape)
    costs = flops_costs(model, shape)
    name, block = next((n, b) for n, b in model.blocks() if b.transformer is not None)
    before = _torch_flops(model, torch.zeros(shape))
    keep = torch.arange(1, block.transformer.tokens)  # drop token 0
    from edgenas.hrnas.surgery import Surgery

    block.transformer.keep_tokens(keep, Surgery())
    assert before - _torch_flops(model, torch.zeros(shape)) == 2 * costs[name]["tokens"]


def _mac_law_table(ms_per_mac: float = 1e-7, offset_ms: float = 0.0):
    """A kernel-calibrated table whose every kernel takes ``ms_per_mac`` per MAC plus
    a constant: the law a kernel model fits exactly (synthetic samples, no timing)."""
    from edgenas.devices.kernels import FEATURE_NAMES, NetworkRecord
    from edgenas.devices.predictor import LatencyTable

    macs_index, in_index = FEATURE_NAMES.index("macs"), FEATURE_NAMES.index("in_elems")
    samples = []
    for macs in (1e4, 3e4, 1e5, 3e5, 1e6, 3e6):
        for moved in (1e2, 1e4, 1e6):  # varied, so that the fit can tell it costs nothing
            features = [1.0] * len(FEATURE_NAMES)
            features[macs_index], features[in_index] = macs, moved
            samples.append(["Conv", features, ms_per_mac * macs + 1e-3])
    from edgenas.devices.kernels import KernelOverhead

    record = NetworkRecord("synthetic", measured_ms=1.0, kernels_ms=1.0, kernels=18)
    overhead = KernelOverhead(scale=1.0, offset_ms=offset_ms)
    return LatencyTable(
        "cpu", 1, kernel_samples=samples, kernel_records=[record], kernel_overhead=overhead
    )


def test_kernel_model_slopes_come_from_the_kernel_model_and_time_nothing():
    """`--latency-model kernels`: each branch is exported at its real shape and
    onnxruntime lists the kernels it would run; their times come from the device's
    kernel model, so nothing is timed, a model twice as slow gives slopes twice as
    large, and a wider depthwise kernel costs more per channel."""
    from edgenas.hrnas.costs import LatencyCoster
    from edgenas.latency_table import Measurer

    # Widths of 32 and 64 channels per kernel: multiples of the runtime's blocked layout
    # (onnxruntime runs narrower convolutions padded to its block, 8 or 16 channels by
    # instruction set, which the kernels show and MACs do not).
    config = SupernetConfig(
        widths=(32, 64), branches=(1, 2), tokens=0, expansion=1.0, head_channels=8
    )
    torch.manual_seed(0)
    model = HRSupernet(config, "seg", num_classes=3).eval()
    shape = (1, 3, 32, 40)

    def slopes(ms_per_mac, offset_ms=0.0):
        measurer = Measurer("cpu", threads=1, table=_mac_law_table(ms_per_mac, offset_ms))
        try:
            assert measurer.uses_kernels
            costs = LatencyCoster(measurer, shape, model="kernels").costs(model)
            assert measurer.table.entries == {} and measurer.measured_parts == 0
            return costs
        finally:
            measurer.close()

    slow, fast = slopes(2e-7), slopes(1e-7)
    pairs = [(slow[b][k], fast[b][k]) for b in fast for k in ("k3", "k5", "k7")]
    assert len(pairs) >= 9 and all(f > 0 for _, f in pairs)
    assert [s / f for s, f in pairs] == pytest.approx([2.0] * len(pairs), rel=1e-6)
    assert all(fast[b]["k7"] > fast[b]["k3"] for b in fast)
    # At aligned widths the kernels are the branch's convolutions (plus a few layout
    # reorders): each slope is the law's factor times the unit's exact MAC saving.
    macs = flops_costs(model, shape)
    ratios = [fast[b][k] / macs[b][k] for b in fast for k in ("k3", "k5", "k7")]
    assert ratios == pytest.approx([1e-7] * len(ratios), rel=0.2)
    # A network pays the overhead law's offset once: it is no part's, nor in a slope.
    offset = slopes(1e-7, offset_ms=5.0)
    flat = [(offset[b][k], fast[b][k]) for b in fast for k in ("k3", "k5", "k7")]
    assert [o for o, _ in flat] == pytest.approx([f for _, f in flat], rel=1e-6)


def test_a_session_with_the_kernel_model_stores_it_and_shrinks_by_it(tmp_path, monkeypatch):
    """`latency_model="kernels"` reaches the coster, and survives the stored settings
    (what --resume reads)."""
    from edgenas.hrnas.session import ShrinkSession

    monkeypatch.setenv("EDGENAS_CACHE_DIR", str(tmp_path))
    _mac_law_table().save()  # the device's table, in this test's cache
    session = ShrinkSession(
        task="seg", cost="latency", latency_model="kernels", threads=1, run_dir=tmp_path / "r"
    )
    again = ShrinkSession.from_settings(session.settings(), tmp_path / "r")
    assert again.latency_model == "kernels"
    measurer = again._measurer()
    try:
        cost_fn, _measure, _blocks = again._cost_functions(measurer, (1, 3, 32, 40))
        assert cost_fn.__self__.model == "kernels"
    finally:
        measurer.close()


def test_report_names_where_the_latency_slopes_came_from():
    from edgenas.hrnas.report import penalty_text

    config = {"cost": "latency", "device": "cpu", "input": [32, 40], "lambda": 0.002}
    assert "measured on cpu" in penalty_text(config)
    assert "kernel model" in penalty_text({**config, "latency_model": "kernels"})
    assert "MACs" in penalty_text({**config, "cost": "flops"})
