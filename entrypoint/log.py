"""The one log prefix, to stderr, quiet by default.

Deliberately not :mod:`logging`: PID 1 imports this, and the stdlib logging
package costs import time and memory while offering nothing we need.  Never
pass secret values here; log names, not values.
"""

from __future__ import annotations

import os

from entrypoint.fdio import write_all

PREFIX = "[entrypoint]"

QUIET = 0
NORMAL = 1
VERBOSE = 2

_level = NORMAL
#: --termination-log: error lines are also kept here (a memfd shared with the start-up steps)
_kept: int | None = None
KEEP_LIMIT = 4096


def set_level(level: int) -> None:
    global _level
    _level = level


def level() -> int:
    return _level


def _emit(text: str) -> None:
    report(f"{PREFIX} {text}\n")


def report(text: str) -> None:
    """``text`` to standard error as it is (a usage text, a report's summary); never fails.

    Straight to fd 2, not ``sys.stderr``: that is None when fd 2 was closed
    before Python started, and a diagnostic must never change an exit code.
    """
    try:
        write_all(2, text.encode("utf-8", "backslashreplace"))
    except OSError:
        pass  # stderr closed: logging must never kill PID 1


def error(text: str) -> None:
    """Always shown (even with -q): something failed."""
    _emit(f"error: {text}")
    if _kept is not None:
        _keep(_kept, text)


def keep_errors(fd: int | None) -> None:
    """Also append every error line to ``fd`` (up to KEEP_LIMIT bytes); None stops it."""
    global _kept
    _kept = fd


def kept_fd() -> int | None:
    """Where error lines are kept, for a step that is a new process (a fork inherits it anyway)."""
    return _kept


def _keep(fd: int, text: str) -> None:
    try:
        if os.lseek(fd, 0, os.SEEK_CUR) < KEEP_LIMIT:
            os.write(fd, f"{text}\n".encode("utf-8", "backslashreplace")[:KEEP_LIMIT])
    except OSError:
        pass


def warn(text: str) -> None:
    if _level >= NORMAL:
        _emit(f"warning: {text}")


def info(text: str) -> None:
    """Shown only with -v: the runtime is quiet by default."""
    if _level >= VERBOSE:
        _emit(text)


debug = info
