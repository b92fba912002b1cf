"""What each dashboard plot draws, as plain data (no widgets, no plotting library).

:func:`progress_plots` gives the LDP paper's Fig. 9 axes (accuracy, the primary
resource and G against the training iteration) and the Pareto plane; for a shrink run
:func:`shrink_plots` plots the numeric fields of its ``shrink_step`` events.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgenas.tui.state import RESOURCE_LABEL, RunState, front_ids

# plotext colour names
COLORS = ("cyan", "green", "orange", "magenta", "blue", "red")


@dataclass(frozen=True)
class Series:
    """One line or set of points."""

    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    color: str = "cyan"
    scatter: bool = False
    marker: str = "braille"


@dataclass(frozen=True)
class PlotSpec:
    """One plot: title, axis labels and its series (empty: a 'waiting' message)."""

    title: str
    xlabel: str
    ylabel: str
    series: tuple[Series, ...] = ()
    empty_message: str = "no trained candidates yet"


def scale_for(values) -> tuple[float, str]:
    """Divisor and suffix for large counts, so an axis reads ``1.63`` (M), not ``1628465.0``."""
    top = max((abs(v) for v in values), default=0.0)
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if top >= factor:
            return factor, f" ({suffix})"
    return 1.0, ""


def scaled(values, label: str) -> tuple[tuple[float, ...], str]:
    """``values`` divided as :func:`scale_for` says, and ``label`` with the suffix."""
    values = tuple(values)
    factor, suffix = scale_for(values)
    return tuple(v / factor for v in values), label + suffix


def _line(label, points, value, color) -> Series | None:
    pairs = [(p.iteration, value(p)) for p in points if value(p) is not None]
    if not pairs:
        return None
    xs, ys = zip(*pairs, strict=True)
    ys, label = scaled(ys, label)
    return Series(label, tuple(map(float, xs)), ys, color)


def progress_plots(state: RunState, resource: str | None = None) -> tuple[PlotSpec, ...]:
    """Accuracy, ``resource`` (default: the run's primary one), G vs iteration, Pareto."""
    resource = resource or state.resource
    label = RESOURCE_LABEL.get(resource, resource)
    points = state.progress
    best = _best_so_far(points)
    accuracy = _line("A", points, lambda p: p.accuracy, COLORS[0])
    res = _line(label, points, lambda p: getattr(p, resource), COLORS[1])
    grade = _line("G", points, lambda p: p.grade, COLORS[2])
    res_label = res.label if res else label
    specs = [
        PlotSpec("accuracy A vs iteration", "iteration", "A", tuple(s for s in (accuracy,) if s)),
        PlotSpec(f"{res_label} vs iteration", "iteration", label, tuple(s for s in (res,) if s)),
        PlotSpec(
            "G vs iteration (best so far)",
            "iteration",
            "G",
            tuple(s for s in (grade, best) if s),
        ),
        pareto_plot(state, resource),
    ]
    return tuple(specs)


def _best_so_far(points) -> Series | None:
    pairs, best = [], None
    for p in points:
        if p.grade is None:
            continue
        best = p.grade if best is None else max(best, p.grade)
        pairs.append((float(p.iteration), best))
    if not pairs:
        return None
    xs, ys = zip(*pairs, strict=True)
    return Series("best", xs, ys, COLORS[3])


def pareto_plot(state: RunState, resource: str) -> PlotSpec:
    """Accuracy vs ``resource`` of the trained candidates; the front and the best marked.

    The front is recomputed for ``resource`` when it differs from the run's own.
    """
    label = RESOURCE_LABEL.get(resource, resource)
    items = [
        (r.id, float(v), float(r.accuracy or 0.0), r.id == state.best_id)
        for r in state.rows
        if r.status == "trained" and (v := getattr(r, resource)) is not None
    ]
    on_front = front_ids([item[:3] for item in items])
    front = [(r, a) for cid, r, a, _ in items if cid in on_front]
    series = []
    if items:
        factor, suffix = scale_for([i[1] for i in items])
        label += suffix
        items = [(cid, r / factor, a, b) for cid, r, a, b in items]
        front = [(r / factor, a) for r, a in front]
        series.append(
            Series(
                "trained",
                tuple(i[1] for i in items),
                tuple(i[2] for i in items),
                "cyan",
                True,
                "dot",
            )
        )
    if front:
        front.sort()
        series.append(
            Series("front", tuple(f[0] for f in front), tuple(f[1] for f in front), "green")
        )
    best = [i for i in items if i[3]]
    if best:
        series.append(Series("best", (best[0][1],), (best[0][2],), "red", True, "x"))
    return PlotSpec(f"Pareto: A vs {label}", label, "A", tuple(series))


def shrink_plots(state: RunState) -> tuple[PlotSpec, ...]:
    """Shrink runs: total units kept, MACs, params and accuracy against the step."""
    shrink = state.shrink
    xs = tuple(float(s.get("step", i)) for i, s in enumerate(shrink.steps))
    specs = [
        PlotSpec(
            "units kept (all blocks)",
            "step",
            "units",
            (Series("units", xs, tuple(float(sum(u)) for u in shrink.units)),)
            if shrink.units
            else (),
            "no shrink steps yet",
        )
    ]
    for i, key in enumerate(("macs", "params", "accuracy")):
        pairs = [(x, s[key]) for x, s in zip(xs, shrink.steps, strict=True) if key in s]
        series = ()
        title = key
        if pairs:
            px, py = zip(*pairs, strict=True)
            py, title = scaled(py, key)
            series = (Series(title, px, py, COLORS[(i + 1) % len(COLORS)]),)
        specs.append(PlotSpec(f"{title} vs step", "step", key, series, "no shrink steps yet"))
    return tuple(specs)


def loss_plot(
    title: str, curves: tuple[tuple[str, tuple[tuple[float, float], ...]], ...], empty: str
) -> PlotSpec:
    """Training loss against the step: one line per ``(label, points)`` with points;
    ``empty`` is the message when none has any."""
    series = tuple(
        Series(label, tuple(p[0] for p in points), tuple(p[1] for p in points), color)
        for (label, points), color in zip(curves, COLORS, strict=False)
        if points
    )
    return PlotSpec(title, "step", "loss", series, empty)
