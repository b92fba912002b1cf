"""``runs/<name>/report.md`` and figures of an HR-NAS shrinking run, from its run store.

Reads only the store (config, ``shrink_step`` events, the extracted candidate), like the
search report: a configuration table, a results table (one row per shrink step), the
curves of metric / MACs / latency against the shrink step (``shrink_curves.png``) and
the kept units per block (``kept_units.png``, the paper's Fig. 4: 3x3 / 5x5 / 7x7
channels and tokens kept, and what was removed).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edgenas.store import RunStore


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def write_report(run_dir: str | Path) -> list[Path]:
    """Write ``report.md``, ``shrink_curves.png`` and ``kept_units.png``; returns them."""
    run_dir = Path(run_dir)
    with RunStore.open_readonly(run_dir) as store:
        info = store.run_info()
        steps = [e.payload for e in store.events(kinds=("shrink_step",))]
        candidates = store.candidates()
    config = info.config
    metric = {"segmentation": "miou", "depth": "delta1", "sr": "psnr"}.get(config["task"], "top1")
    written = []
    if steps:
        plot_curves(steps, metric, run_dir / "shrink_curves.png")
        plot_kept_units(_full_blocks(config, steps[-1]["units"]), run_dir / "kept_units.png")
        written += [run_dir / "shrink_curves.png", run_dir / "kept_units.png"]

    lines = [f"# HR-NAS shrinking run `{info.name}`", "", f"Status: **{info.status}**", ""]
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
            f"| latency | {_fmt(c.latency_ms)} ms ({c.latency_source}, {c.device}) |",
            f"| metrics | {_fmt(c.metrics)} |",
            f"| ONNX | `{c.onnx_path}` |",
            "",
        ]
    if info.summary:
        lines += ["| summary | value |", "|---|---|"]
        for key, value in info.summary.items():
            if key != "architecture":
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
    fd, tmp = tempfile.mkstemp(prefix=".report.md.", dir=run_dir)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return [path, *written]
