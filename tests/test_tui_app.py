"""The monitor app driven by Textual's Pilot: open a run, sort, open a candidate, go
back, quit; the run list; live updates written by another process; bad stores."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import subprocess
import sys
import textwrap

import pytest
from edgenas.tui import jobs
from edgenas.tui.app import MonitorApp
from edgenas.tui.screens.candidate import CandidateScreen, block_table, hrnas_block_table
from edgenas.tui.screens.dashboard import DashboardScreen
from edgenas.tui.screens.help import HelpScreen
from edgenas.tui.screens.runs import RunListScreen
from edgenas.tui.widgets.candidates import CandidatesTable
from edgenas.tui.widgets.events import EventLog
from edgenas.tui.widgets.header import RunHeader
from rich.console import Console
from tui_helpers import LDP_CONFIG, FakeLDPRun, write_ldp_run, write_shrink_run

from edgenas.store import RunStore

POLL = 0.1
WAIT_S = 15.0  # upper bound of every wait; the checks normally pass in well under a second


def async_test(function):
    """Run an ``async def`` test with asyncio.run (no async pytest plugin needed)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return asyncio.run(function(*args, **kwargs))

    return wrapper


async def wait_until(pilot, condition, what: str) -> None:
    """Let the app run until ``condition()`` holds (bounded: fails after WAIT_S)."""
    steps = int(WAIT_S / 0.05)
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.asynccontextmanager
async def opened(run_dir, size=(100, 30), poll=POLL):
    """The app on ``run_dir``, after its first poll reached the dashboard."""
    app = MonitorApp(run_dir, poll_interval=poll)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: loaded(app), "the run")
        yield app, pilot


def loaded(app) -> bool:
    """Whether the dashboard shows the whole run (its reader is staged: the first poll
    reads what the first screen needs, the next one the rest)."""
    state = _dashboard(app).state
    return state is not None and not state.partial


def _dashboard(app) -> DashboardScreen:
    return next(s for s in app.screen_stack if isinstance(s, DashboardScreen))


def _table_ids(table: CandidatesTable) -> list[int]:
    return [int(table.coordinate_to_cell_key((i, 0))[0].value) for i in range(table.row_count)]


def page_ready(app) -> bool:
    """Whether the candidates table shows the page it last asked for (sorting, filtering
    and paging are SQL queries the reader runs on its next poll)."""
    dashboard = _dashboard(app)
    table = dashboard.query_one(CandidatesTable)
    state = dashboard.state
    return (
        state is not None
        and state.page_query == table.page_query(state.metric_name)
        and _table_ids(table) == [r.id for r in state.page]
    )


def text_of(widget) -> str:
    """The plain text a Static shows (its rich content rendered without styles)."""
    console = Console(width=300, file=io.StringIO(), color_system=None)
    with console.capture() as capture:
        console.print(widget.content)
    return capture.get()


def _header_text(app) -> str:
    return text_of(app.screen.query_one(RunHeader))


@pytest.mark.parametrize("size", [(100, 30), (80, 24)])
@async_test
async def test_open_sort_detail_back_quit(tmp_path, size):
    run_dir = write_ldp_run(tmp_path / "run")
    app = MonitorApp(run_dir, poll_interval=POLL)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: loaded(app), "the run")
        assert "finished" in _header_text(app)
        await pilot.press("2")
        table = app.screen.query_one(CandidatesTable)
        await wait_until(pilot, lambda: table.row_count > 10, "the candidates")
        ids = _table_ids(table)
        assert ids == sorted(ids)
        # s: next sort column (params, ascending); S: reverse it.
        await pilot.press("s")
        await wait_until(pilot, lambda: page_ready(app), "the page sorted by params")
        params = [table.shown_row(i).params for i in _table_ids(table)]
        assert table.sort_key == "params" and params == sorted(params)
        assert len(params) == _dashboard(app).state.counts.total  # one page holds them all
        await pilot.press("S")
        await wait_until(pilot, lambda: page_ready(app), "the page sorted the other way")
        params = [table.shown_row(i).params for i in _table_ids(table)]
        assert params == sorted(params, reverse=True)
        # Open the candidate under the cursor (the first row), then go back.
        table.move_cursor(row=0)
        top_id = _table_ids(table)[0]
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, CandidateScreen), "detail")
        assert app.screen.candidate_id == top_id
        title = text_of(app.screen.query_one("#detail-title"))
        assert f"candidate #{top_id}" in title
        blocks = text_of(app.screen.query_one("#blocks"))
        assert "enc1a" in blocks and "ref1" in blocks
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("q")
    assert app.return_code == 0


@async_test
async def test_click_header_sorts_and_best_and_help(tmp_path):
    run_dir = write_ldp_run(tmp_path / "run")
    async with opened(run_dir, size=(100, 30)) as (app, pilot):
        await pilot.click("#--content-tab-candidates")
        table = app.screen.query_one(CandidatesTable)
        await wait_until(pilot, lambda: table.row_count > 10, "the candidates")
        grade_column = [c.key.value for c in table.ordered_columns].index("grade")
        x = sum(c.get_render_width(table) for c in table.ordered_columns[:grade_column]) + 1
        await pilot.click(CandidatesTable, offset=(x, 0))
        assert table.sort_key == "grade" and table.sort_reverse
        await wait_until(pilot, lambda: page_ready(app), "the page sorted by grade")
        state = _dashboard(app).state
        assert _table_ids(table)[0] == state.best_id
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, CandidateScreen), "best")
        assert "best" in text_of(app.screen.query_one("#detail-title"))
        await pilot.press("escape", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


@async_test
async def test_run_list_opens_a_run(tmp_path):
    write_ldp_run(tmp_path / "runs" / "first")
    write_shrink_run(tmp_path / "runs" / "shrink")
    app = MonitorApp(tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        assert isinstance(app.screen, RunListScreen)
        await wait_until(pilot, lambda: len(app.screen.entries) == 2, "the run list")
        names = [e.name for e in app.screen.entries]
        assert sorted(names) == ["first", "shrink"]
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen), "dashboard")
        await wait_until(pilot, lambda: app.screen.state is not None, "the first poll")
        await pilot.press("escape")
        assert isinstance(app.screen, RunListScreen)


@async_test
async def test_shrink_run_shows_units_per_block(tmp_path):
    async with opened(write_shrink_run(tmp_path / "shrink"), size=(100, 30)) as (app, pilot):
        await pilot.press("3")
        panel = app.screen.query_one("#shrink-panel")
        text = text_of(panel)
        assert panel.display and "block2" in text and "units kept" in text
        assert not app.screen.query_one("#search-panel").display
        assert "steps 4/4" in _header_text(app)


@async_test
async def test_bad_stores_show_a_message_not_a_traceback(tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "run.sqlite").write_bytes(b"\x00garbage" * 512)
    app = MonitorApp(corrupt, poll_interval=POLL)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "⚠" in _header_text(app), "the error message")
        assert "not a readable edgenas run store" in _header_text(app)
        await pilot.press("1", "2", "3", "4", "5", "b")  # every view copes with no data
        assert isinstance(app.screen, DashboardScreen)
    # A folder whose store does not exist yet: a message, then the run once it appears.
    later = tmp_path / "later"
    later.mkdir()
    app = MonitorApp(later, run=True, poll_interval=POLL)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "no run store" in _header_text(app), "the message")
        write_ldp_run(later, finished=False)
        # Its writer has closed it without finishing: the process is gone, it stopped.
        await wait_until(pilot, lambda: "stopped" in _header_text(app), "the run")
        assert "⚠" not in _header_text(app)


WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[2])
    from edgenas.store import RunStore
    from tui_helpers import LDP_CONFIG, FakeLDPRun

    with RunStore.open(sys.argv[1]) as store:
        fake = FakeLDPRun(store, LDP_CONFIG, seed=5)
        parents = [(c.id, c.genotype) for c in store.candidates()[:2]]
        for index, (cid, genotype) in enumerate(parents):
            fake.tabu_search(index, cid, genotype)
            time.sleep(0.2)
        store.append_event("latency_measured", {"latency_ms": 4.25, "device": "cpu"})
    """
)


@async_test
async def test_events_from_another_process_show_up(tmp_path):
    run_dir = write_ldp_run(tmp_path / "run", finished=False, freeze=False)
    app = MonitorApp(run_dir, poll_interval=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        dashboard = _dashboard(app)
        await wait_until(pilot, lambda: dashboard.state is not None, "the first poll")
        assert dashboard.state.header.trained == 0
        await pilot.press("4")
        tests_dir = str(__import__("pathlib").Path(__file__).parent)
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir), tests_dir])
        try:
            await wait_until(
                pilot,
                lambda: (
                    dashboard.state.device.recent
                    and dashboard.state.device.recent[-1].latency_ms == 4.25
                ),
                "the other process's events",
            )
        finally:
            assert writer.wait(timeout=30) == 0
        state = dashboard.state
        assert state.header.trained == 8 and state.ats.parent_index == 1
        log = app.screen.query_one(EventLog)
        assert log.lines and "latency_measured" in log.lines[-1].text
        await pilot.press("2")
        table = app.screen.query_one(CandidatesTable)
        await wait_until(pilot, lambda: page_ready(app), "the candidates")
        assert table.row_count == state.counts.total > len(state.rows) > 6


@pytest.mark.slow
@async_test
async def test_export_action_runs_edgenas_export_in_the_background(tmp_path):
    run_dir = write_ldp_run(tmp_path / "run")
    async with opened(run_dir, size=(100, 30)) as (app, pilot):
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, CandidateScreen), "detail")
        screen = app.screen
        await pilot.press("x")
        onnx = run_dir / "monitor" / f"candidate-{screen.candidate_id}.onnx"
        for _ in range(1200):  # bounded: 120 s for a subprocess that imports torch
            if not screen._active_jobs:
                break
            await pilot.pause(0.1)
        assert onnx.is_file()
        log = screen.query_one("#job-log")
        assert any("done" in line.text for line in log.lines)


@async_test
async def test_live_updates_widen_columns_and_reach_the_detail_screen(tmp_path):
    run_dir = write_ldp_run(tmp_path / "run", finished=False, freeze=False)
    async with opened(run_dir) as (app, pilot):
        await pilot.press("2")
        table = app.screen.query_one(CandidatesTable)
        assert table.columns["grade"].content_width == 1  # every G is "-"
        with RunStore.open(run_dir) as writer:
            first = writer.candidates()[0]
            FakeLDPRun(writer, LDP_CONFIG).train(first.id, first.genotype)
        await wait_until(
            pilot,
            lambda: table.columns["grade"].content_width == len("0.0000"),
            "the G column to fit its new values",
        )
        # The detail screen of a candidate follows the store too.
        table.move_cursor(row=1)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, CandidateScreen), "detail")
        assert app.screen.row.status == "scored"
        with RunStore.open(run_dir) as writer:
            second = writer.candidate(app.screen.candidate_id)
            FakeLDPRun(writer, LDP_CONFIG).train(second.id, second.genotype)
        await wait_until(pilot, lambda: app.screen.row.status == "trained", "the live detail")


def test_hrnas_blocks_and_profiling_an_onnx_file(tmp_path):
    genotype = "hrnas(w8-16,b1-2,d1,r2,t4,ft0,s8,h1):16/16/8/1,32/24/24/0"
    table = hrnas_block_table(genotype, ("p0.b0.0", "f0.r01"))
    assert table.row_count == 2 and table.columns[0]._cells == ["p0.b0.0", "f0.r01"]
    assert hrnas_block_table(genotype).columns[0]._cells == ["0", "1"]  # no names known
    assert hrnas_block_table("S2:not-hrnas") is None
    assert "cannot decode" in str(block_table("S9:nonsense"))
    spec = jobs.profile_job(tmp_path, 1, genotype, {"device": "cpu"}, model=tmp_path / "m.onnx")
    assert spec.argv[3:5] == ("profile", str(tmp_path / "m.onnx")) and "--genotype" not in spec.argv


@async_test
async def test_a_big_run_is_paged_and_filtered_in_the_table(tmp_path):
    run_dir = write_ldp_run(tmp_path / "run", freeze=False)
    with RunStore.open(run_dir) as store:  # 230 more pool rows: three pages
        store.add_candidates(
            [{"genotype": f"S2:pool-{i}", "origin": "pool", "status": "scored",
              "score": 100.0 + i} for i in range(230)]
        )  # fmt: skip
    async with opened(run_dir, size=(100, 30)) as (app, pilot):
        await pilot.press("2")
        table = app.screen.query_one(CandidatesTable)
        await wait_until(pilot, lambda: page_ready(app), "the first page")
        state = _dashboard(app).state
        total = state.counts.total
        assert total == 248 and table.row_count == 100
        caption = text_of(app.screen.query_one("#candidates-caption"))
        assert caption.startswith("1-100 of 248 candidates") and "] [ pages" in caption
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: page_ready(app), "the second page")
        assert _table_ids(table) == list(range(101, 201))
        # Enter on a pool row of this page: the detail comes from the page.
        table.move_cursor(row=5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, CandidateScreen), "detail")
        assert "candidate #106  pool  scored" in text_of(app.screen.query_one("#detail-title"))
        await pilot.press("escape", "f")  # searched: no pool-only rows, back to page one
        await wait_until(pilot, lambda: page_ready(app), "the searched rows")
        searched = _dashboard(app).state
        assert table.row_count == searched.counts.searched == len(searched.rows) > 6
        assert all(table.shown_row(i).origin != "pool" or table.shown_row(i).status != "scored"
                   for i in _table_ids(table))  # fmt: skip
        await pilot.press("f")  # trained
        await wait_until(pilot, lambda: page_ready(app), "the trained rows")
        assert {table.shown_row(i).status for i in _table_ids(table)} == {"trained"}
        assert table.row_count == _dashboard(app).state.header.trained
        caption = app.screen.query_one("#candidates-caption")
        assert caption.display and text_of(caption).startswith(f"1-{table.row_count} of ")
