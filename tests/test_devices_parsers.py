"""Golden tests of the runner / device output parsers and of the statistics.

Where the verbatim formats come from:
- PERF_TEST_OUTPUT: the summary printed by onnxruntime's onnxruntime_perf_test
  (onnxruntime/test/perftest/performance_runner.cc, ORT 1.1x), `-m times -r 100 -I`
  on an Android phone.
- BENCHMARK_MODEL_OUTPUT: TensorFlow Lite's benchmark_model
  (tensorflow/lite/tools/benchmark/benchmark_model.cc / benchmark_tflite_model.cc),
  recent versions that prefix log lines with "INFO: ".
- BENCHMARK_MODEL_OLD_OUTPUT: older benchmark_model builds without the prefix.
- dumpsys battery / thermalservice and getprop: Android 12 output.
"""

from __future__ import annotations

import pytest
from edgenas.devices import parsers
from edgenas.devices.backends.android import parse_getprop
from edgenas.devices.stats import SessionTimings, overall, percentile

PERF_TEST_OUTPUT = """\
Setting intra_op_num_threads to 2
Session creation time cost: 0.0431127 s
First inference time cost: 27 ms
Total inference time cost: 2.06812 s
Total inference requests: 100
Average inference time cost: 20.6812 ms
Total inference run time: 2.06878 s
Number of inferences per second: 48.3377
Avg CPU usage: 24 %
Peak working set size: 41156608 bytes
Avg CPU usage:24
Peak working set size:41156608
Runs:100
Min Latency: 0.0197211 s
Max Latency: 0.0254031 s
P50 Latency: 0.0205412 s
P90 Latency: 0.0213311 s
P95 Latency: 0.0221871 s
P99 Latency: 0.0251002 s
P999 Latency: 0.0254031 s
"""
# perf_test ends the inferences-per-second line with a space (kept out of the source text).
PERF_TEST_OUTPUT = PERF_TEST_OUTPUT.replace("second: 48.3377\n", "second: 48.3377 \n")

BENCHMARK_MODEL_OUTPUT = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Num threads: [2]
INFO: Graph: [/data/local/tmp/edgenas/models/5a1c/model.tflite]
INFO: #threads used for CPU inference: [2]
INFO: Loaded model /data/local/tmp/edgenas/models/5a1c/model.tflite
INFO: Initialized TensorFlow Lite runtime.
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
INFO: The input model file size (MB): 1.23456
INFO: Initialized session in 31.543ms.
INFO: Running benchmark for at least 10 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=38 first=22085 curr=12906 min=12713 max=22085 avg=13210.7 std=1510

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=77 first=13093 curr=12990 min=12705 max=13644 avg=12974.9 std=155

INFO: Inference timings in us: Init: 31543, First inference: 22085, Warmup (avg): 13210.7, Inference (avg): 12974.9
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=6.04688 overall=12.6797
"""

BENCHMARK_MODEL_OLD_OUTPUT = """\
STARTING!
Num runs: [50]
Num threads: [4]
Graph: [/data/local/tmp/mobilenet.tflite]
Loaded model /data/local/tmp/mobilenet.tflite
Initialized session in 5.482ms
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=56 first=24562 curr=8742 min=8601 max=24562 avg=8965.32 std=2122

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=115 first=8781 curr=8699 min=8574 max=9127 avg=8713.46 std=96

Inference timings in us: Init: 5482, First inference: 24562, Warmup (avg): 8965.32, Inference (avg): 8713.46
"""

CPU_FREQS = """\
/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq 1708800
/sys/devices/system/cpu/cpu1/cpufreq/cpuinfo_max_freq 1708800
/sys/devices/system/cpu/cpu2/cpufreq/cpuinfo_max_freq 1708800
/sys/devices/system/cpu/cpu3/cpufreq/cpuinfo_max_freq 1708800
/sys/devices/system/cpu/cpu4/cpufreq/cpuinfo_max_freq 1708800
/sys/devices/system/cpu/cpu5/cpufreq/cpuinfo_max_freq 1708800
/sys/devices/system/cpu/cpu6/cpufreq/cpuinfo_max_freq 2016000
/sys/devices/system/cpu/cpu7/cpufreq/cpuinfo_max_freq 2016000
"""

DUMPSYS_BATTERY = """\
Current Battery Service state:
  AC powered: false
  USB powered: true
  Wireless powered: false
  Max charging current: 500000
  status: 2
  health: 2
  present: true
  level: 87
  scale: 100
  voltage: 4211
  temperature: 312
  technology: Li-ion
"""

DUMPSYS_THERMAL = """\
IsStatusOverride: false
ThermalEventListeners:
	callbacks: 2
ThermalStatusListeners:
	callbacks: 1
Thermal Status: 2
Cached temperatures:
"""

GETPROP = """\
[ro.board.platform]: [sdm670]
[ro.build.version.sdk]: [32]
[ro.product.model]: [Pixel 3a]
[ro.product.cpu.abi]: [arm64-v8a]
[persist.sys.locale]: [en-US]
"""


def test_perf_test_summary_in_milliseconds():
    s = parsers.parse_perf_test(PERF_TEST_OUTPUT)
    assert s.n == 100
    assert s.median == pytest.approx(20.5412)
    assert s.p90 == pytest.approx(21.3311)
    assert s.min == pytest.approx(19.7211)
    assert s.mean == pytest.approx(20.6812)
    assert s.mad is None and s.cv is None and s.samples_ms == []
    # The rest of the summary: tail percentiles, and what a deployment pays once.
    assert (s.p95, s.p99, s.max) == pytest.approx((22.1871, 25.1002, 25.4031))
    assert s.load_ms == pytest.approx(43.1127) and s.first_ms == 27
    assert s.throughput_ips == pytest.approx(48.3377)
    assert s.peak_memory_mb == pytest.approx(41156608 / 2**20)
    assert "peak working set" in s.memory_source


# perf_test's result file (PerformanceResult::DumpToFile, ORT 1.1x): one line per timed
# run, "model folder,seconds,peak working set bytes,CPU %,run index"; with -s a blank
# line and the statistics follow. 4 runs here (the summary above says 100: edited).
PERF_TEST_TIMES = """0123456789abcdef,0.0201,41156608,24,0
0123456789abcdef,0.0199,41156608,24,1
0123456789abcdef,0.0254,41156608,24,2
0123456789abcdef,0.0205,41156608,24,3

Min Latency: 0.0199 s
Max Latency: 0.0254 s
P50 Latency: 0.0205 s
"""


def test_perf_test_result_file_gives_the_raw_samples():
    text = PERF_TEST_OUTPUT.replace("requests: 100", "requests: 4").replace("Runs:100", "Runs:4")
    s = parsers.parse_perf_test(text, PERF_TEST_TIMES)
    assert s.samples_ms == pytest.approx([20.1, 19.9, 25.4, 20.5])
    assert s.n == 4 and s.median == pytest.approx(20.3) and s.max == pytest.approx(25.4)
    assert s.mad is not None and s.cv is not None and "result file" in s.source
    assert s.load_ms == pytest.approx(43.1127) and s.throughput_ips == pytest.approx(48.3377)
    # A file that disagrees with the printed run count is refused, not half-read.
    with pytest.raises(parsers.ParseError, match="100 times"):
        parsers.parse_perf_test(PERF_TEST_OUTPUT, PERF_TEST_TIMES)


def test_perf_test_rejects_other_text():
    with pytest.raises(parsers.ParseError):
        parsers.parse_perf_test("Segmentation fault\n")


@pytest.mark.parametrize(
    "text, n, avg, low, std",
    [
        (BENCHMARK_MODEL_OUTPUT, 77, 12974.9, 12705, 155),
        (BENCHMARK_MODEL_OLD_OUTPUT, 115, 8713.46, 8574, 96),
    ],
)
def test_benchmark_model_uses_the_timed_pass(text, n, avg, low, std):
    s = parsers.parse_benchmark_model(text)
    assert s.n == n
    assert s.mean == pytest.approx(avg / 1000)
    assert s.median == s.mean  # benchmark_model reports no median; says so in source
    assert "no median" in s.source
    assert s.min == pytest.approx(low / 1000)
    assert s.cv == pytest.approx(std / avg)
    assert s.warmup_runs in (38, 56)


def test_benchmark_model_load_first_inference_and_memory():
    s = parsers.parse_benchmark_model(BENCHMARK_MODEL_OUTPUT)
    assert s.load_ms == pytest.approx(31.543) and s.first_ms == pytest.approx(22.085)
    assert s.peak_memory_mb == pytest.approx(12.6797) and "delta" in s.memory_source
    assert s.max is not None and s.max >= s.mean >= s.min
    old = parsers.parse_benchmark_model(BENCHMARK_MODEL_OLD_OUTPUT)
    assert old.load_ms == pytest.approx(5.482) and old.peak_memory_mb is None


def test_benchmark_model_rejects_other_text():
    with pytest.raises(parsers.ParseError):
        parsers.parse_benchmark_model("ERROR: Could not open 'x.tflite'.\n")


def test_big_cores_of_snapdragon_670_and_prime_socs():
    freqs = parsers.parse_cpu_max_freqs(CPU_FREQS)
    assert len(freqs) == 8
    assert parsers.big_cores(freqs) == [6, 7]
    assert parsers.cpu_mask([6, 7]) == "c0"
    # 1 prime + 3 performance + 4 efficiency cores: the 4 fast ones.
    prime = {0: 1800, 1: 1800, 2: 1800, 3: 1800, 4: 2400, 5: 2400, 6: 2400, 7: 2900}
    assert parsers.big_cores(prime) == [4, 5, 6, 7]
    assert parsers.big_cores({0: 2000, 1: 2000}) == [0, 1]
    assert parsers.big_cores({}) == []


def test_dumpsys_and_getprop():
    assert parsers.parse_battery_temperature(DUMPSYS_BATTERY) == pytest.approx(31.2)
    assert parsers.parse_thermal_status(DUMPSYS_THERMAL) == 2
    assert parsers.parse_battery_temperature("Can't find service: battery") is None
    props = parse_getprop(GETPROP)
    assert props["ro.product.model"] == "Pixel 3a"
    assert props["ro.build.version.sdk"] == "32"


def test_ort_profile_mapping():
    events = [
        {"cat": "Session", "name": "model_run", "dur": 500},
        {"cat": "Node", "name": "/conv/Conv_kernel_time", "dur": 900, "args": {"op_name": "Conv"}},
        {"cat": "Node", "name": "/conv/Conv_fence_before", "dur": 1, "args": {}},
        {"cat": "Node", "name": "/conv/Conv_kernel_time", "dur": 300, "args": {"op_name": "Conv"}},
        {"cat": "Node", "name": "/conv/Conv_kernel_time", "dur": 500, "args": {"op_name": "Conv"}},
        {"cat": "Node", "name": "7_nchwc_kernel_time", "dur": 200, "args": {"op_name": "Conv"}},
    ]
    layers = parsers.parse_ort_profile(events, {"/conv/Conv", "/relu/Relu"})
    by_name = {lt.name: lt for lt in layers}
    assert by_name["/conv/Conv"].time_ms == pytest.approx(0.4)  # first run dropped
    assert by_name["/conv/Conv"].onnx_node == "/conv/Conv"
    assert by_name["7_nchwc"].onnx_node is None
    assert parsers.map_to_onnx_node("/conv/Conv/WithoutBiases", {"/conv/Conv"}) == "/conv/Conv"
    assert parsers.map_to_onnx_node("/conv/Convolution", {"/conv/Conv"}) is None


def test_session_statistics():
    samples = [1.0, 2.0, 3.0, 4.0, 100.0]
    s = SessionTimings.from_samples(samples, warmup_runs=3)
    assert s.median == 3.0 and s.min == 1.0 and s.mean == pytest.approx(22.0)
    assert s.mad == 1.0
    assert s.p90 == pytest.approx(percentile(samples, 90)) == pytest.approx(61.6)
    assert s.cv == pytest.approx(39.0128 / 22.0, rel=1e-4)  # population std / mean
    assert SessionTimings.from_dict(s.to_dict()) == s
    total = overall(
        [s, SessionTimings.from_samples([5.0, 5.0]), SessionTimings.from_samples([4.0])]
    )
    assert total["median_ms"] == 4.0
    assert total["session_spread"] == pytest.approx((5.0 - 3.0) / 4.0)
