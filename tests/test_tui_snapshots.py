"""Snapshot tests (pytest-textual-snapshot) of the monitor's fixed screens at 80x24
(the smallest terminal it is made for; the plots also at 100x30), from fixture stores
with frozen timestamps. Update after an intended change with
``pytest tests/test_tui_snapshots.py --snapshot-update`` and review the SVGs."""

from __future__ import annotations

import pytest
from edgenas.tui.app import MonitorApp
from edgenas.tui.screens.dashboard import DashboardScreen
from test_tui_app import page_ready
from tui_helpers import BASE_TIME, write_ldp_run, write_shrink_run

pytest.importorskip("pytest_textual_snapshot")

WAIT_STEPS = 300  # x 0.05 s: bound of the wait for the first poll


async def _loaded(pilot) -> None:
    """Wait for the whole run to reach the screen (bounded; the first poll is partial)."""
    for _ in range(WAIT_STEPS):
        dashboards = [s for s in pilot.app.screen_stack if isinstance(s, DashboardScreen)]
        if dashboards and dashboards[0].state is not None and not dashboards[0].state.partial:
            break
        await pilot.pause(0.05)
    await pilot.pause()


def _app(run_dir) -> MonitorApp:
    return MonitorApp(run_dir, poll_interval=0.1, clock=lambda: BASE_TIME + 3600)


def _keys(*keys):
    async def run_before(pilot) -> None:
        await _loaded(pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        if "2" in keys:  # the candidates table: the page its keys asked for (bounded wait)
            for _ in range(WAIT_STEPS):
                if page_ready(pilot.app):
                    break
                await pilot.pause(0.05)
        await pilot.pause(0.2)

    return run_before


@pytest.fixture
def ldp_run(tmp_path):
    return write_ldp_run(tmp_path / "demo")


def test_dashboard_plots(snap_compare, ldp_run):
    assert snap_compare(_app(ldp_run), terminal_size=(100, 30), run_before=_keys())


def test_dashboard_plots_80x24(snap_compare, ldp_run):
    assert snap_compare(_app(ldp_run), terminal_size=(80, 24), run_before=_keys())


def test_dashboard_candidates_sorted_by_grade(snap_compare, ldp_run):
    keys = ("2", "s", "s", "s", "s", "s", "s")  # id -> ... -> grade (best first)
    assert snap_compare(_app(ldp_run), terminal_size=(80, 24), run_before=_keys(*keys))


def test_dashboard_search(snap_compare, ldp_run):
    assert snap_compare(_app(ldp_run), terminal_size=(80, 24), run_before=_keys("3"))


def test_dashboard_without_trained_candidates(snap_compare, tmp_path):
    app = _app(write_ldp_run(tmp_path / "pool", finished=False))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_keys())


def test_candidate_detail(snap_compare, ldp_run):
    assert snap_compare(_app(ldp_run), terminal_size=(80, 24), run_before=_keys("b"))


def test_candidate_detail_scrolled_to_the_end(snap_compare, ldp_run):
    assert snap_compare(_app(ldp_run), terminal_size=(80, 24), run_before=_keys("b", "end"))


def test_final_training_loss(snap_compare, ldp_run):
    assert snap_compare(_app(ldp_run), terminal_size=(80, 24), run_before=_keys("l"))


def test_shrink_dashboard(snap_compare, tmp_path):
    app = _app(write_shrink_run(tmp_path / "shrink"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_keys("3"))
