"""Latency lookup table: parts at real shapes, calibration, lazy growth, metrics."""

from __future__ import annotations

import json

import pytest
from edgenas.devices.predictor import (
    Calibration,
    LatencyTable,
    OverheadModel,
    accuracy_report,
    kendall_tau,
)
from edgenas.devices.protocol import Protocol

from edgenas.cli import main
from edgenas.latency_table import Measurer, calibrate, network_parts, predict_latency
from edgenas.space.ldp import LDPSpace

SHAPE = (1, 3, 32, 48)
QUICK = Protocol(warmup_runs=1, warmup_min_s=0.0, runs=3, sessions=1)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGENAS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("EDGENAS_CACHE_DIR", str(tmp_path / "cache"))


def test_parts_cover_the_network_at_real_shapes():
    from edgenas.models.builder import build_model

    genotype = LDPSpace().sample_unique(1, seed=3, scales=(3,))[0]
    parts = network_parts(build_model(genotype, "depth"), SHAPE)
    keys = parts.keys
    assert keys[0] == "stem|3>16s2|3x32x48"
    assert keys[-1].startswith("head|depth|")
    assert len(keys) == len(genotype.blocks) + 2
    assert sum(k.startswith("up|") for k in keys) == 2
    assert any(k.endswith("|s2") for k in keys)  # down blocks carry their stride
    # scale 2 of a 16x24 stem output runs at 8x12; its skip is concatenated at 16x24
    assert parts.concat_melems > 0


def test_overhead_fit_recovers_a_linear_law():
    records = [
        Calibration(f"n{i}", 1.2 * p + 0.5 + 2.0 * c, p, c)
        for i, (p, c) in enumerate([(5, 0.1), (10, 0.3), (20, 0.2), (40, 0.5), (8, 0.05)])
    ]
    model = OverheadModel.fit(records)
    assert model.scale == pytest.approx(1.2) and model.offset_ms == pytest.approx(0.5)
    assert model.concat_ms_per_melem == pytest.approx(2.0)
    assert OverheadModel.fit(records[:2]).scale == 1.0  # too few: offset only


def test_metrics():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    report = accuracy_report([1.05, 2.5, 2.9], [1.0, 2.0, 3.0])
    assert report["within_10pct"] == pytest.approx(2 / 3)
    assert report["mape"] == pytest.approx((0.05 + 0.25 + 0.1 / 3) / 3)


def test_calibrate_store_reload_and_grow(tmp_path):
    space = LDPSpace()
    genotypes = space.sample_unique(4, seed=0, scales=(2,))
    measurer = Measurer("cpu", part_protocol=QUICK, network_protocol=QUICK)
    try:
        summary = calibrate(measurer, genotypes, "depth", SHAPE)
    finally:
        measurer.close()
    assert summary["networks"] == 4 and summary["table_parts"] == summary["new_parts"] > 0
    path = tmp_path / "cache" / "latency" / "cpu-t1.json"
    assert summary["table"] == str(path)
    table = LatencyTable.load(path)
    assert table.overhead.fitted_on == 4 and len(table.calibration) == 4
    assert table.runtime["name"] == "onnxruntime"

    # Known genotype: predicted from the stored table alone.
    again = Measurer("cpu", part_protocol=QUICK, network_protocol=QUICK)
    try:
        predicted = predict_latency(genotypes[0], "depth", SHAPE, again, measure_missing=False)
        assert predicted > 0 and again.measured_parts == 0
        # New genotype: refuses without measuring, then grows the table lazily.
        fresh = space.sample_unique(1, seed=99, scales=(3,))[0]
        with pytest.raises(KeyError):
            predict_latency(fresh, "depth", SHAPE, again, measure_missing=False)
        assert predict_latency(fresh, "depth", SHAPE, again) > 0
        assert again.measured_parts > 0
    finally:
        again.close()
    assert len(LatencyTable.load(path).entries) == len(table.entries) + again.measured_parts


def test_predict_cli(capsys):
    genotype = LDPSpace().sample_unique(1, seed=5, scales=(2,))[0].encode()
    argv = ["predict", "--device", "cpu", "--genotype", genotype, "--input", "32x48", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["predicted_ms"] > 0 and data["new_parts"] > 0
    assert "no calibration for cpu yet" in captured.err
    assert main([*argv[:-1], "--no-measure"]) == 0  # everything is in the table now
    assert main(["predict", "--device", "cpu", "--genotype", "S2:bogus"]) == 2
    assert "bad" in capsys.readouterr().err


def test_latency_is_predicted_for_the_head_that_will_be_deployed(tmp_path, capsys):
    """SR x4 and 19-class segmentation time their own heads, not the defaults'."""
    import torch

    from edgenas.cli import main
    from edgenas.latency_table import timing_model
    from edgenas.space import decode
    from edgenas.tasks.defaults import default_genotype

    sr = decode(default_genotype("sr"))
    assert timing_model(sr, "sr", {"scale": 4})(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 32, 32)
    assert timing_model(sr, "sr")(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 16, 16)
    seg = decode(default_genotype("seg"))
    assert timing_model(seg, "seg", {"num_classes": 19})(torch.zeros(1, 3, 32, 32)).shape[1] == 19
    out = tmp_path / "x4.json"
    assert main(["profile", "--genotype", default_genotype("sr"), "--task", "sr", "--scale", "4",
                 "--input", "1x3x8x8", "--runs", "2", "--sessions", "1", "--warmup", "1",
                 "--json", str(out)]) == 0  # fmt: skip
    assert main(["profile", "--genotype", default_genotype("sr"), "--task", "depth",
                 "--scale", "4", "--input", "1x3x8x8"]) == 2  # fmt: skip
    assert "--scale does not apply to task 'depth'" in capsys.readouterr().err
    # `predict --scale` times the head of that factor: after x2, the x4 head is new.
    argv = ["predict", "--genotype", default_genotype("sr"), "--task", "sr", "--input", "8x8",
            "--json", "--table", str(tmp_path / "table.json")]  # fmt: skip
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["new_parts"] > 0
    assert main([*argv, "--no-measure"]) == 0  # x2 is in the table now
    capsys.readouterr()
    assert main([*argv, "--scale", "4", "--no-measure"]) == 2
    assert "is not in the cpu table" in capsys.readouterr().err
    assert main([*argv, "--scale", "4"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["new_parts"] > 0 and data["task"] == "sr" and data["scale"] == 4


def test_table_save_on_a_full_disk_leaves_nothing(tmp_path):
    """A table that cannot be written is one line naming it; no partial file, and the
    folders made for it are gone again."""
    import resource

    from edgenas.errors import UserError

    table = LatencyTable("cpu", 1, entries={"stem|3>16s2|3x32x48": 1.0})
    target = tmp_path / "new" / "deeper" / "cpu-t1.json"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))  # the table is a few hundred bytes
    try:
        with pytest.raises(UserError, match=f"cannot write {target}"):
            table.save(target)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert list(tmp_path.iterdir()) == []


def test_damaged_tables_are_one_line(tmp_path):
    from edgenas.errors import UserError

    path = tmp_path / "t.json"
    for text, says in [
        ("[1, 2]", "not an edgenas.latency-table/v1"),
        ('{"schema": "edgenas.latency-table/v1", "device": "cpu"}', "damaged"),
        (
            '{"schema": "edgenas.latency-table/v1", "device": "cpu", "entries": {"a": "x"}}',
            "damaged",
        ),
        (
            '{"schema": "edgenas.latency-table/v1", "device": "cpu", "entries": {"a": NaN}}',
            "non-finite",
        ),
        (b"\xff\xfe", "cannot read"),
    ]:
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        with pytest.raises(UserError, match=says):
            LatencyTable.load(path)


# ----------------------------------------------------------------- kernel predictor
def _synthetic_kernels(count: int, seed: int):
    """Random convolution kernels (ORT layout) whose time is a known function of
    their shape features: 2 ns per MAC, 1 ns per element moved, 3 us fixed."""
    import random

    from edgenas.devices.kernels import Kernel

    rng = random.Random(seed)
    kernels = []
    for _ in range(count):
        c_in, c_out = rng.choice([8, 16, 24, 32, 48, 64, 96]), rng.choice([8, 16, 32, 64])
        k, side = rng.choice([1, 3, 5]), rng.choice([15, 30, 60, 120])
        groups = c_in if (k > 1 and rng.random() < 0.5) else 1
        c_out = c_in if groups > 1 else c_out
        inputs = [[1, c_in, side, side], [c_out, c_in // groups, k, k], [c_out]]
        output = [1, c_out, side, side]
        macs = side * side * c_out * (c_in // groups) * k * k
        moved = side * side * (c_in + c_out)
        kernels.append(Kernel("Conv", inputs, output, 2e-6 * macs + 1e-6 * moved + 0.003))
    return kernels


def test_kernel_model_recovers_a_known_latency_function():
    """Trees per kernel type learn time from shapes: held-out kernels within a few
    percent, and a 40-kernel network's sum within 2%."""
    from edgenas.devices.kernels import KernelModel, kernel_features

    train = _synthetic_kernels(300, seed=0)
    model = KernelModel([(k.op, kernel_features(k), k.ms) for k in train])
    assert "Conv" in model.trees
    test = _synthetic_kernels(100, seed=1)
    predicted = model.predict(test)
    errors = sorted(abs(p - k.ms) / k.ms for p, k in zip(predicted, test, strict=True))
    assert errors[len(errors) // 2] < 0.05  # median kernel
    network = test[:40]
    total = sum(model.predict(network))
    assert total == pytest.approx(sum(k.ms for k in network), rel=0.02)


def test_rare_kernel_types_use_their_base_law():
    from edgenas.devices.kernels import Kernel, KernelModel, kernel_features

    rows = [Kernel("Concat", [[1, c, 8, 8], [1, c, 8, 8]], [1, 2 * c, 8, 8]) for c in (4, 8, 16)]
    samples = [
        (k.op, kernel_features(k), 1e-5 * 2 * 4 * c * 64)
        for k, c in zip(rows, (4, 8, 16), strict=True)
    ]
    model = KernelModel(samples)
    assert "Concat" not in model.trees  # three samples: no trees
    bigger = Kernel("Concat", [[1, 32, 8, 8], [1, 32, 8, 8]], [1, 64, 8, 8])
    assert model.predict([bigger])[0] == pytest.approx(1e-5 * 2 * 4 * 32 * 64)


def test_grouped_convolutions_look_alike_in_both_runtimes():
    """ORT's [O, I/g, kh, kw] and OpenVINO's [g, O/g, I/g, kh, kw] weights give the
    same groups, kernel area and MACs; a channel shuffle's 5-D shape counts C."""
    from edgenas.devices.kernels import FEATURE_NAMES, Kernel, kernel_features

    ort = Kernel("Conv", [[1, 64, 30, 40], [16, 16, 1, 1]], [1, 16, 30, 40])
    ov = Kernel("GroupConvolution", [[1, 64, 30, 40], [4, 4, 16, 1, 1]], [1, 16, 30, 40])
    a = dict(zip(FEATURE_NAMES, kernel_features(ort), strict=True))
    b = dict(zip(FEATURE_NAMES, kernel_features(ov), strict=True))
    assert a["groups"] == b["groups"] == 4 and a["macs"] == b["macs"] == 30 * 40 * 16 * 16
    shuffle = Kernel("Transpose", [[1, 4, 4, 60, 80]], [1, 4, 4, 60, 80])
    assert kernel_features(shuffle)[:3] == [16.0, 60.0, 80.0]


def test_kernel_overhead_recovers_a_law_and_never_goes_negative():
    from edgenas.devices.kernels import KernelOverhead, NetworkRecord

    law = [(10.0, 200), (20.0, 150), (5.0, 300), (40.0, 250), (8.0, 100)]
    records = [
        NetworkRecord(f"n{i}", 1.1 * s + 0.2 + 0.001 * n, s, n) for i, (s, n) in enumerate(law)
    ]
    fit = KernelOverhead.fit(records)
    assert (fit.scale, fit.offset_ms, fit.per_kernel_ms) == pytest.approx(
        (1.1, 0.2, 0.001), rel=1e-6
    )
    # A network measured under load (60% slow) is dropped, not averaged in.
    loaded = [*records, NetworkRecord("busy", 1.6 * (1.1 * 15 + 0.2 + 0.2), 15.0, 200)]
    fit = KernelOverhead.fit(loaded)
    assert fit.fitted_on == 5 and fit.scale == pytest.approx(1.1, rel=1e-6)
    # Networks faster than their kernel sum would ask for a negative offset: clipped at 0.
    odd = [NetworkRecord(f"n{i}", 0.9 * s - 0.5, s, n) for i, (s, n) in enumerate(law)]
    fit = KernelOverhead.fit(odd)
    assert fit.offset_ms >= 0 and fit.per_kernel_ms >= 0 and fit.predict(0.1, 10) >= 0


@pytest.fixture(scope="module")
def kernel_table(tmp_path_factory):
    """A kernel calibration of 3 tiny networks on the host CPU (shared by the tests)."""
    from edgenas.latency_table import KernelProtocol, calibrate_kernels

    path = tmp_path_factory.mktemp("kernels") / "cpu.json"
    genotypes = LDPSpace().sample_unique(3, seed=0, scales=(2,))
    measurer = Measurer("cpu", threads=1, table_path=path)
    try:
        summary = calibrate_kernels(
            measurer, genotypes, "depth", SHAPE,
            protocol=KernelProtocol(rounds=2, runs=2, kernel_runs=2),
        )  # fmt: skip
    finally:
        measurer.close()
    return path, genotypes, summary


def test_kernel_calibration_stores_kernels_and_predicts_from_them(kernel_table):
    path, _genotypes, summary = kernel_table
    assert summary["method"] == "kernels" and summary["networks"] == 3
    table = LatencyTable.load(path)
    assert table.has_kernel_model and not table.entries  # no parts were measured
    assert sum(r.kernels for r in table.kernel_records) == len(table.kernel_samples)
    ops = {s[0] for s in table.kernel_samples}
    assert "Conv" in ops or "FusedConv" in ops  # the runtime's kernels, not our layers
    assert all(r.measured_ms > 0 and r.kernels_ms > 0 for r in table.kernel_records)

    measurer = Measurer("cpu", threads=1, table_path=path)
    try:
        assert measurer.uses_kernels
        fresh = LDPSpace().sample_unique(1, seed=42, scales=(3,))[0]
        assert predict_latency(fresh, "depth", SHAPE, measurer, measure_missing=False) > 0
        assert measurer.measured_parts == 0 and not measurer.table.entries
        # The search's "measured child" adds its kernels and an overhead record.
        from edgenas.latency_table import timing_model

        before = len(measurer.table.kernel_records)
        measurer.learn(fresh.encode(), timing_model(fresh, "depth"), SHAPE, 1.0)
    finally:
        measurer.close()
    grown = LatencyTable.load(path)
    assert len(grown.kernel_records) == before + 1 and grown.kernel_records[-1].measured_ms > 0


def test_predict_cli_uses_the_kernel_model(kernel_table, capsys):
    path = kernel_table[0]
    genotype = LDPSpace().sample_unique(1, seed=7, scales=(2,))[0].encode()
    argv = ["predict", "--genotype", genotype, "--input", "32x48", "--table", str(path)]
    assert main([*argv, "--no-measure", "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["method"] == "kernels" and data["predicted_ms"] > 0 and data["new_parts"] == 0
    assert "no calibration" not in captured.err
    assert main([*argv, "--measure"]) == 0
    assert "(kernels, depth head); measured" in capsys.readouterr().out


def test_damaged_kernel_samples_are_one_line(tmp_path):
    from edgenas.errors import UserError

    path = tmp_path / "t.json"
    base = '{"schema": "edgenas.latency-table/v1", "device": "cpu", "entries": {}, '
    path.write_text(base + '"kernel_samples": [["Conv", 3]]}')
    with pytest.raises(UserError, match="damaged"):
        LatencyTable.load(path)


@pytest.mark.slow  # 10 real calibrations (~12 s): docs/testing.md
def test_an_adaptive_calibration_measures_as_many_networks_as_asked(tmp_path):
    """With too few networks measured for cross-validation to name the worst (4 of 10
    at --adaptive 0.6), the sampled genotypes fill the rest: 10 are measured, not 4."""
    from edgenas.latency_table import KernelProtocol, calibrate_kernels

    genotypes = LDPSpace().sample_unique(10, seed=1, scales=(2,))
    measurer = Measurer("cpu", threads=1, table_path=tmp_path / "cpu.json")
    try:
        summary = calibrate_kernels(
            measurer, genotypes, "depth", SHAPE, adaptive=0.6,
            protocol=KernelProtocol(rounds=2, runs=2, kernel_runs=2),
        )  # fmt: skip
    finally:
        measurer.close()
    assert summary["networks"] == 10


def test_id_blocks_that_compute_nothing_are_not_timed_as_parts():
    from edgenas.models.builder import build_model
    from edgenas.space.genotype import BlockSpec, Genotype

    genotype = LDPSpace().sample_unique(1, seed=3, scales=(3,))[0]
    blocks, roles = list(genotype.blocks), genotype.roles
    for role in ("enc1b", "dec1b", "up2"):  # identity, identity, resize + projection
        i = roles.index(role)
        previous = blocks[i - 1].channels if role != "up2" else blocks[i].channels
        blocks[i] = BlockSpec("id", 1, 0, False, previous if role != "up2" else 8, 1)
    model = build_model(Genotype(3, tuple(blocks)), "depth")
    keys = network_parts(model, SHAPE).keys
    kept = [k for k in keys if "|id_" in k]
    # enc1b and dec1b keep their input's width: nothing to time. up2 still resizes.
    assert len(keys) == len(blocks) + 2 - 2
    assert len(kept) == 1 and kept[0].startswith("up|id_k1_se0_nores_c8_n1|")
    # An identity decNa still receives the backbone's concatenation, which costs time.
    dec1a = roles.index("dec1a")
    width = blocks[roles.index("up2")].channels + blocks[roles.index("enc1b")].channels
    blocks[dec1a] = BlockSpec("id", 1, 0, False, width, 1)
    with_id = build_model(Genotype(3, tuple(blocks)), "depth")
    assert with_id.backbone.blocks["dec1a"].is_identity
    concat_with_id = network_parts(with_id, SHAPE)
    assert concat_with_id.concat_melems == pytest.approx(network_parts(model, SHAPE).concat_melems)
