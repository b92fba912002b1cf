"""Errors that reach the user as one line.

Library code raises :class:`UserError` (or a subclass) for anything the user can fix:
bad genotype strings, unknown tasks, missing files, unreachable devices. The CLI turns
it into ``edgenas: error: <message>`` on stderr and exit code 2, with no traceback.
"""


class UserError(Exception):
    """A problem with the user's input or environment; the message says what to do."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none), for
    one-line errors that wrap a library's multi-line ones."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
