"""benchmarks/bench_train_seeds.py's tables: differences point the way the metric does,
genotype strings get labels that cannot collide, and the arguments refuse repeats."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_train_seeds")


def _results(scores: dict[str, list[float]]) -> list[dict]:
    return [
        {"network": network, "seed": seed, "metrics": {"rel": value}, "steps": 100 + seed,
         "params": 1000}
        for network, values in scores.items()
        for seed, value in enumerate(values)
    ]  # fmt: skip


def _row(table: str, label: str, after: str) -> list[str]:
    part = table.split(after, 1)[1]
    line = next(x for x in part.splitlines() if x.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_a_lower_error_counts_as_a_win_with_a_positive_difference(bench):
    scores = {"fastdepth": [0.10, 0.10, 0.10], "default": [0.08, 0.09, 0.12]}
    table = bench.report("rel", True, list(scores), [0, 1, 2], _results(scores),
                         {"fastdepth": 4.0, "default": 3.0})  # fmt: skip
    row = _row(table, "default", "difference from fastdepth")
    assert row[1:4] == ["+0.0200", "+0.0100", "-0.0200"]
    assert row[4] == "+0.0100" and row[5] == "+0.0033"  # median and mean of the differences
    assert row[6] == "2 of 3" and row[7] == "0.750"
    first = _row(table, "default", "held-out rel")
    assert first[4:6] == ["0.0900", "0.0400"]  # median and spread between seeds


def test_a_higher_score_wins_where_higher_is_better(bench):
    scores = {"unet": [0.40, 0.42], "default": [0.41, 0.40]}
    results = [{**r, "metrics": {"miou": r["metrics"]["rel"]}} for r in _results(scores)]
    table = bench.report("miou", False, list(scores), [0, 1], results)
    row = _row(table, "default", "difference from unet")
    assert row[1:3] == ["+0.0100", "-0.0200"] and row[5] == "1 of 2" and row[6] == "-"


def test_genotypes_sharing_a_prefix_get_distinct_labels_and_a_legend(bench):
    first = "S2:conv_k3_se0_res_c16_n1-" + "-".join(["conv_k3_se0_res_c16_n1"] * 11)
    second = first[:-1] + "2"
    names = bench.labels(["unet", first, second, "default"])
    assert names == {"unet": "unet", first: "genotype 1", second: "genotype 2",
                     "default": "default"}  # fmt: skip
    scores = {"unet": [0.3], first: [0.31], second: [0.29]}
    results = [{**r, "metrics": {"miou": r["metrics"]["rel"]}} for r in _results(scores)]
    table = bench.report("miou", False, list(scores), [0], results)
    assert f"genotype 1: {first}" in table and f"genotype 2: {second}" in table


@pytest.mark.parametrize(
    "argv",
    [["--networks", "unet"], ["--networks", "unet,unet"], ["--networks", "unet,default",
                                                            "--seeds", "0,0"]],
)  # fmt: skip
def test_arguments_refuse_one_network_and_repeats(bench, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(["--task", "seg", "--data", "x", *argv])
    assert exit_info.value.code == 2


def test_also_val_tables_read_the_scores_of_that_folder(bench):
    # On Urban the default is 0.05 better (lower REL) than on the split, FastDepth 0.01
    # worse, so every figure of the Urban tables differs from the split's.
    offset = {"fastdepth": +0.01, "default": -0.05}
    results = [{**r, "also": {"Urban": {"rel": r["metrics"]["rel"] + offset[r["network"]]}}}
               for r in _results({"fastdepth": [0.10, 0.10], "default": [0.12, 0.08]})]  # fmt: skip
    table = bench.report("rel", True, ["fastdepth", "default"], [0, 1], results, None, "Urban")
    assert table.startswith("held-out rel on Urban")
    assert _row(table, "default", "held-out rel on Urban")[1:3] == ["0.0700", "0.0300"]
    assert _row(table, "default", "per seed on Urban")[1:3] == ["+0.0400", "+0.0800"]
    split = bench.report("rel", True, ["fastdepth", "default"], [0, 1], results, None)
    assert _row(split, "default", "difference from fastdepth")[1:3] == ["-0.0200", "+0.0200"]


def test_a_training_scores_every_also_val_folder_with_the_trained_network(bench, tmp_path):
    """The same folder given as --val-data and in --also-val gets the same score from the
    one trained network; a different folder gets its own."""
    from PIL import Image

    generator = torch.Generator().manual_seed(0)
    folders = {}
    for name in ("train", "held", "other"):
        folder = tmp_path / name
        folder.mkdir()
        for index in range(3):
            pixels = torch.randint(0, 256, (96, 96, 3), generator=generator, dtype=torch.uint8)
            Image.fromarray(pixels.numpy()).save(folder / f"{index}.png")
        folders[name] = str(folder)
    job = {"task": "sr", "data": folders["train"], "val_data": folders["held"], "input": None,
           "seed": 0, "network": "espcn", "seconds": 1.0,
           "also_val": [folders["held"], folders["other"]]}  # fmt: skip
    threads = torch.get_num_threads()
    try:
        result = bench.train_one(job)
    finally:
        torch.set_num_threads(threads)  # train_one sets one thread, as in its worker
    assert result["steps"] > 0
    # Equal up to float summation order: the training's own scoring and the --also-val pass
    # may group the same images differently, which moves SSIM in the sixth digit.
    assert result["also"][folders["held"]] == pytest.approx(result["metrics"], rel=1e-4)
    assert result["also"][folders["other"]]["psnr"] != result["metrics"]["psnr"]
