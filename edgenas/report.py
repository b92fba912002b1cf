"""``report.md`` and its PNG plots for a search run, made from the run store alone.

Plots (matplotlib, Agg backend):

- ``progress.png``: accuracy, the compactness resource and G of every trained candidate
  against the iteration at which it was trained (as the LDP paper's Fig. 9), with the
  best-so-far G;
- ``pareto.png``: accuracy against the resource for every trained candidate, the Pareto
  front, the target, and the chosen model marked.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edgenas.search.config import SearchConfig
from edgenas.search.objectives import pareto_front
from edgenas.store import Candidate, RunStore

RESOURCE_LABELS = {
    "params": "parameters",
    "flops": "MACs at the deploy size",
    "latency_ms": "latency (ms)",
}


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _save(fig, path: Path) -> None:
    """Save a figure atomically (a reader never sees half a PNG)."""
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)


def plot_progress(trained: list[Candidate], resource: str, path: Path) -> None:
    """Accuracy, resource and G vs iteration (LDP Fig. 9)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = sorted(trained, key=lambda c: (c.iteration or 0, c.id))
    steps = list(range(1, len(ordered) + 1))
    fig, axes = plt.subplots(3, 1, figsize=(7, 7), sharex=True)
    axes[0].plot(steps, [c.accuracy for c in ordered], "o-", ms=3)
    axes[0].set_ylabel("accuracy A(m)")
    axes[1].plot(steps, [getattr(c, resource) for c in ordered], "o-", ms=3, color="tab:orange")
    axes[1].set_ylabel(RESOURCE_LABELS[resource])
    grades = [c.grade for c in ordered]
    best_so_far = [max(grades[: i + 1]) for i in range(len(grades))]
    axes[2].plot(steps, grades, "o", ms=3, color="tab:green", label="G(m)")
    axes[2].plot(steps, best_so_far, "-", color="black", label="best G so far")
    axes[2].set_ylabel("grade G(m)")
    axes[2].set_xlabel("trained candidate (iteration)")
    axes[2].legend(loc="lower right")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle("search progress")
    _save(fig, path)
    plt.close(fig)


def plot_pareto(
    trained: list[Candidate], resource: str, target: float | None, best_id: int | None, path: Path
) -> list[Candidate]:
    """Accuracy vs resource scatter with the Pareto front; returns the front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(c.accuracy or 0.0, float(getattr(c, resource) or 0.0)) for c in trained]
    front = [trained[i] for i in pareto_front(points)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([p[1] for p in points], [p[0] for p in points], s=14, alpha=0.6, label="trained")
    ax.plot(
        [getattr(c, resource) for c in front],
        [c.accuracy for c in front],
        "-o",
        ms=4,
        color="tab:red",
        label="Pareto front",
    )
    if target is not None:
        ax.axvline(target, ls="--", color="gray", label="target")
    best = next((c for c in trained if c.id == best_id), None)
    if best is not None:
        ax.scatter(
            [getattr(best, resource)],
            [best.accuracy],
            s=160,
            marker="*",
            color="gold",
            edgecolor="black",
            zorder=5,
            label="chosen (best G)",
        )
    ax.set_xlabel(RESOURCE_LABELS[resource])
    ax.set_ylabel("accuracy A(m)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    _save(fig, path)
    plt.close(fig)
    return front


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.md``, ``progress.png`` and ``pareto.png`` into ``run_dir``."""
    run_dir = Path(run_dir)
    with RunStore.open_readonly(run_dir) as store:
        info = store.run_info()
        candidates = store.candidates()
    config, summary = info.config, info.summary or {}
    search_config = SearchConfig.from_dict(config)
    resource = search_config.primary_resource()
    trained = [c for c in candidates if c.status == "trained" and c.grade is not None]
    lines = [f"# edgenas search report: {info.name}", ""]
    lines += [
        f"Task **{config['task']}** on {config.get('data') or 'the built-in demo data'}; "
        f"device **{config['device']}**; status **{info.status}**.",
        "",
    ]
    if summary.get("best"):
        lines += [
            "## Result",
            "",
            "| | |",
            "|---|---|",
            f"| best genotype | `{summary['best']}` |",
            f"| grade G (proxy training) | {_fmt(summary.get('best_grade'))} |",
            f"| accuracy A (proxy training) | {_fmt(summary.get('best_proxy_accuracy'))} |",
            f"| accuracy after final training | {_fmt(summary.get('final_accuracy'))} |",
            f"| final metrics | {', '.join(f'{k} {_fmt(v)}' for k, v in (summary.get('final_metrics') or {}).items())} |",
            f"| ONNX model | `{summary.get('onnx')}` |",
            f"| measured latency on {summary.get('device')} | {_fmt(summary.get('latency_ms'), 3)} ms |",
            f"| balance coefficient a | {summary.get('alpha')} |",
            f"| trained candidates | {summary.get('trained')} |",
            f"| wall time | {_fmt(summary.get('seconds'), 1)} s |",
            "",
        ]
    if trained:
        best_id = summary.get("best_candidate_id")
        plot_progress(trained, resource, run_dir / "progress.png")
        front = plot_pareto(
            trained,
            resource,
            search_config.targets().get(resource),
            best_id,
            run_dir / "pareto.png",
        )
        lines += ["## Search progress", "", "![progress](progress.png)", ""]
        lines += ["## Pareto front", "", "![pareto](pareto.png)", ""]
        lines += _table(
            "Pareto-optimal candidates", sorted(front, key=lambda c: getattr(c, resource) or 0)
        )
        top = sorted(trained, key=lambda c: -(c.grade or 0.0))[: int(config.get("top_k", 5))]
        lines += _table(f"Top {len(top)} by grade", top)
    if summary.get("alpha_grid"):
        lines += [
            "## Balance coefficient grid (LDP Sec. 3.7)",
            "",
            "| a | best genotype | accuracy | compactness | G |",
            "|---|---|---|---|---|",
        ]
        for row in summary["alpha_grid"]:
            lines.append(
                f"| {row['alpha']} | `{row['genotype'][:40]}...` | {_fmt(row['accuracy'])} | "
                f"{_fmt(row['compactness'])} | {_fmt(row['grade'])} |"
            )
        lines.append("")
    lines += _time_breakdown(candidates, summary.get("phase_seconds") or {})
    lines += ["## Configuration", "", "| option | value |", "|---|---|"]
    lines += [f"| {key} | `{value}` |" for key, value in sorted(config.items())]
    lines.append("")
    path = run_dir / "report.md"
    fd, tmp = tempfile.mkstemp(suffix=".md", dir=run_dir)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines))
    os.replace(tmp, path)
    return path


def _table(title: str, rows: list[Candidate]) -> list[str]:
    lines = [
        f"### {title}",
        "",
        "| id | genotype | accuracy | params | MACs | latency ms | source | G |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in rows:
        lines.append(
            f"| {c.id} | `{c.genotype}` | {_fmt(c.accuracy)} | {_fmt(c.params)} | "
            f"{_fmt(c.flops)} | {_fmt(c.latency_ms, 2)} | {c.latency_source or '-'} | {_fmt(c.grade)} |"
        )
    return [*lines, ""]


def _time_breakdown(candidates: list[Candidate], phases: dict[str, float]) -> list[str]:
    train = sum(c.timings.get("train", 0.0) for c in candidates)
    measure = sum(c.timings.get("measure", 0.0) for c in candidates)
    if not train and not measure:
        return []
    phase_text = ", ".join(f"{name.replace('_', ' ')} {sec:.1f} s" for name, sec in phases.items())
    return [
        "## Time breakdown",
        "",
        *([f"Phases: {phase_text}.", ""] if phases else []),
        f"training {train:.1f} s, measuring (latency, params, FLOPs) {measure:.1f} s over "
        f"{sum(1 for c in candidates if c.status == 'trained')} trained candidates; "
        f"{len(candidates)} candidates in the store.",
        "",
    ]
