"""Feed one long line through `entrypoint envsubst` and measure the child while it is alive."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from tests.pid1_helpers import status_kib


@dataclass
class Streamed:
    received: int  # bytes of output
    sha256: str  # of the whole output
    tail: bytes  # its last 64 bytes
    peak_kib: int  # the child's VmHWM once all decided output had arrived


def stream_envsubst(block: bytes, repeats: int, last: bytes, block_out_len: int, env: dict[str, str],
                    *, timeout: float = 60) -> Streamed:
    """Write ``block`` ``repeats`` times then ``last`` (no newline: one line) into the command.

    The peak is read from /proc while the child is still alive (its whole
    input written, every byte it could decide received, stdin still open):
    ru_maxrss would also count the memory of this pytest process, which the
    child's exec inherits.  Polls with a deadline, never sleeps to synchronise.
    """
    proc = subprocess.Popen([sys.executable, "-m", "entrypoint", "envsubst"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    stdout_fd = proc.stdout.fileno()
    digest, received, tail = hashlib.sha256(), [0], bytearray()

    def drain() -> None:
        for chunk in iter(lambda: os.read(stdout_fd, 1 << 20), b""):
            digest.update(chunk)
            received[0] += len(chunk)
            tail[:] = (bytes(tail) + chunk)[-64:]

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    for _ in range(repeats):
        proc.stdin.write(block)
    proc.stdin.write(last)
    proc.stdin.flush()
    deadline = time.monotonic() + timeout
    while received[0] < repeats * block_out_len and time.monotonic() < deadline:
        time.sleep(0.01)  # poll with a deadline: wait until all decided output has arrived
    peak_kib = status_kib(proc.pid, "VmHWM")
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0
    reader.join(timeout=60)
    return Streamed(received[0], digest.hexdigest(), bytes(tail), peak_kib)
