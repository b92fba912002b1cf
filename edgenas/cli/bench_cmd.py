"""``edgenas bench``: the latency regression gate for CI (run, baseline, check)."""

from __future__ import annotations

import argparse
import sys

from edgenas.cli.common import add_command, check_output_file
from edgenas.cli.devices_cmd import add_catalog_arg
from edgenas.errors import UserError

EPILOG = """\
examples:
  edgenas bench baseline bench.toml -o baseline.json      on main, once (or nightly)
  edgenas bench run bench.toml -o results.json            on the change
  edgenas bench check results.json --baseline baseline.json --junit latency.xml

  # A/B in one job (recommended on shared CI runners): the baseline models are
  # measured again here, sessions interleaved with the candidate's
  edgenas bench run bench.toml --ab base/bench.toml -o results.json
  edgenas bench check results.json --markdown "$GITHUB_STEP_SUMMARY"

A spec file lists cases (an ONNX file, or a genotype + task + input), devices, the
protocol and thresholds; see docs/ci-latency.md. `bench check` exits 0 when nothing
regressed, 1 when something did, 2 on bad input.
"""

SPEC_EXAMPLE = """\
spec file (TOML):
  threshold = "10%"            # default; a case may set its own
  devices = ["cpu"]
  [protocol]
  runs = 20
  sessions = 10                # >= 4; the U test compares session medians
  [[case]]
  name = "depth"
  onnx = "models/depth.onnx"   # relative to the spec file
  [[case]]
  name = "seg"
  genotype = "S2:..."
  task = "seg"
  input = "1x3x120x160"
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "bench",
        help="latency regression gate for CI: measure a spec, record baselines, check",
        description=(
            "Measure every case of a bench spec, record baselines, and fail a CI job when a\n"
            "model got slower. A case regressed when the median of its session medians is\n"
            "more than the threshold above the baseline AND a Mann-Whitney U test says the\n"
            "session medians really differ; improvements are reported too."
        ),
        epilog=EPILOG,
    )
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    actions = parser.add_subparsers(dest="bench_action", metavar="ACTION")

    run = add_command(
        actions,
        "run",
        help="measure every case of a spec (optionally A/B against a baseline spec)",
        description=(
            "Measure every case on every device of SPEC and write the results (JSON: one\n"
            "edgenas.latency/v1 result per case and device, plus a summary).\n"
            "With --ab BASE_SPEC the same-named cases of BASE_SPEC (e.g. the spec of the\n"
            "main branch, checked out beside) are measured too, sessions interleaved\n"
            "A, B, A, B, so `bench check` needs no baseline file."
        ),
        epilog="examples:\n"
        "  edgenas bench run bench.toml -o results.json\n"
        "  git worktree add base origin/main\n"
        "  edgenas bench run bench.toml --ab base/bench.toml -o results.json\n\n" + SPEC_EXAMPLE,
    )
    _spec_args(run)
    run.add_argument(
        "--ab",
        metavar="BASE_SPEC",
        default=None,
        help="baseline spec whose same-named cases are measured in the same job (A/B)",
    )
    run.set_defaults(func=run_run, kind="results")

    baseline = add_command(
        actions,
        "baseline",
        help="record a baseline (the same measurement as `run`, kept for later checks)",
        description=(
            "Measure SPEC and write a baseline file for `bench check --baseline`. Record it\n"
            "on the machine the checks will run on: check refuses baselines from another\n"
            "device or runtime version unless --force."
        ),
        epilog="examples:\n  edgenas bench baseline bench.toml -o baseline.json\n\n" + SPEC_EXAMPLE,
    )
    _spec_args(baseline)
    baseline.set_defaults(func=run_run, kind="baseline", ab=None)

    check = add_command(
        actions,
        "check",
        help="compare results with a baseline; exit 1 when something regressed",
        description=(
            "Compare RESULTS with --baseline (or with the A/B baseline inside RESULTS).\n"
            "Prints case, baseline, now, change, p-value and verdict: regressed (exit 1),\n"
            "improved, within noise, or new (no baseline). Exit 0 when nothing regressed,\n"
            "2 on bad input (missing files, different devices or runtimes, too few sessions)."
        ),
        epilog="examples:\n"
        "  edgenas bench check results.json --baseline baseline.json\n"
        "  edgenas bench check results.json --threshold 15% --junit latency.xml\n"
        '  edgenas bench check results.json --markdown "$GITHUB_STEP_SUMMARY"\n'
        "  edgenas bench check results.json --baseline other-runner.json --force\n\n"
        "Recommended thresholds: shared CI runners 15% with A/B (--ab); dedicated machines\n"
        "5%; phones 10% with cooldown between sessions (docs/ci-latency.md).",
    )
    check.add_argument("results", help="results file from `edgenas bench run`")
    check.add_argument(
        "--baseline", default=None, help="baseline file (default: the A/B baseline in RESULTS)"
    )
    check.add_argument(
        "--threshold",
        default=None,
        help="allowed slow-down, e.g. 10%% or 0.10 (default: the spec's; cases with their own keep it)",
    )
    check.add_argument(
        "--alpha", type=float, default=None, help="significance level (default: the spec's, 0.05)"
    )
    check.add_argument(
        "--junit", metavar="FILE", default=None, help="write JUnit XML here ('-': stdout)"
    )
    check.add_argument(
        "--markdown",
        metavar="FILE",
        default=None,
        help="write a Markdown summary here ('-': stdout)",
    )
    check.add_argument(
        "--json", metavar="FILE", default=None, help="write the verdicts as JSON ('-': stdout)"
    )
    check.add_argument(
        "--force",
        action="store_true",
        help="compare even when device or runtime differ (a note says so)",
    )
    check.set_defaults(func=run_check)


def _spec_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="bench spec (TOML)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="JSON file to write ('-': standard output; the table then goes to stderr)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no per-session progress on stderr"
    )
    add_catalog_arg(parser)


def run_run(args: argparse.Namespace) -> int:
    from edgenas.bench.runner import run_spec
    from edgenas.bench.spec import load_spec

    if args.output != "-":
        check_output_file(args.output, "-o")  # before minutes of measuring, not after
    spec = load_spec(args.spec)
    ab_spec = load_spec(args.ab) if args.ab else None
    if ab_spec is not None and not any(ab_spec.case(c.name) for c in spec.cases):
        raise UserError(
            f"--ab {args.ab} shares no case name with {args.spec}; A/B pairs cases by name"
        )
    bench = run_spec(
        spec,
        kind=args.kind,
        ab_spec=ab_spec,
        devices_file=args.devices_file,
        progress=(lambda message: None) if args.quiet else _progress,
    )
    if args.output == "-":
        sys.stdout.write(bench.to_json())
        _print_run(bench, file=sys.stderr)
        return 0
    bench.write(args.output)
    _print_run(bench)
    print(f"wrote {args.output}")
    return 0


def _progress(message: str) -> None:
    sys.stderr.write(message + "\n")


def _print_run(bench, file=None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("case", "device", "median ms", "spread")
    if bench.is_ab:
        table.add_column("A/B base ms")
        table.add_column("change")
    for row, entry in zip(bench.summary()["cases"], bench.entries, strict=True):
        cells = [
            row["case"],
            row["device"],
            f"{row['median_ms']:.3f}",
            f"{entry.result.to_dict()['timings']['session_spread']:.1%}",
        ]
        if bench.is_ab:
            base = row.get("ab_baseline_median_ms")
            cells += ["-", "-"] if base is None else [f"{base:.3f}", f"{row['change']:+.1%}"]
        table.add_row(*cells)
    Console(file=file).print(table)


def run_check(args: argparse.Namespace) -> int:
    from edgenas.bench.compare import compare
    from edgenas.bench.report import junit_xml, markdown, print_table
    from edgenas.bench.results import load_bench_file
    from edgenas.bench.spec import parse_threshold
    from edgenas.devices.result import write_atomic

    threshold = None if args.threshold is None else parse_threshold(args.threshold, "--threshold")
    if args.alpha is not None and not 0 < args.alpha < 1:
        raise UserError(f"--alpha must be between 0 and 1, got {args.alpha}")
    reports = {"--markdown": args.markdown, "--junit": args.junit, "--json": args.json}
    on_stdout = [option for option, path in reports.items() if path == "-"]
    if len(on_stdout) > 1:
        raise UserError(
            f"{' and '.join(on_stdout)} both ask for standard output ('-'); send one of "
            "them to a file"
        )
    # Every report path is checked before any is written, so a bad one leaves none.
    for option, path in reports.items():
        if path is not None and path != "-":
            check_output_file(path, option)
    results = load_bench_file(args.results, "results")
    baseline = load_bench_file(args.baseline, "baseline") if args.baseline else None
    comparisons, notes = compare(
        results, baseline, threshold=threshold, alpha=args.alpha, force=args.force
    )
    if not on_stdout:  # a report on stdout replaces the table there
        print_table(comparisons, notes)
    texts = {
        "--markdown": lambda: markdown(comparisons, notes),
        "--junit": lambda: junit_xml(comparisons, notes),
        "--json": lambda: _verdicts_json(comparisons, notes),
    }
    for option, path in reports.items():
        if path == "-":
            sys.stdout.write(texts[option]())
        elif path is not None:
            write_atomic(path, texts[option]())
    return 1 if any(c.failed for c in comparisons) else 0


def _verdicts_json(comparisons, notes: list[str]) -> str:
    import json

    data = {"comparisons": [c.to_dict() for c in comparisons], "notes": notes}
    return json.dumps(data, indent=2) + "\n"
