"""A terminal plot of one :class:`~edgenas.tui.plots.PlotSpec` (textual-plotext)."""

from __future__ import annotations

import textwrap

from edgenas.tui.plots import PlotSpec
from textual_plotext import PlotextPlot


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
        # The empty message is wrapped to the width: wrap it again at the new one.
        if self._spec is not None and not self._spec.series:
            self.show(self._spec)
