"""The pool panel: the scores (NASWOT or steps/s) of the whole pool as a histogram (a paper-scale
pool is 60,000 networks: a histogram says what 60,000 table rows cannot)."""

from __future__ import annotations

from edgenas.tui.reader import PoolSummary
from rich.text import Text
from textual.widgets import Static

LEVELS = " ▁▂▃▄▅▆▇█"  # eighths of a character cell


def histogram_lines(bins: tuple[int, ...], rows: int = 2) -> list[str]:
    """``bins`` as bars ``rows`` characters high, top line first."""
    top = max(bins, default=0)
    steps = rows * 8
    heights = [0 if not top else round(count / top * steps) for count in bins]
    # A bin with members shows at least the lowest bar, so a lone network is not lost.
    heights = [max(h, 1) if count else 0 for h, count in zip(heights, bins, strict=True)]
    lines = []
    for row in range(rows - 1, -1, -1):
        lines.append("".join(LEVELS[min(8, max(0, h - 8 * row))] for h in heights))
    return lines


def parent_marks(pool: PoolSummary) -> str:
    """A line with ``▲`` under the bins the chosen parents fall in."""
    if not pool.bins or pool.low is None or pool.high is None:
        return ""
    marks = [" "] * len(pool.bins)
    width = (pool.high - pool.low) / len(pool.bins) or 1.0
    for score in pool.parents:
        marks[min(len(marks) - 1, max(0, int((score - pool.low) / width)))] = "▲"
    return "".join(marks).rstrip()


class PoolPanel(Static):
    """Renders a :class:`~edgenas.tui.reader.PoolSummary` (hidden without a pool)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._pool: tuple[PoolSummary, str] | None = None

    def show(self, pool: PoolSummary, score_name: str = "NASWOT") -> None:
        """Render ``pool`` (no-op when unchanged)."""
        if (pool, score_name) == self._pool:
            return
        self._pool = (pool, score_name)
        self.display = pool.size > 0
        text = Text()
        text.append(f"pool {pool.size:,} networks", "bold")
        if pool.scored < pool.size:
            text.append(f", {pool.scored:,} scored")
        if pool.median is not None:
            text.append(f"  {score_name} median {pool.median:.1f}")
        if pool.parents:
            text.append(f"  ▲ {len(pool.parents)} parents", "green")
        if pool.bins and pool.low is not None and pool.high is not None:
            for line in histogram_lines(pool.bins):
                text.append("\n" + line, "cyan")
            marks = parent_marks(pool)
            if marks:
                text.append("\n" + marks, "green")
            low, high = f"{pool.low:.1f}", f"{pool.high:.1f}"
            gap = max(1, len(pool.bins) - len(low) - len(high))
            text.append(f"\n{low}{' ' * gap}{high}", "dim")
            text.append("  (1st-99th percentile)", "dim")
        self.update(text)
