"""benchmarks/bench_hrnas_camvid.py: the side-by-side table and its verdict, and the
paired latency of two files of any input size."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_hrnas_camvid")


def _row(seed, miou, unet_miou, ratio_any, ratio_static=0.9):
    return {
        "seed": seed, "cost": "flops", "lambda": 2e-3, "miou": miou, "params": 44_000,
        "params_before": 93_000, "macs": 45e6, "macs_before": 79e6, "ratio_any": ratio_any,
        "ratio_static": ratio_static,
        "baselines": [{"name": "unet", "metrics": {"miou": unet_miou}}],
    }  # fmt: skip


def test_the_verdict_needs_better_miou_at_equal_or_lower_latency(bench, capsys):
    bench._print_table([
        _row(0, 0.47, 0.46, 1.00),  # better and as fast: a win
        _row(1, 0.47, 0.46, 1.05),  # better but slower
        _row(2, 0.45, 0.46, 0.90),  # faster but worse
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert (
        "| 1 | flops | 0.002 | 0.4700 | 0.4600 | 44 (of 93) | 45.0 (of 79.0) | 1.05, 0.90 |" in out
    )
    assert "mIoU difference median +0.0100 (min -0.0100, max +0.0100)" in out
    assert "latency ratio (best.onnx) median 1.00 (min 0.90, max 1.05)" in out
    assert "better mIoU at equal or lower latency in 1 of 3" in out


def test_paired_latency_of_any_size_files(bench, tmp_path):
    """Two exports with free height and width are measured at the bench's shape; a
    network against itself reads about 1."""
    from edgenas.export import export_onnx
    from edgenas.models.reference import build_reference

    model = build_reference("unet", "seg", num_classes=3).eval()
    path = tmp_path / "unet.onnx"
    export_onnx(model, (1, 3, 32, 40), path, dynamic=True)
    assert bench._paired(bench._AtShape((1, 3, 32, 40)), path, tmp_path / "missing.onnx", 1) is None
    ratio = bench._paired(bench._AtShape((1, 3, 32, 40)), path, path, 1)
    assert 0.3 < ratio < 3.0


def test_sign_test_p_is_the_binomial_tail(bench):
    assert bench.sign_test_p(3, 3) == 0.125
    assert bench.sign_test_p(8, 10) == (45 + 10 + 1) / 1024
    assert bench.sign_test_p(0, 4) == 1.0


def test_the_table_counts_wins_with_their_sign_tests(bench, capsys):
    bench._print_table([_row(s, 0.47, 0.46, 0.9) for s in range(4)] + [_row(4, 0.45, 0.46, 1.1)])
    out = capsys.readouterr().out
    assert "better mIoU at equal or lower latency in 4 of 5" in out
    assert "mIoU higher in 4 of 5 (p 0.188), best.onnx faster in 4 of 5 (p 0.188)" in out


def test_table_prints_earlier_summaries_without_training(bench, tmp_path, capsys, monkeypatch):
    import json
    import sys

    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps([_row(0, 0.47, 0.46, 0.9)]))
    second.write_text(json.dumps([_row(1, 0.45, 0.46, 0.9)]))
    monkeypatch.setattr(sys, "argv", ["bench", "--data", str(tmp_path / "none"), "--table",
                                      str(first), str(second)])  # fmt: skip
    bench.main()
    out = capsys.readouterr().out
    assert "| 0 | flops |" in out and "| 1 | flops |" in out
    assert "better mIoU at equal or lower latency in 1 of 2" in out
    monkeypatch.setattr(sys, "argv", ["bench", "--table", str(tmp_path / "missing.json")])
    with pytest.raises(SystemExit, match="cannot read"):
        bench.main()
