"""Host onnxruntime and OpenVINO CPU backends, measured for real; catalog; CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from edgenas.devices import SCHEMA, LatencyResult, Protocol, load_catalog, profile_model
from edgenas.devices.backends import check_availability

from edgenas.cli import main
from edgenas.errors import UserError

FAST = Protocol(warmup_runs=2, warmup_min_s=0.0, runs=5, sessions=2)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    import torch
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
    path = tmp_path_factory.mktemp("models") / "tiny.onnx"
    torch.onnx.export(
        model.eval(), (torch.randn(1, 3, 32, 32),), str(path), dynamo=False, opset_version=17
    )
    return path


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGENAS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("EDGENAS_CACHE_DIR", str(tmp_path / "cache"))


def test_builtin_catalog_has_the_issue_devices():
    catalog = load_catalog()
    for name in ("cpu", "openvino-cpu", "openvino-gpu", "openvino-npu", "pixel3a", "android"):
        assert name in catalog.entries
    pixel = catalog.get("pixel3a")
    assert (pixel.soc, pixel.abi, pixel.big_cores, pixel.little_cores) == (
        "Snapdragon 670",
        "arm64-v8a",
        2,
        6,
    )
    with pytest.raises(UserError, match="unknown device 'pixel9'"):
        catalog.get("pixel9")


def test_user_catalog_overrides_and_adds(tmp_path):
    user = tmp_path / "devices.toml"
    user.write_text(
        '[devices.cpu]\nthreads = 2\n\n[devices.lab-phone]\nkind = "android"\nserial = "R58M"\n'
    )
    catalog = load_catalog(user)
    assert catalog.get("cpu").threads == 2
    assert catalog.get("cpu").backend == "onnxruntime"  # kept from the built-in entry
    assert catalog.get("lab-phone").runner == "onnxruntime_perf_test"
    assert catalog.get("lab-phone").source == str(user)
    user.write_text('[devices.x]\nkind = "android"\nbattery = 3\n')
    with pytest.raises(UserError, match="unknown field"):
        load_catalog(user)
    user.write_text('[devices.x]\nkind = "fpga"\n')
    with pytest.raises(UserError, match="kind must be one of"):
        load_catalog(user)
    with pytest.raises(UserError, match="not found"):
        load_catalog(tmp_path / "missing.toml")


def test_default_user_catalog_is_read(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "devices.toml").write_text("[devices.cpu]\nthreads = 3\n")
    assert load_catalog().get("cpu").threads == 3


def test_openvino_plugins_report_themselves():
    catalog = load_catalog()
    assert check_availability(catalog.get("openvino-cpu")).usable
    import openvino as ov

    if "NPU" not in ov.Core().available_devices:
        status = check_availability(catalog.get("openvino-npu"))
        assert not status.usable and "NPU not available" in status.reason


@pytest.mark.parametrize("device", ["cpu", "openvino-cpu"])
def test_profile_on_host_devices(tiny_onnx, device):
    result = profile_model(tiny_onnx, device, FAST, layers=True)
    data = json.loads(result.to_json())
    assert data["schema"] == SCHEMA
    assert data["device"]["kind"] == ("host" if device == "cpu" else "openvino")
    assert data["runtime"]["threads"] == 1
    assert data["runtime"]["precision"] == "f32"
    assert data["model"]["opset"] == 17
    assert data["model"]["inputs"][0]["shape"] == [1, 3, 32, 32]
    assert len(data["model"]["sha256"]) == 64
    sessions = data["timings"]["sessions"]
    assert len(sessions) == 2 and all(len(s["samples_ms"]) == 5 for s in sessions)
    assert all(s["warmup_runs"] >= 2 for s in sessions)
    assert data["timings"]["median_ms"] > 0
    assert data["layers"] and any(layer["onnx_node"] for layer in data["layers"])
    assert LatencyResult.from_dict(data).median_ms == pytest.approx(result.median_ms)


def test_profile_cli_json_only_on_stdout(tiny_onnx, capsys):
    assert (
        main(
            [
                "profile",
                str(tiny_onnx),
                "--runs",
                "3",
                "--warmup",
                "1",
                "--sessions",
                "1",
                "--json",
                "-",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert json.loads(out)["device"]["name"] == "cpu"


def test_profile_cli_table_and_json_file(tiny_onnx, tmp_path, capsys):
    out_file = tmp_path / "out" / "r.json"
    argv = ["profile", str(tiny_onnx), "--device", "openvino-cpu", "--runs", "3", "--sessions", "2"]
    assert main([*argv, "--json", str(out_file)]) == 0
    printed = capsys.readouterr().out
    assert "median of 2 session medians" in printed
    assert json.loads(out_file.read_text())["runtime"]["name"] == "openvino"
    assert [p.name for p in out_file.parent.iterdir()] == ["r.json"]  # no temp files left


def test_profile_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["profile", str(tmp_path / "nope.onnx")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"edgenas: error: model file {tmp_path / 'nope.onnx'} not found"
    )
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    assert main(["profile", str(bad), "--json", str(tmp_path / "r.json")]) == 2
    assert "not a readable ONNX file" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
    assert main(["profile", "--device", "cpu"]) == 2
    assert "give either an ONNX file or --genotype" in capsys.readouterr().err
    assert main(["profile", str(bad), "--device", "tpu"]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err


def test_profile_genotype_on_the_fly(capsys):
    from edgenas.space.ldp import LDPSpace

    genotype = LDPSpace().sample_unique(1, seed=0, scales=(2,))[0].encode()
    argv = ["profile", "--genotype", genotype, "--task", "depth", "--input", "1x3x32x48"]
    assert main([*argv, "--runs", "2", "--warmup", "1", "--sessions", "1", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"]["genotype"] == genotype
    assert data["model"]["inputs"][0]["shape"] == [1, 3, 32, 48]


def test_devices_list_and_show(capsys):
    assert main(["devices", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["cpu"]["usable"] and rows["openvino-cpu"]["usable"]
    assert main(["devices", "show", "cpu", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["usable"] and shown["facts"]["usable_cores"] >= 1
    assert main(["devices", "show", "cpu"]) == 0
    assert "live facts" in capsys.readouterr().out


def test_profile_openvino_ir_at_any_size(tmp_path, capsys):
    """An exported IR (dynamic height and width) is measured on OpenVINO at --input;
    other devices refuse it with a one-line error."""
    from torch import nn

    from edgenas.export import export_onnx

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1))
    xml = tmp_path / "tiny.xml"
    export_onnx(model, (1, 3, 16, 20), xml, dynamic=True, openvino=True)
    assert xml.with_suffix(".bin").is_file()
    out = tmp_path / "ir.json"
    args = ["profile", str(xml), "--device", "openvino-cpu", "--input", "1x3x24x32",
            "--runs", "3", "--sessions", "1", "--warmup", "1", "--json", str(out)]  # fmt: skip
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["device"]["kind"] == "openvino"
    assert result["model"]["inputs"][0]["shape"] == [1, 3, 24, 32]
    assert result["timings"]["median_ms"] > 0
    capsys.readouterr()
    assert main(["profile", str(xml), "--device", "cpu", "--input", "1x3x24x32"]) == 2
    assert "is an OpenVINO IR" in capsys.readouterr().err
    assert main(["profile", str(xml), "--device", "openvino-cpu"]) == 2  # free H, W
    assert "give the shape with --input" in capsys.readouterr().err


ZEN4_CPUINFO = "\n\n".join(
    f"""processor\t: {index}
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse sse2 sse4_2 avx avx2 avx512f avx512bw"""
    for index in range(2)
)

# A big.LITTLE board: two Cortex-A55 and two Cortex-A76 cores.
ARM_CPUINFO = "\n\n".join(
    f"""processor\t: {index}
BogoMIPS\t: 48.00
Features\t: fp asimd evtstrm aes crc32 asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: {variant}
CPU part\t: {part}
CPU revision\t: 0"""
    for index, (part, variant) in enumerate(
        [("0xd05", "0x2"), ("0xd05", "0x2"), ("0xd0b", "0x4"), ("0xd0b", "0x4")]
    )
)


def test_cpu_signature_tells_apart_what_a_generic_model_name_hides():
    from edgenas.devices.hostinfo import cpu_signature

    zen4 = cpu_signature(ZEN4_CPUINFO)
    assert zen4 == "AuthenticAMD family 25 model 17 stepping 1, avx512f"
    zen3 = cpu_signature(
        ZEN4_CPUINFO.replace("model\t\t: 17", "model\t\t: 1").replace(" avx512f avx512bw", "")
    )
    assert zen3 == "AuthenticAMD family 25 model 1 stepping 1, avx2"
    assert cpu_signature(ARM_CPUINFO) == (
        "implementer 0x41 part 0xd05 variant 0x2 revision 0"
        " + implementer 0x41 part 0xd0b variant 0x4 revision 0, asimddp"
    )
    assert cpu_signature("") is None
