"""Assisted Tabu Search panel: the parent, the current architecture, its children with
their rewards, the tabu list and the candidate list."""

from __future__ import annotations

from edgenas.tui.genotypes import describe, fit, outline
from edgenas.tui.state import AtsState
from rich.table import Table
from rich.text import Text
from textual.widgets import Static


def _g(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


class SearchPanel(Static):
    """Where the tabu search is now (rendered as rich tables)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._ats: tuple[AtsState, str] | None = None

    def show(self, ats: AtsState, score_name: str = "NASWOT") -> None:
        """Render ``ats`` (no-op when unchanged); ``score_name`` heads the score column."""
        if (ats, score_name) == self._ats:
            return
        self._ats = (ats, score_name)
        if ats.current_genotype is None:
            self.update(Text(f"waiting for the parents ({score_name} ranking of the pool)", "dim"))
            return
        head = Text()
        parent = "-" if ats.parent_index is None else f"{ats.parent_index + 1}/{ats.parents_total}"
        head.append(f"parent {parent}", "bold")
        if ats.step is not None:
            head.append(f"  step {ats.step + 1}")
        # Children and tabu entries differ from the current architecture in a block or
        # two: each is shown by those blocks (tui/genotypes.py), in the width there is.
        width = max(20, self.app.size.width - 4)
        current = ats.current_genotype
        parent = ats.parent_genotype
        head.append("\nparent  " + fit(outline(parent) if parent else "-", width - 8))
        ident = f"#{ats.current_id} " if ats.current_id is not None else ""
        grade = f"  G {_g(ats.current_grade)}"
        against = describe(current, parent, same="the parent") if parent else outline(current)
        label = "vs parent " if parent and against != "the parent" else ""
        room = width - 8 - len(ident) - len(label) - len(grade)
        head.append(f"\ncurrent {ident}{label}{fit(against, room)}")
        head.append(grade, "bold")
        children = Table(
            "child",
            "blocks changed from current",
            "R",
            score_name,
            "G",
            title="children (best reward first)",
            expand=True,
            box=None,
            title_justify="left",
        )
        for child in ats.children:
            ident = "-" if child.candidate_id is None else f"#{child.candidate_id}"
            style = "green" if child.trained else ""
            children.add_row(
                ident,
                describe(child.genotype, current, width - 32),
                _g(child.reward),
                _g(child.score, ".1f"),
                _g(child.grade) if child.trained else "·",
                style=style,
            )
        tabu = Table("tabu list (blocks that differ from current)", expand=True, box=None)
        for genotype in ats.tabu:
            tabu.add_row(describe(genotype, current, width - 2, same="= current"))
        if not ats.tabu:
            tabu.add_row(Text("(empty)", "dim"))
        cands = Table("candidate list (blocks that differ from current)", expand=True, box=None)
        for genotype in ats.candidate_list:
            cands.add_row(describe(genotype, current, width - 2))
        if not ats.candidate_list:
            cands.add_row(Text("(empty)", "dim"))
        moves = Text("\n".join(ats.moves), "dim")
        from rich.console import Group

        self.update(Group(head, Text(""), children, Text(""), tabu, cands, Text(""), moves))
