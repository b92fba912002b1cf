"""The foundation commands through the real ``edgenas`` entry point."""

from __future__ import annotations

import json

import onnx
import pytest
from cli_helpers import assert_one_line_error, run_cli

from edgenas.space import LDPSpace, decode

GENOTYPE = LDPSpace().sample_unique(1, seed=0, scales=(2,))[0].encode()


def test_help_teaches():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("space", "score", "export"):
        assert command in result.stdout
    assert "examples:" in result.stdout
    for command in (
        ["space", "--help"],
        ["space", "sample", "--help"],
        ["score", "--help"],
        ["export", "--help"],
    ):
        sub = run_cli(*command)
        assert sub.returncode == 0 and "usage:" in sub.stdout, command


def test_space_sample_prints_canonical_strings():
    result = run_cli("space", "sample", "--n", "5", "--seed", "3", "--scales", "2,3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert len(lines) == 5 and len(set(lines)) == 5
    for line in lines:
        assert decode(line).encode() == line
        assert decode(line).scales in (2, 3)
    assert (
        lines
        == run_cli("space", "sample", "--n", "5", "--seed", "3", "--scales", "2,3").stdout.split()
    )


def test_space_describe_and_size():
    result = run_cli("space", "describe", GENOTYPE)
    assert result.returncode == 0, result.stderr
    for role in ("enc1a", "down2", "up2", "ref1"):
        assert role in result.stdout
    assert "compute units" in result.stdout
    size = run_cli("space", "size")
    assert (
        size.returncode == 0 and "M (block choices) = 720" in size.stdout and "192" in size.stdout
    )


def test_score_single_and_piped():
    single = run_cli(
        "score",
        "--genotype",
        GENOTYPE,
        "--task",
        "depth",
        "--batch",
        "8",
        "--input",
        "32x32",
        "--json",
    )
    assert single.returncode == 0, single.stderr
    data = json.loads(single.stdout)
    assert data["genotype"] == GENOTYPE and data["score"] > 0 and data["params"] > 0
    again = json.loads(
        run_cli(
            "score", "--genotype", GENOTYPE, "--batch", "8", "--input", "32x32", "--json"
        ).stdout
    )
    assert again["score"] == data["score"]  # seeded batch and weights
    many = "\n".join(g.encode() for g in LDPSpace().sample_unique(3, seed=1, scales=(2,)))
    piped = run_cli("score", "--genotype", "-", "--batch", "8", "--input", "32x32", input=many)
    assert piped.returncode == 0, piped.stderr
    assert len(piped.stdout.strip().splitlines()) == 3


def test_export_writes_verified_onnx_with_json(tmp_path):
    out = tmp_path / "depth.onnx"
    result = run_cli(
        "export",
        "--genotype",
        GENOTYPE,
        "--task",
        "depth",
        "--input",
        "1x3x48x64",
        "-o",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["path"] == str(out) and summary["max_abs_err"] < 1e-3
    assert {"export", "simplify", "check", "verify"} <= set(summary["seconds"])
    assert summary["params"] > 0 and summary["macs"] > 0 and summary["opset"] == 17
    onnx.checker.check_model(onnx.load(str(out)))


def test_export_openvino_and_table_output(tmp_path):
    out = tmp_path / "sr.xml"
    result = run_cli(
        "export",
        "--genotype",
        GENOTYPE,
        "--task",
        "sr",
        "--scale",
        "3",
        "--input",
        "24x24",
        "--format",
        "openvino",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert out.is_file() and out.with_suffix(".bin").is_file()
    assert "max error vs PyTorch" in result.stdout and "1x3x72x72" in result.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["space", "describe", "S2:conv_k3"], ["needs 12 blocks"]),
        (
            [
                "space",
                "describe",
                GENOTYPE.replace("_k3_", "_kx_", 1)
                if "_k3_" in GENOTYPE
                else GENOTYPE.replace("_k5_", "_kx_", 1),
            ],
            ["'kx'"],
        ),
        (["space", "sample", "--n", "0"], ["--n"]),
        (["space", "sample", "--scales", "2,x"], ["--scales"]),
        (["score", "--genotype", GENOTYPE, "--task", "detection"], ["unknown task 'detection'"]),
        (["score", "--genotype", GENOTYPE, "--batch", "1"], ["--batch"]),
        (["export", "--genotype", GENOTYPE, "--input", "1x3xAx4"], ["bad shape"]),
        (
            ["export", "--genotype", GENOTYPE, "--task", "depth", "--scale", "2"],
            ["--scale does not apply"],
        ),
        (
            ["export", "--genotype", GENOTYPE, "--task", "sr", "--scale", "5"],
            ["--scale: must be 2, 3 or 4"],
        ),
        (["export", "--genotype", GENOTYPE, "--format", "openvino", "-o", "x.onnx"], [".xml"]),
        (["export", "--genotype", GENOTYPE, "--format", "tflite"], ["invalid choice"]),
        (["export"], ["--genotype"]),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(args, fragments, tmp_path):
    result = run_cli(*args, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_score_reads_nothing_from_empty_stdin():
    assert_one_line_error(run_cli("score", "--genotype", "-", input=""), "standard input")
