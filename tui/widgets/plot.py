"""A terminal plot of one :class:`~edgenas.tui.plots.PlotSpec` (textual-plotext)."""

from __future__ import annotations

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

    def show(self, spec: PlotSpec) -> None:
        """Draw ``spec`` (no-op when it is the one already drawn)."""
        if spec == self._spec:
            return
        self._spec = spec
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(spec.title)
        plt.xlabel(spec.xlabel)
        if not spec.series:
            # plotext draws no title on an empty canvas: write the message into it.
            plt.xlim(0, 1)
            plt.ylim(0, 1)
            plt.xticks([])
            plt.yticks([])
            plt.text(spec.empty_message, 0.05, 0.5, color="gray")
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
