"""Reference models (edgenas.models.reference): every registry entry is built, run at an
odd size, trained one step, rebuilt from its options and exported; bicubic matches PIL;
``edgenas models`` and ``edgenas export --model`` through the real console script."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, run_cli

from edgenas.export import export_onnx, read_metadata, run_onnxruntime
from edgenas.models.complexity import count_params
from edgenas.models.reference import REFERENCE_MODELS, build_reference, reference_names

NAMES = list(REFERENCE_MODELS)
ODD = (37, 53)


def _output_shape(model, n: int, h: int, w: int) -> tuple[int, ...]:
    if model.task == "sr":
        s = model.options["scale"]
        return (n, 3, s * h, s * w)
    if model.task == "segmentation":
        return (n, model.options["num_classes"], h, w)
    return (n, 1, h, w)


def test_registry_covers_the_three_tasks():
    assert set(NAMES) == {"bicubic", "espcn", "fsrcnn", "lraspp", "unet", "fastdepth"}
    assert reference_names("sr") == ["bicubic", "espcn", "fsrcnn"]
    assert reference_names("seg") == ["lraspp", "unet"]
    assert reference_names("depth") == ["fastdepth"]
    assert reference_names("classification") == []
    for entry in REFERENCE_MODELS.values():
        assert entry.description and entry.citation
        assert json.loads(json.dumps(entry.defaults)) == entry.defaults


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_rebuild(name):
    torch.manual_seed(0)
    model = build_reference(name)
    entry = REFERENCE_MODELS[name]
    assert model.reference == name and model.task == entry.task
    assert json.loads(json.dumps(model.options)) == model.options  # plain JSON values
    assert set(model.options) == set(entry.defaults)

    image = torch.rand(2, 3, *ODD)
    out = model(image)
    assert tuple(out.shape) == _output_shape(model, 2, *ODD)
    assert torch.isfinite(out).all()
    if model.task == "depth":
        assert (out > 0).all()

    params = [p for p in model.parameters() if p.requires_grad]
    if not entry.learned:
        assert params == [] and count_params(model) == 0
    else:
        # Zero-initialised last layers (sr) block gradients to earlier layers: perturb
        # them so that every parameter's gradient must flow.
        with torch.no_grad():
            for p in params:
                if not p.any():
                    p.normal_(0, 0.01)
        model(image).square().mean().backward()
        for pname, p in model.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, pname

    again = build_reference(model.reference, **model.options)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in again.state_dict().items()} == shapes
    assert again.options == model.options


def test_sr_models_start_as_bilinear():
    image = torch.rand(1, 3, 9, 11)
    for name in ("espcn", "fsrcnn"):
        for scale in (2, 3, 4):
            model = build_reference(name, scale=scale).eval()
            expected = torch.nn.functional.interpolate(
                image, scale_factor=scale, mode="bilinear", align_corners=False
            )
            with torch.no_grad():
                assert torch.allclose(model(image), expected, atol=1e-6), (name, scale)


@pytest.mark.parametrize("name", NAMES)
def test_onnx_export_with_dynamic_size(name, tmp_path):
    torch.manual_seed(0)
    model = build_reference(name)
    report = export_onnx(model, (1, 3, *ODD), tmp_path / f"{name}.onnx", dynamic=True)
    assert report.output_shape == _output_shape(model, 1, *ODD)
    metadata = read_metadata(report.path)
    assert metadata["model"] == name and metadata["task"] == model.task
    image = torch.rand(1, 3, 29, 64)
    with torch.no_grad():
        expected = model.eval()(image).numpy()
    got = run_onnxruntime(report.path, image.numpy())
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, float(np.abs(expected).max()))


def test_parameter_counts():
    params = {name: count_params(build_reference(name)) for name in NAMES}
    assert params["bicubic"] == 0
    assert 26_000 <= params["espcn"] <= 28_000
    assert 12_000 <= params["fsrcnn"] <= 25_000
    assert 30_000 <= params["unet"] <= 80_000
    assert 200_000 <= params["lraspp"] <= 1_500_000
    assert 300_000 <= params["fastdepth"] <= 3_000_000
    # Options change the architecture as they say.
    assert count_params(build_reference("fastdepth", width=0.25)) < params["fastdepth"]
    assert count_params(build_reference("lraspp", width=0.5)) < params["lraspp"]
    assert count_params(build_reference("espcn", scale=4)) > params["espcn"]
    assert build_reference("unet", widths=(8, 16, 32)).options["widths"] == [8, 16, 32]


def _pil_upscale(array: np.ndarray, scale: int) -> np.ndarray:
    from PIL import Image

    h, w = array.shape[:2]
    return np.asarray(Image.fromarray(array).resize((w * scale, h * scale), Image.BICUBIC))


def _images() -> dict[str, np.ndarray]:
    from PIL import Image
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    rng = np.random.default_rng(0)
    return {
        "astronaut/2": np.asarray(astronaut.resize((256, 256), Image.BICUBIC)),
        "astronaut odd": np.asarray(astronaut.resize((53, 37), Image.BICUBIC)),
        "noise": rng.integers(0, 256, (37, 53, 3), dtype=np.uint8),
        "smooth noise": np.asarray(
            Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).resize(
                (47, 31), Image.BICUBIC
            )
        ),
    }


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_matches_pil(scale):
    model = build_reference("bicubic", scale=scale).eval()
    for label, array in _images().items():
        image = torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            ours = model(image)[0].permute(1, 2, 0).numpy()
        ours = np.round(ours * 255).astype(np.float64)
        pil = _pil_upscale(array, scale).astype(np.float64)
        assert ours.shape == pil.shape
        within_one = float((np.abs(ours - pil) <= 1).mean())
        psnr = 10 * np.log10(255**2 / max(float(((ours - pil) ** 2).mean()), 1e-12))
        assert within_one >= 0.99 and psnr >= 45, (label, within_one, psnr)


def test_fastdepth_output_starts_at_the_training_median():
    from edgenas.models.heads import DepthHead
    from edgenas.tasks import get_task

    torch.manual_seed(0)
    model = build_reference("fastdepth")
    assert isinstance(model.head, DepthHead)
    data = [(torch.rand(3, 32, 40), torch.full((1, 32, 40), 3.0)) for _ in range(4)]
    get_task("depth").init_output(model, data)
    with torch.no_grad():
        out = model.eval()(torch.rand(1, 3, 32, 40))
    assert abs(float(out.median()) - 3.0) < 0.3


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        (lambda: build_reference("resnet50"), ["'resnet50'", "espcn", "fastdepth"]),
        (lambda: build_reference("espcn", num_classes=3), ["num_classes", "scale"]),
        (lambda: build_reference("unet", width=2.0), ["width", "widths"]),
        (lambda: build_reference("espcn", task="depth"), ["sr", "depth"]),
        (lambda: build_reference("lraspp", task="sr"), ["segmentation", "sr"]),
        (lambda: build_reference("unet", task="detection"), ["detection"]),
        (lambda: build_reference("fsrcnn", scale=5), ["scale", "5"]),
        (lambda: build_reference("lraspp", num_classes=1), ["num_classes"]),
        (lambda: build_reference("fastdepth", width=0), ["width"]),
    ],
)
def test_bad_requests_are_value_errors_naming_the_problem(call, fragments):
    with pytest.raises(ValueError) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_task_alias_is_accepted():
    assert build_reference("unet", task="seg").task == "segmentation"


# --- command line ---------------------------------------------------------------------------


def test_models_json_without_latency():
    result = run_cli("models", "--no-latency", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == NAMES
    by_name = {row["name"]: row for row in rows}
    assert by_name["espcn"]["input_shape"] == [1, 3, 120, 160]
    assert by_name["espcn"]["output_shape"] == [1, 3, 240, 320]
    assert by_name["lraspp"]["input_shape"] == [1, 3, 180, 240]
    assert by_name["fastdepth"]["output_shape"] == [1, 1, 128, 160]
    for row in rows:
        assert row["latency_ms"] is None and row["citation"]
        assert (row["params"] > 0) == row["learned"]
        assert (row["macs"] > 0) == row["learned"]


def test_models_table_with_latency():
    result = run_cli("models", "--task", "sr", "--input", "24x32")
    assert result.returncode == 0, result.stderr
    for name in ("bicubic", "espcn", "fsrcnn"):
        assert name in result.stdout
    assert "lraspp" not in result.stdout and "ms" in result.stdout
    assert "Shi et al." in result.stdout


def test_export_reference_model(tmp_path):
    out = tmp_path / "X.onnx"
    result = run_cli(
        "export", "--model", "espcn", "--scale", "3", "--input", "1x3x24x32", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    metadata = read_metadata(out)
    assert metadata["model"] == "espcn" and metadata["task"] == "sr"
    assert metadata["task.scale"] == "3" and "genotype" not in metadata
    got = run_onnxruntime(out, np.random.default_rng(0).random((1, 3, 24, 32), np.float32))
    assert got.shape == (1, 3, 72, 96)


def _run_in_process(*args: str) -> subprocess.CompletedProcess:
    """``edgenas ARGS`` through the same entry point as the console script, in this process
    (a fresh interpreter costs seconds of torch import per case on a shared machine)."""
    from edgenas.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(list(args))
        except SystemExit as exit:  # argparse errors
            code = exit.code
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())


BAD_INPUT = [
    (["models", "--task", "detection"], ["unknown task 'detection'"]),
    (["models", "--task", "cls"], ["no reference models"]),
    (["models", "--input", "12xA"], ["bad shape"]),
    (["models", "--input", "1x1x24x32", "--no-latency"], ["3-channel"]),
    (["export", "--model", "resnet50"], ["unknown reference model 'resnet50'"]),
    (["export", "--model", "espcn", "--task", "depth"], ["--task depth"]),
    (["export", "--model", "espcn", "--genotype", "S2"], ["--genotype", "--model"]),
    (["export", "--model", "espcn", "--upsampler", "deconv"], ["--upsampler"]),
    (["export", "--model", "unet", "--scale", "2"], ["--scale"]),
    (["export", "--model", "fsrcnn", "--scale", "5"], ["--scale: must be 2, 3 or 4"]),
    (["export"], ["--genotype", "--model"]),
]


@pytest.mark.parametrize(("args", "fragments"), BAD_INPUT)
def test_bad_input_gets_one_line_and_exit_2(args, fragments, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(_run_in_process(*args), *fragments)
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("index", [5])
def test_bad_input_through_the_console_script(index, tmp_path):
    args, fragments = BAD_INPUT[index]
    assert_one_line_error(run_cli(*args, cwd=tmp_path), *fragments)
    assert list(tmp_path.iterdir()) == []
