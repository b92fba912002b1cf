"""``edgenas monitor``: watch searches live in the terminal (Textual)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from edgenas.cli.common import add_command
from edgenas.errors import UserError

# The first bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "monitor",
        help="watch a search live in the terminal: plots, candidates, tabu search, events",
        description=(
            "Open a live dashboard of a run in the terminal. It reads the run store\n"
            "(runs/NAME/run.sqlite) once a second and never writes to it, so it works\n"
            "while a search writes from another terminal, over SSH, and on finished runs.\n"
            "\n"
            "With no RUN it lists the runs under --runs-dir; enter opens one.\n"
            "In the dashboard: 1-5 switch between Plots, Candidates, Search (ATS),\n"
            "Events and Device; enter on a candidate shows its blocks, metrics and\n"
            "lineage, where x exports its ONNX file and p profiles it in the background.\n"
            "Press ? for every key, q to quit. The mouse works too."
        ),
        epilog=(
            "examples:\n"
            "  edgenas monitor                     # list the runs under ./runs\n"
            "  edgenas monitor runs/demo           # one run's dashboard\n"
            "  edgenas monitor --runs-dir /data/runs\n"
            "  edgenas search --name demo --tui    # search and monitor in one terminal\n"
            "\n"
            "watch a search from a second terminal:\n"
            "  terminal 1: edgenas search --name demo\n"
            "  terminal 2: edgenas monitor runs/demo"
        ),
    )
    parser.add_argument("run", nargs="?", default=None, help="run folder (or its run.sqlite)")
    parser.add_argument("--runs-dir", default="runs", help="folder of runs to list")
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds between reads of the store"
    )
    parser.set_defaults(func=run_monitor_command)


def _is_run(target: Path) -> bool:
    """True for a run (its folder or its store), False for a folder of runs to list;
    anything else is refused in one line instead of a dashboard that waits forever.

    A run folder that does not exist yet (or is empty) is a run about to start: the
    dashboard shows it as waiting until the search creates its store (docs/monitor.md).
    """
    from edgenas.store import STORE_FILENAME

    hint = "give a run folder (runs/NAME) or its run.sqlite; `edgenas monitor` lists the runs"
    if not target.exists():
        if target.suffix and target.suffix != ".sqlite":  # a file name, not a run to come
            raise UserError(f"{target} does not exist; {hint}")
        return True  # a run about to start: the dashboard waits for its store
    if target.is_dir() and not any(target.iterdir()):
        return True  # created by a search that is about to write its store
    if target.is_file():
        if target.suffix != ".sqlite":
            raise UserError(f"{target} is not a run folder or run store; {hint}")
        try:
            with target.open("rb") as file:
                header = file.read(len(SQLITE_HEADER))
        except OSError as err:
            raise UserError(f"cannot read {target}: {err.strerror}") from None
        if header != SQLITE_HEADER:
            raise UserError(f"{target} is not an SQLite run store; {hint}")
        return True
    if (target / STORE_FILENAME).is_file():
        return True
    if any(target.rglob(STORE_FILENAME)):
        return False
    raise UserError(
        f"{target} is not a run folder (no {STORE_FILENAME}) and holds no runs; start one "
        "with `edgenas search --name NAME`, then `edgenas monitor runs/NAME`"
    )


def run_monitor_command(args: argparse.Namespace) -> None:
    if not (math.isfinite(args.interval) and args.interval > 0):  # nan and inf included
        raise UserError(f"--interval must be a positive number of seconds, got {args.interval}")
    if args.run is not None:
        target = Path(args.run)
        run = _is_run(target)
    else:
        target = Path(args.runs_dir)
        if target.is_file():
            raise UserError(f"--runs-dir {target} is a file; give the folder that holds the runs")
        if not target.is_dir():
            raise UserError(
                f"runs folder {target} does not exist; start a search with `edgenas search`"
            )
        run = False
    from edgenas.tui.app import MonitorApp
    from edgenas.tui.outputs import exit_lines

    app = MonitorApp(target, run=run, poll_interval=args.interval)
    app.run()
    if app.last_run is not None:  # a finished run: where its model and report are
        for line in exit_lines(app.last_run):
            print(line)
