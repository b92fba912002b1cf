"""The time budget's arithmetic (edgenas.search.budget) and how a run resolves it."""

from __future__ import annotations

import pytest

from edgenas.errors import UserError
from edgenas.search.budget import (
    PROXY_SECONDS_RANGE,
    expected_candidate_seconds,
    parent_deadline,
    plan_budget,
    spent_before,
)
from edgenas.search.config import SearchConfig, parse_duration
from edgenas.search.run import with_planned_proxy


def test_plan_splits_the_whole_budget():
    plan = plan_budget(1200.0, final=300.0, learned_baselines=1)
    assert plan.final_phase == 600.0
    assert plan.search + plan.final_phase + plan.reserve == pytest.approx(1200.0)
    assert plan.search == pytest.approx(1200.0 - 600.0 - 48.0)
    assert "search 552 s" in plan.describe() and "1 baseline(s)" in plan.describe()


def test_a_budget_the_final_trainings_fill_is_refused_naming_the_fix():
    with pytest.raises(ValueError, match="larger --budget"):
        plan_budget(600.0, final=300.0, learned_baselines=1)


def test_proxy_seconds_grow_with_the_budget_within_their_range():
    small = plan_budget(300.0, final=75.0, learned_baselines=0).proxy_seconds
    twenty = plan_budget(1200.0, final=300.0, learned_baselines=1).proxy_seconds
    hours = plan_budget(36_000.0, final=9000.0, learned_baselines=1).proxy_seconds
    assert PROXY_SECONDS_RANGE[0] <= small < twenty < hours == PROXY_SECONDS_RANGE[1]
    assert twenty == pytest.approx(552.0 / 20 - 10.0, abs=0.1)


def test_each_parent_gets_an_equal_share_of_the_time_left():
    assert parent_deadline(100.0, 500.0, parents_left=4) == 200.0
    assert parent_deadline(450.0, 500.0, parents_left=1) == 500.0
    assert parent_deadline(600.0, 500.0, parents_left=2) == 600.0  # late: no time
    assert expected_candidate_seconds([], 30.0) == 30.0
    assert expected_candidate_seconds([10.0, 40.0, 12.0], 30.0) == 12.0


def test_time_spent_before_a_resume_skips_the_gap_while_killed():
    events = [("run_started", 0.0), ("pool_progress", 50.0), ("run_resumed", 500.0),
              ("pool_scored", 510.0), ("candidate_trained", 530.0)]  # fmt: skip
    assert spent_before(events) == pytest.approx(50.0 + 20.0)
    assert spent_before([]) == 0.0


def test_a_run_with_a_budget_stores_its_planned_proxy_and_final_training():
    config = SearchConfig(task="sr", budget_seconds=parse_duration("20m"), target_latency_ms=20)
    assert config.final_seconds == 300.0 and config.max_iterations == 100
    assert config.train_seconds is None  # planned when the run starts
    planned = with_planned_proxy(config)
    assert planned.train_seconds == pytest.approx(17.6)
    given = SearchConfig(task="sr", budget_seconds=1200.0, train_seconds=9.0)
    assert with_planned_proxy(given).train_seconds == 9.0
    with pytest.raises(UserError, match="larger --budget"):
        with_planned_proxy(SearchConfig(task="sr", budget_seconds=600.0, final_seconds=300.0))
