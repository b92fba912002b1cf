"""The candidates table: one page of the run's candidates at a time, sorted and
filtered in SQL by the reader (a paper-scale run has 60,000), updated in place."""

from __future__ import annotations

from typing import ClassVar

from edgenas.tui.genotypes import describe
from edgenas.tui.reader import PAGE_SIZE, PageQuery
from edgenas.tui.state import CandidateRow, RunState, format_count
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

# (key, label) — the table's columns in order.
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
# Bigger is better for the scores; smaller for sizes and latency.
DESCENDING_FIRST = ("score", "metric", "grade")
# The subsets ``f`` cycles through (edgenas.store.CANDIDATE_FILTERS) and their names.
SUBSETS = {
    "all": "candidates",
    "searched": "searched (parents, children)",
    "trained": "trained",
    "pool": "pool only (scored, not searched)",
}
# The status as one coloured glyph (the help lists them): the width goes to the genotype.
STATUS_GLYPH = {
    "trained": ("✓", "green"),
    "proposed": ("?", "yellow"),
    "scored": ("·", ""),
    "failed": ("✗", "bold red"),
}
# Columns other than the genotype take about this many terminal columns (padding included).
OTHER_COLUMNS_WIDTH = 63
SCROLLBAR_WIDTH = 2


def _cells(
    row: CandidateRow, best_id: int | None, genotype: str | None, genotype_width: int = 22
) -> list:
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
    """A page of the run's candidates. ``s`` cycles the sort column, ``S`` reverses it;
    clicking a column header sorts by it; ``f`` cycles the subset shown (all, searched,
    trained, pool only); ``]`` and ``[`` turn the pages. Each of these posts
    :class:`QueryChanged`: the screen has the reader fetch that page. Enter opens the
    candidate (the screen handles it)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse", show=False),
        Binding("f", "cycle_subset", "Filter"),
        Binding("right_square_bracket", "page(1)", "Page", key_display="]"),
        Binding("left_square_bracket", "page(-1)", "Page back", show=False, key_display="["),
    ]

    class QueryChanged(Message):
        """The sort, subset or page changed: another page is wanted."""

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, fixed_columns=1, **kwargs)
        self.sort_key = "id"
        self.sort_reverse = False
        self.subset = "all"
        self.first_row = 0
        self.total = 0  # rows in the subset
        self._shown: tuple[int, ...] = ()  # ids of the rows shown, in order
        self._signatures: dict[int, tuple] = {}
        self._by_id: dict[int, CandidateRow] = {}
        self._best_id: int | None = None
        self._metric_name = "metric"
        self._score_name = "NASWOT"

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)
        self._update_labels()

    def page_query(self, metric: str | None = None) -> PageQuery:
        """The page this table wants (``metric``: the name the metric column sorts by)."""
        return PageQuery(
            sort=self.sort_key,
            descending=self.sort_reverse,
            subset=self.subset,
            offset=self.first_row,
            limit=PAGE_SIZE,
            metric=metric or self._metric_name,
        )

    def shown_row(self, candidate_id: int) -> CandidateRow | None:
        """A row of the page shown, by candidate id."""
        return self._by_id.get(candidate_id)

    def show(self, state: RunState) -> None:
        """Show the page in ``state``: rows already there are updated in place (the
        cursor stays put), a page with other rows replaces them."""
        metric_changed = state.metric_name != self._metric_name
        metric_changed |= state.score_name != self._score_name
        self._metric_name, self._score_name = state.metric_name, state.score_name
        total = state.page_total
        if (total > PAGE_SIZE) != (self.total > PAGE_SIZE):
            self.refresh_bindings()  # the page keys come and go (check_action)
        self.total = total
        best_changed = state.best_id != self._best_id
        self._best_id = state.best_id
        # The genotype column gets the width the other columns leave (children are shown
        # by the blocks in which they differ from their parent, see tui/genotypes.py).
        width = max(16, self.app.size.width - OTHER_COLUMNS_WIDTH)
        if len(state.page) > self.size.height - 1:  # more rows than fit: a scroll bar
            width = max(16, width - SCROLLBAR_WIDTH)
        ids = tuple(row.id for row in state.page)
        if ids != self._shown:
            self._replace(state.page, state.best_id, width)
        else:
            for row in state.page:
                cells = _cells(row, state.best_id, row.parent_genotype, width)
                signature = (*(str(c) for c in cells), row.id == state.best_id)
                self._by_id[row.id] = row
                if self._signatures.get(row.id) != signature or best_changed:
                    for (key, _), cell in zip(COLUMNS, cells, strict=True):
                        self.update_cell(str(row.id), key, cell, update_width=True)
                self._signatures[row.id] = signature
        if metric_changed:
            self._update_labels()

    def _replace(self, rows: tuple[CandidateRow, ...], best_id: int | None, width: int) -> None:
        cursor = self.cursor_row
        self.clear()
        self._signatures.clear()
        self._by_id.clear()
        for row in rows:
            cells = _cells(row, best_id, row.parent_genotype, width)
            self.add_row(*cells, key=str(row.id))
            self._signatures[row.id] = (*(str(c) for c in cells), row.id == best_id)
            self._by_id[row.id] = row
        self._shown = tuple(row.id for row in rows)
        if rows:
            self.move_cursor(row=min(cursor, len(rows) - 1))

    @property
    def paged(self) -> bool:
        """Whether the table shows part of the candidates (a page, or a subset)."""
        return self.subset != "all" or self.total > len(self._shown) or self.first_row > 0

    def caption(self) -> Text:
        """A line above the table when it is :attr:`paged`: which rows of how many,
        the subset, the keys."""
        shown = len(self._shown)
        first = self.first_row + 1 if shown else 0
        text = Text(f"{first}-{self.first_row + shown} of {self.total:,} ", "bold")
        text.append(SUBSETS[self.subset])
        text.append("   f filter" + ("   ] [ pages" if self.total > PAGE_SIZE else ""), "dim")
        return text

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        """Sort by column ``key`` (``reverse`` None: keep the direction), from the top."""
        self.sort_key = key
        if reverse is not None:
            self.sort_reverse = reverse
        self.first_row = 0
        self._update_labels()
        self.post_message(self.QueryChanged())

    def _update_labels(self) -> None:
        for column_key, column in self.columns.items():
            label = dict(COLUMNS)[column_key.value]
            if column_key.value == "metric":
                label = self._metric_name
            if column_key.value == "score":
                label = self._score_name
            if column_key.value == self.sort_key:
                label += " ▼" if self.sort_reverse else " ▲"
            column.label = Text(label)
        # DataTable caches its rendered header and has no public call to drop that
        # cache when a label changes; a sort does (stable, by a constant: no reordering).
        self.sort(key=lambda _row: 0)

    def action_cycle_sort(self) -> None:
        position = SORTABLE.index(self.sort_key) if self.sort_key in SORTABLE else -1
        next_key = SORTABLE[(position + 1) % len(SORTABLE)]
        self.sort_by(next_key, reverse=next_key in DESCENDING_FIRST)

    def action_reverse_sort(self) -> None:
        self.sort_by(self.sort_key, reverse=not self.sort_reverse)

    def action_cycle_subset(self) -> None:
        names = list(SUBSETS)
        self.subset = names[(names.index(self.subset) + 1) % len(names)]
        self.first_row = 0
        self.post_message(self.QueryChanged())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The page keys only where there is more than one page (the footer hides them)."""
        if action == "page":
            return self.total > PAGE_SIZE
        return True

    def action_page(self, step: int) -> None:
        offset = self.first_row + step * PAGE_SIZE
        if offset < 0 or offset >= max(self.total, 1):
            return
        self.first_row = offset
        self.post_message(self.QueryChanged())

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = event.column_key.value
        if key == self.sort_key:
            self.action_reverse_sort()
        else:
            self.sort_by(key, reverse=key in DESCENDING_FIRST)

    def selected_candidate(self) -> int | None:
        """Id of the candidate under the cursor."""
        if self.row_count == 0:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return int(row_key.value)
