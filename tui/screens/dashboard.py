"""The run dashboard: header, plots, candidates, search state, events, device."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from edgenas.tui.messages import StateChanged
from edgenas.tui.plots import progress_plots, shrink_plots
from edgenas.tui.reader import RunReader
from edgenas.tui.state import RunState, derive
from edgenas.tui.widgets.candidates import CandidatesTable
from edgenas.tui.widgets.device import DevicePanel
from edgenas.tui.widgets.events import EventLog
from edgenas.tui.widgets.header import RunHeader
from edgenas.tui.widgets.plot import SpecPlot
from edgenas.tui.widgets.pool import PoolPanel
from edgenas.tui.widgets.search import SearchPanel
from edgenas.tui.widgets.shrink import ShrinkPanel
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

RESOURCES = ("params", "flops", "latency_ms")


class DashboardScreen(Screen):
    """One run, polled every ``poll_interval`` seconds in a worker thread."""

    # The tab keys are in the tab labels ("1 Plots"), so the footer keeps room for the rest.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "tab('plots')", "Plots", show=False),
        Binding("2", "tab('candidates')", "Cands", show=False),
        Binding("3", "tab('search')", "Search", show=False),
        Binding("4", "tab('events')", "Events", show=False),
        Binding("5", "tab('device')", "Device", show=False),
        Binding("r", "cycle_resource", "Resource"),
        Binding("b", "open_best", "Best"),
        Binding("l", "final_loss", "Loss"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(
        self, run_dir: Path, *, poll_interval: float = 1.0, clock: Callable[[], float] | None = None
    ) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.poll_interval = poll_interval
        self.clock = clock
        # Staged: the first screen comes up before the pool is read (issue 17).
        self.reader = RunReader(self.run_dir, staged=True)
        self.state: RunState | None = None
        self.resource: str | None = None  # None: the run's primary resource
        self._polling = threading.Lock()
        self._poll_again = False  # a page was asked for while a poll ran

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        with TabbedContent(initial="plots"):
            with TabPane("1 Plots", id="plots"), Grid(id="plot-grid"):
                for i in range(4):
                    yield SpecPlot(id=f"plot-{i}")
            with TabPane("2 Candidates", id="candidates"):
                yield Static(id="candidates-caption")
                yield CandidatesTable(id="candidates-table")
            with TabPane("3 Search", id="search"), VerticalScroll():
                yield PoolPanel(id="pool-panel")
                yield SearchPanel(id="search-panel")
                yield ShrinkPanel(id="shrink-panel")
            with TabPane("4 Events", id="events"):
                yield EventLog(id="event-log")
            with TabPane("5 Device", id="device"), VerticalScroll():
                yield DevicePanel(id="device-panel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RunHeader).show(derive(self.reader.snapshot).header, None)
        self.poll_now()
        self.set_interval(self.poll_interval, self.poll_now)

    def on_unmount(self) -> None:
        self.reader.close()

    # ------------------------------------------------------------------ polling
    def poll_now(self) -> None:
        """Start a poll in a worker thread unless one is still running (a slow or locked
        store never stacks polls up, and never blocks the screen); the running one then
        polls once more, so a page asked for meanwhile is not left for the next tick."""
        if self._polling.acquire(blocking=False):
            self.run_worker(self._poll, thread=True, group="poll", exit_on_error=False)
        else:
            self._poll_again = True

    def _poll(self) -> None:
        try:
            again = True
            while again:
                self._poll_again = False
                snapshot = self.reader.poll()
                if snapshot is not None:
                    now = self.clock() if self.clock else None
                    self.post_message(StateChanged(derive(snapshot, now)))
                again = self._poll_again
        finally:
            self._polling.release()

    def _want_page(self) -> None:
        """Have the reader read the candidates table's page while the table is shown
        (a page sorted by a column costs a pass over the table in SQL: not while no
        one looks at it)."""
        table = self.query_one(CandidatesTable)
        shown = self.query_one(TabbedContent).active == "candidates"
        metric = self.state.metric_name if self.state is not None else None
        self.reader.page_query = table.page_query(metric) if shown else None

    def on_candidates_table_query_changed(self, message: CandidatesTable.QueryChanged) -> None:
        message.stop()
        self._want_page()
        self.poll_now()

    def on_state_changed(self, message: StateChanged) -> None:
        from edgenas.tui.screens.candidate import CandidateScreen

        metric_changed = self.state is None or self.state.metric_name != message.state.metric_name
        self.state = message.state
        self._show(message.state)
        if metric_changed:  # the table sorts by the run's metric: known from the first poll
            self._want_page()
        if message.state.partial:  # the first screen is up: read the rest of the run now
            self.set_timer(0.3, self.poll_now)
        # The detail screen of a candidate stays live while this screen polls under it.
        for screen in self.app.screen_stack:
            if isinstance(screen, CandidateScreen):
                screen.show_state(message.state)

    def _show(self, state: RunState) -> None:
        self.query_one(RunHeader).show(state.header, state.error)
        shrink = state.header.kind == "hrnas-shrink"
        specs = shrink_plots(state) if shrink else progress_plots(state, self.resource)
        for i, spec in enumerate(specs[:4]):
            self.query_one(f"#plot-{i}", SpecPlot).show(spec)
        table = self.query_one(CandidatesTable)
        table.show(state)
        caption = self.query_one("#candidates-caption", Static)
        caption.display = table.paged
        caption.update(table.caption())
        self.query_one(PoolPanel).show(state.pool, state.score_name)
        search = self.query_one(SearchPanel)
        search.display = not shrink
        search.show(state.ats, state.score_name)
        panel = self.query_one(ShrinkPanel)
        panel.display = shrink or bool(state.shrink.steps)
        panel.show(state.shrink)
        self.query_one(EventLog).show(state.log)
        self.query_one(DevicePanel).show(state.device)

    # ------------------------------------------------------------------ actions
    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        if tab == "candidates":
            self.query_one(CandidatesTable).focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # Lines written while the log was hidden were laid out at width 0: jump to the end.
        if event.pane.id == "events":
            self.query_one(EventLog).scroll_end(animate=False)
        wanted = self.reader.page_query is not None
        if wanted != (event.pane.id == "candidates"):
            self._want_page()
            self.poll_now()

    def action_cycle_resource(self) -> None:
        current = self.resource or (self.state.resource if self.state else "params")
        self.resource = RESOURCES[(RESOURCES.index(current) + 1) % len(RESOURCES)]
        if self.state is not None:
            self._show(self.state)
        self.notify(f"plots: {self.resource}", timeout=2)

    def action_open_best(self) -> None:
        if self.state is None or self.state.best_id is None:
            self.notify("no trained candidate yet", timeout=2)
            return
        self.open_candidate(self.state.best_id)

    def action_final_loss(self) -> None:
        """The final training's loss curve, with the best candidate's proxy training."""
        from edgenas.tui.plots import loss_plot
        from edgenas.tui.screens.loss import LossScreen

        state = self.state
        curves = []
        if state is not None:
            curves.append(("final training", state.final_loss))
            best = next((r for r in state.rows if r.id == state.best_id), None)
            if best is not None:
                curves.append((f"proxy #{best.id} (best)", best.loss_history))
        finished = state is not None and state.header.status == "finished"
        empty = (
            "no loss recorded for the final training (a run from before loss curves)"
            if finished
            else "the final training has not finished yet"
        )
        self.app.push_screen(
            LossScreen(loss_plot("training loss: final training", tuple(curves), empty))
        )

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if isinstance(event.data_table, CandidatesTable):
            self.open_candidate(int(event.row_key.value))

    def open_candidate(self, candidate_id: int) -> None:
        """Push the detail screen of a candidate (a pool row is known from the table's
        page: the state holds only the searched rows)."""
        from edgenas.tui.screens.candidate import CandidateScreen

        if self.state is None:
            return
        row = self.query_one(CandidatesTable).shown_row(candidate_id)
        self.app.push_screen(CandidateScreen(self.state, candidate_id, row))
