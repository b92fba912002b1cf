"""The live event log: new events are appended, the view follows the end."""

from __future__ import annotations

import time

from edgenas.tui.state import LogLine
from rich.text import Text
from textual.widgets import RichLog

KIND_STYLE = {
    "candidate_trained": "green",
    "move_accepted": "bold green",
    "move_rejected": "yellow",
    "run_failed": "bold red",
    "run_finished": "bold cyan",
    "parent_finished": "cyan",
    "latency_measured": "magenta",
}


class EventLog(RichLog):
    """Appends the log lines it has not shown yet (by event id)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(max_lines=2000, wrap=False, markup=False, **kwargs)
        self._last_id = 0

    def show(self, lines: tuple[LogLine, ...]) -> None:
        """Write the lines newer than the last one written."""
        for line in lines:
            if line.id <= self._last_id:
                continue
            text = Text(time.strftime("%H:%M:%S ", time.localtime(line.ts)), "dim")
            text.append(f"{line.kind:<17} ", KIND_STYLE.get(line.kind, "bold"))
            text.append(line.text)
            self.write(text)
            self._last_id = line.id
