"""benchmarks/bench_search_child_halving.py's simulation of a tabu step's policies over
every subset of measured children."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_search_child_halving")


def _row(speed, rung, proxy, final):
    return {"speed": speed, "rung": rung, "proxy": proxy, "final": final}


def test_each_policy_picks_by_its_own_signal_over_every_subset(bench):
    rows = [
        _row(speed=30, rung=0.40, proxy=0.50, final=0.60),  # fast, slow starter, best
        _row(speed=20, rung=0.45, proxy=0.45, final=0.55),
        _row(speed=10, rung=0.50, proxy=0.40, final=0.50),  # quick starter, worst
    ]
    picks = bench.policy_picks(rows, children=2)
    # Subsets {0,1}, {0,2}, {1,2}.
    assert picks["R (training speed)"]["mean_final"] == pytest.approx((0.60 + 0.60 + 0.55) / 3)
    assert picks["successive halving"]["mean_final"] == pytest.approx((0.55 + 0.50 + 0.50) / 3)
    assert picks["successive halving"]["best_share"] == 0.0
    assert picks["proxy for all"]["best_share"] == 1.0
    assert picks["random child"]["mean_final"] == pytest.approx((0.575 + 0.55 + 0.525) / 3)
    assert picks["best child"]["mean_final"] == pytest.approx(
        picks["R (training speed)"]["mean_final"]
    )


def test_all_children_in_one_step_leave_one_subset(bench):
    rows = [_row(1, 0.1, 0.1, 0.3), _row(2, 0.2, 0.2, 0.1)]
    picks = bench.policy_picks(rows, children=2)
    assert picks["R (training speed)"]["mean_final"] == 0.1
    assert picks["best child"]["best_share"] == 1.0
