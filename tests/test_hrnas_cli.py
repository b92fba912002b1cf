"""`edgenas shrink` through the installed console script, as a user runs it."""

from __future__ import annotations

import json
import socket

import pytest
from cli_helpers import assert_one_line_error, run_cli

TINY = ["--widths", "4,8", "--branches", "1,2", "--tokens", "2", "--input", "32x40"]


def test_shrink_end_to_end_on_builtin_data(tmp_path):
    import onnx

    from edgenas.store import RunStore

    result = run_cli(
        "shrink", "--task", "seg", "--epochs", "2", "--lambda", "0.05", "--epsilon", "0.05",
        "--alpha-lr-mult", "200", *TINY, "--runs-dir", str(tmp_path), "--name", "demo", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "step 0 (epoch 0)" in out and "step 2 (epoch 2)" in out
    assert "latency on cpu" in out and "val (ONNX)" in out
    run = tmp_path / "demo"
    for name in ("run.sqlite", "model.onnx", "extracted.pt", "report.md", "kept_units.png"):
        assert (run / name).is_file(), name
    with RunStore.open_readonly(run) as store:
        info = store.run_info()
        steps = store.events(kinds=("shrink_step",))
        (candidate,) = store.candidates()
    assert info.kind == "hrnas-shrink" and info.status == "finished"
    assert info.config["lambda"] == 0.05 and info.config["cost"] == "flops"
    assert [e.payload["step"] for e in steps] == [0, 1, 2]
    assert steps[-1].payload["macs"] < steps[0].payload["macs"]
    assert candidate.genotype.startswith("hrnas(w4-8,b1-2,")
    assert candidate.latency_source == "measured" and candidate.latency_ms > 0
    assert candidate.flops == steps[-1].payload["macs"]
    meta = {p.key: p.value for p in onnx.load(run / "model.onnx").metadata_props}
    assert meta["edgenas.hrnas_arch"] == candidate.genotype
    report = (run / "report.md").read_text()
    assert "| step | epoch | removed |" in report and "kept_units.png" in report
    assert json.loads(json.dumps(info.summary))["units_after"] < info.summary["units_before"]


def test_shrink_with_latency_cost_tracks_measured_latency(tmp_path, monkeypatch):
    from edgenas.store import RunStore

    monkeypatch.setenv("EDGENAS_CACHE_DIR", str(tmp_path / "cache"))  # a fresh table
    result = run_cli(
        "shrink", "--task", "seg", "--cost", "latency", "--epochs", "1", "--lambda", "0.05",
        "--epsilon", "0.05", "--alpha-lr-mult", "200", "--align", "1", *TINY,
        "--runs-dir", str(tmp_path), "--name", "lat", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "by unit slopes" in result.stdout
    with RunStore.open_readonly(tmp_path / "lat") as store:
        steps = [e.payload for e in store.events(kinds=("shrink_step",))]
    assert len(steps) == 2 and all(s["measured_ms"] > 0 for s in steps)
    assert steps[0]["predicted_ms"] == steps[0]["measured_ms"]  # prediction starts there
    assert steps[1]["slope_predicted_ms"] <= steps[0]["slope_predicted_ms"]
    tables = list((tmp_path / "cache").rglob("*.json"))
    assert tables and "hrnas-block|" in tables[0].read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--task", "nope"], "unknown task"),
        (["--task", "seg", "--data", "/no/such/folder"], "/no/such/folder"),
        (["--task", "seg", "--device", "toaster"], "toaster"),
        (["--task", "seg", "--widths", "8,x"], "--widths"),
        (["--task", "seg", "--branches", "1,3"], "bad supernet"),
        (["--task", "seg", "--epochs", "0"], "--epochs"),
        (["--task", "seg", "--lambda", "-1"], "--lambda"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, fragment):
    result = run_cli("shrink", *args, "--runs-dir", str(tmp_path / "runs"))
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "runs").exists()


def test_unconnected_phone_fails_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(_free_port()))  # nobody listens
    result = run_cli(
        "shrink", "--task", "seg", "--device", "pixel3a", "--cost", "latency",
        "--runs-dir", str(tmp_path / "runs"),
    )  # fmt: skip
    assert_one_line_error(result, "pixel3a", "adb")
    assert not (tmp_path / "runs").exists()


def test_existing_run_name_is_refused(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "run.sqlite").write_text("")
    result = run_cli("shrink", "--task", "seg", "--runs-dir", str(tmp_path), "--name", "taken")
    assert_one_line_error(result, "already exists")


@pytest.mark.slow
def test_shrink_runs_on_camvid(tmp_path, shared_data):
    result = run_cli(
        "shrink", "--task", "seg", "--data", str(shared_data / "camvid"), "--input", "48x64",
        "--epochs", "1", "--runs-dir", str(tmp_path), "--name", "camvid", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "184 train / 101 val" in result.stdout and "miou" in result.stdout
    assert (tmp_path / "camvid" / "model.onnx").is_file()
