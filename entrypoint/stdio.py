"""The standard streams: fds 0-2 always open, and a command's output written whole or one line saying why not.

Python reports a write to a full disk or a closed pipe as a traceback (and
exit 1) from wherever the write happened.  Every command's output goes
through :func:`write` instead, which flushes at once and turns those failures
into errors the CLI reports like any other: a full disk is one line and
exit 1; a reader that went away (``entrypoint env | head -1``) is silent,
exit 141, as GNU envsubst behaves.  Standard library only (imported by ``run``).

And ``run``, before it opens anything, calls :func:`ensure_open`, which puts
/dev/null on any of fds 0-2 that was closed (``entrypoint run ... >&- 2>&-``):
otherwise the first pipe or file opened takes fd 1 or 2, the runtime's log
lines land in it, and the app inherits it as its output.  (Not the other
commands: ``envsubst`` must report a closed stdin as GNU does.)
"""

from __future__ import annotations

import errno
import os
import sys

from entrypoint.errors import StdoutClosed, StdoutError


def ensure_open() -> None:
    """/dev/null on each of fds 0, 1, 2 that is closed (as OpenSSH's sanitise_stdfd does)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                null = os.open(os.devnull, os.O_RDWR)
            except OSError:
                return
            if null == fd:
                os.set_inheritable(fd, True)  # os.open's fds are close-on-exec; the app needs this one
            else:
                os.dup2(null, fd)  # inheritable
                os.close(null)


def write(data: str | bytes) -> None:
    """Write ``data`` (text, or bytes as they are) and flush."""
    if sys.stdout is None:  # fd 1 was closed when Python started (`>&-`)
        raise StdoutError(os.strerror(errno.EBADF))
    try:
        if isinstance(data, bytes):
            sys.stdout.flush()  # text written before stays before
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_the_rest()
        raise StdoutClosed() from None
    except OSError as exc:
        _discard_the_rest()
        raise StdoutError(exc.strerror or str(exc)) from None


def flush() -> None:
    """What ``print`` may have left buffered; the same errors as :func:`write`."""
    if sys.stdout is not None:
        write("")


def flush_quietly() -> None:
    """Before ``os._exit`` in PID 1 and its forks: what is buffered goes out if it can.

    A closed or failing stream must not change PID 1's exit code (the child's);
    a stream that was closed before Python started is None, not an error.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _discard_the_rest() -> None:
    """Point fd 1 at /dev/null: what is still buffered goes nowhere, once, instead of failing again
    at every later flush (and at exit) with a second message for the same failure."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
