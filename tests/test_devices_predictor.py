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
