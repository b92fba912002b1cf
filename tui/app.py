"""``MonitorApp``: the Textual application behind ``edgenas monitor``.

Given a run folder it opens that run's dashboard; given a runs folder it lists the runs.
Everything it shows comes from the read-only run store (see :mod:`edgenas.tui.reader`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from edgenas.store import STORE_FILENAME


def is_run_dir(path: Path) -> bool:
    """A run folder holds ``run.sqlite`` (a path to a ``.sqlite`` file counts too)."""
    return path.suffix == ".sqlite" or (path / STORE_FILENAME).exists()


class MonitorApp(App):
    """The monitor. ``target`` is a run folder (dashboard) or a runs folder (run list).

    ``poll_interval`` is the seconds between store polls; ``clock`` replaces
    ``time.time`` for the elapsed time and ETA (tests use a fixed clock).
    """

    CSS_PATH = "monitor.tcss"
    TITLE = "edgenas monitor"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
    ]

    def __init__(
        self,
        target: str | Path = "runs",
        *,
        run: bool | None = None,
        poll_interval: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self.target = Path(target)
        self.open_as_run = is_run_dir(self.target) if run is None else run
        self.poll_interval = poll_interval
        self.clock = clock
        self.last_run: Path | None = None  # the run opened last (for the exit message)

    def on_mount(self) -> None:
        if self.open_as_run:
            self.open_run(self.target)
        else:
            from edgenas.tui.screens.runs import RunListScreen

            self.push_screen(RunListScreen(self.target))

    def open_run(self, run_dir: Path) -> None:
        """Push the dashboard of one run."""
        from edgenas.tui.screens.dashboard import DashboardScreen

        self.last_run = Path(run_dir)
        self.push_screen(
            DashboardScreen(run_dir, poll_interval=self.poll_interval, clock=self.clock)
        )

    def action_help(self) -> None:
        from edgenas.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())
