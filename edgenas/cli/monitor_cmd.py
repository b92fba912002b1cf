"""``edgenas monitor``: watch searches live in the terminal (Textual)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgenas.cli.common import add_command
from edgenas.errors import UserError


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


def run_monitor_command(args: argparse.Namespace) -> None:
    if args.interval <= 0:
        raise UserError("--interval must be a positive number of seconds")
    if args.run is not None:
        target = Path(args.run)
        from edgenas.tui.app import is_run_dir

        # A folder of runs is listed. Anything else is a run, perhaps one about to start:
        # the dashboard says it waits for the store until the search creates it.
        run = is_run_dir(target) or not target.is_dir() or not any(target.rglob("run.sqlite"))
    else:
        target = Path(args.runs_dir)
        if not target.is_dir():
            raise UserError(
                f"runs folder {target} does not exist; start a search with `edgenas search`"
            )
        run = False
    from edgenas.tui.app import MonitorApp

    MonitorApp(target, run=run, poll_interval=args.interval).run()
