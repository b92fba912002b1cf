"""The gate's 20-repetition proofs (slow: about 3 minutes; `pytest -m slow`).

Runs benchmarks/bench_gate_verdicts.py: the same model A/B against itself must pass 20
times out of 20 at the shared-runner threshold (15%), a ~25% slower model must fail 20
out of 20, and a ~5% slower one must never fail at 10%. Figures: docs/ci-latency.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gate_verdicts.py"


@pytest.mark.slow
def test_no_false_alarms_and_regressions_caught_20_times(tmp_path):
    out = tmp_path / "summary.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--reps", "20", "--threshold", "15%",
         "--scenarios", "same-ab,slow25-ab,slow5-ab", "--json", str(out)],
        check=True, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    summary = json.loads(out.read_text())
    assert summary["same-ab"]["regressed"] == 0, summary["same-ab"]
    assert summary["slow25-ab"]["regressed"] == 20, summary["slow25-ab"]
    assert summary["slow5-ab"]["regressed"] == 0, summary["slow5-ab"]
