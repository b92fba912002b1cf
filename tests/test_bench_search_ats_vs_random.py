"""benchmarks/bench_search_ats_vs_random.py's verdict: issue 13's criterion per group
of seeds and the sign test, on the best grades of a real run (segmentation, runs L and
M of docs/search.md)."""

from __future__ import annotations

import math

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_search_ats_vs_random")


def _rows(ats: list[float], random: list[float], first_seed: int = 12) -> list[dict]:
    return [
        {"seed": first_seed + i, "ats-speed": {"grade": a}, "random": {"grade": r}}
        for i, (a, r) in enumerate(zip(ats, random, strict=True))
    ]


SEG_L_M = _rows(
    [0.6140, 0.6198, 0.6299, 0.6144, 0.6334, 0.6330],
    [0.6280, 0.6086, 0.6035, 0.6185, 0.6258, 0.6255],
)


def test_each_group_of_three_seeds_is_judged_on_its_own_spreads(bench):
    first, second = bench.criterion_groups(SEG_L_M, "ats-speed")
    assert first["seeds"] == [12, 13, 14] and second["seeds"] == [15, 16, 17]
    assert first["spread"] == pytest.approx(0.0159)
    assert first["random_spread"] == pytest.approx(0.0245)
    assert first["margins"] == pytest.approx([-0.0140, 0.0112, 0.0264])
    # Seed 14 wins by more than both spreads, seed 13 by less than random's.
    assert (first["beyond_both"], first["beyond_random"], first["met"]) == (1, 1, False)
    # M: two wins beyond random search's small spread (0.0073), none beyond ATS's own.
    assert second["random_spread"] == pytest.approx(0.0073)
    assert (second["beyond_both"], second["beyond_random"], second["met"]) == (0, 2, False)


def test_two_wins_beyond_both_spreads_meet_the_criterion(bench):
    # Margins +0.05, +0.05, -0.005 against spreads 0.015 (ATS) and 0.045 (random).
    (group,) = bench.criterion_groups(_rows([0.65, 0.655, 0.64], [0.60, 0.605, 0.645]), "ats-speed")
    assert group["beyond_both"] == 2 and group["met"]
    # The same two margins no longer count once random search's spread is wider (0.055).
    (wide,) = bench.criterion_groups(_rows([0.65, 0.655, 0.64], [0.60, 0.605, 0.55]), "ats-speed")
    assert (wide["beyond_both"], wide["met"]) == (1, False)


def test_a_trailing_group_shorter_than_asked_is_left_out(bench):
    assert len(bench.criterion_groups(SEG_L_M[:5], "ats-speed")) == 1
    assert len(bench.criterion_groups(SEG_L_M, "ats-speed", size=2)) == 3


def test_sign_test_is_the_binomial_tail(bench):
    assert bench.sign_test_p(14, 18) == pytest.approx(0.01544, abs=1e-5)
    assert bench.sign_test_p(11, 18) == pytest.approx(0.2403, abs=1e-4)
    assert bench.sign_test_p(0, 5) == 1.0
    assert bench.sign_test_p(3, 3) == pytest.approx(1 / 8)
    assert math.isclose(sum(bench.sign_test_p(k, 9) - bench.sign_test_p(k + 1, 9)
                            for k in range(10)), 1.0)  # fmt: skip


def test_summarize_prints_the_verdict_of_a_saved_run(bench, tmp_path, monkeypatch, capsys):
    import json

    rows = [
        {**r, "ats-speed": {**r["ats-speed"], "metric": 0.25, "params": 50_000},
         "random": {**r["random"], "metric": 0.24, "params": 60_000}}
        for r in SEG_L_M
    ]  # fmt: skip
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(rows))
    monkeypatch.setattr("sys.argv", ["bench", "--task", "seg", "--summarize", str(saved)])
    bench.main()
    out = capsys.readouterr().out
    assert "4 of 6 seeds won (one-sided sign test p 0.344)" in out
    assert "seeds [12, 13, 14]: margins -0.0140, +0.0112, +0.0264" in out
    assert out.count("criterion not met") == 2
