"""`edgenas shrink` through the installed console script, as a user runs it."""

from __future__ import annotations

import json
import re
import socket

import pytest
from cli_helpers import assert_one_line_error, run_cli

TINY = ["--widths", "4,8", "--branches", "1,2", "--tokens", "2", "--input", "32x40"]


def test_shrink_to_a_mac_target_delivers_the_network_it_measured(tmp_path):
    """The published network is the one the target was checked on: within 10% below the
    target, with no further units cut when it is extracted."""
    import torch

    from edgenas.hrnas.config import SupernetConfig
    from edgenas.hrnas.costs import count_hrnas_macs
    from edgenas.hrnas.supernet import HRSupernet
    from edgenas.store import RunStore

    net = HRSupernet(SupernetConfig(widths=(4, 8), branches=(1, 2), tokens=2), "seg", num_classes=5)
    with torch.no_grad():
        full = count_hrnas_macs(net, (1, 3, 32, 40))
    target = int(0.8 * full)
    result = run_cli(
        "shrink", "--task", "seg", "--epochs", "2", "--alpha-lr-mult", "200", "--shrink-every", "1",
        *TINY, "--deploy-input", "32x40", "--target-flops", str(target), "--align", "1", "--baselines", "none",
        "--threads", "1", "--runs-dir", str(tmp_path), "--name", "t", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with RunStore.open_readonly(tmp_path / "t") as store:
        steps = [e.payload for e in store.events(kinds=("shrink_step",))]
        (candidate,) = store.candidates()
    assert steps[0]["macs"] == full  # the supernet counted here is the one shrunk
    assert 0.9 * target <= steps[-1]["macs"] <= target
    assert candidate.flops == steps[-1]["macs"]  # extraction cut nothing more
    assert "target:" in result.stdout


def test_shrink_end_to_end_on_builtin_data(tmp_path):
    import onnx

    from edgenas.store import RunStore

    result = run_cli(
        "shrink", "--task", "seg", "--epochs", "2", "--lambda", "0.05", "--epsilon", "0.05",
        "--alpha-lr-mult", "200", "--shrink-every", "1", *TINY, "--deploy-input", "48x64", "--threads", "1",
        "--runs-dir", str(tmp_path), "--name", "demo", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "step 0 (epoch 0)" in out and "step 2 (epoch 2)" in out
    assert "at 1x3x48x64 on cpu (measured)" in out and "val (ONNX):  miou" in out
    run = tmp_path / "demo"
    for name in ("run.sqlite", "best.pt", "best.onnx", "best.latency.json", "report.md",
                 "kept_units.png", "best.static.onnx", "best.static.latency.json"):  # fmt: skip
        assert (run / name).is_file(), name
    assert f"fixed size {run / 'best.static.onnx'}: " in out
    report = (run / "report.md").read_text()
    assert f"| ONNX model (deploy size only) | {run / 'best.static.onnx'}: " in report
    assert not (run / "shrink_state.pt").exists()  # finished: best.pt holds the network
    with RunStore.open_readonly(run) as store:
        info = store.run_info()
        steps = store.events(kinds=("shrink_step",))
        (candidate,) = store.candidates()
    assert info.kind == "hrnas-shrink" and info.status == "finished"
    assert info.config["lambda"] == 0.05 and info.config["cost"] == "flops"
    assert info.config["threads"] == 1 and info.config["torch_threads"] == 1
    assert info.config["input"] == [32, 40] and info.config["deploy_input"] == [48, 64]
    assert [e.payload["step"] for e in steps] == [0, 1, 2]
    assert steps[-1].payload["macs"] < steps[0].payload["macs"]
    assert candidate.genotype.startswith("hrnas(w4-8,b1-2,")
    assert candidate.latency_source == "measured" and candidate.latency_ms > 0
    assert candidate.onnx_path == str(run / "best.onnx")
    summary = json.loads(json.dumps(info.summary))
    assert summary["units_after"] < summary["units_before"]
    assert summary["macs_after"] == steps[-1].payload["macs"]  # at the training size
    assert candidate.flops > summary["macs_after"]  # at the (larger) deploy size
    deployed = summary["deployed"]
    assert deployed["input_shape"] == [1, 3, 48, 64] and deployed["device"] == "cpu"
    assert deployed["latency_ms"] == candidate.latency_ms == summary["latency_ms"]
    assert deployed["onnx_path"] == str(run / "best.onnx") and deployed["max_rel_err"] < 1e-3
    assert summary["onnx_metrics"]["miou"] == pytest.approx(summary["metrics"]["miou"], abs=1e-3)
    model = onnx.load(run / "best.onnx")
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["edgenas.hrnas_arch"] == candidate.genotype
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert all(d.dim_param for d in dims[2:])  # any height and width
    report = (run / "report.md").read_text()
    assert "| step | epoch | removed |" in report and "kept_units.png" in report
    # The task's baseline (U-Net) trained for the shrink's training time, beside it.
    (baseline,) = summary["baselines"]
    assert baseline["name"] == "unet" and baseline["latency_ms"] > 0
    assert baseline["input_shape"] == [1, 3, 48, 64] and "miou" in baseline["metrics"]
    assert (run / "samples.png").is_file() and "samples.png" in report
    assert "unet" in report and "at 1x3x48x64 on cpu (measured)" in report
    assert set(summary["iou_per_class"]) == {"floor", "wall", "box", "ball", "pole"}
    assert "### Per-class IoU" in report and "| floor |" in report

    # best.pt is an edgenas checkpoint: export, eval and profile take it like a search's.
    exported = run_cli("export", "--run", str(run), "-o", str(tmp_path / "again.onnx"), "--json")
    assert exported.returncode == 0, exported.stderr
    again = json.loads(exported.stdout)
    assert again["input_shape"] == [1, 3, 48, 64] and again["dynamic"]
    assert again["params"] == candidate.params
    evaluated = run_cli("eval", "--task", "seg", "--checkpoint", str(run / "best.pt"))
    assert evaluated.returncode == 0, evaluated.stderr
    assert "miou" in evaluated.stdout
    profiled = run_cli(
        "profile", str(run / "best.pt"), "--runs", "3", "--sessions", "1", "--warmup", "1"
    )
    assert profiled.returncode == 0, profiled.stderr
    assert "latency:" in profiled.stdout

    # Stopped after its final model was stored but before the report and the status
    # (as a kill between the two leaves it): --resume writes only what is missing.
    with RunStore.open(run) as store:
        store.set_status("interrupted")
    (run / "report.md").unlink()
    completed = run_cli("shrink", "--resume", str(run), "--quiet")
    assert completed.returncode == 0, completed.stderr
    assert "writing the missing outputs" in completed.stdout and "step 0" not in completed.stdout
    assert "status **finished**" in (run / "report.md").read_text()
    with RunStore.open_readonly(run) as store:
        assert store.run_info().status == "finished" and len(store.candidates()) == 1


def test_interrupted_shrink_resumes_from_its_folder(tmp_path):
    """Ctrl-C right after shrink step 1, then `edgenas shrink --resume`: the run ends
    with the same number of epochs, batches and shrink steps as an uninterrupted one."""
    from edgenas.hrnas.config import ShrinkConfig, SupernetConfig
    from edgenas.hrnas.session import STATE_FILE, ShrinkSession
    from edgenas.store import RunStore

    def ctrl_c_after_step_1(message: str) -> None:
        if message.startswith("step 1 "):
            raise KeyboardInterrupt

    run = tmp_path / "r"
    session = ShrinkSession(
        task="seg",
        config=SupernetConfig(widths=(4, 8), branches=(1, 2), tokens=2),
        shrink=ShrinkConfig(epochs=2, lam=0.05, epsilon=0.05, alpha_lr_mult=200, shrink_every=1),
        input_hw=(32, 40),
        baselines=(),
        run_dir=run,
        quiet=True,
        log=ctrl_c_after_step_1,
    )
    with pytest.raises(KeyboardInterrupt):
        session.run()
    with RunStore.open_readonly(run) as store:
        assert store.run_info().status == "interrupted"
    assert (run / STATE_FILE).is_file() and not (run / "best.pt").exists()

    changed = run_cli("shrink", "--resume", str(run), "--lambda", "1")
    assert_one_line_error(changed, "--resume", "drop --lambda")
    result = run_cli("shrink", "--resume", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stdout and "step 2 (epoch 2)" in result.stdout
    assert "step 1 " not in result.stdout  # done before the interruption
    for name in ("best.pt", "best.onnx", "best.latency.json", "report.md"):
        assert (run / name).is_file(), name
    assert not (run / STATE_FILE).exists()
    with RunStore.open_readonly(run) as store:
        info = store.run_info()
        steps = [e.payload["step"] for e in store.events(kinds=("shrink_step",))]
        kinds = [e.kind for e in store.events()]
    assert info.status == "finished" and steps == [0, 1, 2]
    assert kinds.count("run_resumed") == 1 and kinds[-1] == "run_finished"
    assert info.summary["epochs"] == 2 and info.summary["shrink_steps"] == 2
    assert info.summary["batches"] == 2 * (256 // 8)  # built-in scenes: 256 training images

    finished = run_cli("shrink", "--resume", str(run))
    assert_one_line_error(finished, "has finished", str(run / "report.md"))


def test_a_run_stopped_while_exporting_resumes_to_its_missing_outputs(tmp_path):
    """Ctrl-C while the final model is measured: the run is interrupted, not finished
    (its report does not exist yet), and `--resume` completes it without shrinking
    again."""
    from edgenas.errors import Interrupted
    from edgenas.hrnas.config import ShrinkConfig, SupernetConfig
    from edgenas.hrnas.session import STATE_FILE, ShrinkSession
    from edgenas.store import RunStore

    def ctrl_c_while_measuring(message: str) -> None:
        if message.startswith("measuring best.onnx"):
            raise KeyboardInterrupt

    run = tmp_path / "r"
    session = ShrinkSession(
        task="seg",
        config=SupernetConfig(widths=(4, 8), branches=(1, 2), tokens=2),
        shrink=ShrinkConfig(epochs=1),
        input_hw=(32, 40),
        baselines=(),
        run_dir=run,
        quiet=True,
        log=ctrl_c_while_measuring,
    )
    with pytest.raises(Interrupted, match=re.escape(f"edgenas shrink --resume {run}")):
        session.run()
    with RunStore.open_readonly(run) as store:
        assert store.run_info().status == "interrupted"
    assert (run / STATE_FILE).is_file() and not (run / "report.md").exists()

    result = run_cli("shrink", "--resume", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stdout and "step 1 " not in result.stdout  # not shrunk again
    for name in ("best.pt", "best.onnx", "best.latency.json", "report.md"):
        assert (run / name).is_file(), name
    assert not (run / STATE_FILE).exists()
    with RunStore.open_readonly(run) as store:
        info = store.run_info()
        steps = [e.payload["step"] for e in store.events(kinds=("shrink_step",))]
        kinds = [e.kind for e in store.events()]
    assert info.status == "finished" and steps == [0, 1] and kinds[-1] == "run_finished"


def test_resume_refuses_what_is_not_an_unfinished_shrink_run(tmp_path):
    from edgenas.store import RunStore

    missing = run_cli("shrink", "--resume", str(tmp_path / "nothing"))
    assert_one_line_error(missing, "not a shrink run")
    with RunStore.create(tmp_path / "search", name="search", kind="ldp-search", config={}):
        pass
    other = run_cli("shrink", "--resume", str(tmp_path / "search"))
    assert_one_line_error(other, "ldp-search run, not a shrink run")
    with RunStore.create(tmp_path / "early", name="early", kind="hrnas-shrink", config={}):
        pass  # stopped before its first state was saved
    early = run_cli("shrink", "--resume", str(tmp_path / "early"))
    assert_one_line_error(early, "no saved state")


def test_flag_defaults_are_the_dataclasses_defaults(tmp_path):
    """The command line writes no default of its own: `edgenas shrink --task seg` is
    the session a program gets from ShrinkSession(task="seg")."""
    from edgenas.cli import build_parser
    from edgenas.cli.shrink_cmd import _check, session_from_args
    from edgenas.hrnas.session import ShrinkSession

    args = build_parser().parse_args(["shrink", "--task", "seg", "--runs-dir", str(tmp_path)])
    from_cli = session_from_args(args, *_check(args))
    assert from_cli.settings() == ShrinkSession(task="seg").settings()


def test_supernet_preset_sets_the_shape_and_each_flag_overrides_it(tmp_path):
    """`--supernet small` is the CPU-sized supernet; a shape flag given beside a preset
    replaces that field only, and the session's stored settings carry the shape."""
    from edgenas.cli import build_parser
    from edgenas.cli.shrink_cmd import _check, session_from_args
    from edgenas.hrnas.config import SupernetConfig

    def config(*flags):
        args = build_parser().parse_args(
            ["shrink", "--task", "seg", "--runs-dir", str(tmp_path), *flags]
        )
        return session_from_args(args, *_check(args)).config

    small = config("--supernet", "small")
    args = build_parser().parse_args(
        ["shrink", "--task", "seg", "--supernet", "small", "--runs-dir", str(tmp_path)]
    )
    stored = session_from_args(args, *_check(args)).settings()["supernet"]
    assert SupernetConfig.from_dict(stored) == small
    assert (small.widths, small.branches, small.tokens, small.expansion) == (
        (16, 32, 64), (1, 2, 3), 0, 1.0,
    )  # fmt: skip
    assert config() == SupernetConfig()  # full: the dataclass's defaults
    with_tokens = config("--supernet", "small", "--tokens", "2", "--depth", "2")
    assert (with_tokens.widths, with_tokens.tokens, with_tokens.depth) == ((16, 32, 64), 2, 2)
    assert config("--supernet", "small", "--expansion", "1.5").expansion == 1.5
    assert config("--widths", "4,8", "--branches", "1,2").widths == (4, 8)


def test_resume_refuses_a_supernet_preset(tmp_path):
    """A resumed run keeps its stored shape: a preset beside --resume is refused."""
    result = run_cli("shrink", "--resume", str(tmp_path / "run"), "--supernet", "small")
    assert_one_line_error(result, "drop --supernet")


def test_runs_stored_before_the_latency_model_resume_with_measured_slopes(tmp_path):
    from edgenas.hrnas.session import ShrinkSession

    settings = ShrinkSession(task="seg", cost="latency").settings()
    del settings["latency_model"]
    assert ShrinkSession.from_settings(settings, tmp_path).latency_model == "measured"


@pytest.mark.slow  # suite time: see docs/testing.md
def test_shrink_with_latency_cost_tracks_measured_latency(tmp_path, monkeypatch):
    from edgenas.store import RunStore

    monkeypatch.setenv("EDGENAS_CACHE_DIR", str(tmp_path / "cache"))  # a fresh table
    result = run_cli(
        "shrink", "--task", "seg", "--cost", "latency", "--epochs", "1", "--lambda", "0.05",
        "--epsilon", "0.05", "--alpha-lr-mult", "200", "--align", "1", *TINY,
        "--runs-dir", str(tmp_path), "--name", "lat", "--baselines", "none", "--quiet",
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
        (["--task", "seg", "--latency-model", "kernels"], "--cost latency"),
        # The small preset's three branches need three widths: the error names the preset.
        (["--task", "seg", "--supernet", "small", "--widths", "8,16"], "--supernet small is"),
        (["--task", "seg", "--epochs", "0"], "--epochs"),
        (["--task", "seg", "--lambda", "-1"], "--lambda"),
        (["--task", "seg", "--threads", "0"], "--threads"),
        (["--task", "seg", "--torch-threads", "0"], "--torch-threads"),
        (["--task", "seg", "--deploy-input", "48x"], "48x"),
        (["--task", "seg", "--val-data", "/no/such/val"], "/no/such/val"),
        (["--task", "seg", "--workers", "-1"], "--workers"),
        (["--task", "seg", "--alpha-lr-mult", "-5"], "--alpha-lr-mult"),
        (["--task", "sr", "--scale", "0"], "--scale"),
        (["--epochs", "2"], "--task is required"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, fragment):
    result = run_cli("shrink", *args, "--runs-dir", str(tmp_path / "runs"))
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("missing", "args", "fragments"),
    [
        # a phone that is not connected: nobody listens on the adb server's port
        ("phone", ["--device", "pixel3a"], ("pixel3a", "adb")),
        # no kernel calibration in a fresh cache: the error names the command that makes one
        (
            "calibration",
            ["--latency-model", "kernels"],
            ("no kernel calibration", "edgenas devices calibrate cpu"),
        ),
    ],
)
def test_missing_device_prerequisites_fail_before_any_work(
    tmp_path, monkeypatch, missing, args, fragments
):
    if missing == "phone":
        monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(_free_port()))
    else:
        monkeypatch.setenv("EDGENAS_CACHE_DIR", str(tmp_path / "cache"))
    result = run_cli(
        "shrink", "--task", "seg", "--cost", "latency", *args, "--runs-dir", str(tmp_path / "runs")
    )
    assert_one_line_error(result, *fragments)
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
    assert (tmp_path / "camvid" / "best.onnx").is_file()


def test_help_says_the_dataclass_defaults_and_the_outputs(capsys):
    from edgenas.cli import build_parser
    from edgenas.hrnas.config import ShrinkConfig

    with pytest.raises(SystemExit):
        build_parser().parse_args(["shrink", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text
    assert f"--lambda LAM weight of the resource term (default: {ShrinkConfig().lam})" in text
    assert f"(default {ShrinkConfig.DEFAULT_EPOCHS})" in text
    assert "best.pt" in text and "best.onnx" in text and "--resume" in text


def test_sr_shrink_checks_its_any_size_onnx_model_on_whole_images(tmp_path):
    """Super-resolution validates on whole images of their own sizes, which the ONNX
    model can now take: its metrics are computed, and equal PyTorch's."""
    from edgenas.store import RunStore

    result = run_cli(
        "shrink", "--task", "sr", "--epochs", "1", "--widths", "4,8", "--branches", "1,2",
        "--tokens", "2", "--input", "16x16", "--runs-dir", str(tmp_path), "--name", "sr",
        "--baselines", "none", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "val (ONNX):  psnr" in result.stdout
    with RunStore.open_readonly(tmp_path / "sr") as store:
        summary = store.run_info().summary
    assert summary["onnx_metrics"]["psnr"] == pytest.approx(summary["metrics"]["psnr"], abs=0.01)
    assert summary["deployed"]["input_shape"] == [1, 3, 16, 16]  # the LR training size


def test_runs_stored_before_the_clock_setting_resume_on_the_wall_clock(tmp_path):
    """New runs count CPU time (stored as "clock"); a stored run without the field
    keeps the wall clock it was started with."""
    from edgenas.hrnas.session import ShrinkSession

    settings = ShrinkSession(task="seg").settings()
    assert settings["clock"] == "cpu"
    assert ShrinkSession.from_settings(settings, tmp_path).shrink.clock == "cpu"
    del settings["clock"]
    assert ShrinkSession.from_settings(settings, tmp_path).shrink.clock == "wall"
