"""Shared pieces of the command line: parser class, error handling, argument parsers.

The argument parsers live in :mod:`edgenas.parsing` (library code uses them too) and
are re-exported here for the command modules.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from pathlib import Path

from edgenas.errors import Interrupted, Terminated, UserError, environment_error_line
from edgenas.parsing import (  # re-exported for the command modules
    parse_genotype,
    parse_input_shape,
    parse_list,
    parse_shape,
    parse_task,
)

__all__ = [
    "EdgenasArgumentParser",
    "HelpFormatter",
    "add_command",
    "parse_genotype",
    "parse_input_shape",
    "parse_list",
    "parse_shape",
    "parse_task",
    "run_command",
]


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep hand-written line breaks in descriptions and show defaults.

    An option whose default is None takes its value from elsewhere (a config dataclass,
    a recipe, the data); its help text says what that is, so "(default: None)" is not
    appended. Nor is it after a flag (an on/off switch has no value to default; "(default:
    False)" read as a second, contrary default next to help such as "the default for
    trained weights"), nor after help that already names its default.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.nargs == 0 or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class EdgenasArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage dump) and exit code 2.

    A value that starts with a dash and a digit (``--target-latency -5ms``,
    ``--channels -8,16``) is taken as the option's value, so the option's own check can
    say what is wrong with it; plain argparse would call it a missing argument. No
    edgenas option starts with a digit, so nothing else changes.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d")
        self.json_flag = False  # edgenas.cli.json_flag sets it

    def parse_known_args(self, args=None, namespace=None):
        # A command whose --json is a flag (JSON on standard output) takes `--json -`
        # as the same: the `-` is dropped rather than read as a stray argument.
        if self.json_flag and args is not None:
            args = list(args)
            for index in range(len(args) - 1):
                if args[index] == "--json" and args[index + 1] == "-":
                    del args[index + 1]
                    break
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


def add_command(subparsers, name: str, help: str, description: str, epilog: str | None = None):
    """Add a subcommand parser that uses the edgenas parser class and formatter."""
    return subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=HelpFormatter,
    )


def run_command(args: argparse.Namespace) -> int:
    """Run ``args.func(args)``; report :class:`UserError` (and OS errors the user can fix,
    such as a full disk) as one line with exit code 2."""
    # SIGTERM (kill, a CI job's timeout, systemd) stops a command the way Ctrl-C does, so
    # runs are marked interrupted and say how to continue instead of vanishing.
    previous = _handle_sigterm()
    try:
        result = args.func(args)
    except UserError as err:
        sys.stderr.write(f"edgenas: error: {err}\n")
        return 2
    except Interrupted as err:
        sys.stderr.write(f"edgenas: interrupted; {err.hint}\n")
        return err.exit_code
    except KeyboardInterrupt as err:
        sys.stderr.write("edgenas: interrupted\n")
        return 143 if isinstance(err, Terminated) else 130
    except BrokenPipeError:
        # The reader went away (`edgenas ... | head`); not an error of ours. Point stdout
        # at /dev/null so the interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:
        line = environment_error_line(err)
        if line is None:
            raise
        sys.stderr.write(f"edgenas: error: {line}\n")
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0 if result is None else int(result)


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def _handle_sigterm():
    """Raise :class:`Terminated` on SIGTERM; returns the previous handler (None when
    not in the main thread, where Python allows no handler)."""
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:
        return None


def check_writable_folder(folder: Path, what: str) -> None:
    """Refuse a folder that cannot be written in: ``folder`` (or, while it does not
    exist, the nearest folder on its way) must be a folder this user may write in.
    ``what`` starts the message, e.g. ``-o out``."""
    from edgenas.atomic import nearest_existing_folder

    existing = folder if folder.exists() else nearest_existing_folder(folder)
    if not existing.is_dir():
        raise UserError(f"{what}: {existing} is a file, not a folder; pick another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what}: cannot write in {existing} (permission denied)")


def check_output_file(path: str, option: str) -> None:
    """Refuse an output file path that cannot be written, before any work starts.

    ``path`` must not be a folder, and the nearest folder that exists on its way must
    be a writable folder (missing folders are created when the file is written).
    """
    target = Path(path)
    if target.is_dir():
        raise UserError(
            f"{option} {path} is a folder; give a file name, e.g. {target / 'out.json'}"
        )
    check_writable_folder(target.parent, f"{option} {path}")
