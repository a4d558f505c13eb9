"""The one error type for bad input.

Every problem with what a user hands us (a file, a row, a setting) is raised as
:class:`InputError`, whose message names the file or id and says what is wrong in one
line.  The command line prints that line and exits with status 2; ``--debug`` shows the
traceback.  Library code never lets a parser's own exception escape for bad input.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: a file, a structure, a target or a setting that cannot be used.

    Args:
        source: what the problem is in: a file path, ``file:id``, an id or an option name.
        reason: what is wrong, as a short sentence without a trailing full stop.
    """

    def __init__(self, source: str | None, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}" if source else reason)

    def __reduce__(self):  # keep the two fields across process boundaries
        return (type(self), (self.source, self.reason))


def first_line(exc: BaseException, limit: int | None = 200) -> str:
    """The first line of an exception's message (at most ``limit`` characters), or its type's
    name when it has none: what a one-line error quotes of a library's exception."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0]
    return line if limit is None else line[:limit]
