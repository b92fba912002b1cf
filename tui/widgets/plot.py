"""A terminal plot of one :class:`~edgenas.tui.plots.PlotSpec` (textual-plotext)."""

from __future__ import annotations

import textwrap

from edgenas.tui.plots import PlotSpec, Series
from textual_plotext import PlotextPlot


def thin(series: Series, columns: int, rows: int) -> Series:
    """``series`` with no more points than the canvas can show, so drawing costs the
    canvas, not the run (a paper-scale search trains hundreds of candidates): a line
    keeps its lowest and highest point per braille column (its envelope), a scatter
    one point per braille dot. ``columns`` x ``rows`` is the plot's size in cells."""
    xs, ys = series.xs, series.ys
    width, height = max(1, 2 * columns), max(1, 4 * rows)  # braille: 2x4 dots a cell
    if len(xs) <= 2 * width:
        return series
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    x_step = (x_hi - x_lo) / width or 1.0
    y_step = (y_hi - y_lo) / height or 1.0
    if series.scatter:
        seen, keep = set(), []
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            dot = (int((x - x_lo) / x_step), int((y - y_lo) / y_step))
            if dot not in seen:
                seen.add(dot)
                keep.append(i)
    else:
        buckets: dict[int, list[int]] = {}
        for i, x in enumerate(xs):
            buckets.setdefault(int((x - x_lo) / x_step), []).append(i)
        keep = sorted(
            i
            for members in buckets.values()
            for i in {min(members, key=ys.__getitem__), max(members, key=ys.__getitem__)}
        )
    return Series(
        series.label,
        tuple(xs[i] for i in keep),
        tuple(ys[i] for i in keep),
        series.color,
        series.scatter,
        series.marker,
    )


class SpecPlot(PlotextPlot):
    """Draws a PlotSpec; redraws only when the spec changes."""

    DEFAULT_CSS = """
    SpecPlot { height: 1fr; width: 1fr; min-height: 6; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._spec: PlotSpec | None = None
        self._drawn_size = None

    def show(self, spec: PlotSpec) -> None:
        """Draw ``spec`` (no-op when it is the one already drawn)."""
        if spec == self._spec and self.size == self._drawn_size:
            return
        self._spec, self._drawn_size = spec, self.size
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(spec.title)
        plt.xlabel(spec.xlabel)
        if not spec.series:
            # plotext draws no title on an empty canvas: write the message into it,
            # wrapped to the canvas and centred, so a narrow plot does not clip it.
            plt.xlim(0, 1)
            plt.ylim(0, 1)
            plt.xticks([])
            plt.yticks([])
            lines = textwrap.wrap(spec.empty_message, max(8, self.size.width - 4)) or [""]
            for i, line in enumerate(lines):
                y = 0.5 + (len(lines) / 2 - i - 0.5) * 0.2
                plt.text(line, 0.5, y, color="gray", alignment="center")
        for series in spec.series:
            if self.size.width and self.size.height:  # not laid out yet: all points
                series = thin(series, self.size.width, self.size.height)
            if series.scatter:
                plt.scatter(
                    list(series.xs),
                    list(series.ys),
                    marker=series.marker,
                    color=series.color,
                    label=series.label,
                )
            else:
                plt.plot(
                    list(series.xs),
                    list(series.ys),
                    marker=series.marker,
                    color=series.color,
                    label=series.label,
                )
        self.refresh()

    def on_resize(self) -> None:
        # The empty message is wrapped to the width, the points thinned to it: again
        # at the new one.
        if self._spec is not None:
            self.show(self._spec)
