"""The adb backend end to end against an emulated Pixel 3a behind a fake adb server.

adbutils talks to edgenas.devices.emulator.FakeAdbServer over TCP exactly as to a real
adb server (host:version, host:devices, host:tport, shell,v2:, sync: STAT/SEND); the
phone's runner is a host program printing onnxruntime_perf_test's format. Results from
it carry device kind "emulated".
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from edgenas.devices import Protocol, profile_model
from edgenas.devices.emulator.runner import write_runner_script
from edgenas.devices.emulator.server import FakeAdbServer

from edgenas.cli import main
from edgenas.errors import UserError

FAST = Protocol(warmup_runs=1, runs=3, sessions=2)
EVIL_NAME = "a b;rm -rf x.onnx"


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    import torch
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    path = tmp_path_factory.mktemp("models") / "tiny.onnx"
    torch.onnx.export(
        model.eval(), (torch.randn(1, 3, 16, 16),), str(path), dynamo=False, opset_version=17
    )
    return path


@pytest.fixture
def phone(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGENAS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    with FakeAdbServer(lifetime_s=300) as server:
        monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(server.port))
        yield server


@pytest.fixture
def runner(tmp_path) -> Path:
    return write_runner_script(tmp_path / "onnxruntime_perf_test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_adb_server(monkeypatch, tiny_onnx, capsys):
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(_free_port()))
    assert main(["profile", str(tiny_onnx), "--device", "pixel3a"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgenas: error: adb server not reachable at 127.0.0.1:")
    assert "adb start-server" in err and "\n" not in err


def test_no_device_connected(phone, tiny_onnx):
    phone.connected = False
    with pytest.raises(UserError, match="no Android device connected"):
        profile_model(tiny_onnx, "pixel3a", FAST)


def test_several_devices_need_a_serial(phone, tiny_onnx, capsys):
    phone.extra_serials = ["OTHER42"]
    assert main(["profile", str(tiny_onnx), "--device", "android"]) == 2
    assert (
        "several devices connected (EMU3A0001, OTHER42); pass --serial" in capsys.readouterr().err
    )
    with pytest.raises(UserError, match="device NOPE is not connected"):
        profile_model(tiny_onnx, "android", FAST, backend_options={"serial": "NOPE"})


def test_runner_not_set_up(phone, tiny_onnx, capsys):
    assert main(["profile", str(tiny_onnx), "--device", "pixel3a"]) == 2
    assert "run `edgenas devices setup pixel3a --runner PATH`" in capsys.readouterr().err
    assert main(["devices", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert (
        not rows["pixel3a"]["usable"]
        and "no onnxruntime_perf_test runner" in rows["pixel3a"]["status"]
    )


def test_setup_then_profile_emulated_pixel3a(phone, runner, tiny_onnx, tmp_path, capsys):
    assert main(["devices", "setup", "pixel3a", "--runner", str(runner)]) == 0
    assert "installed onnxruntime_perf_test on EMU3A0001" in capsys.readouterr().out
    assert (
        phone.host_path("/data/local/tmp/edgenas/onnxruntime_perf_test").read_bytes()
        == runner.read_bytes()
    )
    out = tmp_path / "pixel.json"
    argv = ["profile", str(tiny_onnx), "--device", "pixel3a", "--runs", "4", "--sessions", "2"]
    assert main([*argv, "--cooldown", "0", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["device"]["kind"] == "emulated"
    facts = data["device"]["facts"]
    assert facts["big_cores"] == [6, 7] and facts["cpu_mask"] == "c0"
    assert facts["android_sdk"] == "32" and facts["battery_temp_c"] == pytest.approx(31.2)
    assert facts["thermal_status"] == 0 and facts["governor"] == "schedutil"
    assert data["runtime"]["name"] == "onnxruntime_perf_test" and data["runtime"]["threads"] == 2
    assert [s["n"] for s in data["timings"]["sessions"]] == [4, 4]
    runs = [c for c in phone.commands if "taskset" in c]
    assert len(runs) == 2 and all("taskset c0 " in c and " -x 2 " in c for c in runs)
    # `devices show` reports the live facts of the emulated phone.
    capsys.readouterr()
    assert main(["devices", "show", "pixel3a", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["usable"] and shown["facts"]["emulated"] is True


def test_hostile_file_name_is_harmless(phone, runner, tiny_onnx, tmp_path):
    evil = tmp_path / EVIL_NAME
    evil.write_bytes(tiny_onnx.read_bytes())
    remote_dir = phone.host_path("/data/local/tmp/edgenas")
    remote_dir.mkdir(parents=True)
    canary = remote_dir / "x.onnx"
    canary.write_text("must survive")
    (phone.root / "x.onnx").write_text("must survive too")
    from edgenas.devices.backends.android import AndroidBackend
    from edgenas.devices.catalog import load_catalog

    AndroidBackend(load_catalog().get("pixel3a")).setup(runner)
    result = profile_model(evil, "pixel3a", FAST)
    assert result.median_ms > 0
    assert canary.read_text() == "must survive" and (phone.root / "x.onnx").exists()
    pushed = list(phone.host_path("/data/local/tmp/edgenas/models").glob("*/*"))
    assert [p.name for p in pushed] == [EVIL_NAME]
    assert any(f"'{phone.root}" not in c and EVIL_NAME in c for c in phone.commands)


def test_disconnect_mid_run_discards_everything(phone, runner, tiny_onnx, tmp_path, capsys):
    assert main(["devices", "setup", "pixel3a", "--runner", str(runner)]) == 0
    capsys.readouterr()
    phone.disconnect_on_run = 2  # the cable goes during the second session
    out = tmp_path / "r.json"
    argv = ["profile", str(tiny_onnx), "--device", "pixel3a", "--runs", "3", "--sessions", "3"]
    assert main([*argv, "--cooldown", "0", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert "disconnected or stopped answering during the run" in err
    assert "partial results discarded" in err
    assert not out.exists()


ONE_SESSION = Protocol(warmup_runs=0, runs=2, sessions=1)


def _set_up(runner: Path):
    from edgenas.devices.backends.android import AndroidBackend
    from edgenas.devices.catalog import load_catalog

    backend = AndroidBackend(load_catalog().get("pixel3a"))
    backend.setup(runner)
    return backend


def test_a_measurement_session_uses_a_bounded_number_of_connections(phone, runner, tmp_path):
    """One Measurer (what `predict` and the search use) reaches the phone once; each
    further model is one push and one command per session. A fresh connection set per
    part made one prediction open about 1,000 connections (35 parts)."""
    from torch import nn

    from edgenas.latency_table import Measurer

    _set_up(runner)
    measurer = Measurer("pixel3a", table_path=tmp_path / "t.json", network_protocol=ONE_SESSION)
    counts = []
    try:
        for width in (4, 8, 12):
            start = phone.connections
            measurer.measure_network(nn.Conv2d(3, width, 3), (1, 3, 16, 16))
            counts.append(phone.connections - start)
    finally:
        measurer.close()
    assert counts[0] <= 8, counts  # choosing and describing the phone, once
    assert counts[1:] == [2, 2], counts  # push + one session


def test_a_250_character_model_name_is_shortened_on_the_phone(phone, runner, tiny_onnx, tmp_path):
    long = tmp_path / ("m" * 245 + ".onnx")
    long.write_bytes(tiny_onnx.read_bytes())
    _set_up(runner)
    assert profile_model(long, "pixel3a", ONE_SESSION).median_ms > 0
    [pushed] = phone.host_path("/data/local/tmp/edgenas/models").glob("*/*")
    assert pushed.name.startswith("mmmm") and pushed.name.endswith(".onnx")
    assert len(pushed.name.encode()) <= 120


def test_a_file_the_phone_refuses_is_named_with_its_reason(phone, runner, tiny_onnx):
    """The phone's own FAIL reason is reported, not a lost device."""
    backend = _set_up(runner)
    remote = "/data/local/tmp/edgenas/" + "x" * 300 + ".onnx"  # over the 255-byte limit
    with pytest.raises(UserError, match=r"refused the file .* File name too long"):
        backend._push(tiny_onnx, remote)
    # the connection was answered, not dropped: the phone is still usable
    assert backend.availability().usable
