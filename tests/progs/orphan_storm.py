"""Test helper: counts the signals it is sent while it makes a burst of orphans.

``orphan_storm.py N READY_FILE``: blocks every catchable signal and counts
them in a thread with ``sigwaitinfo`` (Python-level handlers would coalesce
queued real-time signals); writes "ready" to READY_FILE, makes N orphans
(intermediate children that each fork up to 100 short-lived grandchildren and
exit at once, so PID 1 inherits and must reap them), writes "made N" once
they are made, then "clean" once the namespace holds nobody but PID 1 and
itself.  On SIGALRM and SIGTERM it writes the counts so far as
``counts {signum: n, ...}``; on SIGTERM it then exits 0.
"""

import os
import signal
import sys
import threading
import time

BATCH = 100


def others() -> list[int]:
    me = os.getpid()
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) not in (1, me)]


def count_signals(fd: int, wanted: set[int]) -> None:
    counts: dict[int, int] = {}
    while True:
        signum = int(signal.sigwaitinfo(wanted).si_signo)
        counts[signum] = counts.get(signum, 0) + 1
        if signum in (signal.SIGALRM, signal.SIGTERM):
            os.write(fd, b"counts %s\n" % repr(dict(sorted(counts.items()))).encode())
        if signum == signal.SIGTERM:
            os._exit(0)


def make_orphans(count: int) -> int:
    made = 0
    while made < count:
        batch = min(BATCH, count - made)
        pid = os.fork()
        if pid == 0:
            for _ in range(batch):
                while True:
                    try:
                        if os.fork() == 0:
                            time.sleep(0.02)
                            os._exit(0)
                        break
                    except BlockingIOError:
                        time.sleep(0.01)
            os._exit(0)
        os.waitpid(pid, 0)
        made += batch
    return made


def main() -> int:
    count, ready = int(sys.argv[1]), sys.argv[2]
    fd = os.open(ready, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    wanted = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    threading.Thread(target=count_signals, args=(fd, wanted), daemon=True).start()
    os.write(fd, b"ready\n")
    os.write(fd, b"made %d\n" % make_orphans(count))
    deadline = time.monotonic() + 60
    while others() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.write(fd, b"clean\n" if not others() else b"left %d\n" % len(others()))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
