"""Copy text for the user, and say honestly how (or that it could not).

A terminal program cannot know whether a copy arrived, so it tries, in order:

1. the system clipboard through its command-line tool, where there is a display to own
   a clipboard (``pbcopy`` on macOS, ``wl-copy`` under Wayland, ``xclip`` / ``xsel``
   under X11, ``clip.exe`` on Windows and WSL);
2. inside tmux, tmux's paste buffer (``tmux load-buffer -w -``: prefix ] pastes it, and
   tmux passes it on to the outer terminal's clipboard when ``set-clipboard`` is on);
3. the OSC 52 escape sequence (Textual's ``App.copy_to_clipboard``), which reaches the
   clipboard of the terminal on the user's desk even over SSH, if that terminal allows
   it (many do not by default).

Without any of these it says it could not copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

TIMEOUT_S = 2.0


def system_commands(environ: Mapping[str, str]) -> list[list[str]]:
    """Commands that put standard input on the system clipboard here, best first
    (only those installed, and only where there is a display for them)."""
    candidates = []
    if sys.platform == "darwin":
        candidates.append(["pbcopy"])
    if sys.platform == "win32" or environ.get("WSL_DISTRO_NAME"):
        candidates.append(["clip.exe"])
    if environ.get("WAYLAND_DISPLAY"):
        candidates.append(["wl-copy"])
    if environ.get("DISPLAY"):
        candidates += [["xclip", "-selection", "clipboard"], ["xsel", "--clipboard", "--input"]]
    found = []
    for name, *args in candidates:
        path = shutil.which(name, path=environ.get("PATH"))
        if path:
            found.append([path, *args])
    return found


def _run(command: list[str], text: str) -> bool:
    """Feed ``text`` to ``command``; True when it exits 0."""
    try:
        done = subprocess.run(
            command,
            input=text.encode("utf-8"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def copy(app, text: str, environ: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """Copy ``text``; returns (whether some way took it, a line saying which way).

    ``app``: the Textual app (its OSC 52 is the last resort); ``environ``: the
    environment to decide by (default ``os.environ``).
    """
    environ = os.environ if environ is None else environ
    for command in system_commands(environ):
        if _run(command, text):
            return True, f"copied to the system clipboard ({Path(command[0]).name})"
    driver = getattr(app, "_driver", None)
    tmux = shutil.which("tmux", path=environ.get("PATH")) if environ.get("TMUX") else None
    if tmux and _run([tmux, "load-buffer", "-w", "-"], text):
        if driver is not None:
            app.copy_to_clipboard(text)
        return True, (
            "copied to the tmux buffer (prefix ] pastes it); tmux passes it to your "
            "terminal's clipboard only with `set -g set-clipboard on`"
        )
    if driver is not None:
        app.copy_to_clipboard(text)
        return True, "copied via OSC 52: your terminal must allow it (many need a setting)"
    return False, "could not copy: no clipboard tool here and no terminal to send OSC 52 to"
