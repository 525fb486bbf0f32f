"""Workloads the benchmarked init supervises.  Standard library only; run with ``python -I -S``.

sigecho           block USR1, print "ready", then for every USR1 print the CLOCK_MONOTONIC
                  nanoseconds of its receipt, one line each (the harness sent it at a known time)
orphans N         make N orphans (`head -c1`; their parent exits, so they reparent to the init), release
                  them all at once, and print "REAP <seconds>" once none is left (all reaped)
term_app          print "ready", exit 0 on TERM (an app that stops cleanly when told to)
"""

from __future__ import annotations

import os
import signal
import sys
import time


def sigecho() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGTERM})
    os.write(1, b"ready\n")
    while True:
        sig = signal.sigwait({signal.SIGUSR1, signal.SIGTERM})
        now = time.monotonic_ns()
        if sig == signal.SIGTERM:
            return
        os.write(1, b"%d\n" % now)


def orphans(count: int) -> None:
    release_r, release_w = os.pipe()
    pids_r, pids_w = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(pids_r)
        os.close(release_w)
        # Tiny leaves (`head -c1` blocked on the release pipe): their exit is cheap,
        # so the measurement is dominated by the init's reaping, not by teardown.
        actions = [
            (os.POSIX_SPAWN_DUP2, release_r, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_CLOSE, pids_w),
        ]
        head = "/usr/bin/head"
        pids = [os.posix_spawn(head, [head, "-c1"], os.environ, file_actions=actions) for _ in range(count)]
        os.write(pids_w, " ".join(map(str, pids)).encode())
        os._exit(0)  # the leaves are orphans now
    os.close(pids_w)
    os.close(release_r)
    chunks = []
    while chunk := os.read(pids_r, 65536):
        chunks.append(chunk)
    os.waitpid(middle, 0)
    leaves = [int(p) for p in b"".join(chunks).split()]
    start = time.monotonic()
    os.close(release_w)  # every leaf exits now and becomes a zombie of the init
    pending = leaves
    deadline = start + float(os.environ.get("BENCH_REAP_CAP", "10"))
    while pending and time.monotonic() < deadline:
        # pop the reaped ones from the end; stop at the first one still there
        while pending and not os.path.exists(f"/proc/{pending[-1]}"):
            pending.pop()
        if pending:
            time.sleep(0.0002)
    elapsed = time.monotonic() - start
    status = "REAP" if not pending else "UNREAPED"
    os.write(1, f"{status} {elapsed:.6f} {len(pending)}\n".encode())


def term_app() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    os.write(1, b"ready\n")
    signal.sigwait({signal.SIGTERM})
    sys.exit(0)


def main() -> None:
    mode = sys.argv[1]
    if mode == "sigecho":
        sigecho()
    elif mode == "orphans":
        orphans(int(sys.argv[2]))
    elif mode == "term_app":
        term_app()
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
