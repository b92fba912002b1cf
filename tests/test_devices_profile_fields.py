"""`edgenas profile` reports what benchmark tools report, in one schema, on every device.

One tiny genotype network (exported with its genotype in the ONNX metadata) is measured
for real on cpu, openvino-cpu and the emulated Pixel 3a (fake adb server, perf_test
stand-in runner); the fields must be present and agree with each other. Old
``edgenas.latency/v1`` files (before the schema grew) must still load.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from edgenas.devices import LatencyResult, Protocol, SessionTimings, profile_model
from edgenas.devices.breakdown import OTHER
from edgenas.devices.emulator.runner import write_runner_script
from edgenas.devices.emulator.server import FakeAdbServer
from edgenas.devices.stats import SPREAD_TOLERANCE

from edgenas.cli import main
from edgenas.cli.profile_cmd import print_result, print_warnings

FAST = Protocol(warmup_runs=1, warmup_min_s=0.0, runs=6, sessions=2)
BLOCK = "conv_k3_se0_res_c8_n1"
GENOTYPE = "S1:" + "-".join([BLOCK] * 5)  # enc1a enc1b dec1a dec1b ref1


@pytest.fixture(scope="module")
def genotype_onnx(tmp_path_factory) -> Path:
    from edgenas.latency_table import export_model
    from edgenas.models.builder import build_model
    from edgenas.parsing import parse_genotype

    model = build_model(parse_genotype(GENOTYPE), "depth").eval()
    path = tmp_path_factory.mktemp("models") / "net.onnx"
    export_model(model, (1, 3, 16, 16), path, verified=True)
    return path


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGENAS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("EDGENAS_CACHE_DIR", str(tmp_path / "cache"))


def ordered(figures: dict, low: str = "min_ms") -> None:
    """min <= p50/median <= p90 <= p95 <= p99 <= max, for figures that are known."""
    keys = [low, "p50_ms" if "p50_ms" in figures else "median_ms"]
    keys += ["p90_ms", "p95_ms", "p99_ms", "max_ms"]
    values = [figures[k] for k in keys]
    assert all(v is not None for v in values), dict(zip(keys, values, strict=True))
    assert values == sorted(values), dict(zip(keys, values, strict=True))


def check_timings(data: dict, runs: int) -> None:
    """The timing fields of a result dict: present, ordered and consistent."""
    timings = data["timings"]
    sessions = timings["sessions"]
    for s in sessions:
        assert s["n"] == runs and len(s["samples_ms"]) == runs
        assert s["mad_ms"] is not None and s["cv"] is not None
        ordered(s)
        # Sequential runs: inferences per second is 1000 / mean, up to loop overhead.
        assert s["throughput_ips"] == pytest.approx(1000 / s["mean_ms"], rel=0.25)
        assert s["load_ms"] > 0 and s["first_inference_ms"] >= 0
        assert isinstance(s["memory_source"], str)
        assert s["peak_memory_mb"] is None or s["peak_memory_mb"] >= 0
    # Overall percentiles are those of the pooled samples.
    pooled = sorted(x for s in sessions for x in s["samples_ms"])
    assert timings["pooled_samples"] == len(pooled) == runs * len(sessions)
    ordered(timings)
    assert timings["max_ms"] == max(pooled) and timings["min_ms"] == min(pooled)
    assert timings["mean_ms"] == pytest.approx(sum(pooled) / len(pooled))
    assert timings["throughput_ips"] == pytest.approx(1000 / timings["mean_ms"], rel=0.25)
    assert timings["load_ms"] > 0 and timings["first_inference_ms"] >= 0
    assert timings["spread_tolerance"] == SPREAD_TOLERANCE
    spread_too_big = timings["session_spread"] > SPREAD_TOLERANCE
    assert bool(data["warnings"]) == spread_too_big


def check_layers(data: dict) -> None:
    """Shares sum to 1; block totals sum to the total of the layers; op counts add up."""
    layers, summary = data["layers"], data["layer_summary"]
    total = sum(layer["time_ms"] for layer in layers)
    assert summary["total_ms"] == pytest.approx(total) and total > 0
    assert sum(layer["share"] for layer in layers) == pytest.approx(1)
    ops = summary["op_types"]
    assert sum(op["share"] for op in ops) == pytest.approx(1)
    assert sum(op["count"] for op in ops) == len(layers)
    assert [op["total_ms"] for op in ops] == sorted((op["total_ms"] for op in ops), reverse=True)
    blocks = summary["blocks"]
    assert sum(b["total_ms"] for b in blocks) == pytest.approx(total)
    assert sum(b["share"] for b in blocks) == pytest.approx(1)
    assert sum(b["layers"] for b in blocks) == len(layers)
    named = [b for b in blocks if b["index"] is not None]
    roles = ["enc1a", "enc1b", "dec1a", "dec1b", "ref1"]
    # Every searched block has convolutions, so every one of them shows up, in order.
    assert [(b["index"], b["name"]) for b in named] == list(enumerate(roles))
    assert {layer["block"] for layer in layers} <= {*roles, OTHER}
    for block in blocks:
        mine = [layer["time_ms"] for layer in layers if layer["block"] == block["name"]]
        assert block["total_ms"] == pytest.approx(sum(mine))


@pytest.mark.parametrize("device", ["cpu", "openvino-cpu"])
def test_host_devices_give_every_field(genotype_onnx, device):
    result = profile_model(genotype_onnx, device, FAST, layers=True)
    data = json.loads(result.to_json())
    assert data["model"]["genotype"] == GENOTYPE  # read from the file's metadata
    check_timings(data, FAST.runs)
    # The host figure is this process's RSS growth since loading began.
    assert all("RSS" in s["memory_source"] for s in data["timings"]["sessions"])
    check_layers(data)
    again = LatencyResult.from_dict(data).to_dict()
    assert again["timings"] == data["timings"] and again["layer_summary"] == data["layer_summary"]


def test_the_emulated_phone_gives_every_field(genotype_onnx, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    runner = write_runner_script(tmp_path / "onnxruntime_perf_test")
    with FakeAdbServer(lifetime_s=300) as phone:
        monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(phone.port))
        assert main(["devices", "setup", "pixel3a", "--runner", str(runner)]) == 0
        capsys.readouterr()
        argv = ["profile", str(genotype_onnx), "--device", "pixel3a", "--cooldown", "0"]
        assert main([*argv, "--runs", "6", "--sessions", "2", "--json", "-"]) == 0
        # perf_test's result file is read and removed after each session.
        left = list(phone.host_path("/data/local/tmp/edgenas/models").rglob("*.csv"))
    data = json.loads(capsys.readouterr().out)
    assert data["device"]["kind"] == "emulated" and left == []
    check_timings(data, 6)
    for s in data["timings"]["sessions"]:
        assert "result file" in s["source"]
        assert s["peak_memory_mb"] > 0 and "runner" in s["memory_source"]
    assert data["layers"] is None and data["layer_summary"] is None


def _old_result() -> dict:
    """A result as edgenas wrote it before the schema grew (same schema id)."""
    session = {
        "n": 3,
        "median_ms": 2.0,
        "p90_ms": 2.8,
        "min_ms": 1.0,
        "mean_ms": 2.0,
        "mad_ms": 1.0,
        "cv": 0.4,
        "warmup_runs": 10,
        "source": "samples",
        "samples_ms": [1.0, 2.0, 3.0],
    }
    phone = {**session, "mad_ms": None, "cv": None, "samples_ms": []}
    phone["source"] = "onnxruntime_perf_test summary"
    return {
        "schema": "edgenas.latency/v1",
        "model": {"path": "m.onnx", "sha256": "0" * 64, "opset": 17, "size_bytes": 1, "inputs": []},
        "device": {"name": "cpu", "kind": "host", "facts": {}},
        "runtime": {"name": "onnxruntime", "version": "1.0", "provider": "cpu", "threads": 1},
        "protocol": {"runs": 3, "sessions": 2},
        "timings": {
            "median_ms": 2.0,
            "session_medians_ms": [2.0, 2.0],
            "session_spread": 0.0,
            "min_ms": 1.0,
            "unit": "ms",
            "sessions": [session, phone],
        },
        "environment": {"timestamp": "2024-01-01T00:00:00+00:00"},
        "layers": [{"name": "/c/Conv", "op_type": "Conv", "time_ms": 1.5, "onnx_node": "/c/Conv"}],
    }


def test_an_old_result_still_loads():
    result = LatencyResult.from_dict(_old_result())
    assert result.median_ms == 2.0 and result.layers[0].time_ms == 1.5
    assert result.sessions[0].p99 is None and result.sessions[0].load_ms is None
    data = result.to_dict()
    # What the old file lacks is None; what can be derived from it is derived.
    timings = data["timings"]
    assert timings["load_ms"] is None and timings["peak_memory_mb"] is None
    assert timings["pooled_samples"] == 0 and timings["p99_ms"] is None  # one had no samples
    assert data["layers"][0]["share"] == 1.0 and data["layer_summary"]["blocks"] is None
    assert data["warnings"] == []


def test_sessions_that_disagree_warn(capsys):
    fast = SessionTimings.from_samples([1.0, 1.0, 1.1])
    slow = SessionTimings.from_samples([1.5, 1.5, 1.6])
    data = _old_result()
    data["timings"]["sessions"] = [fast.to_dict(), slow.to_dict()]
    result = LatencyResult.from_dict(data)
    [warning] = result.to_dict()["warnings"]
    assert "spread 40%" in warning and "tolerance 10%" in warning
    print_warnings(result)
    assert capsys.readouterr().err == f"edgenas: warning: {warning}\n"
    steady = LatencyResult.from_dict({**data, "timings": {**data["timings"]}})
    steady.sessions = [fast, SessionTimings.from_samples([1.0, 1.05, 1.1])]
    assert steady.warnings == []


def test_the_printed_result_fits_80_columns(genotype_onnx):
    from rich.console import Console

    result = profile_model(genotype_onnx, "cpu", FAST, layers=True)
    console = Console(width=80, record=True, force_terminal=False)
    print_result(result, console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for label in ("p99", "max", "load", "throughput", "per operator type", "per block"):
        assert label in text
    # Numbers are not clipped: the headline median is shown in full.
    assert f"{result.median_ms:.3f} ms" in text


def test_interleaved_rounds_give_each_file_its_fastest_session_per_round(genotype_onnx, tmp_path):
    from edgenas.devices.profile import interleaved_fastest_medians

    twin = tmp_path / "twin.onnx"
    twin.write_bytes(genotype_onnx.read_bytes())
    seen = []
    times = interleaved_fastest_medians(
        [genotype_onnx, twin], "cpu", FAST, 3, threads=1,
        on_round=lambda i, t: seen.append((i, [len(x) for x in t])),
    )  # fmt: skip
    assert seen == [(0, [1, 1]), (1, [2, 2]), (2, [3, 3])]
    assert [len(t) for t in times] == [3, 3]
    assert all(ms > 0 for t in times for ms in t)
