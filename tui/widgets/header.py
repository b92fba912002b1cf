"""The run header: identity, targets, state, elapsed time, progress and ETA."""

from __future__ import annotations

from edgenas.tui.state import Header, format_count, format_duration
from rich.text import Text
from textual.widgets import Static

STATUS_STYLE = {
    "running": "bold green",
    "finished": "bold cyan",
    "failed": "bold red",
    "interrupted": "bold yellow",
    "stopped": "bold yellow",  # running, but its process is gone (edgenas search --resume)
    "waiting": "bold yellow",
    "unreadable": "bold red",
}


class RunHeader(Static):
    """Two lines about the run, a third in red while the store cannot be read."""

    def show(self, header: Header, error: str | None) -> None:
        """Render ``header``; ``error`` is the reader's one-line message, if any."""
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(header.name, "bold")
        text.append(f"  {header.kind}  ")
        text.append(f"● {header.status}", STATUS_STYLE.get(header.status, "bold"))
        text.append(f"  elapsed {format_duration(header.elapsed_s)}")
        noun = "steps" if header.kind == "hrnas-shrink" else "trained"
        planned = f"/{header.planned}" if header.planned else ""
        text.append(f"  {noun} {header.trained}{planned}")
        if header.eta_s is not None:
            text.append(f"  ETA ≤{format_duration(header.eta_s)}")
        if header.pool is not None:  # NASWOT scoring of the pool: hours at paper scale
            pool = header.pool
            text.append(f"  pool {format_count(pool.scored)}/{format_count(pool.total)}")
            if pool.eta_s is not None:
                text.append(f" ETA {format_duration(pool.eta_s)}")
        text.append("\n")
        parts = [f"task {header.task}", f"data {header.data}", f"device {header.device}"]
        if header.targets != "-" or header.shrink is None:
            parts.append(f"targets {header.targets}")
        if header.shrink is not None:
            parts.append(f"shrink {header.shrink}")
        if header.alpha is not None:
            parts.append(f"a={header.alpha:g}")
        line = Text("  ".join(parts), "dim", no_wrap=True, overflow="ellipsis")
        text.append_text(line)
        if error:
            text.append("\n")
            text.append(f"⚠ {error}", "bold red")
        self.update(text)
