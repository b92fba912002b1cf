"""What the search and shrink reports say: targets, units, latency with size, samples,
baselines; from a real tiny SR search, and from stores of older and newer runs."""

from __future__ import annotations

import math
import os
import stat

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli

from edgenas.baselines import (
    comparison_table,
    metric_text,
    parse_baselines,
    resolve_baselines,
    seed_note,
)
from edgenas.errors import UserError
from edgenas.search.config import SearchConfig
from edgenas.store import RunStore

# A tiny SR search: 24x24 LR patches, 16x16 deploy size, two steps per training.
TINY_SR = ["--task", "sr", "--input", "24x24", "--deploy-input", "16x16",
           "--target-params", "40k", "--pool", "4", "--parents", "1", "--children", "1",
           "--iterations", "1", "--train-steps", "2", "--final-steps", "2",
           "--batch-size", "4", "--seed", "1"]  # fmt: skip


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_sr_search_report_states_target_units_samples_and_baselines(tmp_path, umask_022):
    result = run_cli("search", *TINY_SR, "--baselines", "bicubic,espcn", "--name", "sr",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    run_dir = tmp_path / "runs" / "sr"
    with RunStore.open_readonly(run_dir) as store:
        summary = store.run_info().summary
    # The baselines: trained (espcn) or not (bicubic) with the final budget, measured.
    rows = {row["name"]: row for row in summary["baselines"]}
    assert list(rows) == ["bicubic", "espcn"]
    assert rows["bicubic"]["steps"] == 0 and rows["espcn"]["steps"] == 2
    assert rows["bicubic"]["params"] == 0 and rows["espcn"]["params"] > 0
    for row in rows.values():
        assert "error" not in row, row
        assert math.isfinite(row["metrics"]["psnr"]) and 0.0 <= row["accuracy"] <= 1.0
        assert row["latency_ms"] > 0 and row["input_shape"] == [1, 3, 16, 16]
        assert row["latency_text"].endswith("at 1x3x16x16 on cpu (measured)")
        for suffix in (".onnx", ".latency.json"):
            assert (run_dir / "baselines" / f"baseline-{row['name']}{suffix}").is_file()
    report = (run_dir / "report.md").read_text()
    # The target and whether the final model met it.
    assert "Target: parameters <= 40,000" in report
    met = summary["final_params"] <= 40_000
    assert ("meets the target" in report) == met and ("misses the target" in report) != met
    # Metrics in their units, latency with size and source.
    assert f"PSNR {summary['final_metrics']['psnr']:.2f} dB" in report
    deployed = summary["deployed"]
    assert deployed["input_shape"] == [1, 3, 16, 16]
    assert f"{deployed['latency_ms']:.2f} ms at 1x3x16x16 on cpu (measured)" in report
    # Samples and the comparison table with every baseline and its latency.
    assert "![samples](samples.png)" in report
    assert "| model | PSNR | SSIM | params | MACs | latency |" in report
    for name, row in rows.items():
        line = next(x for x in report.splitlines() if x.startswith(f"| {name} |"))
        assert f"{row['metrics']['psnr']:.2f} dB" in line and row["latency_text"] in line
    assert next(x for x in report.splitlines() if x.startswith("| final model (this search) |"))
    # Under the table: one seed per row, and the seed spread measured for SR.
    assert seed_note("sr") in report and "PSNR moved by up to" in seed_note("sr")
    # Every file the report step writes is readable by others under umask 022.
    for name in ("report.md", "samples.png", "pareto.png", "progress.png"):
        assert _mode(run_dir / name) == 0o644, name
    from PIL import Image

    assert Image.open(run_dir / "samples.png").format == "PNG"


def test_search_refuses_baselines_of_another_task_before_any_work(tmp_path):
    result = run_cli("search", "--task", "sr", "--baselines", "fastdepth", cwd=tmp_path)
    assert_one_line_error(result, "fastdepth", "depth model")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    result = run_cli("search", "--task", "seg", "--baselines", "nope", cwd=tmp_path)
    assert_one_line_error(result, "unknown baseline 'nope'", "unet")


def test_the_seed_note_gives_a_measured_spread_only_where_one_was_measured():
    assert seed_note("segmentation") == seed_note("seg")
    assert "mIoU moved by up to 0.03-0.04" in seed_note("seg")
    generic = seed_note("depth")
    assert "one training with one seed" in generic and "Over several seeds" in generic
    assert not any(unit in generic for unit in ("mIoU", "dB", "REL"))


def test_baseline_names_and_metric_units():
    assert parse_baselines(None) is None and parse_baselines("none") == ()
    assert parse_baselines("espcn, fsrcnn") == ("espcn", "fsrcnn")
    assert resolve_baselines("sr", None) == ("bicubic", "espcn")
    assert resolve_baselines("seg", None) == ("unet",)
    assert resolve_baselines("depth", ()) == ()
    with pytest.raises(UserError, match="segmentation model"):
        resolve_baselines("depth", ["unet"])
    assert metric_text("sr", {"psnr": 32.456, "ssim": 0.91}) == "PSNR 32.46 dB, SSIM 0.9100"
    assert (
        metric_text("depth", {"delta1": 0.5, "rel": 0.25, "rmse": 0.4123})
        == "REL 0.2500, RMSE 0.412 m, delta1 0.5000"
    )
    table = comparison_table(
        "segmentation",
        [
            {"name": "a", "metrics": {"miou": 0.5}, "params": 12_345, "macs": 2_500_000,
             "latency_text": "1.00 ms at 1x3x8x8 on cpu (measured)"},
            {"name": "b", "metrics": {"miou": 0.4}, "params": 10, "macs": 0, "error": "E: x"},
        ],
    )  # fmt: skip
    assert table[0] == "| model | mIoU | params | MACs | latency |"
    assert table[2] == "| a | 0.5000 | 12.35k | 2.50M | 1.00 ms at 1x3x8x8 on cpu (measured) |"
    assert table[3].endswith("| failed: E: x |")


def _old_search_store(run_dir, latency_ms: float) -> None:
    """A finished depth search as runs before the new summary keys recorded it."""
    config = SearchConfig(
        target_latency_ms=25.0, run_name=run_dir.name, runs_dir=str(run_dir.parent)
    ).to_dict()
    config.pop("baselines")
    store = RunStore.create(run_dir, name=run_dir.name, kind="ldp-search", config=config)
    with store:
        ids = [
            store.add_candidate(
                f"S2:genotype-{i}", origin="parent", status="trained", iteration=i,
                params=20_000 + 1000 * i, flops=3_000_000, latency_ms=10.0 + i,
                latency_source="measured", accuracy=0.3 + 0.1 * i, grade=0.5 + 0.1 * i,
                metrics={"rel": 0.3, "rmse": 0.5, "delta1": 0.3 + 0.1 * i},
            )
            for i in range(3)
        ]  # fmt: skip
        store.set_status(
            "finished",
            {
                "alpha": 0.5, "best": "S2:genotype-2", "best_candidate_id": ids[2],
                "best_grade": 0.7, "best_proxy_accuracy": 0.5,
                "final_metrics": {"rel": 0.21, "rmse": 0.4123, "delta1": 0.61},
                "final_accuracy": 0.61, "onnx": str(run_dir / "best.onnx"),
                "latency_ms": latency_ms, "device": "cpu", "trained": 3, "seconds": 12.0,
            },
        )  # fmt: skip


@pytest.mark.parametrize(("latency", "verdict"), [(12.3, "meets"), (31.0, "misses")])
def test_report_of_an_older_run_renders_what_its_summary_has(tmp_path, latency, verdict):
    from edgenas.search.report import write_report

    run_dir = tmp_path / "old"
    _old_search_store(run_dir, latency)
    report = write_report(run_dir).read_text()
    assert "Target: latency on cpu at 1x3x120x160 <= 25 ms" in report
    assert f"The final model **{verdict} the target**" in report
    assert f"{latency:.2f} ms at 1x3x120x160 on cpu (measured)" in report
    assert "REL 0.2100, RMSE 0.412 m, delta1 0.6100" in report
    assert "| parameters | 22,000 |" in report  # from the best candidate
    assert "Compared with baselines" not in report and "samples.png" not in report
    assert (run_dir / "pareto.png").is_file() and (run_dir / "progress.png").is_file()


def _shrink_store(run_dir, summary: dict) -> None:
    config = {
        "method": "hrnas-progressive-shrinking", "task": "segmentation", "data": "built-in",
        "val_data": None, "input": [32, 40], "cost": "flops", "device": "cpu",
        "lambda": 0.05, "epsilon": 0.05, "align": 8, "shrink_every": 1,
        "supernet": {"widths": [4, 8]},
    }  # fmt: skip
    store = RunStore.create(run_dir, name=run_dir.name, kind="hrnas-shrink", config=config)
    with store:
        store.add_candidate(
            "hrnas(w4-8):1/1/1/0", origin="extracted", status="trained", params=900,
            flops=120_000, latency_ms=2.5, latency_source="measured", device="cpu",
            metrics={"miou": 0.31, "pixel_acc": 0.7}, accuracy=0.31,
        )  # fmt: skip
        store.set_status("finished", summary)


def test_shrink_report_shows_penalty_units_latency_samples_and_baselines(tmp_path, umask_022):
    from edgenas.hrnas.report import write_report

    base = {"metrics": {"miou": 0.31, "pixel_acc": 0.7}, "params_before": 5000,
            "params_after": 900, "macs_before": 800_000, "macs_after": 120_000,
            "latency_ms": 2.5, "device": "cpu"}  # fmt: skip
    old = tmp_path / "old"
    _shrink_store(old, base)
    report = write_report(old)[0].read_text()
    assert "Resource penalty: lambda = 0.05" in report and "cost = MACs at 1x3x32x40" in report
    assert "mIoU 0.3100, pixel accuracy 0.7000" in report
    assert "2.50 ms at 1x3x32x40 on cpu (measured)" in report
    assert "| params | 900 (supernet 5,000) |" in report
    assert "Compared with baselines" not in report and "samples.png" not in report

    new = tmp_path / "new"
    deployed = {"onnx_path": str(new / "best.onnx"), "latency_ms": 1.75,
                "input_shape": [1, 3, 48, 64], "device": "pixel3a", "device_kind": "emulated"}  # fmt: skip
    unet = {"name": "unet", "metrics": {"miou": 0.2, "pixel_acc": 0.6}, "params": 40_000,
            "macs": 9_000_000, "latency_ms": 4.0,
            "latency_text": "4.00 ms at 1x3x48x64 on pixel3a (emulated)"}  # fmt: skip
    _shrink_store(new, {**base, "deployed": deployed, "baselines": [unet]})
    from PIL import Image

    Image.new("RGB", (8, 8)).save(new / "samples.png")
    report = write_report(new)[0].read_text()
    assert "1.75 ms at 1x3x48x64 on pixel3a (emulated)" in report
    assert "![samples](samples.png)" in report
    assert "| unet | 0.2000 | 0.6000 | 40.00k | 9.00M | 4.00 ms at 1x3x48x64 on pixel3a" in report
    assert seed_note("seg") in report and "mIoU" in seed_note("seg")
    own = next(x for x in report.splitlines() if x.startswith("| extracted network (this run) |"))
    assert "1.75 ms at 1x3x48x64" in own
    assert _mode(new / "report.md") == 0o644


def test_segmentation_samples_use_class_colours_and_a_legend(tmp_path, umask_022):
    import torch

    from edgenas.models.reference import build_reference
    from edgenas.tasks import get_task
    from edgenas.visualize import class_legend, class_palette, colourise_labels, write_samples

    task = get_task("seg")
    _, val = task.demo_data(size=(32, 40))
    torch.manual_seed(0)
    model = build_reference("unet", "seg", num_classes=val.info.num_classes)
    path = write_samples(model, task, val, tmp_path / "samples.png", n=2)
    assert path.is_file() and _mode(path) == 0o644
    palette = class_palette(val.info)
    labels = np.array([[0, 2], [val.info.ignore_index, 2]])
    legend = class_legend(val.info, [labels], palette)
    assert [name for name, _ in legend] == [val.info.class_names[0],
                                            val.info.class_names[2], "ignored"]  # fmt: skip
    # Pixels are the class colours themselves (no blend with the image).
    rgb = colourise_labels(labels, palette, val.info.ignore_index)
    assert np.allclose(rgb[0, 1] * 255, palette[2]) and (rgb[1, 0] == 0).all()
    # Classes a dataset gives no colour for get distinct ones.
    info = type("Info", (), {"num_classes": 4, "palette": ((1, 2, 3),)})()
    colours = class_palette(info)
    assert len(colours) == 4 and colours[0] == (1, 2, 3) and len(set(colours)) == 4


def test_segmentation_report_lists_the_iou_of_every_class(tmp_path):
    """mIoU hides which classes the model never finds: the report lists each class."""
    tiny_seg = ["--task", "seg", "--input", "32x40", "--deploy-input", "32x40",
                "--target-params", "40k", "--pool", "4", "--parents", "1", "--children", "1",
                "--iterations", "1", "--train-steps", "2", "--final-steps", "2",
                "--batch-size", "4", "--seed", "1", "--baselines", "none"]  # fmt: skip
    result = run_cli("search", *tiny_seg, "--name", "seg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    run_dir = tmp_path / "runs" / "seg"
    with RunStore.open_readonly(run_dir) as store:
        summary = store.run_info().summary
    per_class = summary["final_iou_per_class"]
    assert set(per_class) == {"floor", "wall", "box", "ball", "pole"}  # the demo's classes
    present = [v for v in per_class.values() if v is not None]
    assert summary["final_metrics"]["miou"] == pytest.approx(sum(present) / len(present))
    report = (run_dir / "report.md").read_text()
    assert "### Per-class IoU" in report and "| floor |" in report and "| pole |" in report


@pytest.mark.parametrize(
    ("fixed_ms", "verdict"),
    [(2.26, "meets the target"), (None, "misses the target"), (4.2, "misses the target")],
)
def test_a_latency_target_is_judged_on_the_deploy_size_file_the_search_measured(fixed_ms, verdict):
    """The search measures candidates as deploy-size exports; the any-size file runs a
    dynamic graph's shape arithmetic too. A run whose fixed-size twin meets the target
    meets it, with both figures shown; without a twin the any-size file is judged."""
    from edgenas.search.report import target_section

    config = SearchConfig(task="seg", target_latency_ms=4.0, deploy_input=(180, 240))
    final = {"params": 43_459, "macs": 61_109_280, "latency_ms": 4.50,
             "latency_text": "4.50 ms at 1x3x180x240 on cpu (measured)"}  # fmt: skip
    if fixed_ms is not None:
        final["fixed"] = {"onnx_path": "runs/x/best.static.onnx",
                          "latency_path": "runs/x/best.static.latency.json",
                          "latency_ms": fixed_ms, "ratio": fixed_ms / 4.50}  # fmt: skip
    text = "\n".join(target_section(config, final))
    assert verdict in text
    row = next(line for line in text.splitlines() if line.startswith("| latency on cpu"))
    if fixed_ms is None:
        assert "4.50 ms at 1x3x180x240 on cpu (measured)" in row
    else:
        assert f"{fixed_ms:.2f} ms (best.static.onnx: fixed-size" in row
        assert "any-size file: 4.50 ms" in row
        assert row.endswith("| yes |") == (fixed_ms <= 4.0)


@pytest.mark.parametrize(("paired_ms", "met"), [(1.88, True), (1.95, False)])
def test_a_reference_model_target_is_judged_on_the_paired_timing(paired_ms, met):
    """`--target-latency unet`: the final network timed alternating with the U-Net
    decides, as it decided for every candidate; the unpaired profiles are shown beside
    it and do not (here the fixed-size file alone read 1.92 ms against 1.91)."""
    from edgenas.search.report import _final_row, target_section

    config = SearchConfig(
        task="seg", target_latency_ms=1.91, target_latency_reference="unet",
        deploy_input=(180, 240),
    )  # fmt: skip
    stored = {"deploy_input": [180, 240], "device": "cpu"}
    deployed = {"onnx_path": "runs/x/best.onnx", "latency_path": "runs/x/best.latency.json",
                "latency_ms": 2.54, "input_shape": [1, 3, 180, 240], "device": "cpu",
                "device_kind": "host",
                "fixed": {"onnx_path": "runs/x/best.static.onnx",
                          "latency_path": "runs/x/best.static.latency.json",
                          "latency_ms": 1.92, "ratio": 0.76}}  # fmt: skip
    paired = {"reference": "unet", "latency_ms": paired_ms, "ratio": paired_ms / 1.91}
    summary = {"deployed": deployed, "paired_latency": paired, "final_params": 42_299}
    text = "\n".join(target_section(config, _final_row(summary, stored, None)))
    row = next(line for line in text.splitlines() if line.startswith("| latency on cpu"))
    assert f"{paired_ms:.2f} ms ({paired_ms / 1.91:.2f}x unet, timed alternating" in row
    assert "the fixed-size file alone: 1.92 ms" in row and "any-size file: 2.54 ms" in row
    assert row.endswith("| yes |") == met
    assert ("meets the target" if met else "misses the target") in text


def test_the_target_verdict_reads_the_twin_from_a_run_summary_and_old_summaries_still_work():
    """From the stored summary: a run with a fixed-size twin is judged on it; a run
    stored before twins existed (no ``deployed``) is judged on its one latency."""
    from edgenas.search.report import _final_row, target_section

    config = SearchConfig(task="seg", target_latency_ms=4.0, deploy_input=(180, 240))
    stored = {"deploy_input": [180, 240], "device": "cpu"}
    deployed = {"onnx_path": "runs/x/best.onnx", "latency_path": "runs/x/best.latency.json",
                "latency_ms": 4.5, "input_shape": [1, 3, 180, 240], "device": "cpu",
                "device_kind": "host",
                "fixed": {"onnx_path": "runs/x/best.static.onnx",
                          "latency_path": "runs/x/best.static.latency.json",
                          "latency_ms": 2.26, "ratio": 0.5}}  # fmt: skip
    new = _final_row({"deployed": deployed, "final_params": 43_459}, stored, None)
    assert "meets the target" in "\n".join(target_section(config, new))
    old = _final_row({"latency_ms": 4.5, "device": "cpu", "final_params": 43_459}, stored, None)
    old_text = "\n".join(target_section(config, old))
    assert "misses the target" in old_text and "best.static.onnx" not in old_text
