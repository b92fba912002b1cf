"""Candidate detail: the genotype block by block, metrics, lineage, per-layer latency,
and background actions (export the ONNX file, profile on the run's device)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from edgenas.tui import clipboard, jobs
from edgenas.tui.genotypes import changes, fit, outline
from edgenas.tui.plots import loss_plot
from edgenas.tui.state import CandidateRow, RunState, format_count
from edgenas.tui.widgets.plot import SpecPlot
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static

CHANGED_STYLE = "bold yellow"  # blocks that differ from the parent


def hrnas_block_table(
    genotype: str, names: tuple[str, ...] = (), changed: frozenset[int] = frozenset()
) -> Table | None:
    """An HR-NAS architecture string (``hrnas(...):k3/k5/k7/tokens,...``) as a table of
    units per block, named after the shrink run's blocks when the counts agree;
    ``changed`` blocks are highlighted."""
    head, _, body = genotype.partition("):")
    if not head.startswith("hrnas(") or not body:
        return None
    blocks = [part.split("/") for part in body.split(",")]
    if not all(len(b) == 4 and all(x.isdigit() for x in b) for b in blocks):
        return None
    if len(names) != len(blocks):
        names = tuple(str(i) for i in range(len(blocks)))
    table = Table(
        "block", "k3", "k5", "k7", "tokens",
        title=f"{head}), {len(blocks)} blocks", title_justify="left", box=None, pad_edge=False,
    )  # fmt: skip
    for i, (name, units) in enumerate(zip(names, blocks, strict=True)):
        table.add_row(name, *units, style=CHANGED_STYLE if i in changed else None)
    return table


def block_table(
    genotype: str, names: tuple[str, ...] = (), changed: frozenset[int] = frozenset()
) -> Table | Text:
    """The genotype as a per-block table (role, scale, op, kernel, SE, residual, width,
    layers; for HR-NAS strings units per block, see :func:`hrnas_block_table`), the
    ``changed`` blocks highlighted; a string that does not decode is shown as text with
    the reason."""
    from edgenas.space import decode
    from edgenas.space.genotype import scale_label

    hrnas = hrnas_block_table(genotype, names, changed)
    if hrnas is not None:
        return hrnas
    try:
        decoded = decode(genotype)
    except ValueError as err:
        return Text(f"cannot decode genotype: {err}\n{genotype}", "red")
    layout = " (SR upsample layout)" if decoded.layout == "paper" else ""
    table = Table(
        "#",
        "role",
        "sc",
        "op",
        "k",
        "se",
        "res",
        "ch",
        "n",
        title=f"{decoded.scales} scales{layout}, {len(decoded.blocks)} blocks",
        title_justify="left",
        box=None,
        pad_edge=False,
    )
    for i, (role, block) in enumerate(zip(decoded.roles, decoded.blocks, strict=True)):
        table.add_row(
            str(i),
            role,
            scale_label(role),
            block.op_token,
            "-" if block.op == "id" else str(block.kernel),  # id: no layers to describe
            str(block.se) if block.se else "-",
            "✓" if block.residual else "-",
            str(block.channels),
            "-" if block.op == "id" else str(block.layers),
            style=CHANGED_STYLE if i in changed else None,
        )
    return table


def lineage(
    state: RunState, candidate_id: int, row: CandidateRow | None = None
) -> list[CandidateRow]:
    """The candidate (``row``, if it is not one of the state's searched rows) and its
    ancestors, oldest first."""
    by_id = {r.id: r for r in state.rows}
    if row is not None:
        by_id.setdefault(row.id, row)
    chain, seen = [], set()
    current = by_id.get(candidate_id)
    while current is not None and current.id not in seen:
        seen.add(current.id)
        chain.append(current)
        current = by_id.get(current.parent_id) if current.parent_id is not None else None
    return list(reversed(chain))


def _metrics(row: CandidateRow, metric_name: str, score_name: str = "NASWOT") -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    latency = "-"
    if row.latency_ms is not None:
        latency = f"{row.latency_ms:.3f} ms ({row.latency_source or '?'}, {row.device or '?'})"
    for label, value in (
        ("params", format_count(row.params)),
        ("MACs", format_count(row.flops)),
        ("latency", latency),
        (score_name, "-" if row.score is None else f"{row.score:.2f}"),
        (f"A ({metric_name})", "-" if row.accuracy is None else f"{row.accuracy:.4f}"),
        ("G", "-" if row.grade is None else f"{row.grade:.4f}"),
        ("R", "-" if row.reward is None else f"{row.reward:.4f}"),
    ):
        table.add_row(label, value)
    for name, value in row.metrics:
        table.add_row(f"  {name}", f"{value:.4f}")
    for name, value in row.timings:
        table.add_row(f"  t.{name}", f"{value:.2f}")
    return table


def genotype_text(genotype: str, changed: frozenset[int], width: int = 78) -> Text:
    """The whole genotype string, the ``changed`` blocks highlighted, broken into lines
    of ``width`` after a block separator (a block longer than a line folds)."""
    head, sep, body = genotype.partition(":")
    if not sep:
        return Text(genotype, "dim", overflow="fold")
    joiner = "," if head.startswith("hrnas(") else "-"
    blocks = body.split(joiner)
    text = Text(overflow="fold")
    text.append(head + sep, "dim")
    column = len(head) + 1
    for i, block in enumerate(blocks):
        piece = block + (joiner if i < len(blocks) - 1 else "")
        if column and column + len(piece) > width:
            text.append("\n")
            column = 0
        text.append(block, CHANGED_STYLE if i in changed else "dim")
        if i < len(blocks) - 1:
            text.append(joiner, "dim")
        column += len(piece)
    return text


def layer_table(profile: jobs.Profile, width: int) -> Table:
    """The slowest layers of a profile with the block each belongs to."""
    table = Table(
        "block",
        "layer",
        "op",
        "ms",
        box=None,
        title_justify="left",
        pad_edge=False,
        title=f"per-layer latency, slowest first ({profile.device}, {profile.runtime})",
    )
    room = max(8, width - 24)  # what block, op and ms leave for the rest of the name
    for layer in profile.layers:
        _, rest = jobs.layer_block(layer.name)
        rest = rest if len(rest) <= room else "…" + rest[-(room - 1) :]
        table.add_row(layer.block, rest, layer.op_type, f"{layer.time_ms:.3f}")
    return table


class CandidateScreen(Screen):
    """One candidate; ``escape`` goes back to the dashboard.

    The body scrolls as one (it has the focus, so the arrows, Page Up/Down, Home and End
    work at once); the blocks in which the candidate differs from its parent are
    highlighted, and the whole genotype string is at the bottom (``c`` copies it).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("x", "export", "Export"),
        Binding("p", "profile", "Profile"),
        Binding("c", "copy", "Copy"),
        Binding("l", "loss", "Loss"),
    ]

    def __init__(self, state: RunState, candidate_id: int, row: CandidateRow | None = None) -> None:
        super().__init__()
        self.state = state
        self.candidate_id = candidate_id
        self._opened_row = row  # a pool row, from the table's page
        self._active_jobs: set[str] = set()

    def _find(self, candidate_id: int) -> CandidateRow | None:
        """A row of the state: the searched rows, then the table's page."""
        for rows in (self.state.rows, self.state.page):
            found = next((r for r in rows if r.id == candidate_id), None)
            if found is not None:
                return found
        return None

    @property
    def row(self) -> CandidateRow | None:
        found = self._find(self.candidate_id)
        if found is None and self._opened_row is not None:
            return self._opened_row  # a pool row that left the page shown
        return found

    @property
    def parent_row(self) -> CandidateRow | None:
        row = self.row
        if row is None or row.parent_id is None:
            return None
        return self._find(row.parent_id)

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        with VerticalScroll(id="detail-body"):
            with Horizontal(id="detail-columns"):
                with Vertical(id="detail-blocks"):
                    yield Static(id="blocks")
                with Vertical(id="detail-side"):
                    yield Static(id="metrics")
                    yield SpecPlot(id="loss-plot")
                    yield Static(id="lineage")
                    yield Static(id="layers")
            yield Static(id="genotype")
        yield RichLog(id="job-log", max_lines=200, wrap=False, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        # The job log only shows output: keys go to the body without a Tab first.
        self.query_one("#job-log", RichLog).can_focus = False
        self.query_one("#detail-body").focus()
        self.show_state(self.state)
        self.query_one("#job-log", RichLog).write(
            Text(
                "x: export ONNX  p: profile per layer  c: copy genotype  l: loss curve",
                "dim",
            )
        )

    def _changed(self) -> tuple[frozenset[int], str | None]:
        """The blocks that differ from the parent, and a line naming them (None
        without a parent to compare with)."""
        row, parent = self.row, self.parent_row
        if row is None or parent is None:
            return frozenset(), None
        diff = changes(row.genotype, parent.genotype, self.state.shrink.blocks)
        if diff is None:
            return frozenset(), f"vs parent #{parent.id}: {outline(row.genotype)}"
        if not diff:
            return frozenset(), f"vs parent #{parent.id}: the same blocks"
        return (
            frozenset(c.index for c in diff),
            f"vs parent #{parent.id}: " + " ".join(c.text() for c in diff),
        )

    def show_state(self, state: RunState) -> None:
        """Render the candidate from ``state`` (the dashboard calls this on each update)."""
        self.state = state
        row = self.row
        title = self.query_one("#detail-title", Static)
        if row is None:
            title.update(Text(f"candidate #{self.candidate_id} is not in this run", "bold red"))
            return
        changed, versus = self._changed()
        width = max(20, self.app.size.width - 2)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"candidate #{row.id}", "bold")
        if row.id == state.best_id:
            text.append(" ★ best", "bold red")
        text.append(f"  {row.origin}  {row.status}")
        if row.parent_id is not None:
            text.append(f"  parent #{row.parent_id}")
        if row.iteration is not None:
            text.append(f"  iteration {row.iteration}")
        text.append("\n")
        text.append(
            fit(versus or outline(row.genotype), width), CHANGED_STYLE if changed else "dim"
        )
        title.update(text)
        blocks = block_table(row.genotype, state.shrink.blocks, changed)
        self.query_one("#blocks", Static).update(blocks)
        genotype = Text("genotype (c copies it)\n", "bold")
        genotype.append_text(genotype_text(row.genotype, changed, width - 2))
        self.query_one("#genotype", Static).update(genotype)
        self.query_one("#metrics", Static).update(
            _metrics(row, state.metric_name, state.score_name)
        )
        self.query_one("#loss-plot", SpecPlot).show(self.loss_spec(compact=True))
        chain = lineage(state, row.id, row)
        lines = Text("lineage\n", "bold")
        lines.append(
            " → ".join(
                f"#{r.id} {r.origin}" + (f" G {r.grade:.3f}" if r.grade is not None else "")
                for r in chain
            ),
            "",
        )
        children = [r for r in state.rows if r.parent_id == row.id]
        if children:
            lines.append("\nchildren: ", "bold")
            lines.append(", ".join(f"#{r.id} ({r.status})" for r in children))
        self.query_one("#lineage", Static).update(lines)
        self._show_profile()

    def loss_spec(self, compact: bool = False):
        """The plot of this candidate's training loss, with its parent's to compare."""
        row, parent = self.row, self.parent_row
        curves = []
        if row is not None:
            curves.append((f"#{row.id}", row.loss_history))
        if parent is not None and parent.loss_history:
            curves.append((f"parent #{parent.id}", parent.loss_history))
        if row is not None and row.status != "trained":
            empty = "not trained"
        else:
            empty = "no loss recorded (a run from before loss curves)"
        title = (
            "training loss" if compact else f"candidate #{self.candidate_id}: proxy training loss"
        )
        return loss_plot(title, tuple(curves), empty)

    def _show_profile(self) -> None:
        profile = jobs.read_profile(self.state.run_dir, self.candidate_id)
        widget = self.query_one("#layers", Static)
        if profile is None:
            widget.update(Text("\nper-layer latency: not profiled (press p)", "dim"))
            return
        median = "-" if profile.median_ms is None else f"{profile.median_ms:.3f} ms"
        width = self.query_one("#detail-side").size.width or 34
        widget.update(
            Group(Text(f"\nprofiled median {median}", "bold"), layer_table(profile, width))
        )

    # ------------------------------------------------------------------ actions
    def action_copy(self) -> None:
        if self.row is None:
            return
        copied, how = clipboard.copy(self.app, self.row.genotype)
        self.query_one("#job-log", RichLog).write(
            Text(f"genotype: {how}", "bold green" if copied else "bold red")
        )
        self.notify(how, severity="information" if copied else "error", timeout=4)

    def action_loss(self) -> None:
        from edgenas.tui.screens.loss import LossScreen

        self.app.push_screen(LossScreen(self.loss_spec()))

    def _model_file(self) -> Path | None:
        """The candidate's own ONNX file, if the run wrote one (HR-NAS extraction)."""
        row = self.row
        if row is None or not row.onnx_path:
            return None
        path = Path(row.onnx_path)
        return path if path.is_file() else None

    def action_export(self) -> None:
        if self.row is None:
            return
        model = self._model_file()
        if model is not None:
            self.notify(f"already exported: {model}", timeout=4)
        elif self.state.header.kind == "hrnas-shrink":
            self.notify("this run wrote no ONNX file for the candidate", severity="warning")
        else:
            spec = jobs.export_job(
                self.state.run_dir, self.row.id, self.row.genotype, self._config()
            )
            self._start(spec)

    def action_profile(self) -> None:
        if self.row is None:
            return
        model = self._model_file()
        if model is None and self.state.header.kind == "hrnas-shrink":
            self.notify("this run wrote no ONNX file to profile", severity="warning")
            return
        spec = jobs.profile_job(
            self.state.run_dir, self.row.id, self.row.genotype, self._config(), model=model
        )
        self._start(spec)

    def _config(self) -> dict:
        return self.state.config

    def _start(self, spec: jobs.JobSpec) -> None:
        if spec.label in self._active_jobs:
            self.notify(f"{spec.label} is already running", timeout=2)
            return
        self._active_jobs.add(spec.label)
        self._run(spec)

    @work(group="jobs")
    async def _run(self, spec: jobs.JobSpec) -> None:
        log = self.query_one("#job-log", RichLog)
        log.write(Text(f"{spec.label}: started (edgenas {spec.argv[3]} in the background)", "bold"))
        try:
            result = await jobs.run_job(spec, lambda line: log.write(f"  {line}"))
        finally:
            self._active_jobs.discard(spec.label)
        if result.returncode == 0:
            log.write(Text(f"{spec.label}: done → {result.output}", "bold green"))
            self.notify(f"{spec.label} done", timeout=3)
        else:
            log.write(Text(f"{spec.label}: failed ({result.last_line})", "bold red"))
            self.notify(f"{spec.label} failed", severity="error", timeout=4)
        self._show_profile()
