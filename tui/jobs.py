"""Background actions on a candidate: export its ONNX file or profile it on a device.

Each runs the ordinary ``edgenas export`` / ``edgenas profile`` command in a subprocess,
so the monitor process never imports torch and stays responsive; output lines are
handed to a callback as they arrive (progress). Plain asyncio, no widgets.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Where the monitor writes what its actions produce, inside the run folder.
OUTPUT_DIR = "monitor"


@dataclass(frozen=True)
class JobSpec:
    """A command to run for a candidate, and the file it produces."""

    label: str
    argv: tuple[str, ...]
    output: Path


@dataclass(frozen=True)
class JobResult:
    """How a job ended."""

    label: str
    returncode: int
    output: Path | None
    last_line: str


def _model_args(config: dict[str, Any], genotype: str) -> list[str]:
    task = str(config.get("task", "depth"))
    h, w = config.get("deploy_input") or (120, 160)
    args = ["--genotype", genotype, "--task", task, "--input", f"1x3x{int(h)}x{int(w)}"]
    if task == "sr" and config.get("scale"):
        args += ["--scale", str(int(config["scale"]))]
    return args


def export_job(run_dir: Path, candidate_id: int, genotype: str, config: dict[str, Any]) -> JobSpec:
    """``edgenas export`` of a candidate to ``run_dir/monitor/candidate-<id>.onnx``."""
    output = Path(run_dir) / OUTPUT_DIR / f"candidate-{candidate_id}.onnx"
    argv = [sys.executable, "-m", "edgenas", "export", *_model_args(config, genotype)]
    argv += ["-o", str(output)]
    return JobSpec(f"export #{candidate_id}", tuple(argv), output)


def profile_job(
    run_dir: Path,
    candidate_id: int,
    genotype: str,
    config: dict[str, Any],
    device: str | None = None,
    model: Path | None = None,
) -> JobSpec:
    """``edgenas profile --layers`` of a candidate on the run's device: of its ONNX file
    ``model`` when it has one (HR-NAS extracted networks), else of its genotype. The JSON
    result goes to ``run_dir/monitor/candidate-<id>.latency.json``."""
    output = latency_path(run_dir, candidate_id)
    argv = [sys.executable, "-m", "edgenas", "profile"]
    argv += [str(model)] if model is not None else _model_args(config, genotype)
    argv += ["--device", device or str(config.get("device", "cpu")), "--layers"]
    argv += ["--sessions", "2", "--runs", "30", "--json", str(output)]
    return JobSpec(f"profile #{candidate_id}", tuple(argv), output)


def latency_path(run_dir: Path, candidate_id: int) -> Path:
    """Where a profile of a candidate is written (and read back for the detail screen)."""
    return Path(run_dir) / OUTPUT_DIR / f"candidate-{candidate_id}.latency.json"


@dataclass(frozen=True)
class LayerRow:
    """One layer of a per-layer profile."""

    name: str
    op_type: str
    time_ms: float
    block: str = "-"  # the genotype's block the layer belongs to (see layer_block)


# Container names an exported network's layers sit under before their block's name.
_WRAPPERS = {"backbone", "model", "net", "module"}


def layer_block(name: str) -> tuple[str, str]:
    """``/backbone/enc1b/enc1b.1/body/body.2/act/Relu`` -> ``("enc1b", "1/body/body.2/
    act/Relu")``: the block an ONNX node belongs to (the first path part after the
    network's wrappers: a role such as ``enc1b``, or ``head``) and the rest of its name."""
    parts = [p for p in name.split("/") if p]
    while len(parts) > 1 and parts[0] in _WRAPPERS:
        parts = parts[1:]
    if len(parts) < 2:
        return "-", name.strip("/")
    block, rest = parts[0], parts[1:]
    if rest[0].startswith(block + "."):  # "enc1b.1": the layer index within the block
        rest[0] = rest[0][len(block) + 1 :]
    return block, "/".join(rest)


@dataclass(frozen=True)
class Profile:
    """A candidate's stored profile: median latency and the slowest layers."""

    median_ms: float | None
    device: str
    runtime: str
    layers: tuple[LayerRow, ...]


def read_profile(run_dir: Path, candidate_id: int, top: int = 12) -> Profile | None:
    """The profile written by :func:`profile_job`, if there is a readable one."""
    try:
        data = json.loads(latency_path(run_dir, candidate_id).read_text())
        layers = sorted(
            (
                LayerRow(
                    lt["name"],
                    lt["op_type"],
                    float(lt["time_ms"]),
                    str(lt.get("block") or layer_block(lt["name"])[0]),
                )
                for lt in data.get("layers") or []
            ),
            key=lambda r: -r.time_ms,
        )
        runtime = data.get("runtime", {})
        return Profile(
            median_ms=data.get("timings", {}).get("median_ms"),
            device=str(data.get("device", {}).get("name", "?")),
            runtime=f"{runtime.get('name', '?')} {runtime.get('version', '')}".strip(),
            layers=tuple(layers[:top]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


async def run_job(spec: JobSpec, on_line: Callable[[str], None]) -> JobResult:
    """Run ``spec`` and call ``on_line`` with each line of its output; returns how it ended."""
    spec.output.parent.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        *spec.argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    last = ""
    assert process.stdout is not None
    try:
        while True:
            raw = await process.stdout.readline()
            if not raw:
                break
            line = raw.decode(errors="replace").rstrip()
            if line:
                last = line
                on_line(line)
        code = await process.wait()
    except asyncio.CancelledError:
        # The monitor is closing: do not leave an export running behind it.
        process.kill()
        await process.wait()
        raise
    return JobResult(
        spec.label, code, spec.output if code == 0 and spec.output.exists() else None, last
    )
