"""Pure parsers of runner and device output; golden-tested on verbatim formats."""

from __future__ import annotations

import re
from collections import defaultdict

from edgenas.devices.result import LayerTime
from edgenas.devices.stats import SessionTimings


class ParseError(ValueError):
    """The text is not the expected runner/device output."""


_NUM = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def _field(text: str, label: str) -> float | None:
    match = re.search(rf"^\s*{re.escape(label)}\s*:?\s*{_NUM}", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def parse_perf_test(text: str) -> SessionTimings:
    """Parse the summary printed by onnxruntime's ``onnxruntime_perf_test``.

    Uses ``Average inference time cost: X ms``, ``Total inference requests: N`` and the
    ``Min/P50/P90 Latency: X s`` lines. perf_test prints no raw samples, so the session
    carries no samples and no MAD / CV.
    """
    mean = _field(text, "Average inference time cost")
    runs = _field(text, "Total inference requests")
    if runs is None:
        runs = _field(text, "Runs")
    p50 = _field(text, "P50 Latency")
    if mean is None or runs is None or p50 is None:
        raise ParseError(
            "onnxruntime_perf_test output lacks 'Average inference time cost', "
            "'Total inference requests' or 'P50 Latency'"
        )
    p90 = _field(text, "P90 Latency")
    low = _field(text, "Min Latency")
    return SessionTimings(
        n=int(runs),
        median=p50 * 1000.0,
        p90=None if p90 is None else p90 * 1000.0,
        min=(low * 1000.0) if low is not None else p50 * 1000.0,
        mean=mean,
        mad=None,
        cv=None,
        samples_ms=[],
        warmup_runs=1,  # perf_test's untimed first inference
        source="onnxruntime_perf_test summary",
    )


_BM_LINE = re.compile(
    r"count=(?P<count>\d+)\s+first=(?P<first>\d+)\s+curr=(?P<curr>\d+)\s+min=(?P<min>\d+)"
    r"\s+max=(?P<max>\d+)\s+avg=(?P<avg>[0-9.e+]+)\s+std=(?P<std>\d+)"
)


def parse_benchmark_model(text: str) -> SessionTimings:
    """Parse TFLite ``benchmark_model`` output (times in microseconds).

    The last ``count=... avg=... std=...`` line is the timed pass (the first is the
    warm-up). benchmark_model reports no median; the session's median is its average
    and ``source`` says so.
    """
    lines = list(_BM_LINE.finditer(text))
    if not lines:
        raise ParseError("benchmark_model output has no 'count=... avg=... std=...' line")
    timed = lines[-1]
    warmup = int(lines[0]["count"]) if len(lines) > 1 else 0
    avg_ms = float(timed["avg"]) / 1000.0
    std_ms = float(timed["std"]) / 1000.0
    return SessionTimings(
        n=int(timed["count"]),
        median=avg_ms,
        p90=None,
        min=float(timed["min"]) / 1000.0,
        mean=avg_ms,
        mad=None,
        cv=std_ms / avg_ms if avg_ms > 0 else None,
        samples_ms=[],
        warmup_runs=warmup,
        source="benchmark_model summary (no median reported: median = mean)",
    )


def parse_cpu_max_freqs(text: str) -> dict[int, int]:
    """``/sys/devices/system/cpu/cpuN/cpufreq/cpuinfo_max_freq VALUE`` lines -> {N: kHz}."""
    freqs = {}
    for match in re.finditer(r"cpu(\d+)/cpufreq/cpuinfo_max_freq\s+(\d+)", text):
        freqs[int(match.group(1))] = int(match.group(2))
    return freqs


def parse_governors(text: str) -> dict[int, str]:
    """``/sys/devices/system/cpu/cpuN/cpufreq/scaling_governor NAME`` lines -> {N: NAME}."""
    governors = {}
    for match in re.finditer(r"cpu(\d+)/cpufreq/scaling_governor[ \t]+(\S+)", text):
        governors[int(match.group(1))] = match.group(2)
    return governors


def split_sections(text: str, marker: str, count: int) -> list[str]:
    """Split the output of several commands run as one (``a; echo MARK; b``) at the
    lines that are exactly ``marker``; ParseError unless there are ``count`` parts."""
    parts = re.split(rf"^{re.escape(marker)}\r?$\n?", text, flags=re.MULTILINE)
    if len(parts) != count:
        raise ParseError(f"expected {count} sections of output, got {len(parts)}")
    return parts


def big_cores(freqs: dict[int, int]) -> list[int]:
    """The cores faster than the slowest cluster (all cores if every core is alike).

    On a 2+6 Snapdragon 670 these are the two Kryo Gold cores; on a 1+3+4 SoC the
    prime and the three performance cores.
    """
    if not freqs:
        return []
    slowest = min(freqs.values())
    fast = sorted(cpu for cpu, f in freqs.items() if f > slowest)
    return fast or sorted(freqs)


def cpu_mask(cores: list[int]) -> str:
    """Hex affinity mask for ``taskset`` (cores 6 and 7 -> ``c0``)."""
    return format(sum(1 << c for c in cores), "x")


def parse_battery_temperature(text: str) -> float | None:
    """Battery temperature in degrees C from ``dumpsys battery`` (tenths of a degree)."""
    match = re.search(r"^\s*temperature:\s*(-?\d+)", text, re.MULTILINE)
    return int(match.group(1)) / 10.0 if match else None


def parse_thermal_status(text: str) -> int | None:
    """``Thermal Status: N`` from ``dumpsys thermalservice`` (0 = none ... 6 = shutdown)."""
    match = re.search(r"Thermal Status:\s*(\d+)", text)
    return int(match.group(1)) if match else None


def map_to_onnx_node(name: str, model_nodes: set[str]) -> str | None:
    """The ONNX node a runtime node name comes from (exact, else longest prefix that
    ends at a ``/``, ``_`` or ``:`` separator); None if there is none."""
    if name in model_nodes:
        return name
    best = None
    for node in model_nodes:
        if (
            node
            and name.startswith(node)
            and name[len(node)] in "/_:"
            and (best is None or len(node) > len(best))
        ):
            best = node
    return best


def parse_ort_profile(events: list[dict], model_nodes: set[str], skip_first: bool = True):
    """Per-node mean kernel time from an onnxruntime profiling JSON (chrome trace).

    Node events are named ``<node>_kernel_time`` with ``args.op_name``; the first run
    (``skip_first``) is dropped as warm-up. Names are matched to the ONNX file's node
    names; nodes the optimiser fused or created are kept with ``in_model=False``.
    """
    per_run: dict[str, list[float]] = defaultdict(list)
    op_types: dict[str, str] = {}
    for event in events:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        node = event["name"][: -len("_kernel_time")]
        per_run[node].append(float(event.get("dur", 0)) / 1000.0)
        op_types[node] = event.get("args", {}).get("op_name", "")
    layers = []
    for node, times in per_run.items():
        if skip_first and len(times) > 1:
            times = times[1:]
        layers.append(
            LayerTime(
                node, op_types[node], sum(times) / len(times), map_to_onnx_node(node, model_nodes)
            )
        )
    layers.sort(key=lambda lt: lt.time_ms, reverse=True)
    return layers
