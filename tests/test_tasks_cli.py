"""`edgenas train` and `edgenas eval` as a user runs them (tiny budgets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgenas.cli import main

TINY = "S2:" + "-".join(["ds_k3_se0_nores_c8_n1"] * 12)


def test_train_then_eval_segmentation_on_demo_data(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--task", "seg", "--genotype", TINY, "--input", "32x40", "--epochs", "1",
                 "--workers", "0", "--torch-threads", "1", "-o", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "val: miou" in text and "normalised accuracy" in text
    assert {p.name for p in out.iterdir()} == {"checkpoint.pt", "metrics.json", "samples.png",
                                               "model.onnx", "model.latency.json",
                                               "model.static.onnx", "model.static.latency.json"}  # fmt: skip
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["epochs"] == 1 and summary["input"] == [32, 40]
    # Exported like a search's model: any size, latency measured at the training size.
    deployed = summary["deployed"]
    assert deployed["input_shape"] == [1, 3, 32, 40] and deployed["latency_ms"] > 0
    assert "model.onnx: " in text and "at 1x3x32x40 on cpu (measured)" in text
    assert f"fixed size {out / 'model.static.onnx'}: " in text and "x the any-size file: " in text
    assert deployed["fixed"]["onnx_path"] == str(out / "model.static.onnx")
    assert main(["eval", "--task", "seg", "--onnx", str(out / "model.onnx"), "--input", "48x56",
                 "--torch-threads", "1"]) == 0  # fmt: skip
    assert main(["eval", "--task", "seg", "--checkpoint", str(out / "checkpoint.pt"),
                 "--torch-threads", "1", "--json", str(tmp_path / "e.json")]) == 0  # fmt: skip
    evaluated = json.loads((tmp_path / "e.json").read_text())
    assert evaluated["metrics"]["miou"] == pytest.approx(summary["metrics"]["miou"], abs=1e-9)
    # The trained checkpoint exports with dynamic height and width (default) and scores
    # the same through onnxruntime.
    onnx_path = tmp_path / "seg.onnx"
    capsys.readouterr()
    assert main(["export", "--checkpoint", str(out / "checkpoint.pt"), "-o", str(onnx_path),
                 "--json"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["dynamic"] is True and report["input_shape"] == [1, 3, 32, 40]
    assert main(["eval", "--task", "seg", "--onnx", str(onnx_path), "--input", "32x40",
                 "--torch-threads", "1", "--json", str(tmp_path / "o.json")]) == 0  # fmt: skip
    through_onnx = json.loads((tmp_path / "o.json").read_text())
    assert through_onnx["metrics"]["miou"] == pytest.approx(summary["metrics"]["miou"], abs=1e-3)
    # The same weights as OpenVINO IR, evaluated on OpenVINO's CPU plugin at another size.
    xml = tmp_path / "seg.xml"
    assert main(["export", "--checkpoint", str(out / "checkpoint.pt"), "--format", "openvino",
                 "-o", str(xml)]) == 0  # fmt: skip
    for flag, path in (("--onnx", onnx_path), ("--openvino", xml)):
        assert main(["eval", "--task", "seg", flag, str(path), "--input", "48x56",
                     "--json", str(tmp_path / f"{flag[2:]}.json")]) == 0  # fmt: skip
    by_ort = json.loads((tmp_path / "onnx.json").read_text())["metrics"]
    by_openvino = json.loads((tmp_path / "openvino.json").read_text())["metrics"]
    assert by_openvino["miou"] == pytest.approx(by_ort["miou"], abs=1e-3)
    capsys.readouterr()
    assert main(["eval", "--task", "seg", "--onnx", str(xml)]) == 2
    assert "evaluate it with --openvino" in capsys.readouterr().err
    static = tmp_path / "static.onnx"
    assert main(["export", "--checkpoint", str(out / "checkpoint.pt"), "--static",
                 "-o", str(static)]) == 0  # fmt: skip
    assert main(["eval", "--task", "seg", "--onnx", str(static), "--input", "64x80"]) == 2
    assert "takes a fixed 32x40 input" in capsys.readouterr().err


def test_train_sr_on_a_folder_and_eval_onnx(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from edgenas.export import export_onnx
    from edgenas.training import load_checkpoint, model_from_checkpoint

    data = tmp_path / "hr"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)).save(data / f"{i}.png")
    out = tmp_path / "run"
    assert main(["train", "--task", "sr", "--data", str(data), "--val-data", str(data),
                 "--genotype", TINY, "--input", "12x12", "--epochs", "1", "--scale", "3",
                 "--workers", "0", "--torch-threads", "1", "-o", str(out), "--quiet"]) == 0  # fmt: skip
    assert "val: psnr" in capsys.readouterr().out
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["extra"]["val_data"] == str(data)  # export and eval validate on it
    model = model_from_checkpoint(ckpt).eval()
    export_onnx(model, (1, 3, 12, 12), tmp_path / "sr.onnx", dynamic=True)
    for source in (
        ["--checkpoint", str(out / "checkpoint.pt")],
        ["--onnx", str(tmp_path / "sr.onnx"), "--scale", "3"],
    ):
        assert (
            main(["eval", "--task", "sr", "--data", str(data), *source, "--torch-threads", "1"])
            == 0
        )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("psnr")]
    assert len(lines) == 2 and lines[0] == lines[1]  # ONNX and PyTorch agree to 2 decimals


def test_eval_bicubic_baseline_on_demo_sr(capsys):
    assert main(["eval", "--task", "sr", "--baseline", "bicubic", "--torch-threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "bicubic baseline on <built-in>" in text and "psnr" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--task", "nope"], "unknown task 'nope'"),
        (["train", "--task", "seg", "--data", "/no/such/dir"], "does not exist"),
        (["train", "--task", "seg", "--genotype", "S2:bogus"], "bad"),
        (["train", "--task", "seg", "--input", "12xab"], "bad shape"),
        (["train", "--task", "sr", "--scale", "5"], "argument --scale: must be 2, 3 or 4"),
        (
            ["train", "--task", "seg", "--seconds", "-1"],
            "argument --seconds: must be a positive number",
        ),
        (["eval", "--task", "seg", "--baseline", "bicubic"], "for --task sr only"),
        (["eval", "--task", "seg", "--checkpoint", "/no/ckpt.pt"], "does not exist"),
        (["eval", "--task", "depth", "--onnx", "/no/m.onnx"], "not found"),
        (["train", "--task", "sr", "--model", "nope"], "unknown model 'nope'"),
        (["train", "--task", "seg", "--device", "toaster"], "unknown device 'toaster'"),
        (
            ["train", "--task", "seg", "--threads", "0"],
            "argument --threads: must be a positive integer",
        ),
        (["train", "--task", "sr", "--model", "unet"], "is a segmentation model, not sr"),
        (["train", "--task", "sr", "--model", "bicubic"], "nothing to train"),
        (["train", "--task", "seg", "--genotype", ""], "bad"),
        (["train", "--task", "seg", "--lr", "nan"], "argument --lr: must be a positive number"),
        (["train", "--task", "seg", "--scale", "3"], "--scale applies to --task sr only"),
        (["train", "--task", "seg", "--accelerator", "tpu"], "unknown accelerator 'tpu'"),
    ],
)
def test_bad_input_is_one_line_error_with_exit_2(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as exit:  # numbers are range-checked by the parser
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(("edgenas: error: ", f"edgenas {argv[0]}: error: ")) and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_budget_options_are_exclusive_and_help_teaches(capsys):
    for argv in (
        ["train", "--task", "seg", "--epochs", "1", "--seconds", "3"],
        ["train", "--task", "sr", "--genotype", TINY, "--model", "espcn"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    for command in ("train", "eval"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "examples:" in capsys.readouterr().out


def test_eval_on_camvid_names_the_mismatch(shared_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "seg", "--genotype", TINY, "--input", "32x40", "--epochs", "1",
                 "--workers", "0", "--torch-threads", "1", "-o", str(out), "--quiet"]) == 0  # fmt: skip
    code = main(["eval", "--task", "seg", "--data", str(shared_data / "camvid"),
                 "--checkpoint", str(out / "checkpoint.pt")])  # fmt: skip
    assert code == 2
    assert "checkpoint predicts 5 classes" in capsys.readouterr().err


def test_train_a_reference_model_then_resume_it_towards_its_budget(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    data = tmp_path / "hr"
    data.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)).save(data / f"{i}.png")
    out = tmp_path / "run"
    argv = ["train", "--task", "sr", "--model", "espcn", "--data", str(data), "--val-data",
            str(data), "--input", "12x12", "--torch-threads", "1", "-o", str(out), "--quiet"]  # fmt: skip
    assert main([*argv, "--epochs", "1"]) == 0
    text = capsys.readouterr().out
    assert "model espcn" in text and "lr 0.001" in text  # ESPCN's preferred rate
    # A run with its own settings resumes with them, not with the recipe's defaults.
    custom = tmp_path / "custom"
    custom_argv = [*argv[:-3], "-o", str(custom), "--quiet", "--lr", "0.002", "--batch-size", "4"]
    assert main([*custom_argv, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["train", "--task", "sr", "--resume", str(custom / "checkpoint.pt"), "--data",
                 str(data), "--val-data", str(data), "-o", str(custom), "--epochs", "2"]) == 0  # fmt: skip
    assert "batch 4, lr 0.002" in capsys.readouterr().out
    # Final weights without a training state (a search's best.pt) are refused in one line.
    import torch

    weights_only = torch.load(custom / "checkpoint.pt", weights_only=True)
    del weights_only["optimizer"]
    torch.save(weights_only, tmp_path / "best.pt")
    assert main(["train", "--task", "sr", "--resume", str(tmp_path / "best.pt"),
                 "--data", str(data)]) == 2  # fmt: skip
    assert "holds trained weights only" in capsys.readouterr().err
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["model"] == "espcn" and summary["network"]["task"] == "sr"
    assert summary["recipe"] == "fast" and summary["in_memory"] is True
    first_steps = summary["steps"]
    # --resume continues the checkpoint's network; with a longer budget it trains on.
    resume = ["train", "--task", "sr", "--resume", str(out / "checkpoint.pt"), "--data",
              str(data), "--val-data", str(data), "--torch-threads", "1", "-o", str(out), "--quiet"]  # fmt: skip
    assert main([*resume, "--epochs", "2"]) == 0
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["model"] == "espcn" and resumed["steps"] == 2 * first_steps
    assert main([*resume, "--model", "fsrcnn"]) == 2
    assert "drop --genotype/--model" in capsys.readouterr().err


def test_train_without_o_takes_the_next_free_folder(tmp_path, monkeypatch):
    import argparse

    from edgenas.cli.train_cmd import _output_folder

    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(out=None, resume=None, overwrite=False)
    assert _output_folder(args, "sr") == Path("runs/sr")
    for name in ("sr", "sr-2"):  # earlier trainings hold these
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "checkpoint.pt").write_bytes(b"x")
    assert _output_folder(args, "sr") == Path("runs/sr-3")
    assert _output_folder(argparse.Namespace(out=None, resume=None, overwrite=True), "sr") == (
        Path("runs/sr")
    )
    assert _output_folder(argparse.Namespace(out="mine", resume=None, overwrite=False), "sr") == (
        Path("mine")
    )
