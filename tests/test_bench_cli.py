"""`edgenas bench` end to end through the console script, measuring for real.

Timing on a shared 2-core machine is noisy, so these tests assert verdicts, never times,
and use models whose difference no noise can hide (a 2.5x slower chain of convolutions)
or the same model on both sides with a generous threshold. The 20-repetition proofs at
the recommended thresholds live in benchmarks/bench_gate_verdicts.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from cli_helpers import assert_one_line_error, run_cli

from edgenas.bench.synthetic import conv_chain_onnx

PROTOCOL = "[protocol]\nruns = 10\nwarmup = 2\nsessions = 6\n"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bench")
    conv_chain_onnx(folder / "base.onnx", 20)
    conv_chain_onnx(folder / "slow.onnx", 50)  # ~2.5x the latency of base
    return folder


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGENAS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("EDGENAS_CACHE_DIR", str(tmp_path / "cache"))


def write_spec(path: Path, cases: dict[str, str], head: str = 'threshold = "30%"\n') -> Path:
    """A spec with one onnx case per name -> model file."""
    text = head + PROTOCOL
    for name, model in cases.items():
        text += f'\n[[case]]\nname = "{name}"\nonnx = "{model}"\n'
    path.write_text(text)
    return path


def test_ab_run_catches_the_slow_model_and_passes_the_same_one(models, tmp_path):
    candidate = write_spec(models / "cand.toml", {"changed": "slow.onnx", "unchanged": "base.onnx"})
    base = write_spec(models / "base.toml", {"changed": "base.onnx", "unchanged": "base.onnx"})
    out = tmp_path / "results.json"
    run = run_cli("bench", "run", str(candidate), "--ab", str(base), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert "A/B base ms" in run.stdout and f"wrote {out}" in run.stdout
    assert "changed on cpu: session 6/6 A" in run.stderr  # sessions interleave A, B
    data = json.loads(out.read_text())
    assert data["schema"] == "edgenas.bench/v1" and data["summary"]["ab"] is True
    first = data["entries"][0]
    assert first["result"]["schema"] == "edgenas.latency/v1"
    assert first["result"]["protocol"]["interleaved"] is True
    assert len(first["result"]["timings"]["sessions"]) == 6
    assert len(first["ab_baseline"]["result"]["timings"]["sessions"]) == 6
    assert first["ab_baseline"]["source"]["onnx"].endswith("base.onnx")

    junit, md = tmp_path / "latency.xml", tmp_path / "summary.md"
    check = run_cli("bench", "check", str(out), "--junit", str(junit), "--markdown", str(md))
    assert check.returncode == 1, check.stdout + check.stderr
    lines = {line.split()[1]: line for line in check.stdout.splitlines() if "│ cpu" in line}
    assert "regressed" in lines["changed"] and "within noise" in lines["unchanged"]
    assert "FAIL: 1 regressed, 1 within noise" in check.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    assert "| changed | cpu |" in md.read_text()

    # the Markdown alone on stdout, for `>> "$GITHUB_STEP_SUMMARY"`
    only_md = run_cli("bench", "check", str(out), "--markdown", "-")
    assert only_md.returncode == 1 and only_md.stdout.startswith("## Latency check")


def test_baseline_file_then_check(models, tmp_path):
    spec_base = write_spec(tmp_path / "a.toml", {"m": str(models / "slow.onnx")})
    spec_new = write_spec(tmp_path / "b.toml", {"m": str(models / "base.onnx")})
    baseline, results = tmp_path / "baseline.json", tmp_path / "results.json"
    assert run_cli("bench", "baseline", str(spec_base), "-o", str(baseline)).returncode == 0
    assert json.loads(baseline.read_text())["kind"] == "baseline"
    assert run_cli("bench", "run", str(spec_new), "-o", str(results)).returncode == 0
    # faster than the baseline: reported, and not a failure
    verdicts = tmp_path / "verdicts.json"
    check = run_cli(
        "bench", "check", str(results), "--baseline", str(baseline), "--json", str(verdicts)
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "improved" in check.stdout and "OK: 1 improved" in check.stdout
    assert json.loads(verdicts.read_text())["comparisons"][0]["verdict"] == "improved"
    # the other way round it is a regression
    check = run_cli("bench", "check", str(baseline), "--baseline", str(results))
    assert check.returncode == 1 and "regressed" in check.stdout

    # a baseline from another runtime version is refused, unless forced
    data = json.loads(baseline.read_text())
    data["entries"][0]["result"]["runtime"]["version"] = "0.1.0"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    refused = run_cli("bench", "check", str(results), "--baseline", str(other))
    assert_one_line_error(refused, "different devices or runtimes", "runtime.version", "--force")
    forced = run_cli("bench", "check", str(results), "--baseline", str(other), "--force")
    assert forced.returncode == 0 and "compared across devices/runtimes" in forced.stdout


def test_a_baseline_from_another_cpu_microarchitecture_is_refused(models, tmp_path):
    """Two VMs can both call their CPU "AMD EPYC"; the signature (family, model, vector
    extensions) tells them apart. A baseline stored before signatures were recorded
    is still compared."""
    spec = write_spec(tmp_path / "a.toml", {"m": str(models / "base.onnx")})
    baseline, results = tmp_path / "baseline.json", tmp_path / "results.json"
    assert run_cli("bench", "baseline", str(spec), "-o", str(baseline)).returncode == 0
    assert run_cli("bench", "run", str(spec), "-o", str(results)).returncode == 0
    data = json.loads(baseline.read_text())
    facts = data["entries"][0]["result"]["device"]["facts"]
    if facts["cpu_signature"] is None:
        pytest.skip("this host's /proc/cpuinfo names no CPU signature")

    facts["cpu_signature"] += " + another kind of core"  # never this host's
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    refused = run_cli("bench", "check", str(results), "--baseline", str(other))
    assert_one_line_error(refused, "different devices or runtimes", "device.cpu_signature")

    del facts["cpu_signature"]  # an older edgenas's baseline
    other.write_text(json.dumps(data))
    older = run_cli("bench", "check", str(results), "--baseline", str(other))
    assert older.returncode in (0, 1), older.stderr  # compared: a verdict, not a refusal
    assert "different devices" not in older.stdout + older.stderr


def test_genotype_case_is_exported_and_recorded(tmp_path):
    genotype = run_cli("space", "sample", "--n", "1", "--seed", "3", "--scales", "2").stdout.strip()
    spec = tmp_path / "g.toml"
    spec.write_text(
        "[protocol]\nruns = 3\nwarmup = 1\nsessions = 4\n"
        f'[[case]]\nname = "g"\ngenotype = "{genotype}"\ntask = "seg"\nnum_classes = 5\n'
        'input = "1x3x32x32"\n'
    )
    out = tmp_path / "r.json"
    run = run_cli("bench", "run", str(spec), "-o", str(out))
    assert run.returncode == 0, run.stderr
    entry = json.loads(out.read_text())["entries"][0]
    assert entry["result"]["model"]["genotype"] == genotype
    assert entry["source"] == {
        "genotype": genotype,
        "task": "seg",
        "input": [1, 3, 32, 32],
        "num_classes": 5,
    }
    assert entry["result"]["model"]["inputs"][0]["shape"] == [1, 3, 32, 32]


def test_bad_input_is_one_line_and_exit_2(models, tmp_path):
    spec = write_spec(tmp_path / "s.toml", {"m": str(models / "base.onnx")})
    cases = [
        (("bench", "run", str(tmp_path / "nope.toml"), "-o", "x.json"), "spec file", "not found"),
        (("bench", "run", str(spec), "--ab", str(tmp_path / "nope.toml"), "-o", "x"), "not found"),
        (("bench", "check", str(tmp_path / "none.json")), "results file", "not found"),
        (("bench", "check", str(spec)), "is not JSON"),
    ]
    for args, *fragments in cases:
        assert_one_line_error(run_cli(*args), *fragments)
    missing = write_spec(tmp_path / "m.toml", {"m": "absent.onnx"})
    assert_one_line_error(run_cli("bench", "run", str(missing), "-o", "x"), "case 'm'", "not found")
    unknown = write_spec(
        tmp_path / "u.toml", {"m": str(models / "base.onnx")}, 'devices = ["tpu9"]\n'
    )
    assert_one_line_error(run_cli("bench", "run", str(unknown), "-o", "x"), "unknown device 'tpu9'")
    other = write_spec(tmp_path / "o.toml", {"zzz": str(models / "base.onnx")})
    assert_one_line_error(
        run_cli("bench", "run", str(spec), "--ab", str(other), "-o", "x"), "shares no case name"
    )
    assert not (tmp_path / "x").exists()

    results = tmp_path / "r.json"
    assert run_cli("bench", "run", str(spec), "-o", str(results)).returncode == 0
    assert_one_line_error(run_cli("bench", "check", str(results)), "no A/B baseline", "--baseline")
    assert_one_line_error(
        run_cli("bench", "check", str(results), "--baseline", str(results), "--threshold", "10"),
        "ambiguous",
    )
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(json.loads(results.read_text())["entries"][0]["result"]))
    assert_one_line_error(
        run_cli("bench", "check", str(profile)), "not an edgenas.bench/v1 file", "profile --json"
    )
    assert_one_line_error(run_cli("bench", "check"), "required")


def test_help_teaches_with_examples():
    for args in (("bench",), ("bench", "run"), ("bench", "check"), ("bench", "baseline")):
        shown = run_cli(*args, "--help")
        assert shown.returncode == 0 and "examples:" in shown.stdout, args
    assert "--ab base/bench.toml" in run_cli("bench", "--help").stdout
    assert "latency regression gate" in run_cli("--help").stdout
