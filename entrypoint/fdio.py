"""Whole reads and writes on raw file descriptors: what every room may use.

Pipes from children (their environment, their exec error) are read to EOF; the step reports, the
state file, the termination log and log lines are written whole (a short write is resumed).
Standard library only and nothing but :mod:`os`: PID 1 imports it.
"""

from __future__ import annotations

import errno
import os


def read_all(fd: int) -> bytes:
    """Everything until EOF (pipes from children: their environment, their exec error)."""
    chunks: list[bytes] = []
    while True:
        data = os.read(fd, 4096)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def write_all(fd: int, data: bytes) -> None:
    """All of ``data`` (a short write is resumed): the step reports, the state file, the termination log."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def copy_out(fd: int, data: bytes) -> OSError | None:
    """All of ``data`` to ``fd``, waiting while a non-blocking ``fd`` is full; the error that ended
    the write, if one did.  For PID 1's copies to its stdout (services' lines, --log-file): a
    vanished reader must cost the copy, never the loop.  EPIPE/EBADF mean the reader is gone."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except InterruptedError:
            continue
        except BlockingIOError:
            import select

            select.select([], [fd], [])
        except OSError as exc:
            return exc
    return None


#: errors of :func:`copy_out` that mean nobody reads ``fd`` any more
GONE = (errno.EPIPE, errno.EBADF)
