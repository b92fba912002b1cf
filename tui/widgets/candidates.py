"""The candidates table: one row per architecture, sortable, updated in place."""

from __future__ import annotations

import math
from typing import ClassVar

from edgenas.tui.genotypes import describe
from edgenas.tui.state import CandidateRow, RunState, format_count
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

# (key, label, value for sorting) — the table's columns in order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("parent", "par"),
    ("genotype", "genotype"),
    ("params", "params"),
    ("flops", "MACs"),
    ("latency", "lat ms"),
    ("score", "NASWOT"),
    ("metric", "metric"),
    ("grade", "G"),
    ("status", "st"),
)
SORTABLE = ("id", "params", "flops", "latency", "score", "metric", "grade", "status")
# The status as one coloured glyph (the help lists them): the width goes to the genotype.
STATUS_GLYPH = {
    "trained": ("✓", "green"),
    "proposed": ("?", "yellow"),
    "scored": ("·", ""),
    "failed": ("✗", "bold red"),
}
# Columns other than the genotype take about this many terminal columns (padding included).
OTHER_COLUMNS_WIDTH = 63


def _sort_value(row: CandidateRow, key: str):
    """Sort key of a row: None sorts last whichever the direction (handled by caller)."""
    return {
        "id": row.id,
        "parent": row.parent_id,
        "genotype": row.genotype,
        "params": row.params,
        "flops": row.flops,
        "latency": row.latency_ms,
        "score": row.score,
        "metric": row.metric,
        "grade": row.grade,
        "status": row.status,
    }[key]


def _cells(row: CandidateRow, best_id: int | None, genotype: str, genotype_width: int = 22) -> list:
    """The table cells of a row; ``genotype`` is the string the genotype is shown
    against (the parent's), if known."""
    latency = "-"
    if row.latency_ms is not None:
        mark = "m" if row.latency_source == "measured" else "p"
        latency = f"{row.latency_ms:.2f}{mark}"
    ident = Text(str(row.id), style="bold red" if row.id == best_id else "")
    if row.id == best_id:
        ident.append("★")
    glyph, status_style = STATUS_GLYPH.get(row.status, (row.status[:1] or "?", ""))
    return [
        ident,
        "-" if row.parent_id is None else str(row.parent_id),
        describe(row.genotype, genotype, genotype_width),
        format_count(row.params),
        format_count(row.flops),
        latency,
        "-" if row.score is None else f"{row.score:.1f}",
        "-" if row.metric is None else f"{row.metric:.3f}",
        "-" if row.grade is None else f"{row.grade:.4f}",
        Text(glyph, style=status_style),
    ]


class CandidatesTable(DataTable):
    """Candidates of the run. ``s`` cycles the sort column, ``S`` reverses it; clicking a
    column header sorts by it. Enter opens the candidate (the screen handles it)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse", show=False),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, fixed_columns=1, **kwargs)
        self.sort_key = "id"
        self.sort_reverse = False
        self._signatures: dict[int, tuple] = {}
        self._by_id: dict[int, CandidateRow] = {}
        self._best_id: int | None = None
        self._metric_name = "metric"

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def show(self, state: RunState) -> None:
        """Add new candidates and update changed ones in place (the cursor stays put)."""
        changed = state.metric_name != self._metric_name
        self._metric_name = state.metric_name
        best_changed = state.best_id != self._best_id
        self._best_id = state.best_id
        # The genotype column gets the width the other columns leave (children are shown
        # by the blocks in which they differ from their parent, see tui/genotypes.py).
        width = max(16, self.app.size.width - OTHER_COLUMNS_WIDTH)
        genotypes = {r.id: r.genotype for r in state.rows}
        for row in state.rows:
            cells = _cells(row, state.best_id, genotypes.get(row.parent_id), width)
            signature = (*(str(c) for c in cells), row.id == state.best_id)
            self._by_id[row.id] = row
            if row.id not in self._signatures:
                self.add_row(*cells, key=str(row.id))
                changed = True
            elif self._signatures[row.id] != signature or best_changed:
                for (key, _), cell in zip(COLUMNS, cells, strict=True):
                    self.update_cell(str(row.id), key, cell, update_width=True)
                changed = True
            self._signatures[row.id] = signature
        if changed:
            self._apply_sort()

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        """Sort by column ``key`` (``reverse`` None: keep the direction)."""
        self.sort_key = key
        if reverse is not None:
            self.sort_reverse = reverse
        self._apply_sort()

    def _apply_sort(self) -> None:
        key, reverse = self.sort_key, self.sort_reverse

        def order(id_cell) -> tuple:
            # The key function gets the "id" column's cell: the id, starred if best.
            row = self._by_id.get(int(str(id_cell).rstrip("★")))
            value = _sort_value(row, key) if row else None
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            # Missing values go last in both directions.
            return (missing != reverse, value if not missing else 0)

        self.sort("id", key=order, reverse=reverse)
        self._update_labels()

    def _update_labels(self) -> None:
        for column_key, column in self.columns.items():
            label = dict(COLUMNS)[column_key.value]
            if column_key.value == "metric":
                label = self._metric_name
            if column_key.value == self.sort_key:
                label += " ▼" if self.sort_reverse else " ▲"
            column.label = Text(label)
        self.refresh()

    def action_cycle_sort(self) -> None:
        position = SORTABLE.index(self.sort_key) if self.sort_key in SORTABLE else -1
        next_key = SORTABLE[(position + 1) % len(SORTABLE)]
        # Bigger is better for the scores; smaller for sizes and latency.
        self.sort_by(next_key, reverse=next_key in ("score", "metric", "grade"))

    def action_reverse_sort(self) -> None:
        self.sort_by(self.sort_key, reverse=not self.sort_reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = event.column_key.value
        if key == self.sort_key:
            self.action_reverse_sort()
        else:
            self.sort_by(key, reverse=key in ("score", "metric", "grade"))

    def selected_candidate(self) -> int | None:
        """Id of the candidate under the cursor."""
        if self.row_count == 0:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return int(row_key.value)
