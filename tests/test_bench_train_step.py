"""benchmarks/bench_train_step.py: the ds twin of a default, the table it prints, and
one-line errors (exit 2) for bad input."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_train_step")


def test_default_ds_is_the_default_built_of_ds_blocks(bench):
    from torch import nn

    from edgenas.tasks.defaults import SEG_GENOTYPE

    default, twin = (
        bench.build("segmentation", "default"),
        bench.build("segmentation", "default-ds"),
    )
    assert default.genotype.encode() == SEG_GENOTYPE
    assert twin.genotype.encode() == SEG_GENOTYPE.replace("sep_", "ds_")
    norms = [sum(isinstance(m, nn.BatchNorm2d) for m in n.modules()) for n in (default, twin)]
    assert norms[1] > norms[0]  # ds normalises the depthwise output too


def test_prints_one_row_per_network_with_the_reference_at_one(bench, capsys):
    assert bench.main(["--task", "depth", "--networks", "fastdepth,default", "--input", "16x24",
                       "--batch", "2", "--rounds", "1"]) == 0  # fmt: skip
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| fastdepth", "| default"]
    assert rows[1].endswith("| 1.00 |")
    assert float(rows[2].split(" | ")[-1].rstrip(" |")) > 0


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--networks", "unet"], "at least two"),
        (["--networks", "unet,default", "--input", "18x"], "bad shape"),
        (["--networks", "unet,fastdepth"], "depth model"),
        (["--networks", "unet,default", "--rounds", "0"], "at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(bench, capsys, argv, named):
    assert bench.main(["--task", "seg", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert named in err and "\n" not in err
