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


def parse_perf_test(text: str, times: str = "") -> SessionTimings:
    """Parse one run of onnxruntime's ``onnxruntime_perf_test``.

    ``text`` is what it prints; ``times`` the result file it wrote when given one
    (one ``model,seconds,peak_bytes,cpu_percent,run`` line per timed run, then with
    ``-s`` a blank line and the statistics): the session's raw samples. Without that
    file the session is built from the printed summary (``Average inference time
    cost``, ``Total inference requests``, ``Min/Max/P50/P90/P95/P99 Latency``) and
    carries no samples, MAD or CV. Session creation time, first inference time,
    inferences per second and peak working set come from the printed summary.
    """
    samples = parse_perf_test_times(times)
    runs = _field(text, "Total inference requests")
    if runs is None:
        runs = _field(text, "Runs")
    if samples:
        if runs is not None and int(runs) != len(samples):
            raise ParseError(
                f"onnxruntime_perf_test ran {int(runs)} times but its result file "
                f"has {len(samples)} lines"
            )
        timings = SessionTimings.from_samples(samples, warmup_runs=1)
        timings.source = "onnxruntime_perf_test result file (raw samples)"
    else:
        timings = _perf_test_summary(text, runs)
    _perf_test_extras(text, timings)
    return timings


def parse_perf_test_times(text: str) -> list[float]:
    """Per-run times (ms) from a perf_test result file (``name,seconds,peak,cpu,run``
    lines, in run order); the statistics lines after them are skipped."""
    samples = []
    for line in text.splitlines():
        parts = line.rsplit(",", 4)
        if len(parts) == 5 and all(re.fullmatch(_NUM, p.strip()) for p in parts[1:]):
            samples.append(float(parts[1]) * 1000.0)
    return samples


def _perf_test_summary(text: str, runs: float | None) -> SessionTimings:
    """A session from perf_test's printed summary alone (no raw samples)."""
    mean = _field(text, "Average inference time cost")
    p50 = _field(text, "P50 Latency")
    if mean is None or runs is None or p50 is None:
        raise ParseError(
            "onnxruntime_perf_test output lacks 'Average inference time cost', "
            "'Total inference requests' or 'P50 Latency'"
        )
    ms = {q: _field(text, f"{q} Latency") for q in ("P90", "P95", "P99", "Min", "Max")}
    ms = {q: None if v is None else v * 1000.0 for q, v in ms.items()}
    return SessionTimings(
        n=int(runs),
        median=p50 * 1000.0,
        p90=ms["P90"],
        min=ms["Min"] if ms["Min"] is not None else p50 * 1000.0,
        mean=mean,
        mad=None,
        cv=None,
        samples_ms=[],
        warmup_runs=1,  # perf_test's untimed first inference
        source="onnxruntime_perf_test summary",
        p95=ms["P95"],
        p99=ms["P99"],
        max=ms["Max"],
        throughput_ips=1000.0 / mean if mean > 0 else None,
    )


def _perf_test_extras(text: str, timings: SessionTimings) -> None:
    """Load, first inference, throughput and peak memory from perf_test's summary."""
    created = _field(text, "Session creation time cost")
    timings.load_ms = None if created is None else created * 1000.0
    timings.first_ms = _field(text, "First inference time cost")  # whole ms
    ips = _field(text, "Number of inferences per second")
    if ips is not None and ips > 0:
        timings.throughput_ips = ips
    peak = _field(text, "Peak working set size")
    if peak:
        timings.peak_memory_mb = peak / (1024.0 * 1024.0)
        timings.memory_source = "runner's peak working set (whole runner process)"
    else:
        timings.memory_source = "unknown: the runner reported no peak working set"


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
    timings = SessionTimings(
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
        max=float(timed["max"]) / 1000.0,
        throughput_ips=1000.0 / avg_ms if avg_ms > 0 else None,
    )
    # "Inference timings in us: Init: 3500, First inference: 900, ..." and
    # "Peak memory footprint (MB): init=2.1 overall=9.8".
    init = re.search(rf"Init:\s*{_NUM}", text)
    first = re.search(rf"First inference:\s*{_NUM}", text)
    timings.load_ms = float(init.group(1)) / 1000.0 if init else None
    timings.first_ms = float(first.group(1)) / 1000.0 if first else None
    # Newer builds print the peak; older ones only the growth since the tool started.
    peak = re.search(rf"Peak memory footprint \(MB\):.*overall={_NUM}", text)
    delta = re.search(rf"Memory footprint delta from the start .*overall={_NUM}", text)
    if peak:
        timings.peak_memory_mb = float(peak.group(1))
        timings.memory_source = "runner's peak memory footprint (benchmark_model, overall)"
    elif delta:
        timings.peak_memory_mb = float(delta.group(1))
        timings.memory_source = "runner's memory footprint delta since it started (benchmark_model)"
    else:
        timings.memory_source = "unknown: the runner reported no memory footprint"
    return timings


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
