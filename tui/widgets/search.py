"""Assisted Tabu Search panel: the parent, the current architecture, its children with
their rewards, the tabu list and the candidate list."""

from __future__ import annotations

from edgenas.tui.state import AtsState, short_genotype
from rich.table import Table
from rich.text import Text
from textual.widgets import Static


def _g(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


class SearchPanel(Static):
    """Where the tabu search is now (rendered as rich tables)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._ats: AtsState | None = None

    def show(self, ats: AtsState) -> None:
        """Render ``ats`` (no-op when unchanged)."""
        if ats == self._ats:
            return
        self._ats = ats
        if ats.current_genotype is None:
            self.update(Text("waiting for the parents (NASWOT ranking of the pool)", "dim"))
            return
        head = Text()
        parent = "-" if ats.parent_index is None else f"{ats.parent_index + 1}/{ats.parents_total}"
        head.append(f"parent {parent}", "bold")
        if ats.step is not None:
            head.append(f"  step {ats.step + 1}")
        head.append(f"\nparent  {short_genotype(ats.parent_genotype or '-', 60)}")
        current = f"#{ats.current_id} " if ats.current_id is not None else ""
        head.append(f"\ncurrent {current}{short_genotype(ats.current_genotype, 52)}")
        head.append(f"  G {_g(ats.current_grade)}", "bold")
        children = Table(
            "child",
            "genotype",
            "R",
            "NASWOT",
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
                short_genotype(child.genotype, 30),
                _g(child.reward),
                _g(child.score, ".1f"),
                _g(child.grade) if child.trained else "·",
                style=style,
            )
        tabu = Table("tabu list", expand=True, box=None)
        for genotype in ats.tabu:
            tabu.add_row(short_genotype(genotype, 70))
        if not ats.tabu:
            tabu.add_row(Text("(empty)", "dim"))
        cands = Table("candidate list", expand=True, box=None)
        for genotype in ats.candidate_list:
            cands.add_row(short_genotype(genotype, 70))
        if not ats.candidate_list:
            cands.add_row(Text("(empty)", "dim"))
        moves = Text("\n".join(ats.moves), "dim")
        from rich.console import Group

        self.update(Group(head, Text(""), children, Text(""), tabu, cands, Text(""), moves))
