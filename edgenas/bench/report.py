"""Reports of a check: a table for people, JUnit XML for CI test views, Markdown for job
summaries. Pure functions from comparisons to text (the table prints through rich)."""

from __future__ import annotations

from collections import Counter
from xml.etree import ElementTree as ET

from edgenas.bench.compare import IMPROVED, NEW, NOISE, REGRESSED, Comparison

_STYLE = {REGRESSED: "bold red", IMPROVED: "green", NOISE: "", NEW: "cyan"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def summary_line(comparisons: list[Comparison]) -> str:
    """``FAIL: 1 regressed, 1 improved, 2 within noise`` (or ``OK: ...``)."""
    counts = Counter(c.verdict for c in comparisons)
    parts = [f"{counts[v]} {v}" for v in (REGRESSED, IMPROVED, NOISE, NEW) if counts[v]]
    head = "FAIL" if counts[REGRESSED] else "OK"
    return f"{head}: {', '.join(parts) or 'nothing compared'}"


def print_table(comparisons: list[Comparison], notes: list[str], console=None) -> None:
    """The human table: case, device, baseline, now, change, p, verdict; then notes."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table("case", "device", "baseline ms", "now ms", "change", "p", "verdict")
    for c in comparisons:
        style = _STYLE[c.verdict]
        verdict = f"[{style}]{c.verdict}[/{style}]" if style else c.verdict
        table.add_row(
            c.case,
            c.device,
            _ms(c.baseline_ms),
            _ms(c.now_ms),
            _pct(c.change),
            _p(c.p_value),
            verdict,
        )
    console.print(table)
    for c in comparisons:
        if c.verdict != NOISE or (c.change is not None and abs(c.change) > c.threshold):
            console.print(f"{c.case} on {c.device}: {c.reason}", highlight=False)
    for note in notes:
        console.print(f"note: {note}", highlight=False, style="yellow")
    console.print(
        summary_line(comparisons),
        style="bold red" if any(c.failed for c in comparisons) else "bold",
    )


def junit_xml(comparisons: list[Comparison], notes: list[str]) -> str:
    """JUnit XML: one test case per model and device; a regression is a failure, a case
    without baseline is skipped."""
    failures = sum(c.failed for c in comparisons)
    skipped = sum(c.verdict == NEW for c in comparisons)
    suite = ET.Element(
        "testsuite",
        name="edgenas.bench",
        tests=str(len(comparisons)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
    )
    for c in comparisons:
        case = ET.SubElement(suite, "testcase", classname=f"edgenas.bench.{c.device}", name=c.case)
        detail = (
            f"baseline {_ms(c.baseline_ms)} ms, now {_ms(c.now_ms)} ms, change {_pct(c.change)}, "
            f"p {_p(c.p_value)}, threshold {c.threshold:.0%}: {c.verdict} ({c.reason})"
        )
        if c.failed:
            ET.SubElement(
                case, "failure", message=f"latency regressed {_pct(c.change)}"
            ).text = detail
        elif c.verdict == NEW:
            ET.SubElement(case, "skipped", message=c.reason)
        else:
            ET.SubElement(case, "system-out").text = detail
    if notes:
        ET.SubElement(suite, "system-out").text = "\n".join(notes)
    suites = ET.Element("testsuites", name="edgenas bench check")
    suites.append(suite)
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(comparisons: list[Comparison], notes: list[str]) -> str:
    """A Markdown summary for a CI job page (e.g. ``$GITHUB_STEP_SUMMARY``)."""
    icon = {
        REGRESSED: "❌ regressed",
        IMPROVED: "🚀 improved",
        NOISE: "✅ within noise",
        NEW: "🆕 new",
    }
    lines = [
        "## Latency check",
        "",
        f"**{summary_line(comparisons)}**",
        "",
        "| case | device | baseline ms | now ms | change | p | verdict |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for c in comparisons:
        lines.append(
            f"| {_cell(c.case)} | {_cell(c.device)} | {_ms(c.baseline_ms)} | {_ms(c.now_ms)} | "
            f"{_pct(c.change)} | {_p(c.p_value)} | {icon[c.verdict]} |"
        )
    lines.append("")
    details = [f"- **{c.case}** on {c.device}: {c.reason}" for c in comparisons]
    details += [f"- note: {n}" for n in notes]
    lines += [*details, ""]
    if comparisons:
        c = comparisons[0]
        lines.append(
            f"Regressed = slower by more than the threshold ({c.threshold:.0%} unless the case "
            f"sets its own) and a two-sided Mann-Whitney U test on session medians at p < {c.alpha:g}."
        )
        lines.append("")
    return "\n".join(lines)
