"""Whole reads and writes on raw file descriptors: what every room may use.

Pipes from children (their environment, their exec error) are read to EOF; the step reports, the
state file, the termination log and log lines are written whole (a short write is resumed).
Standard library only and nothing but :mod:`os`: PID 1 imports it.
"""

from __future__ import annotations

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
