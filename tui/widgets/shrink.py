"""HR-NAS shrink runs: units kept per block over the shrink steps."""

from __future__ import annotations

from edgenas.tui.state import ShrinkState
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

# Steps shown as columns (the most recent ones), so the table fits 80 columns.
MAX_STEP_COLUMNS = 6


class ShrinkPanel(Static):
    """A table: one row per block, one column per recent shrink step, cells = units kept."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shrink: ShrinkState | None = None

    def show(self, shrink: ShrinkState) -> None:
        """Render ``shrink`` (no-op when unchanged)."""
        if shrink == self._shrink:
            return
        self._shrink = shrink
        if not shrink.steps:
            self.update(Text("waiting for shrink_step events", "dim"))
            return
        first = max(0, len(shrink.steps) - MAX_STEP_COLUMNS)
        table = Table("block", box=None, title="units kept per block", title_justify="left")
        for i in range(first, len(shrink.steps)):
            step = shrink.steps[i]
            table.add_column(f"step {int(step.get('step', i))}", justify="right")
        table.add_column("kept", justify="right")
        initial = shrink.units[0]
        for b, block in enumerate(shrink.blocks):
            cells = [str(shrink.units[i][b]) for i in range(first, len(shrink.steps))]
            start, now = initial[b], shrink.units[-1][b]
            share = f"{now / start:.0%}" if start else "-"
            table.add_row(block, *cells, share)
        self.update(table)
