"""``edgenas monitor`` and ``edgenas search --tui`` on the command line (the parts that
need no terminal): help, user errors, the background search's command line."""

from __future__ import annotations

import sys

import pytest
from cli_helpers import run_cli
from edgenas.tui.launch import background_argv, search_with_monitor
from tui_helpers import write_ldp_run

from edgenas.cli import main
from edgenas.errors import UserError


def test_monitor_help_teaches_with_examples():
    result = run_cli("monitor", "--help")
    assert result.returncode == 0
    assert "edgenas monitor runs/demo" in result.stdout and "--tui" in result.stdout
    search_help = run_cli("search", "--help").stdout
    assert "--tui" in search_help


def test_monitor_user_errors_are_one_line(tmp_path, capsys):
    assert main(["monitor", "--runs-dir", str(tmp_path / "none")]) == 2
    assert main(["monitor", str(tmp_path), "--interval", "0"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("edgenas: error: ") for e in errors)
    assert "does not exist" in errors[0] and "edgenas search" in errors[0]


def test_background_argv_drops_tui_and_fixes_the_name():
    argv = ["search", "--pool", "6", "--tui"]
    assert background_argv(argv, "search-depth-1") == [
        "search",
        "--pool",
        "6",
        "--name",
        "search-depth-1",
    ]
    assert background_argv(["search", "--name", "x", "--tui"], "x") == ["search", "--name", "x"]
    assert background_argv(["search", "--resume", "runs/x", "--tui"], None) == [
        "search",
        "--resume",
        "runs/x",
    ]


def test_tui_refuses_an_existing_run(tmp_path, monkeypatch):
    run_dir = write_ldp_run(tmp_path / "runs" / "done")
    monkeypatch.setattr(sys, "argv", ["edgenas", "search", "--name", "done", "--tui"])
    with pytest.raises(UserError, match="exists"):
        search_with_monitor(run_dir, name="done", resume=False)
    monkeypatch.setattr(sys, "argv", ["python", "-c"])
    with pytest.raises(UserError, match="command line"):
        search_with_monitor(run_dir, name="done", resume=False)


def test_a_run_not_started_yet_is_waited_for(tmp_path):
    from edgenas.cli.monitor_cmd import _is_run

    # docs/monitor.md: the monitor may start before the search that creates the run.
    assert _is_run(tmp_path / "runs" / "later") is True
    (tmp_path / "empty").mkdir()
    assert _is_run(tmp_path / "empty") is True
