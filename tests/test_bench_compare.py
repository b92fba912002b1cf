"""Verdicts from session medians (pure): the U test against hand-computed values, the
threshold + significance rule, device/runtime refusal, and the three reports."""

from __future__ import annotations

import copy
import math
from xml.etree import ElementTree as ET

import pytest
from edgenas.devices.result import LatencyResult
from edgenas.devices.stats import SessionTimings

from edgenas.bench.compare import (
    IMPROVED,
    NEW,
    NOISE,
    REGRESSED,
    compare,
    judge,
    mann_whitney_p,
    smallest_p,
)
from edgenas.bench.report import junit_xml, markdown, summary_line
from edgenas.bench.results import BenchEntry, BenchFile
from edgenas.errors import UserError


def test_u_test_matches_hand_computed_p_values():
    # Complete separation of 5 and 5: U = 0; exactly 1 of C(10,5) = 252 orderings is as
    # extreme in each direction, so the two-sided p is 2/252.
    assert mann_whitney_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / 252)
    # 3 vs 3 completely separated: 2/20, the smallest p such a test can give.
    assert mann_whitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    # [1,3] vs [2,4]: U = 1 (only 3 > 2); P(U <= 1) = 2/6 of the C(4,2) orderings, doubled.
    assert mann_whitney_p([1, 3], [2, 4]) == pytest.approx(4 / 6)
    assert mann_whitney_p([2.0] * 4, [2.0] * 4) == 1.0
    assert smallest_p(5, 5) == pytest.approx(2 / 252)
    assert smallest_p(4, 4) == pytest.approx(2 / 70)
    assert smallest_p(4, 4) < 0.05 < smallest_p(3, 3)


BASE = [10.0, 10.3, 9.8, 10.1, 9.9, 10.2, 10.0, 9.7]


def shifted(values, factor):
    return [v * factor for v in values]


def test_judge_needs_both_size_and_significance():
    verdict, change, p, reason = judge(BASE, shifted(BASE, 1.25), 0.10, 0.05)
    assert verdict == REGRESSED and change == pytest.approx(0.25) and p < 0.001
    assert "beyond the 10% threshold" in reason
    assert judge(BASE, shifted(BASE, 0.75), 0.10, 0.05)[0] == IMPROVED
    # a real but small change (every session 5% slower) is within the threshold
    verdict, change, p, reason = judge(BASE, shifted(BASE, 1.05), 0.10, 0.05)
    assert verdict == NOISE and p < 0.05 and "within the 10% threshold" in reason
    # a big change of the median that the sessions do not support: one slow session
    # pattern on each side, overlapping
    noisy_base = [10, 10, 10, 10, 20, 20]
    noisy_now = [10, 10, 20, 20, 20, 20]
    verdict, change, p, reason = judge(noisy_base, noisy_now, 0.10, 0.05)
    assert verdict == NOISE and change > 0.10 and p >= 0.05 and "not significant" in reason


def fake_result(medians, *, version="1.32.0", cpu="Test CPU", spread=0.02) -> LatencyResult:
    """A LatencyResult whose sessions have the given medians (samples around them)."""
    sessions = [
        SessionTimings.from_samples([m * (1 - spread), m, m * (1 + spread)]) for m in medians
    ]
    return LatencyResult(
        model={"path": "m.onnx", "sha256": "0" * 64, "opset": 17, "inputs": []},
        device={"name": "cpu", "kind": "host", "facts": {"cpu": cpu, "usable_cores": 2}},
        runtime={
            "name": "onnxruntime",
            "version": version,
            "provider": "CPUExecutionProvider",
            "threads": 1,
            "precision": "f32",
        },
        protocol={"runs": 3, "sessions": len(medians)},
        sessions=sessions,
        environment={},
    )


def bench(entries, threshold=0.10) -> BenchFile:
    return BenchFile("results", {"path": None}, threshold, 0.05, entries)


def entry(case, medians, ab=None, threshold=None, **kw) -> BenchEntry:
    return BenchEntry(
        case,
        "cpu",
        threshold,
        {"onnx": f"{case}.onnx"},
        fake_result(medians, **kw),
        ab_baseline=None if ab is None else fake_result(ab),
    )


def test_compare_with_baseline_file_reports_every_verdict():
    baseline = bench([entry("slow", BASE), entry("fast", BASE), entry("same", BASE)])
    results = bench(
        [
            entry("slow", shifted(BASE, 1.3)),
            entry("fast", shifted(BASE, 0.6)),
            entry("same", shifted(BASE, 1.01)),
            entry("brand-new", BASE),
        ]
    )
    comparisons, notes = compare(results, baseline)
    verdicts = {c.case: c.verdict for c in comparisons}
    assert verdicts == {"slow": REGRESSED, "fast": IMPROVED, "same": NOISE, "brand-new": NEW}
    assert notes == []
    assert summary_line(comparisons) == "FAIL: 1 regressed, 1 improved, 1 within noise, 1 new"
    # --threshold 50% replaces the spec default: the 30% slow-down is now within it
    comparisons, _ = compare(results, baseline, threshold=0.5)
    assert {c.case: c.verdict for c in comparisons}["slow"] == NOISE
    # ... but a case's own threshold is kept
    results.entries[0].threshold = 0.2
    comparisons, _ = compare(results, baseline, threshold=0.5)
    assert comparisons[0].verdict == REGRESSED and comparisons[0].threshold == 0.2


def test_missing_cases_are_noted():
    baseline = bench([entry("a", BASE), entry("gone", BASE)])
    comparisons, notes = compare(bench([entry("a", BASE)]), baseline)
    assert [c.verdict for c in comparisons] == [NOISE]
    assert notes == ["gone on cpu: in the baseline but not measured now"]


def test_ab_results_need_no_baseline_file():
    results = bench([entry("a", shifted(BASE, 1.5), ab=BASE), entry("b", BASE, ab=BASE)])
    comparisons, _ = compare(results)
    assert [c.verdict for c in comparisons] == [REGRESSED, NOISE]
    with pytest.raises(UserError, match="carry no A/B baseline; give --baseline"):
        compare(bench([entry("a", BASE)]))


def test_different_runtime_or_device_is_refused_unless_forced():
    baseline = bench([entry("a", BASE, version="1.31.0")])
    results = bench([entry("a", shifted(BASE, 1.3))])
    with pytest.raises(UserError, match=r"runtime\.version '1\.31\.0' -> '1\.32\.0'.*--force"):
        compare(results, baseline)
    comparisons, notes = compare(results, baseline, force=True)
    assert comparisons[0].verdict == REGRESSED
    assert "compared across devices/runtimes (--force)" in notes[0]
    other_cpu = bench([entry("a", BASE, cpu="Other CPU")])
    with pytest.raises(UserError, match=r"device\.cpu 'Other CPU' -> 'Test CPU'"):
        compare(results, other_cpu)


def test_too_few_sessions_are_refused():
    baseline = bench([entry("a", BASE[:3])])
    with pytest.raises(UserError, match=r"can never reach p < 0\.05"):
        compare(bench([entry("a", BASE[:3])]), baseline)


def test_bench_file_round_trips_through_json():
    original = bench([entry("a", shifted(BASE, 1.5), ab=BASE, threshold=0.2)])
    again = BenchFile.from_dict(copy.deepcopy(original.to_dict()))
    assert again.is_ab and again.entries[0].threshold == 0.2
    assert again.entries[0].result.median_ms == original.entries[0].result.median_ms
    assert again.to_dict()["summary"]["cases"][0]["change"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"not an edgenas\.bench/v1 file"):
        BenchFile.from_dict(original.entries[0].result.to_dict())


def test_junit_has_one_testcase_per_model_and_device():
    baseline = bench([entry("slow", BASE), entry("same", BASE)])
    results = bench([entry("slow", shifted(BASE, 1.3)), entry("same", BASE), entry("new", BASE)])
    comparisons, notes = compare(results, baseline)
    root = ET.fromstring(junit_xml(comparisons, notes))
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert set(cases) == {("edgenas.bench.cpu", n) for n in ("slow", "same", "new")}
    failure = cases[("edgenas.bench.cpu", "slow")].find("failure")
    assert failure.get("message") == "latency regressed +30.0%"
    assert cases[("edgenas.bench.cpu", "new")].find("skipped") is not None
    assert cases[("edgenas.bench.cpu", "same")].find("failure") is None


def test_markdown_summary_is_a_table():
    results = bench([entry("a|b", shifted(BASE, 0.5), ab=BASE)])
    comparisons, notes = compare(results)
    text = markdown(comparisons, notes)
    assert "**OK: 1 improved**" in text
    row = next(line for line in text.splitlines() if line.startswith("| a\\|b"))
    cells = [c.strip() for c in row.split(" | ")]
    assert cells[1:5] == ["cpu", "10.000", "5.000", "-50.0%"]
    assert "improved" in cells[-1]
    assert not math.isnan(comparisons[0].p_value)
