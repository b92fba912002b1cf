"""``edgenas search --tui``: the search in a background process, its monitor here.

The search runs as the same ``edgenas search`` command without ``--tui`` (output to
``RUN_DIR/search.log``), in its own session so that it outlives the monitor: quitting
the monitor leaves the search running, and ``edgenas monitor RUN_DIR`` watches it again.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from edgenas.errors import UserError
from edgenas.store import store_path

LOG_NAME = "search.log"
# How long to wait for the search to create its store (config checks, data loading,
# importing torch) before the monitor opens anyway and shows "waiting" itself.
START_WAIT_S = 60.0


def background_argv(argv: list[str], name: str | None) -> list[str]:
    """The search's own command line: ``argv`` without ``--tui``, with ``--name`` fixed
    (a default name contains the time, and the monitor must know it in advance)."""
    args = [a for a in argv if a != "--tui"]
    has_name = any(a == "--name" or a.startswith("--name=") for a in args)
    if name is not None and not has_name:
        args += ["--name", name]
    return args


def search_with_monitor(run_dir: Path, *, name: str | None, resume: bool) -> int:
    """Start the search in the background, then run the monitor on ``run_dir``."""
    argv = sys.argv[1:]
    if "search" not in argv:
        raise UserError("--tui works from the command line: edgenas search ... --tui")
    if not resume and store_path(run_dir).exists():
        raise UserError(
            f"run {run_dir} exists; resume it with `edgenas search --resume {run_dir} --tui` "
            "or pick another --name"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / LOG_NAME
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "edgenas", *background_argv(argv, name)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    print(f"search started in the background (pid {process.pid}), log {log_path}")
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline and process.poll() is None:
        if store_path(run_dir).exists():
            break
        time.sleep(0.2)
    if process.poll() not in (None, 0):
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        sys.stderr.write("\n".join(tail) + "\n")
        raise UserError(f"the search stopped (exit {process.returncode}); see {log_path}")

    from edgenas.tui.app import MonitorApp
    from edgenas.tui.outputs import exit_lines

    MonitorApp(run_dir, run=True).run()
    if process.poll() is None:
        print(
            f"the search goes on in the background (pid {process.pid}, log {log_path});\n"
            f"watch it again with `edgenas monitor {run_dir}`, stop it with `kill {process.pid}`"
        )
    else:
        print(f"the search ended (exit {process.returncode}); log {log_path}")
    for line in exit_lines(run_dir, always=True):
        print(line)
    return 0
