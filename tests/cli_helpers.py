"""Run the installed ``edgenas`` console script the way a user does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def edgenas_command() -> list[str]:
    """The console script installed beside this interpreter (``python -m edgenas`` if absent)."""
    script = Path(sys.executable).parent / "edgenas"
    return [str(script)] if script.exists() else [sys.executable, "-m", "edgenas"]


def run_cli(
    *args: str, input: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``edgenas ARGS`` and capture its output."""
    return subprocess.run(
        [*edgenas_command(), *args],
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit code 2, a single stderr line naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
