"""Errors that reach the user as one line.

Library code raises :class:`UserError` (or a subclass) for anything the user can fix:
bad genotype strings, unknown tasks, missing files, unreachable devices. The CLI turns
it into ``edgenas: error: <message>`` on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import errno


class UserError(Exception):
    """A problem with the user's input or environment; the message says what to do."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none), for
    one-line errors that wrap a library's multi-line ones."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so the same clean-up runs
    (:func:`edgenas.cli.common.run_command` installs the handler)."""


class Interrupted(KeyboardInterrupt):
    """A command stopped by Ctrl-C or SIGTERM after saving its state; ``hint`` says how
    to continue (e.g. the ``--resume`` command), ``exit_code`` is 130 or 143."""

    def __init__(self, hint: str, exit_code: int = 130) -> None:
        super().__init__(hint)
        self.hint = hint
        self.exit_code = exit_code

    @classmethod
    def after(cls, err: KeyboardInterrupt, hint: str) -> Interrupted:
        """The Interrupted for ``err`` (Ctrl-C: 130, SIGTERM: 143) with ``hint``."""
        return cls(hint, 143 if isinstance(err, Terminated) else 130)


# Errors of the machine rather than of edgenas: the user can act on them (free space,
# fix permissions, pick another path), so they get one line like bad input does.
_ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this file system or limit",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.ENAMETOOLONG: "file name too long",
}


def environment_error_line(err: OSError, then: str = "run the command again") -> str | None:
    """One line for an OSError the user can fix (disk full, permissions), else None;
    ``then`` says what to do once it is fixed."""
    reason = _ENVIRONMENT_ERRNOS.get(err.errno or 0)
    if reason is None:
        return None
    where = f" writing {err.filename}" if err.filename else ""
    if err.errno in (errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR):
        where = f" at {err.filename}" if err.filename else ""
    return f"{reason}{where}; fix that and {then}"
