"""The list of runs under a runs folder; enter opens one."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import ClassVar

from edgenas.tui.reader import RunEntry, list_runs
from edgenas.tui.widgets.header import STATUS_STYLE
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static


class RunListScreen(Screen):
    """Runs under ``runs_dir``, newest first, refreshed every few seconds."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "Open", show=True)]

    def __init__(self, runs_dir: Path, *, refresh_interval: float = 3.0) -> None:
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.refresh_interval = refresh_interval
        self.entries: list[RunEntry] = []

    def compose(self) -> ComposeResult:
        yield Static(id="runs-title")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in (
            ("name", "run"),
            ("kind", "kind"),
            ("status", "status"),
            ("cands", "cands"),
            ("updated", "updated"),
        ):
            table.add_column(label, key=key)
        self.reload()
        self.set_interval(self.refresh_interval, self.reload)

    def reload(self) -> None:
        """Re-list the runs (new runs appear, statuses change) in a worker thread: a
        locked store can take seconds to answer, and the screen must not wait."""
        self.run_worker(self._list, thread=True, exclusive=True, group="runs")

    def _list(self) -> None:
        entries = list_runs(self.runs_dir)
        # RuntimeError: the app closed while the runs were listed.
        with contextlib.suppress(RuntimeError):
            self.app.call_from_thread(self.show_entries, entries)

    def show_entries(self, entries: list[RunEntry]) -> None:
        """Show ``entries`` (no-op when unchanged; the cursor stays on its row)."""
        title = self.query_one("#runs-title", Static)
        if not entries:
            title.update(
                Text(
                    f"no runs under {self.runs_dir}/ yet — start one with `edgenas search`, "
                    "or give a folder: `edgenas monitor --runs-dir DIR`",
                    "yellow",
                )
            )
        else:
            title.update(Text(f"runs under {self.runs_dir}/ — enter opens one", "bold"))
        if entries == self.entries:
            return
        self.entries = entries
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for entry in entries:
            updated = (
                time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.updated_at))
                if entry.updated_at
                else "-"
            )
            status = (
                Text("unreadable", "bold red")
                if entry.error
                else Text(entry.status, STATUS_STYLE.get(entry.status, ""))
            )
            table.add_row(
                entry.name, entry.kind, status, str(entry.candidates), updated, key=str(entry.path)
            )
        if entries:
            table.move_cursor(row=min(cursor, len(entries) - 1))

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            self._open(table.cursor_row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._open(event.cursor_row)

    def _open(self, index: int) -> None:
        entry = self.entries[index]
        if entry.error:
            self.notify(f"{entry.name}: {entry.error}", severity="error", timeout=5)
            return
        self.app.open_run(entry.path)
