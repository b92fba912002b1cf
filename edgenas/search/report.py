"""``report.md`` and its PNG figures for a search run, made from the run store alone.

The report says what a user needs to judge the result: the target(s) and whether the
final model met them; the final model's metrics in their own units (PSNR in dB, mIoU,
REL / RMSE / delta1) and its latency with the input size, device and how the figure
was obtained (measured, emulated, predicted; :func:`edgenas.finalise.latency_label`);
its sample predictions (``samples.png``, written by the run); and a table comparing it
with the reference baselines trained with the same final budget
(:mod:`edgenas.baselines`). Then the search itself:

- ``progress.png``: accuracy, the compactness resource and G of every trained candidate
  against the iteration at which it was trained (as the LDP paper's Fig. 9), with the
  best-so-far G;
- ``pareto.png``: accuracy against the resource for every trained candidate, the Pareto
  front, the target, the chosen candidate, and the final model and the baselines (after
  the final budget) as labelled points where their resource is known.

Runs written before a summary key existed (``deployed``, ``baselines``, ``final_params``,
...) get the sections their store has the data for.
"""

from __future__ import annotations

import math
from pathlib import Path

from edgenas.atomic import atomic_path, write_text_atomic
from edgenas.baselines import (
    comparison_table,
    iou_table,
    metric_parts,
    metric_text,
    per_class_iou,
    sample_columns,
    seed_note,
)
from edgenas.search.config import SearchConfig
from edgenas.search.objectives import pareto_front
from edgenas.store import Candidate, RunStore

RESOURCE_LABELS = {
    "params": "parameters",
    "flops": "MACs at the deploy size",
    "latency_ms": "latency (ms)",
}
# The resource's key in a baselines row.
_ROW_KEYS = {"params": "params", "flops": "macs", "latency_ms": "latency_ms"}


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _save(fig, path: Path) -> None:
    """Save a figure atomically with the user's file mode (a reader never sees half a PNG)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")


def _shape_text(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


def final_latency_text(summary: dict, config: dict) -> str | None:
    """The final model's latency with size, device and source; None if not measured
    (older runs measured it at the config's deploy size)."""
    from edgenas.finalise import summary_latency_text

    return summary_latency_text(summary, config.get("deploy_input", ()), config.get("device", "?"))


def _final_latency_ms(summary: dict) -> float | None:
    deployed = summary.get("deployed") or {}
    value = deployed.get("latency_ms", summary.get("latency_ms"))
    return float(value) if value is not None else None


def _final_row(summary: dict, config: dict, best: Candidate | None) -> dict:
    """The final model as a row of the comparison table."""
    return {
        "name": "final model (this search)",
        "metrics": summary.get("final_metrics") or {},
        "accuracy": summary.get("final_accuracy"),
        "params": summary.get("final_params", best.params if best else None),
        "macs": summary.get("final_macs", best.flops if best else None),
        "latency_ms": _final_latency_ms(summary),
        "latency_text": final_latency_text(summary, config),
        "fixed": (summary.get("deployed") or {}).get("fixed"),
        "paired": summary.get("paired_latency"),
    }


def _fixed_size_rows(summary: dict) -> list[str]:
    """The fixed-size twin's row (:mod:`edgenas.finalise`), when the run made one."""
    from edgenas.finalise import fixed_size_text

    text = fixed_size_text(summary.get("deployed") or {})
    return [f"| ONNX model (deploy size only) | {text} |"] if text else []


def _target_value(text: str, value: float) -> str:
    if text == "latency_ms":
        return f"{value:.3g} ms" if value < 100 else f"{value:.0f} ms"
    return f"{value:,.0f}"


def _target_latency(final: dict, any_size_ms: float) -> tuple[float, str]:
    """The latency a target is judged on, and its text.

    With a reference model's latency as the target (``--target-latency unet``), the
    final network timed alternating with that model, as every candidate was: one
    unpaired profile can put a network that matched the reference a few percent
    either side of it. Otherwise the fixed-size twin's when the run made one. The
    search measures every candidate as a plain fixed-size export at the deploy size
    (:meth:`edgenas.latency_table.Measurer.network_file`), which measured like the twin
    for the LDP space (docs/search.md); the any-size file also runs the shape
    arithmetic of a dynamic graph and read up to 1.6x slower at the same size, so
    judging it would fail a target the search met."""
    fixed = final.get("fixed") or {}
    paired = final.get("paired")
    if paired:
        alone = (
            f"; the fixed-size file alone: {fixed['latency_ms']:.2f} ms"
            if fixed.get("latency_ms") is not None
            else ""
        )
        return float(paired["latency_ms"]), (
            f"{paired['latency_ms']:.2f} ms ({paired['ratio']:.2f}x {paired['reference']}, "
            f"timed alternating with it as the search timed its candidates{alone}; "
            f"the any-size file: {any_size_ms:.2f} ms)"
        )
    if fixed.get("latency_ms") is None:
        return any_size_ms, final.get("latency_text") or f"{any_size_ms:.2f} ms"
    name = Path(fixed["onnx_path"]).name
    return float(fixed["latency_ms"]), (
        f"{fixed['latency_ms']:.2f} ms ({name}: fixed-size, as the search measured its "
        f"candidates; the any-size file: {any_size_ms:.2f} ms)"
    )


def target_section(search_config: SearchConfig, final: dict) -> list[str]:
    """The targets, the final model's figure for each, and whether it met them."""
    config = search_config
    targets = config.targets()
    deploy = _shape_text((1, 3, *config.deploy_input))
    lines = ["## Target", ""]
    if not targets:
        return [
            *lines,
            "No resource target: the grade is G = a * A + (1 - a), accuracy alone ranks "
            "the candidates.",
            "",
        ]
    described = {
        "params": "parameters",
        "flops": f"MACs at {deploy}",
        "latency_ms": f"latency on {config.device} at {deploy}",
    }
    achieved = {
        "params": final.get("params"),
        "flops": final.get("macs"),
        "latency_ms": final.get("latency_ms"),
    }
    text = "; ".join(f"{described[k]} <= {_target_value(k, v)}" for k, v in targets.items())
    lines += [f"Target: {text} (balance a = {config.alpha:g}).", ""]
    if config.target_latency_reference is not None:
        lines += [
            f"The latency target is {config.target_latency_reference}'s latency, measured "
            "at the start of the run; every candidate's latency was measured in sessions "
            f"alternating with {config.target_latency_reference}'s, as a ratio to it.",
            "",
        ]
    lines += ["| resource | target | final model | met |", "|---|---|---|---|"]
    missed, unknown = [], []
    for key, target in targets.items():
        value = achieved[key]
        if value is None:
            unknown.append(described[key])
            shown, met = "-", "not known"
        else:
            if key == "latency_ms":
                value, shown = _target_latency(final, float(value))
            else:
                shown = f"{int(value):,}"
            ok = float(value) <= target
            met = "yes" if ok else "**no**"
            if not ok:
                missed.append(f"{described[key]} {_target_value(key, float(value))}")
        lines.append(f"| {described[key]} | {_target_value(key, target)} | {shown} | {met} |")
    lines.append("")
    if missed:
        lines.append(f"The final model **misses the target**: {'; '.join(missed)}.")
    elif unknown:
        lines.append(f"Not known whether the final model meets the target ({', '.join(unknown)}).")
    else:
        lines.append("The final model **meets the target**.")
    return [*lines, ""]


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


def _point(row: dict, resource: str) -> tuple[float, float] | None:
    """(resource, normalised accuracy) of a table row, or None if either is unknown."""
    x, y = row.get(_ROW_KEYS[resource]), row.get("accuracy")
    if x is None or y is None or row.get("error"):
        return None
    if isinstance(y, float) and math.isnan(y):
        return None
    return float(x), float(y)


def plot_pareto(
    trained: list[Candidate],
    resource: str,
    target: float | None,
    best_id: int | None,
    path: Path,
    *,
    final: dict | None = None,
    baselines: list[dict] | None = None,
) -> list[Candidate]:
    """Accuracy vs resource scatter with the Pareto front; returns the front.

    ``final`` and ``baselines``: rows (``accuracy`` and the resource: ``params``,
    ``macs`` or ``latency_ms``) drawn as labelled points after the final budget; rows
    whose resource is unknown are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(c.accuracy or 0.0, float(getattr(c, resource) or 0.0)) for c in trained]
    front = [trained[i] for i in pareto_front(points)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([p[1] for p in points], [p[0] for p in points], s=14, alpha=0.6,
               label="trained (proxy budget)")  # fmt: skip
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
    final_point = _point(final, resource) if final else None
    if final_point is not None:
        ax.scatter(*final_point, s=90, marker="P", color="tab:green", edgecolor="black",
                   zorder=6, label="final model (final budget)")  # fmt: skip
    shown = [(row, _point(row, resource)) for row in baselines or []]
    shown = [(row, p) for row, p in shown if p is not None]
    if shown:
        ax.scatter([p[0] for _, p in shown], [p[1] for _, p in shown], s=70, marker="D",
                   color="tab:purple", edgecolor="black", zorder=6,
                   label="baselines (final budget)")  # fmt: skip
        for row, (x, y) in shown:
            ax.annotate(row["name"], (x, y), textcoords="offset points", xytext=(6, 4),
                        fontsize=8, color="tab:purple")  # fmt: skip
    ax.set_xlabel(RESOURCE_LABELS[resource])
    ax.set_ylabel("accuracy A(m)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    _save(fig, path)
    plt.close(fig)
    return front


def _budget_text(config: dict) -> str:
    if config.get("final_steps"):
        return f"{config['final_steps']} steps"
    return f"{config.get('final_seconds') or 0:g} s"


def write_report(run_dir: str | Path, *, status: str | None = None) -> Path:
    """Write ``report.md``, ``progress.png`` and ``pareto.png`` into ``run_dir``.

    ``status``: the status to report (default: the stored one); a finishing run writes
    its report as ``finished`` before the store says so, since the status changes only
    once the report exists.
    """
    run_dir = Path(run_dir)
    with RunStore.open_readonly(run_dir) as store, store.reading():
        # The trained rows and a few sums, not every row: a paper-scale run holds
        # 60,000 candidates, nearly all of them pool rows the report only counts.
        info = store.run_info()
        summary = info.summary or {}
        best_id = summary.get("best_candidate_id")
        trained_rows = store.candidates(status="trained")
        best = _find(store, best_id)
        counts = {"all": store.count_candidates(), "trained": len(trained_rows)}
        timing = store.timing_totals(("train", "measure"))
    config = info.config
    search_config = SearchConfig.from_dict(config)
    task = search_config.task
    resource = search_config.primary_resource()
    trained = [c for c in trained_rows if c.grade is not None]
    device = (summary.get("deployed") or {}).get("device") or config["device"]
    lines = [f"# edgenas search report: {info.name}", ""]
    lines += [
        f"Task **{task}** on {config.get('data') or 'the built-in demo data'}"
        + (f" (validation: {config['val_data']})" if config.get("val_data") else "")
        + f"; deploy input {_shape_text((1, 3, *search_config.deploy_input))} on device "
        f"**{device}**; status **{status or info.status}**.",
        "",
    ]
    final = _final_row(summary, config, best)
    baselines = summary.get("baselines")
    if summary.get("best"):
        lines += target_section(search_config, final)
        metrics = summary.get("final_metrics") or {}
        latency = final["latency_text"]
        lines += [
            "## Result",
            "",
            "| | |",
            "|---|---|",
            f"| best genotype | `{summary['best']}` |",
            f"| final metrics ({_budget_text(config)} of training) | {metric_text(task, metrics)} |",
            f"| latency | {latency or '-'} |",
            f"| parameters | {_fmt(final['params'])} |",
            f"| MACs at {_shape_text((1, 3, *search_config.deploy_input))} | {_fmt(final['macs'])} |",
            f"| ONNX model (any input size) | `{summary.get('onnx')}` |",
            *_fixed_size_rows(summary),
            f"| grade G (proxy training) | {_fmt(summary.get('best_grade'))} |",
            f"| proxy metrics | {metric_text(task, best.metrics if best else None)} |",
            f"| balance coefficient a | {summary.get('alpha')} |",
            f"| trained candidates | {summary.get('trained')} |",
            f"| wall time | {_fmt(summary.get('seconds'), 1)} s |",
            "",
        ]
        per_class = summary.get("final_iou_per_class")
        pairs = per_class_iou(
            {"iou_per_class": per_class} if per_class else metrics, summary.get("class_names")
        )
        if pairs:
            lines += iou_table(pairs)
    if (run_dir / "samples.png").is_file():
        lines += [
            "## Sample predictions",
            "",
            "The final model on the first validation images: " + sample_columns(task) + ".",
            "",
            "![samples](samples.png)",
            "",
        ]
    if baselines is not None:
        lines += ["## Compared with baselines", ""]
        if baselines:
            lines += [
                f"Reference models trained with the same final budget ({_budget_text(config)}), "
                "data, recipe and seed as the final model, scored on the same validation data, "
                "exported and measured the same way.",
                "",
                *comparison_table(task, [final, *baselines]),
                "",
                seed_note(task),
                "",
            ]
        else:
            lines += ["No baselines were trained (`--baselines none`).", ""]
    if trained:
        plot_progress(trained, resource, run_dir / "progress.png")
        front = plot_pareto(
            trained,
            resource,
            search_config.targets().get(resource),
            best_id,
            run_dir / "pareto.png",
            final=final if summary.get("best") else None,
            baselines=baselines,
        )
        lines += ["## Search progress", "", "![progress](progress.png)", ""]
        lines += [
            "## Pareto front",
            "",
            "Accuracy is the task's normalised accuracy A(m)"
            + (" (PSNR 20 dB -> 0, 40 dB -> 1)" if task == "sr" else "")
            + "; candidates after proxy training"
            + (
                ", the final model and the baselines after the final budget."
                if summary.get("best")
                else "."
            ),
            "",
            "![pareto](pareto.png)",
            "",
        ]
        if resource == "latency_ms" and summary.get("best"):
            lines += [
                "Latency in the plot: candidates as fixed-size exports (what the search "
                "measured), the final model and the baselines as their any-size files.",
                "",
            ]
        lines += _table(
            "Pareto-optimal candidates",
            sorted(front, key=lambda c: getattr(c, resource) or 0),
            task,
        )
        top = sorted(trained, key=lambda c: -(c.grade or 0.0))[: int(config.get("top_k", 5))]
        lines += _table(f"Top {len(top)} by grade", top, task)
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
    lines += _time_breakdown(timing, counts, summary.get("phase_seconds") or {})
    lines += ["## Configuration", "", "| option | value |", "|---|---|"]
    lines += [f"| {key} | `{value}` |" for key, value in sorted(config.items())]
    lines.append("")
    path = run_dir / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path


def _table(title: str, rows: list[Candidate], task: str) -> list[str]:
    headline = None
    for c in rows:
        parts = metric_parts(task, c.metrics)
        if parts:
            headline = parts[0][0]
            break
    lines = [
        f"### {title}",
        "",
        f"| id | genotype | {headline or 'metric'} | A | params | MACs | latency ms | source | G |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in rows:
        parts = dict(metric_parts(task, c.metrics))
        lines.append(
            f"| {c.id} | `{c.genotype}` | {parts.get(headline, '-') if headline else '-'} | "
            f"{_fmt(c.accuracy)} | {_fmt(c.params)} | {_fmt(c.flops)} | "
            f"{_fmt(c.latency_ms, 2)} | {c.latency_source or '-'} | {_fmt(c.grade)} |"
        )
    return [*lines, ""]


def _find(store: RunStore, candidate_id) -> Candidate | None:
    """The candidate with this id, if the store has one."""
    if not isinstance(candidate_id, int):
        return None
    try:
        return store.candidate(candidate_id)
    except KeyError:
        return None


def _time_breakdown(
    timing: dict[str, float], counts: dict[str, int], phases: dict[str, float]
) -> list[str]:
    """Training and measuring time over all candidates (``timing``: summed ``train``
    and ``measure`` timings), with how many were trained of how many."""
    train, measure = timing.get("train", 0.0), timing.get("measure", 0.0)
    if not train and not measure:
        return []
    phase_text = ", ".join(f"{name.replace('_', ' ')} {sec:.1f} s" for name, sec in phases.items())
    return [
        "## Time breakdown",
        "",
        *([f"Phases: {phase_text}.", ""] if phases else []),
        f"training {train:.1f} s, measuring (latency, params, FLOPs) {measure:.1f} s over "
        f"{counts['trained']} trained candidates; {counts['all']} candidates in the store.",
        "",
    ]
