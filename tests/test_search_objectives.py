"""LDP objectives, Pareto front and config parsing: pure functions, exact values."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from edgenas.search import objectives as obj
from edgenas.search.config import SearchConfig, parse_count, parse_milliseconds


def test_compactness_is_one_within_target_and_ratio_above():
    assert obj.compactness({"params": 900}, {"params": 1000}) == 1.0
    assert obj.compactness({"params": 1000}, {"params": 1000}) == 1.0  # r = 0 at P(m) = P
    assert obj.compactness({"params": 2000}, {"params": 1000}) == 0.5
    # Several targets multiply: both must be met for the full term.
    assert (
        obj.compactness({"params": 2000, "latency_ms": 40}, {"params": 1000, "latency_ms": 20})
        == 0.25
    )
    assert obj.compactness({"params": 5}, {}) == 1.0


def test_grade_matches_paper_equation():
    a, accuracy = 0.6, 0.8
    assert obj.grade(accuracy, {"params": 500}, {"params": 1000}, a) == pytest.approx(
        0.6 * 0.8 + 0.4
    )
    assert obj.grade(accuracy, {"params": 4000}, {"params": 1000}, a) == pytest.approx(
        0.6 * 0.8 + 0.4 * 0.25
    )
    assert obj.grade(accuracy, {"params": 1}, {"params": 1000}, 1.0) == accuracy
    assert obj.grade(accuracy, {"params": 4000}, {"params": 1000}, 0.0) == 0.25


def test_reward_uses_score_ratio_and_child_compactness():
    r = obj.reward(400.0, 440.0, {"params": 2000}, {"params": 1000}, 0.5)
    assert r == pytest.approx(0.5 * 1.1 + 0.5 * 0.5)


@pytest.mark.parametrize(
    ("parent", "child", "expected"),
    [
        (400.0, 200.0, 0.5),
        (400.0, -math.inf, 0.0),
        (0.5, 2.5, 1.0 + 2.0 / 1.0),  # near-zero parent: difference form, no explosion
        (-10.0, -5.0, 1.5),  # negative parent: a better child still gets more than 1
        (-10.0, -20.0, 0.0),
        (math.nan, 5.0, 1.0),
    ],
)
def test_score_ratio_edge_cases(parent, child, expected):
    assert obj.score_ratio(parent, child) == pytest.approx(expected)


def test_score_ratio_is_monotone_in_the_child_score():
    for parent in (-50.0, -1.0, 0.0, 0.3, 1.0, 2.0, 300.0):
        values = [obj.score_ratio(parent, c) for c in (-100.0, -1.0, 0.0, 1.0, 10.0, 500.0)]
        assert values == sorted(values), parent


def _dominated(p, q):
    return q[0] >= p[0] and q[1] <= p[1] and q != p


def test_pareto_front_matches_brute_force():
    rng = random.Random(0)
    for _ in range(50):
        points = [
            (round(rng.random(), 2), round(rng.random(), 2)) for _ in range(rng.randint(1, 25))
        ]
        front = obj.pareto_front(points)
        brute = {i for i, p in enumerate(points) if not any(_dominated(p, q) for q in points)}
        # Duplicates: keep one representative of identical points.
        assert {points[i] for i in front} == {points[i] for i in brute}
        resources = [points[i][1] for i in front]
        assert resources == sorted(resources)


def test_closest_to_target_orders_by_relative_distance():
    sizes = [100, 1000, 2000, 500, 10_000]
    order = obj.closest_to_target(sizes, 1000)
    assert order[0] == 1  # exactly on target
    assert set(order[1:3]) == {2, 3}  # x2 and x0.5 are equally close (log scale)
    assert set(order[3:]) == {0, 4}


@pytest.mark.parametrize(
    ("text", "value"),
    [("1.8M", 1.8e6), ("300k", 3e5), ("1G", 1e9), ("1200", 1200.0), ("2e3", 2000.0)],
)
def test_parse_count(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["", "M", "-1M", "1.8X", "0"])
def test_parse_count_rejects(text):
    with pytest.raises(ValueError, match="bad count"):
        parse_count(text)


def test_parse_milliseconds():
    assert parse_milliseconds("30ms") == 30.0
    assert parse_milliseconds("0.03s") == 30.0
    assert parse_milliseconds("12.5") == 12.5
    with pytest.raises(ValueError, match="bad latency"):
        parse_milliseconds("fast")


def test_config_round_trip_and_validation():
    config = SearchConfig(target_params=1e6, alpha_grid=(0.4, 0.6), scales=(2,))
    again = SearchConfig.from_dict(config.to_dict())
    assert again == config
    # Only the targets given: no latency target is added behind the user's back.
    assert config.targets() == {"params": 1e6}
    assert config.primary_resource() == "params"
    both = SearchConfig(target_params=1e6, target_latency_ms=25.0)
    assert both.targets() == {"params": 1e6, "latency_ms": 25.0}
    assert both.primary_resource() == "latency_ms"
    assert SearchConfig(target_latency_ms=None).primary_resource() == "params"
    for bad, fragment in [
        ({"alpha": 1.5}, "alpha"),
        ({"subsample": 0.0}, "subsample"),
        ({"parents": 10, "pool_size": 5}, "parents"),
        ({"children": 0}, "children"),
        ({"run_name": "a b"}, "run name"),
        ({"budget_seconds": -5.0}, "budget"),
    ]:
        with pytest.raises(ValueError, match=fragment):
            SearchConfig(**bad).validate()


def test_pareto_front_of_all_permutations_is_stable():
    points = [(0.5, 3.0), (0.7, 5.0), (0.6, 4.0), (0.4, 1.0)]
    for perm in itertools.permutations(range(4)):
        shuffled = [points[i] for i in perm]
        assert {shuffled[i] for i in obj.pareto_front(shuffled)} == set(points)
