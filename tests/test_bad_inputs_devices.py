"""Bad input to `devices`, `profile` and `predict` (issue 15): one line, exit 2, nothing written.

Every case runs the real console script in one shared workspace (files built once by
the ``workspace`` fixture, without torch) and is refused before anything is measured:
a devices file with a wrong field, out-of-range numbers, sizes that cannot fit in
memory, models and outputs that are folders, damaged latency tables, no adb server.
"""

from __future__ import annotations

import json
import resource
import socket
from pathlib import Path

import pytest
from bad_inputs import case, check_rejected, run_in_workspace, snapshot

# Files of the workspace, relative to it (the command runs there).
TINY = "tiny.onnx"
GENOTYPE = "S2:" + "-".join(["conv_k3_se0_res_c16_n1"] * 12)

DEVICE_FILES = {
    "threads_word.toml": '[devices.cpu]\nthreads = "four"\n',
    "threads_negative.toml": "[devices.cpu]\nthreads = -4\n",
    "threads_bool.toml": "[devices.cpu]\nthreads = true\n",
    "cooldown_word.toml": '[devices.pixel3a]\ncooldown_s = "slow"\n',
    "cooldown_nan.toml": "[devices.pixel3a]\ncooldown_s = nan\n",
    "misspelt.toml": "[device.cpu]\nthreads = 2\n",
    "bad_name.toml": '[devices."../x"]\nkind = "host"\n',
    "unknown_field.toml": '[devices.lab]\nkind = "android"\nbattery = 3\n',
    "bad_runner.toml": '[devices.lab]\nkind = "android"\nrunner = "perf"\n',
}

CASES = [
    # -- the devices file: every field checked when it is loaded -----------------------
    case(
        "profile",
        TINY,
        "--devices-file",
        "threads_word.toml",
        says=("threads_word.toml", "devices.cpu.threads", "'four'", "whole number"),
    ),
    case(
        "profile",
        TINY,
        "--devices-file",
        "threads_negative.toml",
        says=("devices.cpu.threads", "-4"),
    ),
    case("devices", "list", "--devices-file", "threads_bool.toml", says="devices.cpu.threads"),
    case(
        "profile",
        TINY,
        "--device",
        "pixel3a",
        "--devices-file",
        "cooldown_word.toml",
        says=("devices.pixel3a.cooldown_s", "'slow'", "seconds"),
    ),
    case("devices", "show", "pixel3a", "--devices-file", "cooldown_nan.toml", says="cooldown_s"),
    case("devices", "list", "--devices-file", "not_utf8.toml", says=("not_utf8.toml", "UTF-8")),
    case("devices", "list", "--devices-file", "folder", says="is a folder"),
    case("devices", "list", "--devices-file", "missing.toml", says="not found"),
    case("devices", "list", "--devices-file", "misspelt.toml", says=("unknown key", "device")),
    case("devices", "list", "--devices-file", "bad_name.toml", says="device name '../x'"),
    case("devices", "list", "--devices-file", "unknown_field.toml", says="battery"),
    case("devices", "list", "--devices-file", "bad_runner.toml", says="runner must be one of"),
    # the default user file (EDGENAS_CONFIG_DIR/devices.toml) is checked the same way
    case("devices", "list", says="devices.cpu.threads", EDGENAS_CONFIG_DIR="config"),
    # -- devices emulate ---------------------------------------------------------------
    case("devices", "emulate", "--port", "99999", says=("--port", "65535")),
    case("devices", "emulate", "--port", "0", says="--port"),
    case("devices", "emulate", "--lifetime", "-1", says="--lifetime"),
    case("devices", "emulate", "--lifetime", "nan", says="--lifetime"),
    case("devices", "emulate", "--write-runner", "folder", says="is a folder"),
    # -- devices setup / show ----------------------------------------------------------
    case("devices", "setup", "cpu", "--runner", TINY, says="only for Android"),
    case("devices", "setup", "pixel3a", "--runner", "missing_runner", says="not found"),
    case("devices", "setup", "pixel3a", "--runner", "folder", says="is a folder"),
    case("devices", "show", "pixel9", says="unknown device 'pixel9'"),
    # -- profile: protocol numbers -----------------------------------------------------
    case("profile", TINY, "--runs", "0", says="--runs"),
    case("profile", TINY, "--runs", "1e12", says="--runs"),
    case("profile", TINY, "--warmup", "-1", says="--warmup"),
    case("profile", TINY, "--sessions", "0", says="--sessions"),
    case("profile", TINY, "--threads", "0", says="--threads"),
    case("profile", TINY, "--cooldown", "-5", says="--cooldown"),
    case("profile", TINY, "--min-time", "inf", says="--min-time"),
    # -- profile: inputs and outputs ---------------------------------------------------
    case("profile", TINY, "--input", "99999x99999", says=("--input", "GiB")),
    case("profile", TINY, "--input", "0x5", says="bad shape"),
    case("profile", TINY, "--input", "1x3x8x8", says="does not fit input"),
    case("profile", "folder", says="is a folder"),
    case("profile", "missing.onnx", says="not found"),
    case("profile", "notes.onnx", says="not a readable ONNX file"),
    case("profile", "empty.onnx", says="no ONNX graph"),
    case("profile", TINY, "--device", "tpu", says="unknown device 'tpu'"),
    case("profile", TINY, "--json", "folder", says=("--json", "is a folder")),
    case("profile", TINY, "--json", "notes.onnx/out.json", says="is a file"),
    case("profile", TINY, "--device", "pixel3a", "--layers", says="per-layer"),
    case("profile", TINY, "--precision", "fp16", says=("--precision fp16", "fp16 kernels")),
    case("profile", TINY, "--precision", "bf16", says="--precision"),
    case(
        "profile",
        TINY,
        "--device",
        "pixel3a",
        says=("adb server not reachable", "edgenas devices emulate"),
        ANDROID_ADB_SERVER_PORT="1",
    ),
    case(
        "profile",
        TINY,
        "--device",
        "pixel3a",
        says="ANDROID_ADB_SERVER_PORT",
        ANDROID_ADB_SERVER_PORT="99999",
    ),
    case(
        "profile",
        TINY,
        "--device",
        "pixel3a",
        says="ANDROID_ADB_SERVER_PORT",
        ANDROID_ADB_SERVER_PORT="abc",  # adbutils itself fails on it when imported
    ),
    case("profile", "model.tflite", says="TensorFlow Lite"),
    case("profile", "--genotype", GENOTYPE, says="needs --input"),
    case("profile", TINY, "--genotype", GENOTYPE, says="either"),
    case("profile", "--genotype", "S9:nope", "--input", "64x64", says="genotype"),
    # -- predict -----------------------------------------------------------------------
    case("predict", "--genotype", "nope", says="genotype"),
    case(
        "predict",
        "--genotype",
        "S2U:" + "-".join(["conv_k3_se0_res_c16_n1"] * 13),
        "--input",
        "24x32",
        "--no-measure",
        says="add --task sr",
    ),
    case("predict", "--genotype", GENOTYPE, "--input", "99999x99999", says="--input"),
    case("predict", "--genotype", GENOTYPE, "--threads", "0", says="--threads"),
    case("predict", "--genotype", GENOTYPE, "--scale", "4", says="--task sr only"),
    case("predict", "--genotype", GENOTYPE, "--task", "sr", "--scale", "5", says="--scale"),
    case("predict", "--genotype", GENOTYPE, "--task", "nope", says="unknown task"),
    case("predict", "--genotype", GENOTYPE, "--device", "tpu", says="unknown device"),
    case("predict", "--genotype", GENOTYPE, "--table", "folder", says=("--table", "folder")),
    case("predict", "--genotype", GENOTYPE, "--table", "notes.onnx", says="cannot read"),
    case("predict", "--genotype", GENOTYPE, "--table", "schema.json", says="latency-table/v1"),
    case("predict", "--genotype", GENOTYPE, "--table", "damaged.json", says="damaged"),
    case("predict", "--genotype", GENOTYPE, "--table", "negative.json", says="negative"),
    case("predict", "--genotype", GENOTYPE, "--table", "other.json", says="holds a table for"),
    # -- devices calibrate -------------------------------------------------------------
    case("devices", "calibrate", "cpu", "--n", "0", says="--n"),
    case("devices", "calibrate", "cpu", "--seed", "-1", says="--seed"),
    case("devices", "calibrate", "cpu", "--scales", "9", says="--scales"),
    case("devices", "calibrate", "cpu", "--scales", "a", says="--scales"),
    case("devices", "calibrate", "cpu", "--input", "99999x99999", says="--input"),
    case("devices", "calibrate", "cpu", "--table", "folder", says="--table"),
    case("devices", "calibrate", "tpu", says="unknown device"),
    case("devices", "calibrate", "pixel3a", "--method", "kernels", says="--method parts"),
    case("devices", "calibrate", "cpu", "--method", "trees", says="--method"),
    case("devices", "calibrate", "cpu", "--adaptive", "0.95", says="--adaptive"),
]


def _tiny_onnx(path: Path) -> None:
    """A one-node ONNX model (Relu on 1x3x16x16), built without torch."""
    from onnx import TensorProto, helper, save

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 16, 16])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _table(device: str, threads: int | None, entries: dict) -> str:
    return json.dumps(
        {
            "schema": "edgenas.latency-table/v1",
            "device": device,
            "threads": threads,
            "entries": entries,
        }
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """The files every case needs, made once."""
    root = tmp_path_factory.mktemp("bad-devices")
    _tiny_onnx(root / TINY)
    (root / "notes.onnx").write_text("not a model\n")
    (root / "empty.onnx").write_bytes(b"")
    (root / "model.tflite").write_bytes(b"TFL3")
    (root / "folder").mkdir()
    for name, text in DEVICE_FILES.items():
        (root / name).write_text(text)
    (root / "not_utf8.toml").write_bytes(b'[devices.cpu]\ndescription = "\xff\xfe"\n')
    (root / "config").mkdir()
    (root / "config" / "devices.toml").write_text("[devices.cpu]\nthreads = 0\n")
    (root / "schema.json").write_text('{"schema": "something-else"}')
    (root / "damaged.json").write_text(_table("cpu", 1, {"stem|x": "fast"}))
    (root / "negative.json").write_text(_table("cpu", 1, {"stem|x": -3.0}))
    (root / "other.json").write_text(_table("openvino-cpu", 1, {}))
    return root


@pytest.mark.parametrize("bad", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_line(bad, workspace):
    check_rejected(bad, workspace)


def test_emulate_on_a_port_in_use(workspace):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        bad = case(
            "devices", "emulate", "--port", str(port), "--lifetime", "5", says="already in use"
        )
        check_rejected(bad, workspace)


def test_profile_json_on_a_full_disk_writes_nothing(workspace):
    """The measurement succeeds, the JSON cannot be written: one error line, no file,
    no folder (progress lines of the sessions come before it)."""

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))  # the JSON is a few KB

    args = [
        *("profile", TINY, "--runs", "2", "--warmup", "0", "--sessions", "1"),
        *("--json", "results/new/r.json"),
    ]
    (workspace / "home").mkdir(exist_ok=True)
    before = snapshot(workspace)
    # onnxruntime 1.2x keeps a usage database of its own under ~/.cache/Microsoft and
    # updates it on every session; like matplotlib's font cache it is not ours.
    env = {"ORT_DISABLE_TELEMETRY": "1"}
    result = run_in_workspace(args, workspace, env=env, preexec=limit)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("edgenas: error: cannot write results/new/r.json"), lines
    assert all(line.startswith("session ") for line in lines[:-1]), lines
    assert snapshot(workspace) == before
