"""Test helper: a service that writes lines to stdout and stderr in awkward ways.

    line_writer.py fragments TAG COUNT   each line in three writes, waiting between them until the
                                         reader has taken the pipe empty (so it reads half lines)
    line_writer.py whole TAG COUNT       each line (100 to 3000 bytes) in one write, to stdout only
    line_writer.py big BYTES             BYTES of 'x' without a newline, to stdout
    line_writer.py partial TEXT          TEXT without a newline, to stdout, then exit

Lines carry TAG, their number and a check length, so a test can tell a cut or mixed line.
"""

from __future__ import annotations

import fcntl
import os
import struct
import sys
import termios
import time


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def drained(fd: int, timeout: float = 10.0) -> None:
    """Until the pipe on ``fd`` is empty (FIONREAD works on a pipe's write end too), bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0] == 0:
            return
        time.sleep(0.001)


def line(tag: str, stream: str, number: int, size: int) -> bytes:
    head = f"{tag} {stream} {number} {size} "
    return (head + "y" * max(0, size - len(head))).encode() + b"\n"


def main(argv: list[str]) -> int:
    mode = argv[1]
    if mode == "fragments":
        tag, count = argv[2], int(argv[3])
        for number in range(count):
            for fd, stream in ((1, "out"), (2, "err")):
                data = line(tag, stream, number, 40 + number % 50)
                third = len(data) // 3
                for piece in (data[:third], data[third:2 * third], data[2 * third:]):
                    write_all(fd, piece)
                    drained(fd)
    elif mode == "whole":
        tag, count = argv[2], int(argv[3])
        for number in range(count):
            os.write(1, line(tag, "out", number, 100 + (number * 397) % 2900))  # one write, < PIPE_BUF
    elif mode == "big":
        left = int(argv[2])
        while left:
            chunk = min(left, 100_000)
            write_all(1, b"x" * chunk)
            left -= chunk
    elif mode == "partial":
        write_all(1, argv[2].encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
