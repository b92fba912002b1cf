"""The bad-input contract, checked through the installed console script.

Every command that gets input it cannot use must exit 2 with one line on stderr that
names the problem, print no traceback, and leave nothing behind. :func:`check_rejected`
checks all four for one command line run in a workspace folder: the folder's files
(names, sizes, modification times) must be the same before and after.

HOME and the cache folders point into the workspace, so a command that writes to a
default location (a latency table cache, ``runs/``) is caught too; matplotlib's font
cache and onnxruntime's telemetry id are the third-party writes left out.

Each area's table of cases lives in its own ``test_bad_inputs_*.py`` module and calls
:func:`check_rejected`; ``pytest -k bad_inputs`` runs them all.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cli_helpers import edgenas_command


@dataclass(frozen=True)
class BadInput:
    """One bad command line: its arguments and the words its error line must contain."""

    args: tuple[str, ...]
    fragments: tuple[str, ...] = ()
    # stdin for the command (None: empty)
    stdin: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """A short readable test id."""
        return " ".join(self.args)[:80]


def case(*args: str, says: str | tuple[str, ...] = (), stdin: str | None = None, **env) -> BadInput:
    """``case("search", "--scale", "7", says="scale")``: a :class:`BadInput`."""
    fragments = (says,) if isinstance(says, str) else tuple(says)
    return BadInput(tuple(args), fragments, stdin, dict(env))


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder`` with its size and modification time."""
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            # Third-party writes that are not ours to prevent: matplotlib's font cache
            # and onnxruntime's telemetry device id (~/.cache/Microsoft).
            if "mpl-cache" in path.parts or "Microsoft" in path.parts:
                continue
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            # A folder's own size and time change with any entry made in it (and
            # removed again, e.g. SQLite's -wal file); the entries themselves count.
            is_dir = path.is_dir() and not path.is_symlink()
            state[str(path.relative_to(folder))] = (
                (0, 0) if is_dir else (info.st_size, info.st_mtime_ns)
            )
    return state


def run_in_workspace(
    args, workspace: Path, *, stdin: str | None = None, env: dict | None = None, preexec=None
) -> subprocess.CompletedProcess:
    """Run ``edgenas ARGS`` in ``workspace`` with HOME and caches inside it."""
    full_env = {
        **os.environ,
        "HOME": str(workspace / "home"),
        "XDG_CACHE_HOME": str(workspace / "home" / ".cache"),
        "MPLCONFIGDIR": str(workspace / "mpl-cache"),
        "OMP_NUM_THREADS": "1",
        **(env or {}),
    }
    return subprocess.run(
        [*edgenas_command(), *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        cwd=workspace,
        env=full_env,
        timeout=300,
        check=False,
        preexec_fn=preexec,
    )


def check_rejected(bad: BadInput, workspace: Path, *, preexec=None) -> subprocess.CompletedProcess:
    """Run ``bad`` in ``workspace``; assert exit 2, one stderr line containing its
    fragments, no traceback, and no file created, changed or removed."""
    (workspace / "home" / ".cache").mkdir(parents=True, exist_ok=True)
    before = snapshot(workspace)
    result = run_in_workspace(bad.args, workspace, stdin=bad.stdin, env=bad.env, preexec=preexec)
    detail = f"\n$ edgenas {' '.join(bad.args)}\nexit {result.returncode}\nstderr:\n{result.stderr}"
    assert result.returncode == 2, detail
    assert "Traceback" not in result.stderr, detail
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, detail
    for fragment in bad.fragments:
        assert fragment.lower() in lines[0].lower(), detail
    after = snapshot(workspace)
    changed = sorted(
        set(before.items()).symmetric_difference(after.items()), key=lambda item: item[0]
    )
    assert not changed, f"files changed: {[name for name, _ in changed]}{detail}"
    return result
