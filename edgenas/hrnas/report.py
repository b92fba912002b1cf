"""``runs/<name>/report.md`` and figures of an HR-NAS shrinking run, from its run store.

Reads only the store (config, ``shrink_step`` events, the extracted candidate, the
summary), like the search report. First what a user needs to judge the result: the
resource penalty the run shrank with (HR-NAS has no hard target), the extracted
network's metrics in their units (PSNR in dB, mIoU, REL / RMSE / delta1), its latency
with input size, device and how it was obtained (the summary's ``deployed`` entry, else
its ``latency_ms`` and ``device``), ``samples.png`` when the run wrote one, and the
reference baselines of the summary's ``baselines`` rows (:mod:`edgenas.baselines`) in
one table with the extracted network. Then a configuration table, a results table (one
row per shrink step), the curves of metric / MACs / latency against the shrink step
(``shrink_curves.png``) and the kept units per block (``kept_units.png``, the paper's
Fig. 4: 3x3 / 5x5 / 7x7 channels and tokens kept, and what was removed). Runs without
the newer summary keys get the sections their store has data for.
"""

from __future__ import annotations

from pathlib import Path

from edgenas.atomic import atomic_path, write_text_atomic
from edgenas.baselines import (
    comparison_table,
    iou_table,
    metric_text,
    per_class_iou,
    sample_columns,
    seed_note,
)
from edgenas.store import RunStore

METRICS = {"segmentation": "miou", "depth": "delta1", "sr": "psnr"}


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return "; ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)


def _save(fig, path: Path) -> None:
    """Save a figure atomically, with the user's file mode."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")


def latency_text(summary: dict, config: dict) -> str | None:
    """The extracted network's latency with input size, device and source (None if the
    summary has none); older runs measured it at the training input."""
    from edgenas.finalise import summary_latency_text

    return summary_latency_text(summary, config.get("input", ()), config.get("device", "?"))


def penalty_text(config: dict) -> str:
    """What the run shrank for: the resource penalty (and any target the config holds)."""
    cost = config.get("cost", "flops")
    size = "x".join(str(d) for d in config.get("input", ()))
    if cost != "latency":
        resource = f"MACs at 1x3x{size}"
    elif config.get("latency_model") == "kernels":
        resource = (
            f"latency on {config.get('device')} at 1x3x{size} (per-unit latency slopes "
            "predicted by the device's kernel model)"
        )
    else:
        resource = (
            f"latency measured on {config.get('device')} at 1x3x{size} (per-unit latency slopes)"
        )
    text = (
        f"Resource penalty: lambda = {config.get('lambda')} times the importance-weighted "
        f"cost of the kept units, cost = {resource}; units with importance below epsilon = "
        f"{config.get('epsilon')} are removed every {config.get('shrink_every', 1)} epoch(s), "
        f"channels kept in multiples of {config.get('align')}."
    )
    deploy = "x".join(str(d) for d in config.get("deploy_input") or config.get("input", ()))
    if config.get("target_latency_ms") is not None:
        goal = f"{config['target_latency_ms']:g} ms on {config.get('device')} at 1x3x{deploy}"
    elif config.get("target_flops") is not None:
        goal = f"{_fmt(config['target_flops'])} MACs at 1x3x{deploy}"
    else:
        return text + " There is no hard target: lambda trades accuracy for the resource."
    return (
        text + f" Target: {goal}; lambda starts at {config.get('lambda')} and adapts (raised "
        "while the network is far above the target, lowered near it, 0 once it is reached: "
        "pruning then stops and training continues)."
    )


def _result_lines(task: str, config: dict, summary: dict, run_dir: Path) -> list[str]:
    """Penalty, metrics in units, latency with size, samples and baselines."""
    lines = ["## Result", "", penalty_text(config), ""]
    latency = latency_text(summary, config)
    if not summary.get("metrics") and latency is None:  # not finished (or failed)
        return lines
    lines += ["| | |", "|---|---|"]
    lines.append(f"| metrics (PyTorch) | {metric_text(task, summary.get('metrics'))} |")
    if summary.get("onnx_metrics"):
        lines.append(f"| metrics (ONNX) | {metric_text(task, summary['onnx_metrics'])} |")
    lines.append(f"| latency | {latency or '-'} |")
    if summary.get("target"):
        from edgenas.hrnas.session import target_text

        lines.append(f"| target | {target_text(summary['target'])} |")
    trained_at = "x".join(str(d) for d in config.get("input") or []) or "the training input"
    for label, key in (("params", "params"), (f"MACs at {trained_at}", "macs")):
        before, after = summary.get(f"{key}_before"), summary.get(f"{key}_after")
        if after is not None:
            was = f" (supernet {before:,})" if before is not None else ""
            lines.append(f"| {label} | {after:,}{was} |")
    deployed_shape = (summary.get("deployed") or {}).get("input_shape")
    if summary.get("macs_deploy") is not None and deployed_shape:
        size = "x".join(str(d) for d in deployed_shape[2:])
        lines.append(f"| MACs at {size} (deploy) | {summary['macs_deploy']:,} |")
    onnx = (summary.get("deployed") or {}).get("onnx_path") or summary.get("onnx")
    if onnx:
        lines.append(f"| ONNX | `{onnx}` |")
    from edgenas.finalise import fixed_size_text

    fixed = fixed_size_text(summary.get("deployed") or {})
    if fixed:
        lines.append(f"| ONNX model (deploy size only) | {fixed} |")
    lines.append("")
    if summary.get("iou_per_class"):
        lines += iou_table(per_class_iou({"iou_per_class": summary["iou_per_class"]}, ()))
    if (run_dir / "samples.png").is_file():
        lines += [
            "## Sample predictions",
            "",
            "The extracted network on the first validation images: " + sample_columns(task) + ".",
            "",
            "![samples](samples.png)",
            "",
        ]
    baselines = summary.get("baselines")
    if baselines is not None:
        lines += ["## Compared with baselines", ""]
        if baselines:
            own = {
                "name": "extracted network (this run)",
                "metrics": summary.get("metrics") or {},
                "params": summary.get("params_after"),
                "macs": summary.get("macs_deploy", summary.get("macs_after")),
                "latency_ms": (summary.get("deployed") or {}).get(
                    "latency_ms", summary.get("latency_ms")
                ),
                "latency_text": latency,
            }
            lines += [
                "Reference models trained for as long as the shrink trained, on the same data "
                "(each with the task's fast recipe and its own overrides, see docs/tasks.md), "
                "scored on the same validation data, exported and measured the same way; "
                "MACs and latency at the deploy input.",
                "",
                *comparison_table(task, [own, *baselines]),
                "",
                seed_note(task),
                "",
            ]
        else:
            lines += ["No baselines were trained.", ""]
    return lines


def plot_curves(steps: list[dict], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [s["step"] for s in steps]
    panels = [
        (metric, [s["metrics"].get(metric) for s in steps]),
        ("MACs (M)", [s["macs"] / 1e6 for s in steps]),
        ("params (M)", [s["params"] / 1e6 for s in steps]),
    ]
    latency = any(s.get("measured_ms") is not None for s in steps)
    fig, axes = plt.subplots(1, len(panels) + latency, figsize=(4 * (len(panels) + latency), 3.2))
    for ax, (label, ys) in zip(axes, panels, strict=False):
        ax.plot(x, ys, marker="o")
        ax.set_xlabel("shrink step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if latency:
        ax = axes[-1]
        ax.plot(x, [s.get("measured_ms") for s in steps], marker="o", label="measured")
        ax.plot(x, [s.get("predicted_ms") for s in steps], marker="x", ls="--", label="predicted")
        if any(s.get("slope_predicted_ms") != s.get("predicted_ms") for s in steps):
            ax.plot(
                x,
                [s.get("slope_predicted_ms") for s in steps],
                marker="+",
                ls=":",
                label="predicted (unit slopes)",
            )
        ax.set_xlabel("shrink step")
        ax.set_ylabel("latency (ms)")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_kept_units(blocks: list[dict], path: Path) -> None:
    """Stacked bars per block: 3x3, 5x5, 7x7 channels and tokens kept, removed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [b["name"] for b in blocks]
    series = [
        ("3x3 channels", [b["k3"] for b in blocks], "#4c72b0"),
        ("5x5 channels", [b["k5"] for b in blocks], "#55a868"),
        ("7x7 channels", [b["k7"] for b in blocks], "#c44e52"),
        ("tokens", [b["tokens"] for b in blocks], "#8172b2"),
        (
            "removed",
            [
                3 * b["full_channels"]
                + b["full_tokens"]
                - b["k3"]
                - b["k5"]
                - b["k7"]
                - b["tokens"]
                for b in blocks
            ],
            "#dddddd",
        ),
    ]
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(names) + 2), 3.6))
    bottom = [0] * len(names)
    for label, values, colour in series:
        ax.bar(range(len(names)), values, bottom=bottom, label=label, color=colour)
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_ylabel("units")
    ax.set_title("kept units per searching block")
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _full_blocks(config: dict, units: dict[str, dict]) -> list[dict]:
    """Block rows with their starting sizes (from the supernet config)."""
    sn = config["supernet"]
    widths = sn["widths"]
    rows = []
    for name, u in units.items():
        if name.startswith("p"):
            cin = widths[int(name.split(".")[1][1:])]
            tokens = sn["tokens"]
        else:
            key = name.split(".")[1]
            cin = widths[int(key[1])]
            tokens = sn["fusion_tokens"]
        rows.append(
            {
                "name": name,
                **u,
                "full_channels": max(1, round(sn["expansion"] * cin)),
                "full_tokens": tokens,
            }
        )
    return rows


def _fallback_latency(c) -> str:
    return f"{_fmt(c.latency_ms)} ms ({c.latency_source}, {c.device})"


def write_report(run_dir: str | Path, *, status: str | None = None) -> list[Path]:
    """Write ``report.md``, ``shrink_curves.png`` and ``kept_units.png``; returns them.

    ``status``: the status to report (default: the stored one); a finishing run writes
    its report as ``finished`` before the store says so, since the status changes only
    once every output exists.
    """
    run_dir = Path(run_dir)
    with RunStore.open_readonly(run_dir) as store:
        info = store.run_info()
        steps = [e.payload for e in store.events(kinds=("shrink_step",))]
        candidates = store.candidates()
    config = info.config
    summary = info.summary or {}
    metric = METRICS.get(config["task"], "top1")
    written = []
    if steps:
        plot_curves(steps, metric, run_dir / "shrink_curves.png")
        plot_kept_units(_full_blocks(config, steps[-1]["units"]), run_dir / "kept_units.png")
        written += [run_dir / "shrink_curves.png", run_dir / "kept_units.png"]

    lines = [f"# HR-NAS shrinking run `{info.name}`", ""]
    lines += [
        f"Task **{config['task']}** on {config.get('data') or 'the built-in demo data'}; "
        f"device **{config.get('device')}**; status **{status or info.status}**.",
        "",
    ]
    lines += _result_lines(config["task"], config, summary, run_dir)
    lines += ["## Configuration", "", "| setting | value |", "|---|---|"]
    for key, value in config.items():
        lines.append(f"| {key} | {_fmt(value)} |")
    lines += ["", "## Shrink steps", ""]
    lines.append(
        f"| step | epoch | removed | channels | tokens | MACs (M) | params (M) | {metric} "
        "| predicted ms | measured ms | train s |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in steps:
        removed = sum(sum(r.values()) for r in s["removed"].values())
        channels = sum(u["k3"] + u["k5"] + u["k7"] for u in s["units"].values())
        tokens = sum(u["tokens"] for u in s["units"].values())
        lines.append(
            f"| {s['step']} | {s['epoch']} | {removed} | {channels} | {tokens} "
            f"| {s['macs'] / 1e6:.2f} | {s['params'] / 1e6:.3f} "
            f"| {_fmt(s['metrics'].get(metric))} | {_fmt(s.get('predicted_ms'))} "
            f"| {_fmt(s.get('measured_ms'))} | {s.get('train_seconds', 0):.0f} |"
        )
    if steps:
        lines += ["", "![metric, MACs, params and latency per shrink step](shrink_curves.png)"]
    lines += ["", "## Extracted network", ""]
    for c in candidates:
        lines += [
            "| field | value |",
            "|---|---|",
            f"| architecture | `{c.genotype}` |",
            f"| params | {c.params:,} |" if c.params is not None else "| params | - |",
            f"| MACs | {c.flops:,} |" if c.flops is not None else "| MACs | - |",
            f"| latency | {latency_text(summary, config) or _fallback_latency(c)} |",
            f"| metrics | {metric_text(config['task'], c.metrics)} |",
            f"| ONNX | `{c.onnx_path}` |",
            "",
        ]
    if summary:
        lines += ["| summary | value |", "|---|---|"]
        for key, value in summary.items():
            # Those rendered above, in their own sections.
            if key not in ("architecture", "deployed", "baselines"):
                lines.append(f"| {key} | {_fmt(value)} |")
    if steps:
        lines += ["", "## Kept units per block (paper Fig. 4)", "", "![kept units](kept_units.png)"]
        lines += ["", "| block | 3x3 | 5x5 | 7x7 | tokens | removed |", "|---|---|---|---|---|---|"]
        for b in _full_blocks(config, steps[-1]["units"]):
            gone = 3 * b["full_channels"] + b["full_tokens"] - b["k3"] - b["k5"] - b["k7"]
            gone -= b["tokens"]
            lines.append(
                f"| {b['name']} | {b['k3']} | {b['k5']} | {b['k7']} | {b['tokens']} | {gone} |"
            )
    path = run_dir / "report.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return [path, *written]
