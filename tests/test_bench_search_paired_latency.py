"""benchmarks/bench_search_paired_latency.py: the two statistics read the sessions of a
paired measurement as documented, and one measurement runs end to end."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_search_paired_latency")


def test_each_statistic_reads_the_sessions_as_documented(bench):
    # reference, network, reference, network, reference, network, reference
    reference = [2.0, 3.0, 2.2, 2.0]
    network = [2.2, 4.0, 2.1]  # the second network session was hit by load
    # rounds: 2.2 / min(2.0, 3.0), 4.0 / min(3.0, 2.2), 2.1 / min(2.2, 2.0)
    assert bench.median_ratio(reference, network) == pytest.approx(1.1)
    assert bench.min_min(reference, network) == pytest.approx(2.1 / 2.0)
    assert bench.spread([1.0, 1.2, 0.9]) == pytest.approx(0.3)


def test_a_run_prints_both_statistics_for_every_network(bench, capsys):
    assert bench.main(["--task", "seg", "--input", "32x32", "--repeats", "2", "--rounds", "1",
                       "--runs", "2"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    for name in ("unet", "default"):
        for statistic in ("median-ratio", "min-min"):
            assert f"| {name} | {statistic} |" in out
    assert "min-min / median-ratio spread:" in out
