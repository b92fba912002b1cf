"""A loss curve on the whole screen: a candidate's proxy training (with its parent's)
or the run's final training (with the best candidate's proxy training)."""

from __future__ import annotations

from typing import ClassVar

from edgenas.tui.plots import PlotSpec
from edgenas.tui.widgets.plot import SpecPlot
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer


class LossScreen(Screen):
    """One :class:`PlotSpec` of training losses; ``escape`` (or ``l``) goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("l", "app.pop_screen", "Back", show=False),
    ]

    def __init__(self, spec: PlotSpec) -> None:
        super().__init__()
        self.spec = spec

    def compose(self) -> ComposeResult:
        yield SpecPlot(id="loss-view")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(SpecPlot).show(self.spec)
